// The Raft protocol state machine (etcd-io/raft's raft.go, re-derived for this project).
//
// A role is a step function: stepLeader / stepCandidate / stepFollower switch on the message
// type. Time is logical ticks. Output is queued in `msgs` and `readStates` and collected by
// RawNode into a Ready. Section numbers refer to Ongaro's dissertation ("Consensus: Bridging
// Theory and Practice", 2014) unless they say "paper" (Ongaro & Ousterhout 2014).
import { allMembers, isVoter, nextConfState } from './confchange.ts';
import { RaftError, invariant } from './errors.ts';
import { RaftLog } from './log.ts';
import { ReadOnly } from './read-only.ts';
import { Progress, committedIndex, voteResult } from './tracker.ts';
import type {
  ConfChange,
  ConfState,
  Config,
  Entry,
  HardState,
  Message,
  MsgApp,
  MsgAppResp,
  MsgHeartbeat,
  MsgReadIndex,
  MsgSnap,
  MsgVote,
  NodeId,
  ReadState,
  Role,
  Rng,
  SoftState,
  UnsafeBugs,
} from './types.ts';
import { NONE } from './types.ts';
import { entriesSize } from './util.ts';

// Defaults, with the reason for each.
/** One MsgApp carries at most 1 MiB of entries: big enough to batch, small enough not to stall a link. */
export const DEFAULT_MAX_SIZE_PER_MSG = 1 << 20;
/** Up to 256 MsgApps pipelined to one follower before waiting for acknowledgements. */
export const DEFAULT_MAX_INFLIGHT_MSGS = 256;
/** A Ready hands out at most 8 MiB of committed entries, so one apply batch stays bounded. */
export const DEFAULT_MAX_COMMITTED_SIZE_PER_READY = 8 << 20;
/** A leader holds at most 64 MiB of proposals that are not committed yet; more are refused. */
export const DEFAULT_MAX_UNCOMMITTED_SIZE = 64 << 20;

export class Raft {
  readonly id: NodeId;
  term = 0;
  vote: NodeId = NONE;
  lead: NodeId = NONE;
  role: Role = 'follower';
  readonly log: RaftLog;

  /** The configuration in force (applied conf changes). */
  conf: ConfState;
  readonly progress = new Map<NodeId, Progress>();
  private votes = new Map<NodeId, boolean>();

  /** Outgoing messages and read states, collected by RawNode.ready(). */
  msgs: Message[] = [];
  readStates: ReadState[] = [];

  private readonly electionTimeout: number;
  private readonly heartbeatTimeout: number;
  private randomizedElectionTimeout = 0;
  electionElapsed = 0;
  private heartbeatElapsed = 0;

  private readonly preVote: boolean;
  private readonly checkQuorum: boolean;
  private readonly readOnlyOption: 'safe' | 'leaseBased';
  private readonly maxMsgSize: number;
  private readonly maxInflight: number;
  private readonly maxUncommittedSize: number;
  private uncommittedSize = 0;
  private readonly rng: Rng;
  private readonly logger: ((line: string) => void) | undefined;
  private readonly bugs: UnsafeBugs;

  leadTransferee: NodeId = NONE;
  /** Index of the last conf change proposed by this leader; a new one waits until it is applied. */
  pendingConfIndex = 0;
  private readonly readOnly = new ReadOnly();
  /** Read requests that arrived before this leader committed an entry of its term (§6.4 step 1). */
  private pendingReadIndexMessages: MsgReadIndex[] = [];
  /** Set by propose: broadcast appends once when the Ready is collected (batching). */
  pendingBroadcast = false;

  private step: (m: Message) => void;
  private tickFn: () => void;

