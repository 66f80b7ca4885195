// Proof that the simulator's checks can fail: each deliberate bug switch, run over a bounded range
// of seeds with a fault mix chosen to expose it, must make the simulator report a violation of an
// expected kind. The same seed without the switch must not show that violation, so the switch,
// not something else, is what was caught.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import type { ViolationKind } from './checks.ts';
import { runSim, type BugName, type SimOptions } from './run.ts';

/** Violations that show broken safety (liveness and convergence failures prove nothing here). */
const SAFETY: readonly ViolationKind[] = ['electionSafety', 'logMatching', 'leaderCompleteness', 'commitRule', 'committedChanged', 'stateMachineSafety', 'exception', 'session', 'linearizability'];

interface BugCase {
  readonly bug: BugName;
  readonly why: string;
  readonly mix: string;
  readonly nodes: 3 | 5;
  readonly firstSeed: number;
  readonly maxSeeds: number;
  readonly kinds: readonly ViolationKind[];
  readonly ignoreChecks?: readonly ViolationKind[];
}

const CASES: readonly BugCase[] = [
  { bug: 'forgetVote', why: 'a restarted node votes twice in one term: two leaders', mix: 'restarts', nodes: 5, firstSeed: 1, maxSeeds: 60, kinds: SAFETY },
  { bug: 'sendBeforePersist', why: 'acknowledged entries and votes lost in a crash', mix: 'crashes', nodes: 3, firstSeed: 1, maxSeeds: 40, kinds: SAFETY },
  { bug: 'ackBeforeCommit', why: 'a write answered and then lost with its leader', mix: 'partitions', nodes: 3, firstSeed: 1, maxSeeds: 40, kinds: ['linearizability'] },
  { bug: 'readWithoutReadIndex', why: 'a stale read from a follower or deposed leader', mix: 'partitions', nodes: 3, firstSeed: 1, maxSeeds: 40, kinds: ['linearizability'] },
  { bug: 'applyRetryTwice', why: 'a retried append applied twice', mix: 'crashes', nodes: 3, firstSeed: 1, maxSeeds: 60, kinds: ['linearizability'] },
  { bug: 'commitPriorTermByCounting', why: 'figure 8: an earlier-term entry committed by counting', mix: 'figure8', nodes: 5, firstSeed: 1, maxSeeds: 40, kinds: ['commitRule'] },
  {
    bug: 'commitPriorTermByCounting',
    why: 'figure 8 to the end: the entry so committed is missing from a later leader (commit-rule check off)',
    mix: 'figure8',
    nodes: 5,
    // The full figure-8 outcome is rare in random schedules (1 seed in 1,500 since stale vote
    // requests are answered with the higher term); the range is pinned around the seeds that show
    // it. It moved from 522 to 1158 and 1170 (of 5,000 searched) when the nodes began sending a
    // leader's appends in parallel with its own disk write (parallelLeaderAppend), which changes
    // every schedule; and to 1710 (the first of those below 2,000) when followers began
    // campaigning on losing the leader's connection (leaderLossCampaign, src/node/driver.ts).
    firstSeed: 1705,
    maxSeeds: 10,
    kinds: ['leaderCompleteness', 'stateMachineSafety', 'committedChanged', 'linearizability'],
    ignoreChecks: ['commitRule'],
  },
  { bug: 'skipLogUpToDateCheck', why: 'a leader elected without a committed entry', mix: 'partitions', nodes: 3, firstSeed: 1, maxSeeds: 40, kinds: SAFETY },
];

for (const c of CASES) {
  test(`bug switch ${c.bug} is caught (${c.why})`, () => {
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
      const hit = r.violations.find((v) => c.kinds.includes(v.kind));
      if (hit === undefined) continue;
      console.log(`# ${c.bug}: caught on seed ${seed} (${c.mix}, ${c.nodes} nodes) as ${hit.kind}: ${hit.detail.split('\n')[0]}\n#   replay: ${r.replay}`);
      const control = runSim({ ...o, bugs: [] });
      const same = control.violations.find((v) => v.kind === hit.kind);
      assert.equal(same, undefined, `seed ${seed} shows ${hit.kind} even without ${c.bug}: ${same?.detail}\n  replay: ${control.replay}`);
      return;
    }
    assert.fail(`${c.bug} was not caught on seeds ${c.firstSeed}..${c.firstSeed + c.maxSeeds - 1} of mix ${c.mix}: the checks that should catch it (${c.kinds.join(', ')}) are blind`);
  });
}
