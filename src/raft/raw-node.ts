// RawNode: the driver-facing shell around the Raft state machine (etcd's RawNode).
//
// The driver calls tick/step/propose/readIndex, then collects work with ready(), carries it out
// in the order stated on the Ready type (persist -> send -> apply), and calls advance().
// Inputs between ready() and advance() are allowed (etcd's node loop steps messages while the
// application works on a Ready; src/node/driver.ts holds them in its inbox instead, the simulator
// steps them): see "BETWEEN ready() AND advance()" on the Ready type for what the core promises.
import { RaftError, invariant } from './errors.ts';
import { Raft, DEFAULT_MAX_COMMITTED_SIZE_PER_READY } from './raft.ts';
import { encodeConfChange, isJoint, nextConfState } from './confchange.ts';
import type { ConfChange, ConfState, Config, Entry, HardState, Message, NodeId, ProgressStatus, Ready, SoftState, Status } from './types.ts';
import { NONE } from './types.ts';

export { encodeConfChange, decodeConfChange } from './confchange.ts';

export interface ProposalId {
  readonly index: number;
  readonly term: number;
}

export class RawNode {
  private readonly raft: Raft;
  private readonly maxCommittedSize: number;
  private prevSoft: SoftState;
  private prevHard: HardState;
  /** The Ready handed out and not yet advanced. */
  private outstanding: Ready | null = null;
  /**
   * Indexes of conf-change entries handed out for application (in committed entries of a Ready)
   * and not yet passed to applyConfChange(), oldest first.
   */
  private confChangesOut: number[] = [];

  constructor(config: Config) {
    this.raft = new Raft(config);
    this.maxCommittedSize = config.maxCommittedSizePerReady ?? DEFAULT_MAX_COMMITTED_SIZE_PER_READY;
    this.prevSoft = this.raft.softState();
    this.prevHard = this.raft.hardState();
  }

  tick(): void {
    this.raft.tick();
  }

  /** Deliver a message from a peer. */
  step(m: Message): void {
    this.raft.stepMessage(m);
  }

  /** Start an election now (used by tests and by operators forcing a campaign). */
  campaign(): void {
    this.raft.hup(false);
  }

  /** Propose a normal entry. Only the leader accepts proposals; the router forwards. */
  propose(data: Uint8Array): ProposalId {
    return this.appendProposal({ term: 0, index: 0, type: 'normal', data });
  }

  /**
   * Propose a membership change. Refused while an earlier change is not applied, and before the
   * leader's first entry of its term is applied (the 2015 single-server-change correction).
   */
  proposeConfChange(cc: ConfChange): ProposalId {
    const r = this.raft;
    this.requireLeader();
    if (r.pendingConfIndex > r.log.applied) {
      throw new RaftError('CONF_CHANGE_PENDING', `a conf change at index ${r.pendingConfIndex} is not applied yet (applied ${r.log.applied})`);
    }
    const data = encodeConfChange(cc);
    // Validate against the configuration in force (throws INVALID_CONF_CHANGE); nothing changes yet.
    nextConfState(r.conf, cc);
    const id = this.appendProposal({ term: 0, index: 0, type: 'confChange', data });
    r.pendingConfIndex = id.index;
    return id;
  }

  private requireLeader(): void {
    const r = this.raft;
    if (r.role !== 'leader') throw new RaftError('NOT_LEADER', `node ${r.id} is ${r.role}`, r.lead);
  }

  private appendProposal(e: Entry): ProposalId {
    const r = this.raft;
    this.requireLeader();
    if (!r.progress.has(r.id)) throw new RaftError('PROPOSAL_DROPPED', `node ${r.id} is not a member`);
    if (r.leadTransferee !== NONE) throw new RaftError('PROPOSAL_DROPPED', `leadership transfer to ${r.leadTransferee} in progress`);
    if (!r.appendEntries([e])) throw new RaftError('PROPOSAL_DROPPED', 'too many uncommitted bytes on the leader');
    r.pendingBroadcast = true;
    return { index: r.log.lastIndex(), term: r.term };
  }

  /**
   * The application applies a committed conf-change entry: switch to the new configuration. Call
   * it once for each conf-change entry of the outstanding Ready's committedEntries, in order,
   * before advance(): a change applies to the configuration of the entry before it, and only then
   * is that configuration the core's.
   */
  applyConfChange(cc: ConfChange): ConfState {
    invariant(this.confChangesOut.length > 0, 'applyConfChange() with no committed conf-change entry out for application: call it only for the conf-change entries of the outstanding Ready, before advance()');
    this.confChangesOut.shift();
    return this.raft.applyConfChange(cc);
  }