  constructor(c: Config) {
    invariant(Number.isSafeInteger(c.id) && c.id > 0, `config: id ${c.id} must be a positive integer`);
    invariant(c.heartbeatTick > 0, 'config: heartbeatTick must be > 0');
    invariant(c.electionTick > c.heartbeatTick, 'config: electionTick must be greater than heartbeatTick');
    this.id = c.id;
    this.electionTimeout = c.electionTick;
    this.heartbeatTimeout = c.heartbeatTick;
    this.preVote = c.preVote ?? true;
    this.checkQuorum = c.checkQuorum ?? true;
    this.readOnlyOption = c.readOnlyOption ?? 'safe';
    // §6.4.1: a lease is only sound if a leader that lost its quorum steps down in time.
    invariant(this.readOnlyOption !== 'leaseBased' || this.checkQuorum, 'config: leaseBased reads require checkQuorum');
    this.maxMsgSize = c.maxSizePerMsg ?? DEFAULT_MAX_SIZE_PER_MSG;
    this.maxInflight = c.maxInflightMsgs ?? DEFAULT_MAX_INFLIGHT_MSGS;
    invariant(this.maxInflight > 0, 'config: maxInflightMsgs must be > 0');
    this.maxUncommittedSize = c.maxUncommittedEntriesSize ?? DEFAULT_MAX_UNCOMMITTED_SIZE;
    this.rng = c.rng;
    this.logger = c.logger;
    this.bugs = c.unsafeBugs ?? {};

    const { hardState, confState } = c.storage.initialState();
    this.log = new RaftLog(c.storage, c.applied ?? 0);
    this.conf = confState;
    this.resetProgress();
    if (hardState.term !== 0 || hardState.vote !== NONE || hardState.commit !== 0) this.loadState(hardState);
    invariant(this.log.applied <= this.log.committed, () => `config: applied ${this.log.applied} is beyond commit ${this.log.committed}`);
    this.step = this.stepFollower;
    this.tickFn = this.tickElection;
    this.becomeFollower(this.term, NONE);
    this.debug(`started: term ${this.term} commit ${this.log.committed} applied ${this.log.applied} last ${this.log.lastIndex()} voters [${this.conf.voters}]`);
  }

  private loadState(hs: HardState): void {
    invariant(hs.commit >= this.log.committed && hs.commit <= this.log.lastIndex(), () => `load: commit ${hs.commit} is out of range [${this.log.committed}, ${this.log.lastIndex()}]`);
    this.log.committed = hs.commit;
    this.term = hs.term;
    this.vote = hs.vote;
  }

  private debug(line: string): void {
    if (this.logger) this.logger(`[${this.id} t${this.term} ${this.role}] ${line}`);
  }

  hardState(): HardState {
    return { term: this.term, vote: this.vote, commit: this.log.committed };
  }

  softState(): SoftState {
    return { lead: this.lead, role: this.role };
  }

  /** A node campaigns only if it is a voter (not a learner, not removed). */
  promotable(): boolean {
    return isVoter(this.conf, this.id);
  }

  private send(m: Message): void {
    this.msgs.push(m);
  }

  // ---------------------------------------------------------------- role transitions

  private reset(term: number): void {
    if (this.term !== term) {
      this.term = term;
      this.vote = NONE;
    }
    this.lead = NONE;
    this.electionElapsed = 0;
    this.heartbeatElapsed = 0;
    this.randomizedElectionTimeout = this.electionTimeout + this.rng(this.electionTimeout);
    this.abortLeaderTransfer();
    this.votes = new Map();
    const last = this.log.lastIndex();
    for (const [id, pr] of this.progress) {
      const fresh = new Progress(last + 1, this.maxInflight, pr.isLearner);
      if (id === this.id) fresh.match = last;
      this.progress.set(id, fresh);
    }
    this.pendingConfIndex = 0;
    this.uncommittedSize = 0;
    this.readOnly.reset();
    this.pendingReadIndexMessages = [];
    this.pendingBroadcast = false;
  }

  becomeFollower(term: number, lead: NodeId): void {
    this.step = this.stepFollower;
    this.tickFn = this.tickElection;
    this.reset(term);
    this.lead = lead;
    this.role = 'follower';
    this.debug(`became follower (leader ${lead})`);
  }

  private becomeCandidate(): void {
    invariant(this.role !== 'leader', 'transition leader -> candidate is invalid');
    this.step = this.stepCandidate;
    this.tickFn = this.tickElection;
    this.reset(this.term + 1);
    this.vote = this.id;
    this.role = 'candidate';
    this.debug('became candidate');
  }

  private becomePreCandidate(): void {
    invariant(this.role !== 'leader', 'transition leader -> pre-candidate is invalid');
    // §9.6: a pre-candidate changes neither its term nor its vote.
    this.step = this.stepCandidate;
    this.tickFn = this.tickElection;
    this.votes = new Map();
    this.lead = NONE;
    this.role = 'preCandidate';
    this.debug('became pre-candidate');
  }

  private becomeLeader(): void {
    invariant(this.role !== 'follower', 'transition follower -> leader is invalid');
    this.step = this.stepLeader;
    this.tickFn = this.tickHeartbeat;
    this.reset(this.term);
    this.lead = this.id;
    this.role = 'leader';
    const self = this.progress.get(this.id);
    invariant(self, 'becomeLeader: leader has no progress entry');
    // The leader's own match advances only when its entries are durable (RawNode.advance).
    self.match = 0;
    self.becomeReplicate();
    self.recentActive = true;
    // §5.4.2 / §8: append a no-op of this term; entries of earlier terms commit with it.
    const appended = this.appendEntries([{ term: this.term, index: 0, type: 'normal', data: new Uint8Array(0) }]);
    invariant(appended, 'becomeLeader: could not append the no-op');
    // The 2015 correction: no conf change until an entry of this term (the no-op) is applied.
    this.pendingConfIndex = this.log.lastIndex();
    this.debug(`became leader at last index ${this.log.lastIndex()}`);
  }

