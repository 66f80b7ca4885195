// When a follower that lost its leader's connection campaigns (RaftDriver.leaderLost): a pure
// function, shared with the simulator (test/sim/cluster.ts), which models the same behaviour.
import type { ConfState, NodeId } from '../raft/types.ts';

/**
 * How long a follower that lost leader `lost` waits before campaigning: its rank among the other
 * voters (by id) in slots of `slotMs`, plus a random part of half a slot. The survivors learn of
 * the loss within moments of each other, so ranks rather than a random draw decide who asks
 * first: the first-ranked one wins the others' votes unless its log is behind (pre-vote refuses
 * it, §5.4.1), and then the next one's slot comes; no two start within half a slot of each other,
 * which keeps split votes (and the election timeout they cost) out. null for a non-voter.
 */
export function leaderLossDelayMs(self: NodeId, lost: NodeId, cs: ConfState, slotMs: number, random: () => number): number | null {
  const voters = [...new Set([...cs.voters, ...cs.votersOutgoing])].filter((v) => v !== lost).sort((a, b) => a - b);
  const rank = voters.indexOf(self);
  if (rank < 0) return null;
  return rank * slotMs + Math.floor(random() * (slotMs / 2));
}

/**
 * The campaign after the leader's connection failed (RaftDriver.leaderLost): one timer at a time,
 * and the term in which the leader was forgotten, so that the campaign happens only if nothing
 * changed meanwhile.
 */
export class LeaderLossTimer {
  private cancel: (() => void) | null = null;
  private termForgotten = 0;
  private readonly setTimer: (fn: () => void, ms: number) => () => void;

  constructor(setTimer: (fn: () => void, ms: number) => () => void) {
    this.setTimer = setTimer;
  }

  get armed(): boolean {
    return this.cancel !== null;
  }

  /** The term in which the leader was forgotten. */
  get term(): number {
    return this.termForgotten;
  }

  arm(term: number, delayMs: number, fire: () => void): void {
    this.termForgotten = term;
    this.cancel = this.setTimer(fire, delayMs);
  }

  /** The timer fired (its input reached the driver): it is no longer armed. */
  fired(): void {
    this.cancel = null;
  }

  disarm(): void {
    this.cancel?.();
    this.cancel = null;
  }
}
