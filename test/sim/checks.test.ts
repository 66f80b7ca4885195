// The safety checkers on synthetic histories: each must stay quiet on a legal history and fire on
// the smallest illegal one. (A check that cannot fail does not count.)
import { test } from 'node:test';
import assert from 'node:assert/strict';
import type { Entry } from '../../src/raft/types.ts';
import { SafetyChecker, type LogTermFn } from './checks.ts';

const enc = new TextEncoder();
const ent = (index: number, term: number, data = `e${index}.${term}`): Entry => ({ index, term, type: 'normal', data: enc.encode(data) });
/** A log given as the list of its entries' terms, from index 1. */
const logOf = (terms: number[]): LogTermFn => (i) => (i === 0 ? 0 : i <= terms.length ? terms[i - 1]! : undefined);

function checker(): SafetyChecker {
  return new SafetyChecker(() => 0);
}

test('election safety: a second leader in the same term is reported, a leader per term is not', () => {
  const c = checker();
  c.onRole(1, 'leader', 2, logOf([1]));
  c.onRole(1, 'follower', 3, logOf([1]));
  c.onRole(2, 'leader', 3, logOf([1]));
  c.onRole(2, 'leader', 3, logOf([1])); // the same leader reported again
  assert.ok(c.ok, JSON.stringify(c.violations));
  c.onRole(3, 'leader', 3, logOf([1]));
  assert.equal(c.violations[0]?.kind, 'electionSafety');
});

test('log matching: same (index, term) with different data or a different predecessor is reported', () => {
  const c = checker();
  c.onPersist(1, [ent(1, 1), ent(2, 1), ent(3, 2)], 0);
  c.onPersist(2, [ent(1, 1), ent(2, 1)], 0);
  c.onPersist(2, [ent(3, 2)], 1);
  // A follower overwriting an uncommitted suffix with other terms is legal.
  c.onPersist(3, [ent(1, 1), ent(2, 3)], 0);
  assert.ok(c.ok, JSON.stringify(c.violations));
  const d = checker();
  d.onPersist(1, [ent(1, 1), ent(2, 1)], 0);
  d.onPersist(2, [ent(2, 1, 'other')], 1);
  assert.equal(d.violations[0]?.kind, 'logMatching');
  const e = checker();
  e.onPersist(1, [ent(1, 1), ent(2, 2), ent(3, 2)], 0);
  e.onPersist(2, [ent(3, 2)], 1); // (3, t2) after a term-1 entry on n2, after term 2 on n1
  assert.equal(e.violations[0]?.kind, 'logMatching');
});

test('leader completeness: a new leader missing an entry committed in an earlier term is reported', () => {
  const c = checker();
  c.onRole(1, 'leader', 2, logOf([1, 2, 2]));
  c.onLeaderCommit(1, 2, 3, logOf([1, 2, 2]), true);
  c.onRole(1, 'follower', 3, logOf([1, 2, 2]));
  c.onRole(2, 'leader', 3, logOf([1, 2, 2, 3]));
  assert.ok(c.ok, JSON.stringify(c.violations));
  c.onRole(2, 'follower', 4, logOf([1, 2, 2, 3]));
  c.onRole(3, 'leader', 4, logOf([1, 2])); // lacks index 3, committed in term 2
  assert.equal(c.violations[0]?.kind, 'leaderCompleteness');
});

test('leader completeness: a commit by an old leader observed after a later leader without it is reported', () => {
  const c = checker();
  c.onRole(2, 'leader', 5, logOf([1, 5]));
  c.onRole(1, 'leader', 4, logOf([1, 4]));
  c.onLeaderCommit(1, 4, 2, logOf([1, 4]), true);
  assert.equal(c.violations[0]?.kind, 'leaderCompleteness');
});

test('commit rule: a leader committing an earlier-term entry by counting is reported (figure 8)', () => {
  const ok = checker();
  ok.onRole(1, 'leader', 3, logOf([1, 2, 3]));
  ok.onLeaderCommit(1, 3, 3, logOf([1, 2, 3]), true);
  // Freshly elected in this Ready: the commit advance happened as a follower, not by the rule.
  ok.onLeaderCommit(1, 3, 3, logOf([1, 2, 3]), false);
  assert.ok(ok.ok, JSON.stringify(ok.violations));
  const bad = checker();
  bad.onRole(1, 'leader', 3, logOf([1, 2, 3]));
  bad.onLeaderCommit(1, 3, 2, logOf([1, 2, 3]), true);
  assert.equal(bad.violations[0]?.kind, 'commitRule');
});

test('state-machine safety: different entries applied at one index, gaps, and diverging images are reported', () => {
  const c = checker();
  c.onStart(1, 0);
  c.onStart(2, 0);
  c.onApply(1, ent(1, 1));
  c.onApply(2, ent(1, 1));
  c.onApply(1, ent(2, 1));
  c.onDigest(1, 2, 0xabc);
  c.onStart(2, 0); // restart: re-applies from the start
  c.onApply(2, ent(1, 1));
  c.onApply(2, ent(2, 1));
  c.onDigest(2, 2, 0xabc);
  assert.ok(c.ok, JSON.stringify(c.violations));
  const d = checker();
  d.onApply(1, ent(1, 1));
  d.onApply(2, ent(1, 2));
  assert.equal(d.violations[0]?.kind, 'stateMachineSafety');
  const gap = checker();
  gap.onApply(1, ent(2, 1));
  assert.equal(gap.violations[0]?.kind, 'stateMachineSafety');
  const img = checker();
  img.onDigest(1, 5, 1);
  img.onDigest(2, 5, 2);
  assert.equal(img.violations[0]?.kind, 'stateMachineSafety');
  const snap = checker();
  snap.onApply(1, ent(1, 1));
  snap.onSnapshotInstalled(2, 1, 2, 0);
  assert.equal(snap.violations[0]?.kind, 'stateMachineSafety');
});

test('an applied entry that differs from the committed one is reported', () => {
  const c = checker();
  c.onRole(1, 'leader', 2, logOf([2]));
  c.onLeaderCommit(1, 2, 1, logOf([2]), true);
  c.onApply(3, ent(1, 1));
  assert.equal(c.violations[0]?.kind, 'stateMachineSafety');
});

test('committed index not in the leader log: a commit beyond the log or into its compacted part is reported', () => {
  // No bug switch reaches this check end to end (bugs.test.ts): the core's own invariant
  // (commitTo beyond the last index) throws first, so it is proven here on synthetic histories.
  const ok = checker();
  ok.onRole(1, 'leader', 2, logOf([1, 2]));
  ok.onLeaderCommit(1, 2, 2, logOf([1, 2]), true);
  assert.ok(ok.ok, JSON.stringify(ok.violations));
  const beyond = checker();
  beyond.onRole(1, 'leader', 2, logOf([1, 2]));
  beyond.onLeaderCommit(1, 2, 3, logOf([1, 2]), false);
  assert.deepEqual(beyond.violations.map((v) => v.kind), ['committedChanged']);
  assert.match(beyond.violations[0]!.detail, /index 3 which is not in its log \(missing\)/);
  const compacted = checker();
  const log: LogTermFn = (i) => (i <= 2 ? null : i === 3 ? 2 : undefined);
  compacted.onRole(1, 'leader', 2, log);
  compacted.onLeaderCommit(1, 2, 3, log, false);
  assert.deepEqual(compacted.violations.map((v) => v.kind), ['committedChanged']);
  assert.match(compacted.violations[0]!.detail, /index 1 which is not in its log \(compacted\)/);
});
