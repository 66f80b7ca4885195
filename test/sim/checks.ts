// Safety invariants of Raft (paper figure 3), checked as the simulation runs, against a global
// record of what every node has done. Each hook is O(new work) so it can run after every event.
//
//  - Election safety: at most one leader per term, ever (§5.2).
//  - Log matching: two logs with an entry of the same index and term agree on everything up to it
//    (§5.3). Checked inductively: every (index, term) pair must always come with the same data and
//    the same previous term, which by induction fixes the whole prefix.
//  - Leader completeness: an entry committed in term T is in the log of every leader of a term > T
//    (§5.4). Checked when a leader is elected, and when an entry is committed while a leader of a
//    later term already exists (the old leader's commit can be observed after the new election).
//  - State-machine safety: every node applies the same entry at a given index, applied entries
//    never change (§5.4.3), applied indices advance one by one, and equal applied indices give
//    byte-identical state-machine images.
import type { Entry, NodeId, Role } from '../../src/raft/types.ts';

/** Every kind of violation the simulator reports (bugs.test.ts proves each one can fire). */
export const VIOLATION_KINDS = [
  'electionSafety',
  'logMatching',
  'leaderCompleteness',
  /** A leader committed an index that is not in its own log. */
  'committedChanged',
  /** A leader's commit rule landed on an entry of an earlier term (§5.4.2). */
  'commitRule',
  'stateMachineSafety',
  /** The session protocol broke: a command answered with another's result, a live seq refused. */
  'session',
  /** A node threw: a broken invariant in the core (RaftInvariantError) or in the driver. */
  'exception',
  'liveness',
  'convergence',
  'linearizability',
] as const;

export type ViolationKind = (typeof VIOLATION_KINDS)[number];

export interface Violation {
  readonly kind: ViolationKind;
  readonly timeUs: number;
  readonly detail: string;
}

/**
 * A node's log as far as the simulator can see it. term(i) is the entry's term, undefined when i
 * is beyond the last index, null when i is compacted into a snapshot (its term is no longer known).
 */
export type LogTermFn = (index: number) => number | undefined | null;

interface EntryRecord {
  readonly prevTerm: number;
  readonly type: Entry['type'];
  readonly data: Uint8Array;
  readonly node: NodeId;
}

interface CommitRecord {
  /** Term of the committed entry. */
  readonly term: number;
  /** Term of the leader that committed it (the entry is "committed in" this term). */
  readonly leaderTerm: number;
  readonly node: NodeId;
}

export function sameBytes(a: Uint8Array, b: Uint8Array): boolean {
  if (a === b) return true;
  if (a.length !== b.length) return false;
  for (let i = 0; i < a.length; i++) if (a[i] !== b[i]) return false;
  return true;
}

/** FNV-1a, 32 bits: a cheap digest of state-machine images (equality check, not security). */
export function fnv1a(data: Uint8Array): number {
  let h = 0x811c9dc5;
  for (let i = 0; i < data.length; i++) {
    h ^= data[i]!;
    h = Math.imul(h, 0x01000193);
  }
  return h >>> 0;
}

// Terms stay far below 2^20 in any run; index * 2^20 + term is a unique, exact number key.
const key = (index: number, term: number): number => index * 0x100000 + term;

export class SafetyChecker {
  private readonly now: () => number;
  /** Kinds not reported (exploration only: to look past one check for what a later one sees). */
  private readonly ignored: ReadonlySet<ViolationKind>;
  readonly violations: Violation[] = [];
  private readonly leaderOfTerm = new Map<number, NodeId>();
  /** Leaders the simulator currently knows of, with a live view of their logs. */
  private readonly leaders = new Map<NodeId, { term: number; log: LogTermFn }>();
  private readonly entries = new Map<number, EntryRecord>();
  private readonly committed = new Map<number, CommitRecord>();
  private maxCommitted = 0;
  private readonly appliedAt = new Map<number, { term: number; type: Entry['type']; data: Uint8Array; node: NodeId }>();
  private readonly appliedBy = new Map<NodeId, number>();
  private readonly digestAt = new Map<number, { digest: number; node: NodeId }>();
  /** Stop after this many violations: the first one is what matters, the rest is noise. */
  private readonly maxViolations = 20;

  constructor(
    now: () => number,
    ignored: ReadonlySet<ViolationKind> = new Set(),
  ) {
    this.now = now;
    this.ignored = ignored;
  }

  get ok(): boolean {
    return this.violations.length === 0;
  }

  get highestCommitted(): number {
    return this.maxCommitted;
  }

  report(kind: ViolationKind, detail: string): void {
    if (this.ignored.has(kind)) return;
    if (this.violations.length < this.maxViolations) this.violations.push({ kind, timeUs: this.now(), detail });
  }

  /** A node's role and term as reported by a Ready (softState/hardState). */
  onRole(node: NodeId, role: Role, term: number, log: LogTermFn): void {
    if (role !== 'leader') {
      this.leaders.delete(node);
      return;
    }
    const prev = this.leaders.get(node);
    if (prev !== undefined && prev.term === term) return;
    const other = this.leaderOfTerm.get(term);
    if (other !== undefined && other !== node) {
      this.report('electionSafety', `two leaders in term ${term}: n${other} and n${node}`);
    }
    this.leaderOfTerm.set(term, node);
    this.leaders.set(node, { term, log });
    // Leader completeness at election: everything committed in an earlier term is in this log.
    for (const [index, c] of this.committed) {
      if (c.leaderTerm >= term) continue;
      const t = log(index);
      if (t === null) continue; // compacted: covered by snapshot (state-machine) checks
      if (t !== c.term) {
        this.report('leaderCompleteness', `n${node} became leader of term ${term} with ${t === undefined ? 'no entry' : `term ${t}`} at index ${index}, but index ${index} (term ${c.term}) was committed in term ${c.leaderTerm} by n${c.node}`);
        return;
      }
    }
  }

