// Proof that each of the simulator's checks can fail: every check has a deliberate bug switch aimed
// at it. Run over a bounded range of seeds with a fault mix chosen to expose it, the first seed on
// which the switch makes the run fail must fail by that check and no other (not "some violation":
// a bug caught only by another check would leave this one unproven), and the same seed without
// the switch must pass every check, so the switch, not something else, is what was caught.
//
// The seed ranges are pinned: a change to the simulator's schedules (new draws, new event kinds)
// moves them, and the failure message then says which check caught what on which seed.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { VIOLATION_KINDS, type ViolationKind } from './checks.ts';
import { runSim, type BugName, type SimOptions } from './run.ts';

interface BugCase {
  /** The one check this switch is aimed at. */
  readonly check: ViolationKind;
  readonly bug: BugName;
  readonly why: string;
  readonly mix: string;
  readonly nodes: 3 | 5;
  readonly firstSeed: number;
  readonly maxSeeds: number;
  readonly ignoreChecks?: readonly ViolationKind[];
}

const CASES: readonly BugCase[] = [
  { check: 'electionSafety', bug: 'forgetVote', why: 'a restarted node votes twice in one term: two leaders', mix: 'restarts', nodes: 5, firstSeed: 1, maxSeeds: 60 },
  { check: 'logMatching', bug: 'corruptEntryOnDisk', why: "one node's disk stores other bytes under an (index, term) than the others", mix: 'calm', nodes: 3, firstSeed: 1, maxSeeds: 10 },
  { check: 'leaderCompleteness', bug: 'skipLogUpToDateCheck', why: 'a leader elected without a committed entry', mix: 'partitions', nodes: 3, firstSeed: 1, maxSeeds: 40 },
  {
    check: 'leaderCompleteness',
    bug: 'commitPriorTermByCounting',
    why: 'figure 8 to the end: the entry so committed is missing from a later leader (commit-rule check off)',
    mix: 'figure8',
    nodes: 5,
    // The full figure-8 outcome is rare in random schedules (1 seed in 1,500 since stale vote
    // requests are answered with the higher term); the range is pinned around the seeds that show
    // it. It moved from 522 to 1158 and 1170 (of 5,000 searched) when the nodes began sending a
    // leader's appends in parallel with its own disk write (parallelLeaderAppend), which changes
    // every schedule; and to 1710 (the first of those below 2,000) when followers began
    // campaigning on losing the leader's connection (leaderLossCampaign, src/node/driver.ts); and
    // to 356 (the first of 3,000 searched; then 1784, 1813, 1889) when the nodes began batching
    // writes as the driver does (node.ts), which moves every proposal.
    firstSeed: 351,
    maxSeeds: 10,
    ignoreChecks: ['commitRule'],
  },
  { check: 'commitRule', bug: 'commitPriorTermByCounting', why: 'figure 8: an earlier-term entry committed by counting', mix: 'figure8', nodes: 5, firstSeed: 1, maxSeeds: 40 },
  { check: 'stateMachineSafety', bug: 'skipFirstCommitted', why: 'the apply loop skips a committed entry: applies are not consecutive', mix: 'calm', nodes: 3, firstSeed: 1, maxSeeds: 10 },
  { check: 'session', bug: 'refuseRetryAsStale', why: 'a retried command whose first answer was lost is refused as stale', mix: 'crashes', nodes: 3, firstSeed: 1, maxSeeds: 40 },
  // Caught by the core's own invariant (commitTo beyond the last index: a follower acknowledged
  // entries it then lost in a crash) on 24 of seeds 1..40, by a simulator check on 1 (seed 27,
  // election safety: a vote sent before it was durable, then cast again after a restart).
  { check: 'exception', bug: 'sendBeforePersist', why: 'acknowledged entries lost in a crash: the core refuses a commit index beyond its log', mix: 'crashes', nodes: 3, firstSeed: 1, maxSeeds: 40 },
  { check: 'liveness', bug: 'tickerLostOnRestart', why: 'restarted nodes never time out: no election after the heal', mix: 'crashes', nodes: 3, firstSeed: 1, maxSeeds: 20 },
  { check: 'convergence', bug: 'snapshotsLostReportedSent', why: 'a follower that needs a snapshot never gets one, the others commit on', mix: 'snapshots', nodes: 3, firstSeed: 1, maxSeeds: 20 },
  { check: 'linearizability', bug: 'ackBeforeCommit', why: 'a write answered and then lost with its leader', mix: 'partitions', nodes: 3, firstSeed: 1, maxSeeds: 40 },
  { check: 'linearizability', bug: 'readWithoutReadIndex', why: 'a stale read from a follower or deposed leader', mix: 'partitions', nodes: 3, firstSeed: 1, maxSeeds: 40 },
  { check: 'linearizability', bug: 'applyRetryTwice', why: 'a retried append applied twice', mix: 'crashes', nodes: 3, firstSeed: 1, maxSeeds: 60 },
  // Write batching (issue 14): the 'batches' mix gathers several commands per entry.
  { check: 'stateMachineSafety', bug: 'applyBatchTwice', why: 'a restarted node applies the batch at its snapshot index again', mix: 'batches', nodes: 3, firstSeed: 1, maxSeeds: 30 },
  { check: 'linearizability', bug: 'ackBeforeMajorityFsync', why: "a batch answered once the leader's own write is durable, then lost with its leader", mix: 'batches', nodes: 3, firstSeed: 1, maxSeeds: 20 },
  // Asynchronous storage writes (issue 14): a Ready with nothing to write sends its append
  // acknowledgements ahead of the earlier writes still in flight. Caught by the core's own
  // invariant (commitTo beyond the last index: the acknowledged entries were lost in a crash), as
  // sendBeforePersist is; first on seed 9 of the crashes mix, then 10 and 16.
  { check: 'exception', bug: 'sendAheadOfWrites', why: 'append acknowledgements sent ahead of the writes they depend on, then lost in a crash', mix: 'crashes', nodes: 3, firstSeed: 1, maxSeeds: 30 },
  { check: 'linearizability', bug: 'splitBatchAcrossLeaderChange', why: 'half of a batch lost to a leader change answered as applied', mix: 'batches', nodes: 3, firstSeed: 1, maxSeeds: 40 },
];