  /**
   * Ask for a linearizable read point (§6.4). The answer arrives as a ReadState with the same
   * context in a later Ready. Contexts must be unique among pending reads.
   */
  readIndex(context: string): void {
    const r = this.raft;
    if (r.role === 'leader') {
      r.handleReadIndexOnLeader({ type: 'readIndex', from: r.id, to: r.id, term: r.term, context });
      return;
    }
    if (r.lead === NONE || r.role !== 'follower') throw new RaftError('NOT_LEADER', `node ${r.id} knows no leader`, NONE);
    r.msgs.push({ type: 'readIndex', from: r.id, to: r.lead, term: r.term, context });
  }

  /** Hand leadership to `to` (§3.10). On a follower the request is forwarded to the leader. */
  transferLeadership(to: NodeId): void {
    const r = this.raft;
    if (r.role === 'leader') {
      r.handleTransferLeader(to);
      return;
    }
    if (r.lead === NONE) throw new RaftError('NOT_LEADER', `node ${r.id} knows no leader`, NONE);
    r.msgs.push({ type: 'transferLeader', from: r.id, to: r.lead, term: r.term, transferee: to });
  }

  /** The transport could not reach `id`: stop pipelining to it and probe instead. */
  reportUnreachable(id: NodeId): void {
    const pr = this.raft.role === 'leader' ? this.raft.progress.get(id) : undefined;
    if (pr && pr.state === 'replicate') pr.becomeProbe();
  }

  /**
   * Forget the leader this follower follows (see Raft.forgetLeader): for a driver that knows the
   * leader is gone, before it campaigns. Returns whether a leader was forgotten; a leader, a
   * candidate or a follower without a leader is unchanged.
   */
  forgetLeader(): boolean {
    return this.raft.forgetLeader();
  }

  /** The transport finished (ok) or failed sending a snapshot to `id`. */
  reportSnapshot(id: NodeId, ok: boolean): void {
    const pr = this.raft.role === 'leader' ? this.raft.progress.get(id) : undefined;
    if (!pr || pr.state !== 'snapshot') return;
    if (!ok) pr.pendingSnapshot = 0;
    pr.becomeProbe();
    // Wait for a heartbeat response before probing again, so a failed snapshot is not resent in a loop.
    pr.probeSent = true;
  }

  hasReady(): boolean {
    if (this.outstanding) return false;
    const r = this.raft;
    if (r.pendingBroadcast || r.msgs.length > 0 || r.readStates.length > 0) return true;
    if (r.log.hasUnstableEntries() || r.log.unstableSnapshot() !== null) return true;
    if (r.log.hasNextCommittedEntries()) return true;
    const hs = r.hardState();
    if (!hardStateEqual(hs, this.prevHard)) return true;
    const ss = r.softState();
    return ss.lead !== this.prevSoft.lead || ss.role !== this.prevSoft.role;
  }

  ready(): Ready {
    invariant(this.outstanding === null, 'ready() called again before advance() of the previous Ready');
    const r = this.raft;
    if (r.pendingBroadcast) {
      // Proposals since the last Ready go out as one batched MsgApp per follower.
      r.pendingBroadcast = false;
      r.bcastAppend();
    }
    const entries = r.log.unstableEntries();
    const snapshot = r.log.unstableSnapshot();
    const committedEntries = r.log.nextCommittedEntries(this.maxCommittedSize);
    if (committedEntries.length > 0) r.log.acceptApplying(committedEntries[committedEntries.length - 1]!.index);
    for (const e of committedEntries) if (e.type === 'confChange') this.confChangesOut.push(e.index);
    const hs = r.hardState();
    const ss = r.softState();
    const hardChanged = !hardStateEqual(hs, this.prevHard);
    const softChanged = ss.lead !== this.prevSoft.lead || ss.role !== this.prevSoft.role;
    const rd: Ready = {
      softState: softChanged ? ss : null,
      hardState: hardChanged ? hs : null,
      entries,
      snapshot,
      committedEntries,
      messages: r.msgs,
      readStates: r.readStates,
      // A new term, a vote or new entries are promises to peers: they must hit the disk first.
      mustSync: entries.length > 0 || hs.term !== this.prevHard.term || hs.vote !== this.prevHard.vote || snapshot !== null,
    };
    r.msgs = [];
    r.readStates = [];
    if (softChanged) this.prevSoft = ss;
    this.outstanding = rd;
    return rd;
  }

