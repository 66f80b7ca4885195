// The transport's peer list, kept equal to the members of the configuration (addresses from the
// replicated member table), plus addresses peers announce on the streams they open to us.
import type { ConfState, NodeId } from '../raft/types.ts';
import type { MemberAddress } from './members.ts';

/** What peer bookkeeping needs from the transport. */
export interface PeerTransport {
  addPeer(id: NodeId, address: string): void;
  updatePeer(id: NodeId, address: string): void;
  removePeer(id: NodeId): void;
}

export interface PeerLogger {
  info(obj: object, msg: string): void;
}

export class PeerSync {
  private readonly selfId: NodeId;
  private readonly transport: PeerTransport;
  private readonly log: PeerLogger;
  /** Addresses of members, from the replicated member table. */
  private readonly lookup: (id: NodeId) => MemberAddress | undefined;
  /** Peers the transport knows, with their addresses. */
  private known = new Map<NodeId, string>();

  constructor(selfId: NodeId, transport: PeerTransport, log: PeerLogger, lookup: (id: NodeId) => MemberAddress | undefined) {
    this.selfId = selfId;
    this.transport = transport;
    this.log = log;
    this.lookup = lookup;
  }

  has(id: NodeId): boolean {
    return this.known.has(id);
  }

  setKnown(peers: ReadonlyMap<NodeId, string>): void {
    this.known = new Map(peers);
  }

  memberAddress(id: NodeId): MemberAddress | undefined {
    return this.lookup(id);
  }

  /** Keep the transport's peer list equal to the members of the configuration. */
  sync(cs: ConfState): void {
    const members = new Set([...cs.voters, ...cs.votersOutgoing, ...cs.learners, ...cs.learnersNext]);
    for (const id of members) {
      if (id === this.selfId) continue;
      const addr = this.lookup(id)?.raftAddress;
      const known = this.known.get(id);
      if (addr === undefined || addr === known) continue;
      if (known === undefined) this.transport.addPeer(id, addr);
      else this.transport.updatePeer(id, addr);
      this.known.set(id, addr);
    }
    for (const id of [...this.known.keys()]) {
      if (members.has(id)) continue;
      this.transport.removePeer(id);
      this.known.delete(id);
    }
  }

  /**
   * A peer that opened a stream to us announced its raft address (issue 13: a joiner whose config
   * lists no current leader could not answer the leader's probes, so the leader never learned it
   * needed a snapshot and the joiner stalled). The member table stays the source of truth: the
   * announcement is used only for a peer we have no address for at all, and only if it is a member
   * of our configuration or we have none yet (a joiner before its snapshot). sync() replaces it
   * with the table's address, or drops it, at the next snapshot or conf change.
   */
  learn(id: NodeId, address: string, cs: ConfState): void {
    if (id === this.selfId || this.known.has(id)) return;
    const members = [...cs.voters, ...cs.votersOutgoing, ...cs.learners, ...cs.learnersNext];
    if (members.length > 0 && !members.includes(id)) return;
    this.transport.addPeer(id, address);
    this.known.set(id, address);
    this.log.info({ peer: id, address }, 'learned a peer\'s raft address from its connection (no member-table address for it yet)');
  }
}