  // ---------------------------------------------------------------- ticks

  tick(): void {
    this.tickFn();
  }

  private pastElectionTimeout(): boolean {
    return this.electionElapsed >= this.randomizedElectionTimeout;
  }

  private tickElection = (): void => {
    this.electionElapsed++;
    if (this.promotable() && this.pastElectionTimeout()) {
      this.electionElapsed = 0;
      this.hup(false);
    }
  };

  private tickHeartbeat = (): void => {
    this.heartbeatElapsed++;
    this.electionElapsed++;
    if (this.electionElapsed >= this.electionTimeout) {
      this.electionElapsed = 0;
      if (this.checkQuorum) {
        // §6.2: step down if a quorum has not been heard from in an election timeout.
        if (!this.quorumActive()) {
          this.debug('stepping down: quorum not active (check-quorum)');
          this.becomeFollower(this.term, NONE);
          return;
        }
      }
      // A transfer that did not finish within an election timeout is abandoned (§3.10).
      if (this.role === 'leader' && this.leadTransferee !== NONE) this.abortLeaderTransfer();
    }
    if (this.role !== 'leader') return;
    if (this.heartbeatElapsed >= this.heartbeatTimeout) {
      this.heartbeatElapsed = 0;
      this.bcastHeartbeat(this.readOnly.lastPendingContext());
    }
  };

  /** Whether a quorum of voters was active since the last check; resets the marks. */
  private quorumActive(): boolean {
    const active = new Map<NodeId, boolean>();
    for (const [id, pr] of this.progress) {
      if (id === this.id) {
        active.set(id, true);
        continue;
      }
      if (!pr.isLearner) active.set(id, pr.recentActive);
      pr.recentActive = false;
    }
    return voteResult(this.conf, active) === 'won';
  }

  // ---------------------------------------------------------------- elections

  /**
   * A follower forgets its leader (etcd raft's MsgForgetLeader): it stays a follower in its term,
   * without campaigning, but no longer counts as inside the leader's lease, so it grants pre-votes
   * at once (§9.6 "disruptive servers": the lease check refuses them while a leader is known).
   * When a quorum has strong evidence that the leader is gone (the driver: the leader's connection
   * was closed), they can elect a new one without waiting out the election timeout. A message
   * from the leader makes it the leader again. Refused under leaseBased reads, whose safety rests
   * on followers not voting within the lease. Returns whether a leader was forgotten.
   */
  forgetLeader(): boolean {
    if (this.role !== 'follower' || this.lead === NONE) return false;
    if (this.readOnlyOption === 'leaseBased') {
      this.debug('ignoring forgetLeader: leaseBased reads');
      return false;
    }
    this.debug(`forgetting leader ${this.lead} at term ${this.term}`);
    this.lead = NONE;
    return true;
  }

  /** Start an election (pre-vote first, unless this campaign comes from a leadership transfer). */
  hup(transfer: boolean): void {
    if (this.role === 'leader') {
      this.debug('ignoring hup: already leader');
      return;
    }
    if (!this.promotable()) {
      this.debug('ignoring hup: not promotable (learner or removed)');
      return;
    }
    // A conf change that is committed but not applied could change who may vote: wait for it.
    if (this.hasUnappliedConfChanges()) {
      this.debug('ignoring hup: committed conf changes not applied yet');
      return;
    }
    this.campaign(transfer ? 'vote' : this.preVote ? 'preVote' : 'vote', transfer);
  }

  private hasUnappliedConfChanges(): boolean {
    if (this.log.applied >= this.log.committed) return false;
    const lo = Math.max(this.log.applied + 1, this.log.firstIndex());
    if (lo > this.log.committed) return false;
    let i = lo;
    // Scan in bounded pages so a long unapplied tail does not build one huge array.
    while (i <= this.log.committed) {
      const ents = this.log.slice(i, this.log.committed + 1, this.maxMsgSize);
      for (const e of ents) if (e.type === 'confChange') return true;
      i += ents.length;
    }
    return false;
  }

