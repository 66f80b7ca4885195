// Seeds that once found a bug, kept in the suite so the bug stays fixed. Each entry names the bug.
// They replay the schedules that found them, from before followers campaigned on losing the
// leader's connection (leaderLossCampaign, src/node/driver.ts), which changes every schedule with
// an unreachable peer: so they run without it. The full seed sweeps run with it.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { runSim } from './run.ts';

const SEEDS = [
  { seed: 83, mix: 'lossy', nodes: 3, steps: 500, bug: 'a lost MsgApp stalled a replicating follower with a full in-flight window' },
  { seed: 32, mix: 'membership', nodes: 5, steps: 500, bug: 'the same stall, one follower behind for good' },
  { seed: 32, mix: 'figure8', nodes: 5, steps: 500, bug: 'the same stall, one follower behind for good' },
  { seed: 11111, mix: 'membership', nodes: 3, steps: 600, bug: 'stale vote requests ignored: a node with a stale configuration raced its term ahead, no leader ever' },
  { seed: 10670, mix: 'membership', nodes: 5, steps: 300, bug: "a snapshot restored while a Ready's committed conf changes were out for application: they were then applied on top of its configuration (INVALID_CONF_CHANGE)" },
  { seed: 658, mix: 'membership', nodes: 5, steps: 600, bug: 'the same snapshot-under-apply restore, found by the 2000-seed membership soak' },
] as const;

for (const s of SEEDS) {
  test(`regression seed ${s.seed} (${s.mix}, ${s.nodes} nodes): ${s.bug}`, () => {
    const r = runSim({ seed: s.seed, mix: s.mix, nodes: s.nodes, steps: s.steps, leaderLossCampaign: false });
    assert.ok(r.ok, `violations: ${r.violations.map((v) => `${v.kind}: ${v.detail.split('\n')[0]}`).join('; ')}\n  replay: ${r.replay}`);
  });
}
