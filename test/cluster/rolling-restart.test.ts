// Test 4: rolling restart of all three nodes, one at a time (SIGTERM, wait for the exit, start
// again, wait until it has caught up), under continuous writes sent to all nodes. Zero failed
// client writes: a request refused at connect (never sent) may go to the next node, as a load
// balancer would; any 5xx, timeout or reset of a sent request is a failure. A graceful stop must
// therefore stop accepting before it stops answering, and drain what it accepted; a leader that
// stops makes the others elect a new one while requests wait inside their deadline (DESIGN
// "Process model": clients see latency, not errors).
import assert from 'node:assert/strict';
import { test } from 'node:test';
import { ProcessCluster, since, waitFor } from './harness.ts';
import { WriteLoad } from './load.ts';

const IDS = [1, 2, 3];
const WRITERS = 3;
/** Acknowledged writes between two restarts, so every restart happens under load. */
const ACKS_BETWEEN = 40;

test('rolling restart under continuous writes to all nodes: zero failed writes', { timeout: 150_000 }, async () => {
  // HTTP served by one node:cluster worker per node: the stop path drains workers too.
  const c = await ProcessCluster.create(IDS, { name: 'rolling', workers: 1 });
  try {
    await Promise.all(IDS.map((id) => c.startServing(id)));
    await c.waitLeader(IDS);
    // Writers route like a load balancer that checks /readyz every 100 ms (haproxy.cfg checks every
    // 500 ms with the default 1 s shutdown delay; the cluster tests use the defaults).
    const load = new WriteLoad(c, { writers: WRITERS, targets: () => IDS, requestTimeoutMs: 5_000, healthCheckMs: 100 }).start();
    const restartMs: number[] = [];
    try {
      for (const id of IDS) {
        const acks = load.ackedCount;
        await waitFor(`${ACKS_BETWEEN} acknowledged writes before restarting node ${id}`, () => load.ackedCount >= acks + ACKS_BETWEEN, 30_000);
        const wasLeader = (await c.status(id)).role === 'leader';
        const t0 = performance.now();
        const exit = await c.stop(id, 20_000);
        assert.deepEqual(exit, { code: 0, signal: null }, `node ${id} must exit 0 on SIGTERM\n${c.logTail(id)}`);
        await c.startServing(id);
        const leader = await c.waitLeader(IDS);
        await c.waitCaughtUp([id], leader);
        restartMs.push(since(t0));
        console.log(`# rolling restart: node ${id}${wasLeader ? ' (leader)' : ''} stopped, restarted and caught up in ${restartMs.at(-1)} ms; ${load.ackedCount} writes acknowledged so far, ${load.failures.length} failed`);
      }
      const acks = load.ackedCount;
      await waitFor(`${ACKS_BETWEEN} acknowledged writes after the last restart`, () => load.ackedCount >= acks + ACKS_BETWEEN, 30_000);
    } finally {
      await load.stop();
    }
    console.log(`# rolling restart: ${load.ackedCount} writes acknowledged, ${load.failures.length} failed, ${load.refusedConnects} refused connects retried on another node, over ${Math.round(load.elapsedMs())} ms`);
    // Data first (every acknowledged write on every node, none twice), then the failed-write count.
    const leader = await c.waitLeader(IDS);
    await c.waitCaughtUp(IDS, leader);
    const problems: string[] = [];
    for (const id of IDS) problems.push(...(await load.checkNode(id)));
    assert.deepEqual(problems, [], problems.join('\n'));
    assert.deepEqual(load.failures, [], `failed client writes:\n${load.failures.map((f) => JSON.stringify(f)).join('\n')}`);
  } finally {
    await c.close();
  }
});

/** Writers in the graceful-stop test: enough that requests are always in flight when SIGTERM lands. */
const BURST_WRITERS = 8;
const STOP_ROUNDS = 5;

// The same guarantee, made sharp: every writer sends to the node being stopped first, so SIGTERM
// always lands while requests are in flight there. A graceful stop turns the node not-ready at once
// and keeps serving for http.shutdownDelayMs, so a balancer checking /readyz moves traffic away
// before the listener closes (closing it would reset connections still in the accept queue); every
// request the node accepted is answered (200: the node is still up while HTTP drains).
test('graceful stop (SIGTERM) of a node under a burst of writes: no sent write fails', { timeout: 120_000 }, async () => {
  const c = await ProcessCluster.create(IDS, { name: 'drain', workers: 0 });
  try {
    await Promise.all(IDS.map((id) => c.startServing(id)));
    const leader = await c.waitLeader(IDS);
    const victim = IDS.find((id) => id !== leader)!;
    const order = [victim, ...IDS.filter((id) => id !== victim)];
    const load = new WriteLoad(c, { writers: BURST_WRITERS, targets: () => order, requestTimeoutMs: 5_000, pick: 'first', healthCheckMs: 100 }).start();
    try {
      for (let round = 0; round < STOP_ROUNDS; round++) {
        const acks = load.ackedCount;
        await waitFor(`${ACKS_BETWEEN} acknowledged writes`, () => load.ackedCount >= acks + ACKS_BETWEEN, 30_000);
        assert.deepEqual(await c.stop(victim), { code: 0, signal: null }, c.logTail(victim));
        await c.startServing(victim);
      }
      const acks = load.ackedCount;
      await waitFor(`${ACKS_BETWEEN} acknowledged writes after the last restart`, () => load.ackedCount >= acks + ACKS_BETWEEN, 30_000);
    } finally {
      await load.stop();
    }
    console.log(`# graceful stop: node ${victim} stopped ${STOP_ROUNDS}x under ${BURST_WRITERS} writers: ${load.ackedCount} acknowledged, ${load.failures.length} failed (${[...new Set(load.failures.map((f) => f.what.slice(0, 60)))].join(' | ')}), ${load.refusedConnects} refused connects`);
    const l = await c.waitLeader(IDS);
    await c.waitCaughtUp(IDS, l);
    const problems: string[] = [];
    for (const id of IDS) problems.push(...(await load.checkNode(id)));
    assert.deepEqual(problems, [], problems.join('\n'));
    assert.deepEqual(load.failures, [], `failed client writes:\n${load.failures.map((f) => JSON.stringify(f)).join('\n')}`);
  } finally {
    await c.close();
  }
});