  private campaign(kind: 'preVote' | 'vote', transfer: boolean): void {
    let term: number;
    if (kind === 'preVote') {
      this.becomePreCandidate();
      term = this.term + 1; // the term we would use; our own term does not change
    } else {
      this.becomeCandidate();
      term = this.term;
    }
    if (this.poll(this.id, true) === 'won') {
      // Single-voter cluster: we win at once.
      if (kind === 'preVote') this.campaign('vote', transfer);
      else this.becomeLeader();
      return;
    }
    const lastIndex = this.log.lastIndex();
    const lastTerm = this.log.lastTerm();
    for (const id of new Set([...this.conf.voters, ...this.conf.votersOutgoing])) {
      if (id === this.id) continue;
      this.send({ type: kind, from: this.id, to: id, term, logTerm: lastTerm, index: lastIndex, transfer });
    }
  }

  private poll(id: NodeId, granted: boolean): 'won' | 'lost' | 'pending' {
    if (!this.votes.has(id)) this.votes.set(id, granted);
    return voteResult(this.conf, this.votes);
  }

  // ---------------------------------------------------------------- stepping messages

  /** Handle a message from a peer. Term checks first (paper figure 2, "all servers"). */
  stepMessage(m: Message): void {
    invariant(m.to === this.id, () => `step: message to ${m.to} delivered to ${this.id}`);
    if (m.term > this.term) {
      if (m.type === 'vote' || m.type === 'preVote') {
        // §4.2.3 / §9.6: while we have heard from a live leader within the minimum election
        // timeout, a vote request is ignored (it cannot disrupt the cluster) unless it comes
        // from a leadership transfer.
        const inLease = this.checkQuorum && this.lead !== NONE && this.electionElapsed < this.electionTimeout;
        if (!m.transfer && inLease) {
          this.debug(`ignoring ${m.type} from ${m.from} at term ${m.term}: in lease of leader ${this.lead}`);
          return;
        }
      }
      if (m.type === 'preVote') {
        // Never change our term in response to a pre-vote.
      } else if (m.type === 'preVoteResp' && !m.reject) {
        // A granted pre-vote carries the future term; we bump our term only when we win.
      } else if (m.type === 'app' || m.type === 'heartbeat' || m.type === 'snap') {
        this.becomeFollower(m.term, m.from);
      } else {
        this.becomeFollower(m.term, NONE);
      }
    } else if (m.term < this.term) {
      if ((this.checkQuorum || this.preVote) && (m.type === 'heartbeat' || m.type === 'app')) {
        // A stale leader (e.g. after a partition) would otherwise never learn the new term when
        // its own vote requests are ignored under check-quorum or pre-vote: tell it.
        this.send({ type: 'appResp', from: this.id, to: m.from, term: this.term, index: 0, reject: false, rejectHint: 0, logTerm: 0 });
      } else if (m.type === 'preVote' || m.type === 'vote') {
        // Refuse a stale (pre-)vote request with our term so the candidate catches up (paper
        // figure 2: "reply false if term < currentTerm", and the reply carries currentTerm).
        // Ignoring it, as etcd does for MsgVote, can livelock: a node with a stale configuration
        // campaigning to peers that are gone races its term ahead while the live candidates
        // never learn it (simulator seed 11111, membership mix).
        this.send({ type: m.type === 'vote' ? 'voteResp' : 'preVoteResp', from: this.id, to: m.from, term: this.term, reject: true });
      }
      return;
    }

    if (m.type === 'vote' || m.type === 'preVote') {
      this.handleVoteRequest(m);
      return;
    }
    this.step(m);
  }

  private handleVoteRequest(m: MsgVote): void {
    // We can vote if we already voted for this candidate (a duplicate), if we have not voted and
    // know no leader in this term, or for a pre-vote of a future term.
    const canVote = this.vote === m.from || (this.vote === NONE && this.lead === NONE) || (m.type === 'preVote' && m.term > this.term);
    const respType = m.type === 'vote' ? 'voteResp' : 'preVoteResp';
    if (canVote && (this.bugs.skipLogUpToDateCheck || this.log.isUpToDate(m.index, m.logTerm))) {
      this.debug(`granting ${m.type} to ${m.from} at term ${m.term}`);
      // For a pre-vote we answer with the candidate's future term, so it is not dropped as stale.
      this.send({ type: respType, from: this.id, to: m.from, term: m.term, reject: false });
      if (m.type === 'vote') {
        this.electionElapsed = 0;
        this.vote = m.from;
      }
    } else {
      this.debug(`rejecting ${m.type} from ${m.from} at term ${m.term}`);
      this.send({ type: respType, from: this.id, to: m.from, term: this.term, reject: true });
    }
  }