  /** The node stopped (crash or removal): it no longer leads. */
  onDown(node: NodeId): void {
    this.leaders.delete(node);
  }

  /**
   * A leader of `leaderTerm` advanced its commit index to `commit` (seen in its Ready).
   * `byCommitRule` is true when the node led in this term for the whole advance, so the advance
   * was made by the leader's commit rule: that rule may only land on an entry of the leader's own
   * term (§5.4.2, figure 8); earlier-term entries become committed only through it.
   */
  onLeaderCommit(node: NodeId, leaderTerm: number, commit: number, log: LogTermFn, byCommitRule: boolean): void {
    if (byCommitRule) {
      const t = log(commit);
      if (t !== null && t !== leaderTerm) {
        this.report('commitRule', `n${node}, leader of term ${leaderTerm}, advanced its commit index to ${commit}, an entry of term ${t}: only entries of the leader's own term may be committed by counting replicas (§5.4.2)`);
      }
    }
    for (let i = this.maxCommitted + 1; i <= commit; i++) {
      const t = log(i);
      if (t === undefined || t === null) {
        this.report('committedChanged', `n${node} (leader, term ${leaderTerm}) committed index ${i} which is not in its log (${t === null ? 'compacted' : 'missing'})`);
        return;
      }
      this.committed.set(i, { term: t, leaderTerm, node });
      const applied = this.appliedAt.get(i);
      if (applied !== undefined && applied.term !== t) {
        this.report('stateMachineSafety', `index ${i} committed by n${node} with term ${t} but n${applied.node} applied term ${applied.term}`);
      }
      // A leader of a later term elected before this commit was observed must hold the entry too.
      for (const [other, l] of this.leaders) {
        if (other === node || l.term <= leaderTerm) continue;
        const lt = l.log(i);
        if (lt !== null && lt !== t) {
          this.report('leaderCompleteness', `index ${i} (term ${t}) committed in term ${leaderTerm} by n${node}, but n${other}, leader of later term ${l.term}, has ${lt === undefined ? 'no entry' : `term ${lt}`} there`);
        }
      }
    }
    if (commit > this.maxCommitted) this.maxCommitted = commit;
  }

  /**
   * Entries made durable on `node`. `prevTerm` is the term of the entry just before the first one
   * in that node's log (after any truncation the append implies).
   */
  onPersist(node: NodeId, entries: readonly Entry[], prevTerm: number): void {
    let prev = prevTerm;
    for (const e of entries) {
      const k = key(e.index, e.term);
      const rec = this.entries.get(k);
      if (rec === undefined) {
        this.entries.set(k, { prevTerm: prev, type: e.type, data: e.data, node });
      } else if (rec.prevTerm !== prev || rec.type !== e.type || !sameBytes(rec.data, e.data)) {
        this.report('logMatching', `entry (index ${e.index}, term ${e.term}) on n${node} ${rec.prevTerm !== prev ? `follows term ${prev}` : 'has different data'}, but on n${rec.node} ${rec.prevTerm !== prev ? `follows term ${rec.prevTerm}` : 'it differs'}`);
        return;
      }
      prev = e.term;
    }
  }

  /** A node (re)started with its state machine at `applied` (its snapshot's index). */
  onStart(node: NodeId, applied: number): void {
    this.appliedBy.set(node, applied);
  }

  /** A node installed a snapshot at (index, term): its state machine jumps to `index`. */
  onSnapshotInstalled(node: NodeId, index: number, term: number, digest: number): void {
    const prev = this.appliedBy.get(node) ?? 0;
    if (index <= prev) this.report('stateMachineSafety', `n${node} installed snapshot ${index} at or below its applied index ${prev}`);
    this.appliedBy.set(node, index);
    const a = this.appliedAt.get(index);
    if (a !== undefined && a.term !== term) this.report('stateMachineSafety', `n${node} installed a snapshot at index ${index} term ${term}, but n${a.node} applied term ${a.term} there`);
    this.onDigest(node, index, digest);
  }

  /** A node applied a committed entry. */
  onApply(node: NodeId, e: Entry): void {
    const prev = this.appliedBy.get(node) ?? 0;
    if (e.index !== prev + 1) {
      this.report('stateMachineSafety', `n${node} applied index ${e.index} after ${prev} (must be consecutive)`);
    }
    this.appliedBy.set(node, e.index);
    const a = this.appliedAt.get(e.index);
    if (a === undefined) {
      this.appliedAt.set(e.index, { term: e.term, type: e.type, data: e.data, node });
    } else if (a.term !== e.term || a.type !== e.type || !sameBytes(a.data, e.data)) {
      this.report('stateMachineSafety', `n${node} applied (index ${e.index}, term ${e.term}) but n${a.node} applied term ${a.term}${a.term === e.term ? ' with different data' : ''} there`);
    }
    const c = this.committed.get(e.index);
    if (c !== undefined && c.term !== e.term) {
      this.report('stateMachineSafety', `n${node} applied (index ${e.index}, term ${e.term}) but the entry committed there by n${c.node} has term ${c.term}`);
    }
  }

  /** A digest of a node's state-machine image at applied index `index`. */
  onDigest(node: NodeId, index: number, digest: number): void {
    const d = this.digestAt.get(index);
    if (d === undefined) this.digestAt.set(index, { digest, node });
    else if (d.digest !== digest) this.report('stateMachineSafety', `state machines diverge at index ${index}: n${node} digest ${digest.toString(16)}, n${d.node} ${d.digest.toString(16)}`);
  }
}
