// Test 1: kill -9 the leader under a steady write load. A new leader must be elected within 2 s
// (election timeout is 0.5–1 s at tickMs 50, Raft §5.2, plus a pre-vote round), and every
// acknowledged write must be on every node afterwards, including the killed one once restarted
// (Raft §5.4 leader completeness: a write is acknowledged only once committed on a majority).
import assert from 'node:assert/strict';
import { test } from 'node:test';
import { ProcessCluster, since, waitFor } from './harness.ts';
import { WriteLoad } from './load.ts';

const IDS = [1, 2, 3];
const WRITERS = 4;
/** Acknowledged writes before the kill, so the load is steady when the leader dies. */
const WARMUP_ACKS = 150;
/** Acknowledged writes after the new leader, proving the cluster serves again. */
const AFTER_ACKS = 100;
const FAILOVER_MAX_MS = 2_000;

test('kill -9 the leader under load: new leader within 2 s, no acknowledged write lost', { timeout: 120_000 }, async () => {
  const c = await ProcessCluster.create(IDS, { name: 'failover' });
  try {
    await Promise.all(IDS.map((id) => c.startServing(id)));
    const oldLeader = await c.waitLeader(IDS);
    const survivors = IDS.filter((id) => id !== oldLeader);

    // Writers use every node; once the leader is dead its port refuses connections and they move on.
    const load = new WriteLoad(c, { writers: WRITERS, targets: () => IDS, requestTimeoutMs: 5_000 }).start();
    try {
      await waitFor(`${WARMUP_ACKS} acknowledged writes`, () => load.ackedCount >= WARMUP_ACKS, 30_000);
      const warmRate = (load.ackedCount * 1000) / load.elapsedMs();

      const tKill = performance.now();
      await c.kill(oldLeader);
      // Failover time: until both survivors agree on a new leader that says it leads.
      const newLeader = await waitFor(
        'a new leader among the survivors',
        async () => {
          const sts = await Promise.all(survivors.map((id) => c.status(id)));
          const l = sts[0]!.leader;
          return l !== 0 && l !== oldLeader && sts.every((s) => s.leader === l) && sts.find((s) => s.id === l)?.role === 'leader' ? l : null;
        },
        10_000,
      );
      const failoverMs = since(tKill);
      const before = load.ackedCount;
      await waitFor(`${AFTER_ACKS} acknowledged writes after the failover`, () => load.ackedSince(tKill) >= AFTER_ACKS, 30_000);
      const firstAck = load.firstAckAfter(tKill);
      console.log(`# failover: node ${oldLeader} killed, node ${newLeader} leads after ${failoverMs} ms; first write acknowledged ${firstAck === null ? '?' : Math.round(firstAck - tKill)} ms after the kill`);
      console.log(`# failover: load ${WRITERS} writers, ${warmRate.toFixed(0)} acknowledged writes/s before the kill; ${before} before, ${load.ackedCount - before} after`);
      assert.ok(failoverMs <= FAILOVER_MAX_MS, `failover took ${failoverMs} ms (> ${FAILOVER_MAX_MS} ms)`);
    } finally {
      await load.stop();
    }
    console.log(`# failover: ${load.ackedCount} acknowledged, ${load.failures.length} not acknowledged (${[...new Set(load.failures.map((f) => f.what.slice(0, 40)))].join(' | ')}), ${load.refusedConnects} refused connects retried elsewhere`);

    // Restart the killed node; it must catch up and hold every acknowledged write too.
    await c.startServing(oldLeader);
    const leader = await c.waitLeader(IDS);
    await c.waitCaughtUp(IDS, leader);
    const problems: string[] = [];
    for (const id of IDS) problems.push(...(await load.checkNode(id)));
    assert.deepEqual(problems, [], problems.join('\n'));
    assert.ok(load.ackedCount >= WARMUP_ACKS + AFTER_ACKS);
  } finally {
    await c.close();
  }
});