  private stepFollower = (m: Message): void => {
    switch (m.type) {
      case 'app':
        this.electionElapsed = 0;
        this.lead = m.from;
        this.handleAppendEntries(m);
        return;
      case 'heartbeat':
        this.electionElapsed = 0;
        this.lead = m.from;
        this.handleHeartbeat(m);
        return;
      case 'snap':
        this.electionElapsed = 0;
        this.lead = m.from;
        this.handleSnapshot(m);
        return;
      case 'transferLeader':
        if (this.lead === NONE) {
          this.debug('dropping transferLeader: no leader');
          return;
        }
        this.send({ ...m, from: this.id, to: this.lead, term: this.term });
        return;
      case 'timeoutNow':
        // §3.10: the leader asks us to take over at once.
        this.debug(`received timeoutNow from ${m.from}: campaigning`);
        this.hup(true);
        return;
      case 'readIndex':
        if (this.lead === NONE) return;
        this.send({ ...m, to: this.lead, term: this.term });
        return;
      case 'readIndexResp':
        this.readStates.push({ index: m.index, context: m.context });
        return;
      default:
        return;
    }
  };

  private stepCandidate = (m: Message): void => {
    const respType = this.role === 'preCandidate' ? 'preVoteResp' : 'voteResp';
    switch (m.type) {
      case 'app':
        this.becomeFollower(m.term, m.from);
        this.handleAppendEntries(m);
        return;
      case 'heartbeat':
        this.becomeFollower(m.term, m.from);
        this.handleHeartbeat(m);
        return;
      case 'snap':
        this.becomeFollower(m.term, m.from);
        this.handleSnapshot(m);
        return;
      case 'voteResp':
      case 'preVoteResp': {
        if (m.type !== respType) return; // a late answer to an earlier campaign
        const result = this.poll(m.from, !m.reject);
        if (result === 'won') {
          if (this.role === 'preCandidate') this.campaign('vote', false);
          else {
            this.becomeLeader();
            this.bcastAppend();
          }
        } else if (result === 'lost') {
          // A pre-vote never bumped our term, so this keeps it; a real vote keeps the new term.
          this.becomeFollower(this.term, NONE);
        }
        return;
      }
      default:
        return;
    }
  };

  private stepLeader = (m: Message): void => {
    switch (m.type) {
      case 'readIndex':
        this.handleReadIndexOnLeader(m);
        return;
      case 'transferLeader':
        this.handleTransferLeader(m.transferee);
        return;
      default:
        break;
    }
    const pr = this.progress.get(m.from);
    if (!pr) {
      this.debug(`no progress for ${m.from}; dropping ${m.type}`);
      return;
    }
    switch (m.type) {
      case 'appResp':
        this.handleAppendResponse(m, pr);
        return;
      case 'heartbeatResp':
        pr.recentActive = true;
        pr.probeSent = false;
        // A MsgApp or its answer may have been lost; with a full window nothing would ever be
        // sent again. The follower is alive, so free one slot and let replication resume (etcd
        // does the same). Found by the simulator (seed 83, lossy mix).
        if (pr.state === 'replicate' && pr.inflights.full()) pr.inflights.freeFirstOne();
        if (pr.match < this.log.lastIndex()) this.sendAppend(m.from);
        if (this.readOnlyOption === 'safe' && m.context !== null) {
          const acks = this.readOnly.recvAck(m.from, m.context);
          if (acks) {
            const votes = new Map<NodeId, boolean>();
            for (const id of acks) votes.set(id, true);
            votes.set(this.id, true);
            if (voteResult(this.conf, votes) === 'won') {
              for (const req of this.readOnly.advance(m.context)) this.answerRead(req.from, req.context, req.index);
            }
          }
        }
        return;
      default:
        return;
    }
  };

  private handleAppendResponse(m: MsgAppResp, pr: Progress): void {
    pr.recentActive = true;
    if (m.reject) {
      // §5.3 with the conflict hint: jump back to where the logs can first match.
      let nextProbe = m.rejectHint;
      if (m.logTerm > 0) nextProbe = this.log.findConflictByTerm(m.rejectHint, m.logTerm).index;
      if (pr.maybeDecrTo(m.index, nextProbe)) {
        this.debug(`${m.from} rejected app at ${m.index} (hint ${m.rejectHint}/${m.logTerm}); next ${pr.next}`);
        if (pr.state === 'replicate') pr.becomeProbe();
        this.sendAppend(m.from);
      }
      return;
    }
    if (pr.maybeUpdate(m.index) || (pr.match === m.index && pr.state === 'probe')) {
      if (pr.state === 'probe') pr.becomeReplicate();
      else if (pr.state === 'snapshot' && pr.match + 1 >= this.log.firstIndex()) {
        // The follower caught up through the snapshot (or the log it was missing came back).
        pr.becomeProbe();
        pr.becomeReplicate();
      } else if (pr.state === 'replicate') pr.inflights.freeLE(m.index);

      if (this.maybeCommit()) {
        this.onCommitAdvanced();
      } else if (m.from !== this.id) {
        // The follower may not know the latest commit index yet; tell it.
        this.maybeSendAppend(m.from, false);
      }
      // Acknowledgements may have opened the window: send what we can without empty messages.
      while (this.maybeSendAppend(m.from, false)) {
        /* fill the pipeline */
      }
      if (m.from === this.leadTransferee && pr.match === this.log.lastIndex()) {
        this.debug(`transferee ${m.from} caught up: sending timeoutNow`);
        this.sendTimeoutNow(m.from);
      }
    }
  }

