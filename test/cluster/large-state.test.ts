// Issue 15: state that grows. A 3-node cluster of real processes is filled with ~10 MB of state
// (on main before the fix, a snapshot of 13 MB cost an election every time, 99 leader changes in
// four minutes). Then, under sustained writes, the log is compacted again and again and a learner
// joins from an empty data directory — so the leader writes the whole state to a file and streams
// it while it serves writes. Checked: no node's term moves (no election at all), every write is
// answered 200, the members compacted at different indexes (never all at the same moment), no
// compaction wrote a state file, and the learner catches up and holds the state.
import assert from 'node:assert/strict';
import { test } from 'node:test';
import { ProcessCluster, waitFor, type HttpResult } from './harness.ts';

const IDS = [1, 2, 3];
/** Records written before the load phase: with VALUE_BYTES each, ~10 MB of state. */
const RECORDS = 12_000;
const VALUE_BYTES = 800;
/** Requests in flight while filling, and during the load phase. */
const FILL_IN_FLIGHT = 32;
const LOAD_IN_FLIGHT = 8;
/** The log budget: about a thousand records, so filling compacts each log about ten times. */
const COMPACT_LOG_BYTES = 1024 * 1024;
/** Values written during the load phase (small: the log then holds more than the learner's install takes). */
const LOAD_VALUE_BYTES = 100;
/** Bounds of the load phase (it ends when the learner has caught up). */
const LOAD_MAX_WRITES = 50_000;
const LEARNER_CATCHUP_DEADLINE_MS = 60_000;

function value(i: number, bytes = VALUE_BYTES): string {
  return `${i}:`.padEnd(bytes, String.fromCharCode(97 + (i % 26)));
}

/** PUT keys [from, to) with `inFlight` requests at a time; every answer must be 200. */
async function fill(c: ProcessCluster, via: readonly number[], from: number, to: number, inFlight: number): Promise<void> {
  let next = from;
  await Promise.all(
    Array.from({ length: inFlight }, async (_, w) => {
      for (;;) {
        const i = next++;
        if (i >= to) return;
        const r = await c.put(via[(i + w) % via.length]!, `rec-${i}`, value(i));
        assert.equal(r.status, 200, `PUT rec-${i}: HTTP ${r.status} ${JSON.stringify(r.body)}`);
      }
    }),
  );
}

test('a large state: compactions and a learner catching up under load cause no election and no failed write', { timeout: 300_000 }, async () => {
  const c = await ProcessCluster.create(IDS, { name: 'large-state', raft: { compactLogBytes: COMPACT_LOG_BYTES, snapshotCatchupEntries: 100 } });
  try {
    await Promise.all(IDS.map((id) => c.startServing(id)));
    const leader = await c.waitLeader(IDS);
    await fill(c, IDS, 0, RECORDS, FILL_IN_FLIGHT);
    await c.waitCaughtUp(IDS, leader);
    const termsBefore = await Promise.all(IDS.map(async (id) => (await c.status(id)).term));

    // Sustained writes until the learner has caught up (bounded in count; each has its deadline).
    let stop = false;
    let written = 0;
    const failures: string[] = [];
    const load = Promise.all(
      Array.from({ length: LOAD_IN_FLIGHT }, async (_, w) => {
        while (!stop && written < LOAD_MAX_WRITES) {
          const i = RECORDS + written++;
          let r: HttpResult;
          try {
            r = await c.put(IDS[(i + w) % IDS.length]!, `load-${i}`, value(i, LOAD_VALUE_BYTES));
          } catch (e) {
            failures.push(`load-${i}: ${e instanceof Error ? e.message : String(e)}`);
            continue;
          }
          if (r.status !== 200) failures.push(`load-${i}: HTTP ${r.status} ${JSON.stringify(r.body)}`);
        }
      }),
    );

    // A learner from an empty data directory: the log was compacted long ago, so it needs the whole state.
    const m4 = await c.reserve(4);
    await c.startServing(4, { join: true, members: [1, 2, 3, 4] });
    const t0 = performance.now();
    const add = await c.admin(leader, 'POST', '/admin/v1/members', { id: 4, raftAddress: m4.raftAddress, httpAddress: m4.httpAddress });
    assert.equal(add.status, 200, `add learner 4: HTTP ${add.status} ${JSON.stringify(add.body)}`);
    await waitFor('the learner to install the state', () => c.logLines(4).some((l) => l.msg === 'installed snapshot'), LEARNER_CATCHUP_DEADLINE_MS);
    let last = '';
    await waitFor(
      'the learner to reach the leader\'s commit index under load',
      async () => {
        const [l, n] = await Promise.all([c.status(leader), c.status(4)]);
        last = `leader commit ${l.commit}, learner applied ${n.applied}`;
        return n.applied >= l.commit - 50;
      },
      LEARNER_CATCHUP_DEADLINE_MS,
    ).catch((e: unknown) => {
      throw new Error(`${e instanceof Error ? e.message : String(e)} (${last})\nleader:\n${c.logTail(leader)}\nlearner:\n${c.logTail(4)}`);
    });
    const catchupMs = Math.round(performance.now() - t0);
    stop = true;
    await load;

    assert.deepEqual(failures, [], 'every write under load answered 200');
    const termsAfter = await Promise.all(IDS.map(async (id) => (await c.status(id)).term));
    assert.deepEqual(termsAfter, termsBefore, 'no election: no term moved');
    for (const id of IDS) assert.equal(c.logLines(id).filter((l) => l.msg === 'leader changed').length, 1, `node ${id} saw one leader, the first`);

    // Compactions on every voter, at indexes of their own; none wrote a state file. The leader wrote
    // one, for the learner.
    const compacted = IDS.map((id) => c.logLines(id).filter((l) => l.msg === 'compacted the log').map((l) => l.index as number));
    for (const [k, idx] of compacted.entries()) assert.ok(idx.length >= 4, `node ${IDS[k]} compacted ${idx.length} times`);
    for (let a = 0; a < IDS.length; a++) {
      for (let b = a + 1; b < IDS.length; b++) {
        const shared = compacted[a]!.filter((i) => compacted[b]!.includes(i));
        assert.ok(shared.length <= compacted[a]!.length / 4, `nodes ${IDS[a]} and ${IDS[b]} compacted at the same index ${shared.length} of ${compacted[a]!.length} times`);
      }
    }
    const files = c.logLines(leader).filter((l) => l.msg === 'wrote a state file');
    assert.equal(files.length, 1, 'the leader wrote one state file, for the learner');
    for (const id of IDS.filter((i) => i !== leader)) assert.equal(c.logLines(id).filter((l) => l.msg === 'wrote a state file').length, 0, `node ${id} wrote no state file`);

    // The learner holds the state (a sample of it).
    for (const i of [0, 1, RECORDS / 2, RECORDS - 1]) assert.equal(await c.localValue(4, `rec-${i}`), value(i), `learner: rec-${i}`);
    console.log(`# large-state: ${RECORDS} records of ${VALUE_BYTES} B, learner caught up in ${catchupMs} ms under load (${written} writes meanwhile, state file ${JSON.stringify(files.map((f) => f.bytes))} bytes), compactions per voter ${compacted.map((x) => x.length).join('/')}`);
  } finally {
    await c.close();
  }
});
