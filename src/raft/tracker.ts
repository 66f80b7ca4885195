// Replication progress of each follower as seen by the leader, and quorum arithmetic
// (etcd's tracker and quorum packages).
import { invariant } from './errors.ts';
import type { ConfState, NodeId, ProgressStatus } from './types.ts';

/** A bounded FIFO of the last index of each MsgApp in flight to one follower (flow control). */
export class Inflights {
  readonly capacity: number;
  private readonly buf: number[] = [];
  constructor(capacity: number) {
    this.capacity = capacity;
  }

  add(lastIndex: number): void {
    invariant(!this.full(), 'inflights: add to a full window');
    this.buf.push(lastIndex);
  }

  /** Free every in-flight message whose last index is <= `index` (acknowledged). */
  freeLE(index: number): void {
    let n = 0;
    while (n < this.buf.length && this.buf[n]! <= index) n++;
    if (n > 0) this.buf.splice(0, n);
  }

  /** Free the oldest in-flight message (the window is full and an answer may have been lost). */
  freeFirstOne(): void {
    this.buf.shift();
  }

  full(): boolean {
    return this.buf.length >= this.capacity;
  }

  count(): number {
    return this.buf.length;
  }

  reset(): void {
    this.buf.length = 0;
  }
}

export type ProgressState = 'probe' | 'replicate' | 'snapshot';

/**
 * - probe: the leader does not know where the follower's log matches; it sends one MsgApp per
 *   heartbeat interval and waits for the answer (probeSent).
 * - replicate: the follower is in sync; MsgApps are pipelined optimistically up to the window.
 * - snapshot: a snapshot is being sent; nothing else is sent until it is reported done or failed.
 */
export class Progress {
  public isLearner: boolean;
  match = 0;
  next: number;
  state: ProgressState = 'probe';
  pendingSnapshot = 0;
  probeSent = false;
  recentActive = false;
  readonly inflights: Inflights;

  constructor(next: number, maxInflight: number, isLearner: boolean) {
    this.isLearner = isLearner;
    this.next = next;
    this.inflights = new Inflights(maxInflight);
  }

  private resetState(state: ProgressState): void {
    this.probeSent = false;
    this.pendingSnapshot = 0;
    this.state = state;
    this.inflights.reset();
  }

  becomeProbe(): void {
    // After a snapshot the follower is known to have at least the snapshot's index.
    if (this.state === 'snapshot') {
      const pending = this.pendingSnapshot;
      this.resetState('probe');
      this.next = Math.max(this.match + 1, pending + 1);
    } else {
      this.resetState('probe');
      this.next = this.match + 1;
    }
  }

  becomeReplicate(): void {
    this.resetState('replicate');
    this.next = this.match + 1;
  }

  becomeSnapshot(snapshotIndex: number): void {
    this.resetState('snapshot');
    this.pendingSnapshot = snapshotIndex;
  }

  /** An acknowledgement up to `n`. Returns false if it was stale. */
  maybeUpdate(n: number): boolean {
    let updated = false;
    if (this.match < n) {
      this.match = n;
      updated = true;
      this.probeSent = false;
    }
    this.next = Math.max(this.next, n + 1);
    return updated;
  }

  /**
   * A rejection of the MsgApp at `rejected`, with the follower's hint. Returns false when the
   * rejection is stale (out of order). §5.3 with etcd's conflict-term optimisation.
   */
  maybeDecrTo(rejected: number, matchHint: number): boolean {
    if (this.state === 'replicate') {
      if (rejected <= this.match) return false;
      this.next = this.match + 1;
      return true;
    }
    if (this.next - 1 !== rejected) return false;
    this.next = Math.max(Math.min(rejected, matchHint + 1), this.match + 1);
    this.probeSent = false;
    return true;
  }

  /** Record that a MsgApp with entries up to `lastIndex` (or none) was sent. */
  sentEntries(count: number, lastIndex: number): void {
    if (this.state === 'replicate') {
      if (count > 0) {
        this.next = lastIndex + 1;
        this.inflights.add(lastIndex);
      }
    } else if (this.state === 'probe') {
      this.probeSent = true;
    } else {
      invariant(false, `sentEntries in state ${this.state}`);
    }
  }

  isPaused(): boolean {
    switch (this.state) {
      case 'probe':
        return this.probeSent;
      case 'replicate':
        return this.inflights.full();
      case 'snapshot':
        return true;
    }
  }

  status(): ProgressStatus {
    return { match: this.match, next: this.next, state: this.state, recentActive: this.recentActive, inflight: this.inflights.count(), isLearner: this.isLearner };
  }
}

/** Largest index acknowledged by a majority of `voters`; Infinity for an empty set (joint math). */
export function majorityCommitted(voters: readonly NodeId[], matchOf: (id: NodeId) => number): number {
  if (voters.length === 0) return Infinity;
  const m = voters.map(matchOf).sort((a, b) => b - a);
  return m[Math.floor(voters.length / 2)]!;
}

/** Commit index under a possibly joint configuration: both halves must agree (§4.3). */
export function committedIndex(cs: ConfState, matchOf: (id: NodeId) => number): number {
  const c = Math.min(majorityCommitted(cs.voters, matchOf), majorityCommitted(cs.votersOutgoing, matchOf));
  return c === Infinity ? 0 : c;
}

export type VoteResult = 'won' | 'lost' | 'pending';

function majorityVote(voters: readonly NodeId[], votes: ReadonlyMap<NodeId, boolean>): VoteResult {
  if (voters.length === 0) return 'won';
  let granted = 0;
  let missing = 0;
  for (const id of voters) {
    const v = votes.get(id);
    if (v === undefined) missing++;
    else if (v) granted++;
  }
  const q = Math.floor(voters.length / 2) + 1;
  if (granted >= q) return 'won';
  if (granted + missing >= q) return 'pending';
  return 'lost';
}

/** Election outcome under a possibly joint configuration. */
export function voteResult(cs: ConfState, votes: ReadonlyMap<NodeId, boolean>): VoteResult {
  const a = majorityVote(cs.voters, votes);
  const b = majorityVote(cs.votersOutgoing, votes);
  if (a === 'won' && b === 'won') return 'won';
  if (a === 'lost' || b === 'lost') return 'lost';
  return 'pending';
}
