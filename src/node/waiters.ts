// Who waits for what the driver settles: the proposers of each log entry (one reply per command
// of a batch entry) and the linearizable reads (by ReadIndex context, then by the applied index
// they need). Bounded by the driver (MAX_WAITERS).
import type { NodeId, ReadState } from '../raft/types.ts';
import type { ApplyResult } from './api.ts';

/**
 * Why the driver did not carry out a proposal or read: the node is stopping or stopped after a
 * fatal error (retrying here is pointless); it is overloaded (too many waiting, inbox full); the
 * core refused the proposal for now (REFUSED: a leadership transfer under way, the
 * uncommitted-size budget; BUSY: a membership change while an earlier one is not applied yet); or
 * the membership change is invalid against the configuration (INVALID: retrying cannot help).
 */
export type DropCode = 'STOPPING' | 'FATAL' | 'OVERLOADED' | 'REFUSED' | 'BUSY' | 'INVALID';

export type ProposeOutcome =
  | { readonly kind: 'applied'; readonly result: ApplyResult }
  /** The entry was overwritten by another leader's entry (it will never apply): retry. */
  | { readonly kind: 'lost' }
  | { readonly kind: 'notLeader'; readonly leader: NodeId }
  | { readonly kind: 'dropped'; readonly code: DropCode; readonly reason: string };

export type ReadOutcome =
  | { readonly kind: 'ready'; readonly index: number }
  | { readonly kind: 'notLeader'; readonly leader: NodeId }
  | { readonly kind: 'dropped'; readonly code: DropCode; readonly reason: string };

/** The proposers of one entry: one reply per command of a batch entry, in order; one for any other entry. */
interface ProposalWaiter {
  readonly term: number;
  readonly replies: readonly ((o: ProposeOutcome) => void)[];
}

export class Waiters {
  /** Proposals by log index, settled when an entry at that index is applied. */
  private readonly proposals = new Map<number, ProposalWaiter>();
  /** Replies waiting in proposals (a batch entry has many). */
  private proposalReplies = 0;
  /** ReadIndex requests by context, settled by a ReadState and then the applied index. */
  private readonly readContexts = new Map<string, (o: ReadOutcome) => void>();
  /** Reads whose read index is known, waiting for applied >= index (in arrival order). */
  private readsWaitingApply: { index: number; reply: (o: ReadOutcome) => void }[] = [];

  get count(): number {
    return this.proposalReplies + this.readContexts.size + this.readsWaitingApply.length;
  }

  propose(index: number, term: number, replies: readonly ((o: ProposeOutcome) => void)[]): void {
    this.proposals.set(index, { term, replies });
    this.proposalReplies += replies.length;
  }

  /**
   * The entry at (index, term) was applied with `results` (one per command; a batch that failed
   * to decode as a whole has one error for all). A waiter of another term lost its entry.
   */
  applied(index: number, term: number, results: readonly ApplyResult[] | undefined): void {
    const w = this.proposals.get(index);
    if (!w) return;
    this.proposals.delete(index);
    this.proposalReplies -= w.replies.length;
    if (w.term !== term) {
      for (const reply of w.replies) reply({ kind: 'lost' });
      return;
    }
    w.replies.forEach((reply, i) => reply({ kind: 'applied', result: results?.[results.length === 1 ? 0 : i] ?? { ok: true, value: null } }));
  }

  /** Proposals at or below `applied` still waiting were passed by entries of another term: they will never apply. */
  passed(applied: number): void {
    for (const [idx, w] of this.proposals) {
      if (idx > applied) continue;
      this.proposals.delete(idx);
      this.proposalReplies -= w.replies.length;
      for (const reply of w.replies) reply({ kind: 'lost' });
    }
  }

  read(context: string, reply: (o: ReadOutcome) => void): void {
    this.readContexts.set(context, reply);
  }

  /** The leader changed: reads waiting on the old leader's confirmation will never be answered: retry them. */
  leaderChanged(leader: NodeId): void {
    for (const r of this.readContexts.values()) r({ kind: 'notLeader', leader });
    this.readContexts.clear();
  }

  /** Read indexes confirmed by the leader: each read now waits for the applied index to reach it. */
  readStates(states: readonly ReadState[]): void {
    for (const rs of states) {
      const reply = this.readContexts.get(rs.context);
      if (!reply) continue;
      this.readContexts.delete(rs.context);
      this.readsWaitingApply.push({ index: rs.index, reply });
    }
  }

  /** Answer the reads whose read index is applied (its state visible in the store). */
  serveReads(applied: number): void {
    if (this.readsWaitingApply.length === 0) return;
    const still: typeof this.readsWaitingApply = [];
    for (const r of this.readsWaitingApply) {
      if (r.index <= applied) r.reply({ kind: 'ready', index: r.index });
      else still.push(r);
    }
    this.readsWaitingApply = still;
  }

  failAll(code: 'STOPPING' | 'FATAL', reason: string): void {
    for (const w of this.proposals.values()) for (const reply of w.replies) reply({ kind: 'dropped', code, reason });
    this.proposals.clear();
    this.proposalReplies = 0;
    for (const r of this.readContexts.values()) r({ kind: 'dropped', code, reason });
    this.readContexts.clear();
    for (const r of this.readsWaitingApply) r.reply({ kind: 'dropped', code, reason });
    this.readsWaitingApply = [];
  }
}
