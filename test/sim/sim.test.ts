// The deterministic cluster simulation over many seeds and every fault mix: safety invariants after
// every event, liveness and convergence after healing, linearizability of the client history.
// A failure names its seed and prints the one-line command that replays it exactly.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { MIX_NAMES } from './faults.ts';
import { DEFAULT_STEPS, runSim, type SimResult } from './run.ts';
import { MAX_SEEDS_PER_MIX, intFromEnv } from './env.ts';

/** Seeds per mix; with the 10 mixes of faults.ts this is 10 x 100 = 1,000 runs. 0 or not a number is refused. */
const SEEDS_PER_MIX = intFromEnv(process.env, 'RAFTAUTH_SIM_SEEDS_PER_MIX', 100, 1, MAX_SEEDS_PER_MIX);
/** Fault-phase length of each run, in 10 ms ticks (5 s of virtual time, then heal and drain). */
const STEPS = 500;
/** Seeds start here; set RAFTAUTH_SIM_FIRST_SEED to explore fresh ones (CI uses the fixed range). */
const FIRST_SEED = intFromEnv(process.env, 'RAFTAUTH_SIM_FIRST_SEED', 1, 1, 2 ** 31);

function describeFailure(r: SimResult): string {
  const v = r.violations[0]!;
  return `seed ${r.seed} (${r.mix}, ${r.nodes} nodes): ${v.kind} at ${v.timeUs / 1000} ms: ${v.detail.split('\n').slice(0, 12).join('\n    ')}\n  replay: ${r.replay}`;
}

for (const mix of MIX_NAMES) {
  test(`sim: ${SEEDS_PER_MIX} seeds of the '${mix}' fault mix keep every invariant`, () => {
    const failures: string[] = [];
    let unknown = 0;
    let ops = 0;
    let indeterminate = 0;
    let runs = 0;
    for (let i = 0; i < SEEDS_PER_MIX; i++) {
      const seed = FIRST_SEED + i;
      const r = runSim({ seed, mix, nodes: i % 2 === 0 ? 3 : 5, steps: STEPS });
      runs++;
      ops += r.stats.ops!;
      indeterminate += r.stats.opsIndeterminate!;
      if (r.linearizability.verdict === 'unknown') unknown++;
      if (!r.ok) failures.push(describeFailure(r));
    }
    console.log(`# ${mix}: ${runs} seeds from ${FIRST_SEED}, ${ops} client ops (${indeterminate} indeterminate), linearizability unknown on ${unknown}`);
    // The seeds really ran, and did something: a run that skipped its workload proves nothing.
    assert.equal(runs, SEEDS_PER_MIX);
    assert.ok(ops > 0, `the ${runs} runs of the ${mix} mix recorded no client operation`);
    // 'unknown' means the checker ran out of budget, which hides bugs: keep it rare.
    assert.ok(unknown <= Math.ceil(SEEDS_PER_MIX / 20), `linearizability check inconclusive on ${unknown} seeds`);
    assert.equal(failures.length, 0, `${failures.length} failing seed(s):\n${failures.join('\n')}`);
  });
}

test('sim: a run is a pure function of (seed, options), traced or not', () => {
  for (const [seed, mix] of [
    [11, 'chaos'],
    [12, 'membership'],
  ] as const) {
    const a = runSim({ seed, mix, nodes: 5, steps: 150 });
    const b = runSim({ seed, mix, nodes: 5, steps: 150, trace: true });
    assert.deepEqual(a.stats, b.stats, `seed ${seed}: tracing changed the run`);
    assert.deepEqual(a.violations, b.violations);
    assert.ok(b.trace !== null && b.trace.length > 100, 'the trace records the run');
    const c = runSim({ seed: seed + 1000, mix, nodes: 5, steps: 150 });
    assert.notDeepEqual(a.stats, c.stats, 'different seeds give different runs');
  }
});

test('sim: the fault mixes really inject their faults', () => {
  const total: Record<string, number> = {};
  for (const mix of ['crashes', 'partitions', 'membership', 'snapshots', 'lossy', 'batches']) {
    for (let seed = 1; seed <= 4; seed++) {
      const r = runSim({ seed, mix, nodes: 5, steps: DEFAULT_STEPS });
      for (const [k, v] of Object.entries(r.stats)) total[`${mix}.${k}`] = (total[`${mix}.${k}`] ?? 0) + v;
    }
  }
  assert.ok(total['crashes.crashes']! > 10, 'crashes happen');
  assert.ok(total['partitions.partitions']! > 10, 'partitions happen');
  assert.ok(total['membership.confChangesApplied']! > 5, 'membership changes commit');
  assert.ok(total['membership.transfers']! > 5, 'leadership transfers happen');
  assert.ok(total['snapshots.snapshotsSent']! > 3, 'lagging nodes catch up by snapshot');
  assert.ok(total['lossy.messagesDuplicated']! > 100 && total['lossy.messagesDropped']! > 100, 'messages are dropped and duplicated');
  assert.ok(total['crashes.opsCompleted']! > 100, 'clients make progress despite crashes');
  assert.ok(total['lossy.sessionsExpired']! > 0, 'client sessions expire and are re-registered');
  // Every key of r.stats is summed: maxBatchCommands sums the four runs' largest batches.
  assert.ok(total['batches.batchedCommands']! > 1.2 * total['batches.batches']!, 'leaders gather several commands per entry');
  assert.ok(total['batches.maxBatchCommands']! >= 4 * 4, 'batches of four commands or more form');
});

test('sim: storage writes are pipelined (several in flight, completing in order) when the run allows it', () => {
  let pipelined = 0;
  for (let seed = 1; seed <= 4; seed++) {
    const sync = runSim({ seed, mix: 'batches', nodes: 3, steps: DEFAULT_STEPS, maxWritesInFlight: 1 });
    assert.ok(sync.ok, `seed ${seed} with one write in flight: ${sync.violations.map((v) => v.kind).join(', ')}`);
    assert.equal(sync.stats['maxWritesInFlight'], 1, 'maxWritesInFlight 1 is the synchronous driver');
    const piped = runSim({ seed, mix: 'batches', nodes: 3, steps: DEFAULT_STEPS, maxWritesInFlight: 4 });
    assert.ok(piped.ok, `seed ${seed} with four writes in flight: ${piped.violations.map((v) => v.kind).join(', ')}`);
    assert.ok(piped.stats['maxWritesInFlight']! <= 4, 'the limit holds');
    if (piped.stats['maxWritesInFlight']! > 1) pipelined++;
  }
  assert.ok(pipelined >= 3, `writes were pipelined in only ${pipelined} of 4 runs`);
});