  /** Called when the leader's commit index moved. */
  onCommitAdvanced(): void {
    this.releasePendingReadIndexMessages();
    this.bcastAppend();
  }

  private handleAppendEntries(m: MsgApp): void {
    if (m.index < this.log.committed) {
      // Everything up to our commit index matches (Log Matching): acknowledge it.
      this.send({ type: 'appResp', from: this.id, to: m.from, term: this.term, index: this.log.committed, reject: false, rejectHint: 0, logTerm: 0 });
      return;
    }
    const lastNew = this.log.maybeAppend(m.index, m.logTerm, m.commit, m.entries);
    if (lastNew !== null) {
      this.send({ type: 'appResp', from: this.id, to: m.from, term: this.term, index: lastNew, reject: false, rejectHint: 0, logTerm: 0 });
      return;
    }
    // Reject with a hint: the largest index <= min(m.index, last) whose term <= m.logTerm.
    const hint = this.log.findConflictByTerm(Math.min(m.index, this.log.lastIndex()), m.logTerm);
    this.debug(`rejecting app at ${m.index}/${m.logTerm}; hint ${hint.index}/${hint.term}`);
    this.send({ type: 'appResp', from: this.id, to: m.from, term: this.term, index: m.index, reject: true, rejectHint: hint.index, logTerm: hint.term });
  }

  private handleHeartbeat(m: MsgHeartbeat): void {
    // The leader sends min(match, commit), so this never exceeds our log.
    this.log.commitTo(m.commit);
    this.send({ type: 'heartbeatResp', from: this.id, to: m.from, term: this.term, context: m.context });
  }

  private handleSnapshot(m: MsgSnap): void {
    const md = m.snapshot.metadata;
    if (this.restore(m)) {
      this.debug(`restored snapshot at ${md.index}/${md.term}`);
      this.send({ type: 'appResp', from: this.id, to: m.from, term: this.term, index: this.log.lastIndex(), reject: false, rejectHint: 0, logTerm: 0 });
    } else {
      this.debug(`ignored snapshot at ${md.index}/${md.term}`);
      this.send({ type: 'appResp', from: this.id, to: m.from, term: this.term, index: this.log.committed, reject: false, rejectHint: 0, logTerm: 0 });
    }
  }

  private restore(m: MsgSnap): boolean {
    const s = m.snapshot;
    if (s.metadata.index <= this.log.committed) return false;
    invariant(this.role === 'follower', () => `restore: snapshot received as ${this.role}`);
    // The snapshot's configuration may not contain us yet: a node added after the snapshot was
    // taken learns of its own addition by replaying the log that follows. Until then it is not
    // promotable, which is the truth as of the snapshot's index. (etcd refuses such a snapshot;
    // we must not, since joiners are always caught up by snapshot first.)
    if (this.log.matchTerm(s.metadata.index, s.metadata.term)) {
      // We already have the snapshot's last entry: just move the commit index.
      this.log.commitTo(s.metadata.index);
      return false;
    }
    if (this.log.applying > this.log.applied) {
      // Committed entries are out for application: a Ready handed them out and advance() has not
      // come back (a driver may step messages in between, as etcd's node loop does). The
      // snapshot's configuration already contains every conf change among them, and the
      // application is about to apply those changes again through applyConfChange: on top of the
      // snapshot's configuration that is wrong (a voter demoted by a replayed addLearner) or
      // impossible (INVALID_CONF_CHANGE: leaving a joint configuration the snapshot already left).
      // Ignore it; the leader sends it again once it hears from us, and by then they are applied.
      // Found by the simulator (seed 10670, membership mix). etcd restores here and shares the
      // hazard with joint changes.
      this.debug(`ignoring snapshot at ${s.metadata.index}/${s.metadata.term}: entries up to ${this.log.applying} are being applied (applied ${this.log.applied})`);
      return false;
    }
    this.log.restore(s);
    this.conf = s.metadata.confState;
    this.resetProgress();
    return true;
  }

  // ---------------------------------------------------------------- replication (leader)

  /** Send entries (or a snapshot) to `to` if its flow control allows. */
  sendAppend(to: NodeId): void {
    this.maybeSendAppend(to, true);
  }

