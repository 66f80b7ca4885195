// A voter restarted on an emptied data directory (issue 15): it has forgotten its log and its vote,
// so it must not take part; it stops with its fatal message and the documented exit code (70, a
// fatal error at run time: docs/operations.md), and nothing else — before the fix its HTTP workers,
// still starting when their primary stopped, then crashed with an uncaught `write EPIPE` from the
// IPC channel, printing its stack after the node's message. The two others go on.
import assert from 'node:assert/strict';
import { rm } from 'node:fs/promises';
import { test } from 'node:test';
import { ProcessCluster } from './harness.ts';

const IDS = [1, 2, 3];
/** src/node/node.ts: a fatal error at run time. */
const EXIT_FATAL = 70;

test('a voter restarted on an emptied data directory stops with its fatal message and exit 70, no EPIPE; the others go on', { timeout: 120_000 }, async () => {
  const c = await ProcessCluster.create(IDS, { name: 'emptied', workers: 2 });
  try {
    await Promise.all(IDS.map((id) => c.startServing(id)));
    const leader = await c.waitLeader(IDS);
    for (let i = 0; i < 5; i++) assert.equal((await c.put(leader, `k${i}`, `v${i}`)).status, 200);
    const victim = IDS.find((id) => id !== leader)!;
    await c.waitCaughtUp(IDS, leader);
    assert.deepEqual(await c.stop(victim), { code: 0, signal: null });
    const before = c.logText(victim).length;
    await rm(c.dataDir(victim), { recursive: true, force: true });

    await c.start(victim);
    const exit = await c.waitExit(victim, 60_000);
    // Its output, once every process that held it (its workers) has closed it.
    const p = c.proc(victim);
    await new Promise<void>((resolve) => (p.child.stdout!.closed && p.child.stderr!.closed ? resolve() : p.child.once('close', () => resolve())));
    const log = c.logText(victim).slice(before);
    assert.deepEqual(exit, { code: EXIT_FATAL, signal: null }, log);
    // The core's own words: the leader's commit index is beyond this node's (empty) log.
    assert.match(log, /commitTo\(\d+\) is beyond the last index \d+: the log is corrupt, truncated or lost","msg":"fatal error: stopping the node"/);
    assert.doesNotMatch(log, /EPIPE|Unhandled 'error' event|ERR_IPC/, 'no worker crashed after the node stopped');

    // The majority goes on.
    const others = IDS.filter((id) => id !== victim);
    const l2 = await c.waitLeader(others);
    assert.equal((await c.put(l2, 'after', 'yes')).status, 200);
  } finally {
    await c.close();
  }
});