/**
 * Checks no bug switch can reach end to end, with the reason and the test that proves them on a
 * synthetic history instead.
 */
const PROVEN_ELSEWHERE: Partial<Record<ViolationKind, string>> = {
  committedChanged:
    "the core's own invariant fires first: a leader's commit index beyond its log (or in its compacted part) is refused by commitTo/slice in src/raft/log.ts before the Ready that would show it; checks.test.ts 'committed index not in the leader log' proves the check",
};

test('every check has a bug switch aimed at it (or a stated reason and a synthetic proof)', () => {
  for (const kind of VIOLATION_KINDS) {
    assert.ok(CASES.some((c) => c.check === kind) || PROVEN_ELSEWHERE[kind] !== undefined, `the check ${kind} has no bug switch that proves it can fail`);
  }
});

for (const c of CASES) {
  test(`bug switch ${c.bug} is caught by the ${c.check} check alone (${c.why})`, () => {
    for (let seed = c.firstSeed; seed < c.firstSeed + c.maxSeeds; seed++) {
      const o: SimOptions = {
        seed,
        mix: c.mix,
        nodes: c.nodes,
        steps: 300,
        bugs: [c.bug],
        ...(c.ignoreChecks ? { ignoreChecks: c.ignoreChecks } : {}),
      };
      const r = runSim(o);
      if (r.ok) continue;
      const first = r.violations[0]!;
      const kinds = [...new Set(r.violations.map((v) => v.kind))];
      assert.deepEqual(kinds, [c.check], `${c.bug} on seed ${seed} (${c.mix}, ${c.nodes} nodes) was caught by ${kinds.join(', ')}, not by ${c.check} alone: ${first.detail.split('\n')[0]}\n  replay: ${r.replay}`);
      console.log(`# ${c.bug}: caught on seed ${seed} (${c.mix}, ${c.nodes} nodes) by ${c.check}: ${first.detail.split('\n')[0]}\n#   replay: ${r.replay}`);
      // The control runs with every check on, also those the case ignores.
      const control = runSim({ seed, mix: c.mix, nodes: c.nodes, steps: o.steps });
      assert.ok(control.ok, `seed ${seed} fails even without ${c.bug}: ${control.violations.map((v) => `${v.kind}: ${v.detail.split('\n')[0]}`).join('; ')}\n  replay: ${control.replay}`);
      return;
    }
    assert.fail(`${c.bug} was not caught on seeds ${c.firstSeed}..${c.firstSeed + c.maxSeeds - 1} of mix ${c.mix}: the ${c.check} check is blind to it`);
  });
}