  /**
   * The previous Ready has been persisted, sent and applied (the synchronous driver: one Ready at
   * a time). The same as acceptReady(), then persisted() and appliedTo() for that Ready.
   */
  advance(): void {
    const rd = this.outstanding;
    invariant(rd !== null, 'advance() without a Ready');
    invariant(this.confChangesOut.length === 0, () => `advance() with ${this.confChangesOut.length} committed conf-change entr${this.confChangesOut.length === 1 ? 'y' : 'ies'} of the Ready not passed to applyConfChange(): the configuration would lag the applied log`);
    this.acceptReady();
    this.persisted(persistedOf(rd));
    if (rd.committedEntries.length > 0) this.appliedTo(rd.committedEntries[rd.committedEntries.length - 1]!.index, rd.committedEntries);
  }

  /**
   * Asynchronous storage writes (etcd's AsyncStorageWrites; Raft dissertation §10.2.1): the
   * outstanding Ready was taken over by the driver, whose storage writes complete in the order
   * they were issued. Its entries, snapshot and hard state are now being persisted and its
   * committed entries applied; ready() may be called again before they are done, and it hands out
   * only what is newer. The driver then reports each Ready's write with persisted() and its
   * application with appliedTo(), in order. Until persisted(), the entries do not count towards
   * this node's own match (a leader commits only with entries durable on a quorum, itself
   * included only once its write is done), and messages that promise them (append and vote
   * responses) must wait for that write: see "Asynchronous writes" on the Ready type.
   */
  acceptReady(): void {
    const rd = this.outstanding;
    invariant(rd !== null, 'acceptReady() without a Ready');
    this.outstanding = null;
    this.raft.log.acceptInProgress(persistedOf(rd).lastEntry, rd.snapshot !== null);
    if (rd.hardState) this.prevHard = rd.hardState;
  }

  /**
   * A Ready's write is durable: its snapshot (by index) and its entries up to (index, term). May
   * come while a later Ready is outstanding (a driver holding a snapshot Ready until the writes
   * before it are done).
   */
  persisted(p: PersistedWrite): void {
    const r = this.raft;
    if (p.snapshotIndex !== null) {
      r.log.stableSnapTo(p.snapshotIndex);
      r.log.appliedSnapshotTo(p.snapshotIndex);
    }
    if (p.lastEntry !== null) {
      r.log.stableTo(p.lastEntry.index, p.lastEntry.term);
      r.selfStable(p.lastEntry.index, p.lastEntry.term);
    }
  }

  /**
   * The committed entries a Ready handed out (`entries`, through `index`) are applied. Every
   * conf-change entry among them must have been passed to applyConfChange() first.
   */
  appliedTo(index: number, entries: readonly Entry[]): void {
    invariant(this.confChangesOut.length === 0 || this.confChangesOut[0]! > index, () => `appliedTo(${index}) with the conf-change entry ${this.confChangesOut[0]} not passed to applyConfChange(): the configuration would lag the applied log`);
    const r = this.raft;
    r.log.appliedTo(index);
    r.reduceUncommittedSize(entries);
    // Leave a joint configuration by ourselves once it is applied (autoLeave, §4.3).
    if (r.role === 'leader' && r.conf.autoLeave && isJoint(r.conf) && r.log.applied >= r.pendingConfIndex && r.leadTransferee === NONE) {
      try {
        const id = this.appendProposal({ term: 0, index: 0, type: 'confChange', data: encodeConfChange({ changes: [] }) });
        r.pendingConfIndex = id.index;
      } catch (e) {
        // Refused for now (size budget); retried at the next appliedTo.
        if (!(e instanceof RaftError)) throw e;
      }
    }
  }

  status(): Status {
    const r = this.raft;
    let progress: Map<NodeId, ProgressStatus> | null = null;
    if (r.role === 'leader') {
      progress = new Map();
      for (const [id, pr] of r.progress) progress.set(id, pr.status());
    }
    return {
      id: r.id,
      hardState: r.hardState(),
      softState: r.softState(),
      applied: r.log.applied,
      lastIndex: r.log.lastIndex(),
      confState: r.conf,
      progress,
      leadTransferee: r.leadTransferee,
    };
  }
}

/** What one Ready's write made durable (RawNode.persisted). */
export interface PersistedWrite {
  readonly snapshotIndex: number | null;
  readonly lastEntry: { readonly index: number; readonly term: number } | null;
}

/** The write of a Ready: its snapshot and its last entry. */
export function persistedOf(rd: Ready): PersistedWrite {
  const last = rd.entries.length > 0 ? rd.entries[rd.entries.length - 1]! : null;
  return { snapshotIndex: rd.snapshot ? rd.snapshot.metadata.index : null, lastEntry: last ? { index: last.index, term: last.term } : null };
}

function hardStateEqual(a: HardState, b: HardState): boolean {
  return a.term === b.term && a.vote === b.vote && a.commit === b.commit;
}