  private maybeSendAppend(to: NodeId, sendIfEmpty: boolean): boolean {
    const pr = this.progress.get(to);
    if (!pr || to === this.id || pr.isPaused()) return false;
    const prevIndex = pr.next - 1;
    const prevTerm = this.log.term(prevIndex);
    let ents: Entry[] = [];
    let compacted = prevTerm === null;
    if (!compacted && pr.next <= this.log.lastIndex()) {
      try {
        // While probing, one entry is enough to find the match point.
        ents = this.log.entries(pr.next, pr.state === 'replicate' ? this.maxMsgSize : 1);
      } catch (e) {
        if (e instanceof RaftError && e.code === 'COMPACTED') compacted = true;
        else throw e;
      }
    }
    if (compacted) return this.maybeSendSnapshot(to, pr);
    if (ents.length === 0 && !sendIfEmpty) return false;
    this.send({ type: 'app', from: this.id, to, term: this.term, index: prevIndex, logTerm: prevTerm!, entries: ents, commit: this.log.committed });
    pr.sentEntries(ents.length, ents.length > 0 ? ents[ents.length - 1]!.index : prevIndex);
    return true;
  }

  private maybeSendSnapshot(to: NodeId, pr: Progress): boolean {
    if (!pr.recentActive) {
      this.debug(`not sending snapshot to ${to}: not recently active`);
      return false;
    }
    let snap;
    try {
      snap = this.log.snapshot();
    } catch (e) {
      if (e instanceof RaftError && e.code === 'SNAPSHOT_TEMPORARILY_UNAVAILABLE') return false;
      throw e;
    }
    invariant(snap.metadata.index > 0, () => `need a non-empty snapshot to send to ${to} (next ${pr.next}, first ${this.log.firstIndex()})`);
    this.debug(`sending snapshot ${snap.metadata.index}/${snap.metadata.term} to ${to}`);
    pr.becomeSnapshot(snap.metadata.index);
    this.send({ type: 'snap', from: this.id, to, term: this.term, snapshot: snap });
    return true;
  }

  bcastAppend(): void {
    for (const id of this.progress.keys()) if (id !== this.id) this.sendAppend(id);
  }

  private bcastHeartbeat(context: string | null): void {
    for (const [id, pr] of this.progress) {
      if (id === this.id) continue;
      // Never tell a follower a commit index beyond what it is known to hold.
      const commit = Math.min(pr.match, this.log.committed);
      this.send({ type: 'heartbeat', from: this.id, to: id, term: this.term, commit, context });
    }
  }

  maybeCommit(): boolean {
    const idx = committedIndex(this.conf, (id) => this.progress.get(id)?.match ?? 0);
    // §5.4.2 (figure 8): only an entry of the current term is committed by counting replicas.
    return this.log.maybeCommit(idx, this.term, this.bugs.commitPriorTermByCounting === true);
  }

  /** Append entries to the leader's log, stamping term and index. Returns false if refused. */
  appendEntries(es: Entry[]): boolean {
    const last = this.log.lastIndex();
    const stamped = es.map((e, i): Entry => ({ term: this.term, index: last + 1 + i, type: e.type, data: e.data }));
    const size = entriesSize(stamped);
    if (this.uncommittedSize > 0 && this.uncommittedSize + size > this.maxUncommittedSize) {
      this.debug(`dropping proposal: uncommitted size ${this.uncommittedSize} + ${size} over ${this.maxUncommittedSize}`);
      return false;
    }
    this.uncommittedSize += size;
    this.log.append(stamped);
    return true;
  }

  /** Entries up to `index` are committed: release their share of the uncommitted budget. */
  reduceUncommittedSize(ents: readonly Entry[]): void {
    if (this.role !== 'leader') return;
    this.uncommittedSize = Math.max(0, this.uncommittedSize - entriesSize(ents));
  }

  /** The leader's own entries became durable up to (index, term). */
  selfStable(index: number, term: number): void {
    if (this.role !== 'leader' || this.log.term(index) !== term) return;
    const pr = this.progress.get(this.id);
    if (pr && pr.maybeUpdate(index) && this.maybeCommit()) this.onCommitAdvanced();
  }

  private sendTimeoutNow(to: NodeId): void {
    this.send({ type: 'timeoutNow', from: this.id, to, term: this.term });
  }

  abortLeaderTransfer(): void {
    this.leadTransferee = NONE;
  }

