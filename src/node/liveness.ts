// When this node last heard from each peer, and from that, how long ago it last had evidence of
// a working leader (NodeHealth.leaderContactAgeMs). Wall-clock facts are measured here, in the
// node layer, never in the core: src/raft/ stays pure and counts logical ticks only.
import type { NodeId, Status } from '../raft/types.ts';
import { NONE } from '../raft/types.ts';

export class ContactTracker {
  private readonly selfId: NodeId;
  /** When a message from each known peer was last received (ms); peers only, so bounded by the membership. */
  private readonly lastHeard = new Map<NodeId, number>();

  constructor(selfId: NodeId) {
    this.selfId = selfId;
  }

  heard(from: NodeId, atMs: number): void {
    this.lastHeard.set(from, atMs);
  }

  /**
   * A follower: since the last message from its leader. The leader: since a majority of each voter
   * set (both halves of a joint configuration, §6) was last heard from, itself counting as now.
   * null when no leader is known or there is no such evidence yet.
   */
  leaderContactAgeMs(st: Status, nowMs: number): number | null {
    const lead = st.softState.lead;
    if (lead === NONE) return null;
    if (lead !== this.selfId) {
      const t = this.lastHeard.get(lead);
      return t === undefined ? null : Math.max(0, nowMs - t);
    }
    const cs = st.confState;
    let worst = 0;
    for (const voters of [cs.voters, cs.votersOutgoing]) {
      if (voters.length === 0) continue;
      const ages = voters
        .map((id) => {
          if (id === this.selfId) return 0;
          const t = this.lastHeard.get(id);
          return t === undefined ? Infinity : Math.max(0, nowMs - t);
        })
        .sort((a, b) => a - b);
      // The majority's contact is as old as its oldest member: the (⌊n/2⌋+1)-th freshest.
      worst = Math.max(worst, ages[Math.floor(voters.length / 2)]!);
    }
    return Number.isFinite(worst) ? worst : null;
  }
}
