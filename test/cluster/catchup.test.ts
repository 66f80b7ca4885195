// Test 2: catching up. One cluster, three steps on the same follower:
//  a) killed, a few writes, restarted: it catches up from the leader's log;
//  b) killed, many writes (the leader compacts its log past the follower's index), restarted: it
//     catches up by snapshot (Raft §7, InstallSnapshot);
//  c) killed, many writes, restarted with crash injection so it dies after loading the first batch
//     of the received snapshot, before the atomic flip; restarted without it, it must catch up and
//     serve (the half-loaded generation is garbage and is discarded at open, storage/keys.ts).
// A small compactLogBytes/snapshotCatchupEntries make "far behind the compacted log" cheap.
import assert from 'node:assert/strict';
import { test } from 'node:test';
import { ProcessCluster, waitFor } from './harness.ts';

const IDS = [1, 2, 3];
/** The log budget: about 40 of this test's entries (each costs its data plus 128 bytes). */
const COMPACT_LOG_BYTES = 10_000;
const SNAPSHOT_CATCHUP_ENTRIES = 10;
/** Writes while the follower is down for steps b and c: several compactions' worth. */
const FAR_BEHIND_WRITES = 160;
/** Exit code of a node that dies of a fatal error at run time (dist/main.js). */
const EXIT_FATAL = 70;

/** Sequential PUTs through `via`, each acknowledged; returns what was written. */
async function writeMany(c: ProcessCluster, via: readonly number[], prefix: string, n: number): Promise<Map<string, string>> {
  const written = new Map<string, string>();
  for (let i = 0; i < n; i++) {
    const key = `${prefix}-${i}`;
    const value = `${prefix}:${i}:${'v'.repeat(i % 50)}`;
    const r = await c.put(via[i % via.length]!, key, value);
    assert.equal(r.status, 200, `PUT ${key}: HTTP ${r.status} ${JSON.stringify(r.body)}`);
    written.set(key, value);
  }
  return written;
}

async function assertHolds(c: ProcessCluster, id: number, written: ReadonlyMap<string, string>): Promise<void> {
  for (const [k, v] of written) assert.equal(await c.localValue(id, k), v, `node ${id}: local value of ${k}`);
}

/** Node `id`'s log lines whose message is `msg`. */
function linesWith(c: ProcessCluster, id: number, msg: string): Record<string, unknown>[] {
  return c.logLines(id).filter((l) => l.msg === msg);
}

test('restart catch-up from the log, by snapshot, and after a crash during snapshot install', { timeout: 150_000 }, async () => {
  const c = await ProcessCluster.create(IDS, { name: 'catchup', raft: { compactLogBytes: COMPACT_LOG_BYTES, snapshotCatchupEntries: SNAPSHOT_CATCHUP_ENTRIES } });
  try {
    await Promise.all(IDS.map((id) => c.startServing(id)));
    let leader = await c.waitLeader(IDS);
    const lag = IDS.find((id) => id !== leader)!;
    const others = IDS.filter((id) => id !== lag);
    const all = new Map<string, string>();

    // a) Short outage: the leader still has the entries, the follower catches up from the log.
    await c.kill(lag);
    for (const [k, v] of await writeMany(c, others, 'a', 5)) all.set(k, v);
    await c.startServing(lag);
    leader = await c.waitLeader(IDS);
    await c.waitCaughtUp([lag], leader);
    await assertHolds(c, lag, all);
    assert.equal(linesWith(c, lag, 'installed snapshot').length, 0, 'a short outage must be repaired from the log, not by snapshot');

    // b) Long outage: the log is compacted past the follower's index; only a snapshot can help.
    const lagApplied = (await c.status(lag)).applied;
    await c.kill(lag);
    for (const [k, v] of await writeMany(c, others, 'b', FAR_BEHIND_WRITES)) all.set(k, v);
    // Both running nodes (whichever leads at the restart) must have compacted past the lagging
    // node's index, so the log alone cannot repair it.
    await waitFor(
      `nodes ${others.join(',')} to compact their logs past index ${lagApplied + 1}`,
      () => others.every((id) => linesWith(c, id, 'compacted the log').some((l) => typeof l.compactedThrough === 'number' && l.compactedThrough > lagApplied + 1)),
      10_000,
    );
    await c.startServing(lag);
    leader = await c.waitLeader(IDS);
    await c.waitCaughtUp([lag], leader);
    await waitFor(`node ${lag} to install a snapshot`, () => linesWith(c, lag, 'installed snapshot').length >= 1, 10_000);
    await assertHolds(c, lag, all);
    console.log(`# catchup: node ${lag} caught up by snapshot after missing ${FAR_BEHIND_WRITES} writes (compactLogBytes ${COMPACT_LOG_BYTES})`);

    // c) Crash while installing a snapshot, then a clean restart.
    await c.kill(lag);
    for (const [k, v] of await writeMany(c, others, 'c', FAR_BEHIND_WRITES)) all.set(k, v);
    const installedBefore = linesWith(c, lag, 'installed snapshot').length;
    const linesBefore = c.logLines(lag).length;
    await c.start(lag, { env: { RAFTAUTH_ALLOW_UNSAFE: '1', RAFTAUTH_TEST_CRASH_AFTER_INSTALL_BATCHES: '1' } });
    const exit = await c.waitExit(lag, 30_000);
    assert.equal(exit.code, EXIT_FATAL, `with crash injection node ${lag} must die with exit ${EXIT_FATAL}; got ${JSON.stringify(exit)}\n${c.logTail(lag)}`);
    // It died where intended: a snapshot was received, loading it crashed, it was never installed.
    const crashRun = c.logLines(lag).slice(linesBefore);
    assert.ok(crashRun.some((l) => l.msg === 'received snapshot'), `no snapshot received before the crash:\n${c.logTail(lag)}`);
    assert.ok(crashRun.some((l) => /SIMULATED_CRASH/.test(String(l.err))), `the node died of something else than the injected crash:\n${c.logTail(lag)}`);
    assert.equal(linesWith(c, lag, 'installed snapshot').length, installedBefore, 'the crash came before the snapshot was installed');
    // The cluster went on without it.
    const during = await c.put(others[0]!, 'c-during-crash', 'yes');
    assert.equal(during.status, 200);
    all.set('c-during-crash', 'yes');

    await c.startServing(lag);
    leader = await c.waitLeader(IDS);
    await c.waitCaughtUp([lag], leader);
    assert.ok(linesWith(c, lag, 'installed snapshot').length > installedBefore, 'after the crash the snapshot is installed on restart');
    await assertHolds(c, lag, all);
    // It serves: a linearizable read and a write through it.
    const w = await c.put(lag, 'c-after', 'served');
    assert.equal(w.status, 200, JSON.stringify(w.body));
    const r = await c.get(lag, 'c-after');
    assert.deepEqual([r.status, r.body.value], [200, 'served']);
    for (const id of IDS) await assertHolds(c, id, new Map([['c-during-crash', 'yes']]));
  } finally {
    await c.close();
  }
});