  handleTransferLeader(transferee: NodeId): void {
    const pr = this.progress.get(transferee);
    if (!pr || pr.isLearner) {
      this.debug(`refusing transfer to ${transferee}: not a voter`);
      return;
    }
    if (this.leadTransferee !== NONE) {
      if (this.leadTransferee === transferee) return;
      this.abortLeaderTransfer();
    }
    if (transferee === this.id) return;
    // The transfer should finish within one election timeout (§3.10).
    this.electionElapsed = 0;
    this.leadTransferee = transferee;
    this.debug(`transferring leadership to ${transferee}`);
    if (pr.match === this.log.lastIndex()) this.sendTimeoutNow(transferee);
    else this.sendAppend(transferee);
  }

  // ---------------------------------------------------------------- reads (§6.4)

  private committedEntryInCurrentTerm(): boolean {
    return this.log.term(this.log.committed) === this.term;
  }

  /** A read request on the leader, from itself (from = id) or forwarded by a follower. */
  handleReadIndexOnLeader(m: MsgReadIndex): void {
    const votersOnlySelf = this.conf.voters.length === 1 && this.conf.voters[0] === this.id && this.conf.votersOutgoing.length === 0;
    if (votersOnlySelf) {
      this.answerRead(m.from, m.context, this.log.committed);
      return;
    }
    // §6.4 step 1: until the leader has committed an entry of its term it does not know the
    // latest commit index; hold the request until then.
    if (!this.committedEntryInCurrentTerm()) {
      if (this.pendingReadIndexMessages.length < 4096) this.pendingReadIndexMessages.push(m);
      return;
    }
    this.sendReadIndex(m);
  }

  private sendReadIndex(m: MsgReadIndex): void {
    if (this.readOnlyOption === 'leaseBased') {
      this.answerRead(m.from, m.context, this.log.committed);
      return;
    }
    if (!this.readOnly.add({ context: m.context, index: this.log.committed, from: m.from })) {
      this.debug(`dropping read ${m.context}: too many pending reads`);
      return;
    }
    this.readOnly.recvAck(this.id, m.context);
    this.bcastHeartbeat(m.context);
  }

  private releasePendingReadIndexMessages(): void {
    if (this.pendingReadIndexMessages.length === 0 || !this.committedEntryInCurrentTerm()) return;
    const pending = this.pendingReadIndexMessages;
    this.pendingReadIndexMessages = [];
    for (const m of pending) this.sendReadIndex(m);
  }

  private answerRead(from: NodeId, context: string, index: number): void {
    if (from === NONE || from === this.id) this.readStates.push({ index, context });
    else this.send({ type: 'readIndexResp', from: this.id, to: from, term: this.term, context, index });
  }

  // ---------------------------------------------------------------- membership

  /** Rebuild progress tracking for the current configuration, keeping what is known. */
  private resetProgress(): void {
    const members = allMembers(this.conf);
    const learners = new Set([...this.conf.learners, ...this.conf.learnersNext]);
    const last = this.log.lastIndex();
    for (const id of [...this.progress.keys()]) if (!members.includes(id)) this.progress.delete(id);
    for (const id of members) {
      const isLearner = learners.has(id);
      const pr = this.progress.get(id);
      if (pr) {
        pr.isLearner = isLearner;
      } else {
        const fresh = new Progress(last + 1, this.maxInflight, isLearner);
        // A node that joined is treated as active so the leader may send it a snapshot at once.
        fresh.recentActive = true;
        this.progress.set(id, fresh);
      }
    }
  }

  /** Apply a committed conf change (called by the application when it applies the entry). */
  applyConfChange(cc: ConfChange): ConfState {
    const next = nextConfState(this.conf, cc);
    this.debug(`applying conf change: voters [${next.voters}] outgoing [${next.votersOutgoing}] learners [${next.learners}]`);
    this.conf = next;
    this.resetProgress();
    if (this.role !== 'leader') return next;
    if (!isVoter(next, this.id)) {
      // The leader removed (or demoted) itself: hand over to the most up-to-date voter and step
      // down. The change is committed, so any new leader has it.
      let best = NONE;
      let bestMatch = -1;
      for (const id of next.voters) {
        const pr = this.progress.get(id);
        if (pr && pr.match > bestMatch) {
          best = id;
          bestMatch = pr.match;
        }
      }
      this.bcastAppend();
      if (best !== NONE && bestMatch === this.log.lastIndex()) this.sendTimeoutNow(best);
      this.debug(`removed from the configuration: stepping down (handing over to ${best})`);
      this.becomeFollower(this.term, NONE);
      return next;
    }
    // The quorum may have changed: the commit index may move.
    if (this.maybeCommit()) this.onCommitAdvanced();
    else this.bcastAppend();
    if (this.leadTransferee !== NONE && !isVoter(next, this.leadTransferee)) this.abortLeaderTransfer();
    return next;
  }
}
