// One simulated cluster node: the pure Raft core (RawNode), a modelled disk, the KV state machine
// and the node-side client service. The node follows the Ready persistence contract in
// src/raft/types.ts with asynchronous storage writes, as src/node/driver.ts does: a Ready is taken
// over at once (RawNode.acceptReady), its write goes to the disk, and up to `maxWritesInFlight`
// writes are in flight, completing in the order they were issued; when one completes, the node
// reports it (persisted), sends the messages that waited for it, applies its committed entries
// and reports them (appliedTo).
//
// The disk model: `storage` IS the durable state. A Ready's snapshot/entries/hardState go into a
// pending write that reaches `storage` only when the disk completes it. A crash throws away the
// RawNode, the state machine and every pending write; a restart builds a new RawNode over `storage`.
//
// Messages: a leader's appends and heartbeats leave when the Ready is taken (§10.2.1: they
// promise nothing about its disk); every other message leaves when the Ready's write is durable.
// A Ready with nothing to write still waits behind the writes in flight (its append
// acknowledgements may promise entries of an earlier write that is not durable yet), and leaves at
// once only when the disk is idle.
//
// Writes are batched as the driver batches them (src/node/driver.ts, loop/handle/proposeBatch):
// every command proposed during one pass over the driver's inbox shares one log entry. The driver
// takes a new Ready only while fewer than its limit of writes are in flight; what arrives
// meanwhile waits in its inbox, and the next pass proposes it all as one entry. The simulated
// node's analogue of a pass is the moment the pipeline has room again: write requests that arrive
// while it is full are gathered (in arrival order) and proposed as one entry as soon as it is not
// (processReady); a request that finds room is proposed at once, a batch of one. Ticks, messages
// and reads still go in at once (the wider interleaving this model keeps on purpose, see the
// README), and the batch bounds are the driver's: MAX_COMMANDS_PER_ENTRY, MAX_BATCH_ENTRY_BYTES.
import { RaftError, RaftInvariantError } from '../../src/raft/errors.ts';
import { MemoryStorage } from '../../src/raft/memory-storage.ts';
import { RawNode, decodeConfChange, persistedOf } from '../../src/raft/raw-node.ts';
import { MAX_BATCH_ENTRY_BYTES, MAX_COMMANDS_PER_ENTRY } from '../../src/node/command.ts';
import { NONE } from '../../src/raft/types.ts';
import type { ConfChange, ConfState, Entry, Message, MsgSnap, NodeId, Ready, Role, UnsafeBugs } from '../../src/raft/types.ts';
import type { KvOutput } from '../support/kv-model.ts';
import { fnv1a, type LogTermFn, type SafetyChecker } from './checks.ts';
import { KvStateMachine, decodeEntry, encodeCommand, encodeEntry, evaluate, type ApplyResult, type Command, type SessionLimits } from './kv-state-machine.ts';
import type { Rng } from './rng.ts';

/** Deliberate bugs implemented on the simulator side (the driver), to prove the checks can fail. */
export interface SimBugs {
  /** Persist the hard state with vote 0: a restarted node can vote twice in one term. */
  readonly forgetVote?: boolean;
  /** Send a Ready's messages before its write is durable. */
  readonly sendBeforePersist?: boolean;
  /** Answer a write right after propose, with the output computed on the leader's local state. */
  readonly ackBeforeCommit?: boolean;
  /** Serve reads from local state on whichever node is asked, without ReadIndex. */
  readonly readWithoutReadIndex?: boolean;
  /** Disable session dedupe: a retried proposal is applied again. */
  readonly applyRetryTwice?: boolean;
  /**
   * Node CORRUPTING_NODE's write path changes the last byte of every entry it stores (a write path
   * that skips the record checksum): the same (index, term) holds other data there than elsewhere.
   * Aimed at the log-matching check.
   */
  readonly corruptEntryOnDisk?: boolean;
  /**
   * An off-by-one in the apply loop: of a Ready carrying several committed entries, the first is
   * not applied (the core is still told all were). Aimed at the state-machine check (consecutive
   * applies).
   */
  readonly skipFirstCommitted?: boolean;
  /**
   * The session table refuses a retry of the session's last command as stale (staleSeq) instead
   * of answering it with the saved output: a client whose answer was lost cannot get it. Aimed at
   * the session check.
   */
  readonly refuseRetryAsStale?: boolean;
  /**
   * A restarted node's ticker is never started again (the driver starts it only at first start):
   * it never times out, so once every node has restarted no election can happen. Aimed at the
   * liveness check (cluster.ts).
   */
  readonly tickerLostOnRestart?: boolean;
  /**
   * The transport reports every snapshot as delivered and delivers none: a follower that needs one
   * never catches up, while the others go on committing. Aimed at the convergence check (cluster.ts).
   */
  readonly snapshotsLostReportedSent?: boolean;
  /**
   * A restarted node replays its log from its snapshot's index instead of after it (an applied
   * index recorded one entry behind the state it describes), and the replay path applies the batch
   * entry at that index again, past the session table: a batch applied twice. Aimed at the
   * state-machine check (an index applied twice: applies must be consecutive).
   */
  readonly applyBatchTwice?: boolean;
  /**
   * A leader answers the commands of a batch entry as soon as its OWN write of the entry is durable
   * (results computed by applying its log so far to a copy of its state machine), before a
   * majority has the entry: an entry lost with its leader was acknowledged. Aimed at
   * linearizability.
   */
  readonly ackBeforeMajorityFsync?: boolean;
  /**
   * When a batch entry this node proposed is lost to a leader change (another term's entry applied
   * at its index, or this node proposing over it), the first half of its commands are answered as
   * if the lost entry had been applied (results from a copy of the state machine) and only the
   * rest are told to retry: the batch is split across the leader change. Aimed at linearizability.
   */
  readonly splitBatchAcrossLeaderChange?: boolean;
  /**
   * A Ready with nothing of its own to write sends its messages at once, ahead of the writes still
   * in flight: an append acknowledgement for entries a previous Ready handed to the disk goes out
   * before they are durable (the asynchronous-writes hazard; etcd sends such responses only after
   * the append they depend on). A leader may then count a replica that a crash empties.
   * Aimed at linearizability.
   */
  readonly sendAheadOfWrites?: boolean;
}

/** The node whose disk corrupts entries under the corruptEntryOnDisk bug (one of the initial voters). */
export const CORRUPTING_NODE = 2;

/** An entry with its last data byte changed (or one byte added to an empty entry). */
function corrupted(e: Entry): Entry {
  const data = new Uint8Array(Math.max(1, e.data.length));
  data.set(e.data);
  data[data.length - 1] = (e.data.length === 0 ? 0 : data[data.length - 1]!) ^ 0xff;
  return { ...e, data };
}

/** A client's request as it reaches a node. `opId` identifies the client operation across retries. */
export interface ClientRequest {
  readonly clientId: number;
  readonly opId: number;
  readonly attempt: number;
  readonly cmd: Command;
}

export type ClientReply =
  | { readonly type: 'result'; readonly result: ApplyResult }
  | { readonly type: 'notLeader'; readonly leader: NodeId }
  /** The request was not carried out here (dropped proposal, lost entry, node busy): try again. */
  | { readonly type: 'retry'; readonly reason: string };

export interface DiskProfile {
  readonly latencyMinUs: number;
  readonly latencyMaxUs: number;
  /** Probability that one write stalls (a slow fsync), taking up to slowMaxUs. */
  readonly slowP: number;
  readonly slowMaxUs: number;
}

export interface NodeSettings {
  readonly electionTick: number;
  readonly heartbeatTick: number;
  readonly preVote: boolean;
  readonly checkQuorum: boolean;
  readonly maxSizePerMsg: number;
  readonly maxInflightMsgs: number;
  /** Core limits left at the core's defaults when null. */
  readonly maxCommittedSizePerReady: number | null;
  readonly maxUncommittedEntriesSize: number | null;
  /** Snapshot every this many applied entries, and keep this many entries behind the snapshot. */
  readonly snapshotEveryEntries: number;
  readonly keepEntries: number;
  readonly sessionLimits: SessionLimits;
  /** Bounds on the service's pending work; beyond them requests are refused with 'retry'. */
  readonly maxPendingProposals: number;
  readonly maxPendingReads: number;
  /** A pending read not answered within this is forgotten (the client has timed out by then). */
  readonly readTimeoutUs: number;
  readonly coreBugs: UnsafeBugs;
  readonly simBugs: SimBugs;
  /**
   * Model the real driver's §10.2.1 (Raft dissertation: "the leader can write to its disk in
   * parallel"): a leader sends a Ready's appends and heartbeats before its own write is durable;
   * everything else waits. The core counts the leader's own match only once its write is done.
   * On unless false (src/node/driver.ts always does it).
   */
  readonly parallelLeaderAppend?: boolean;
  /**
   * Writes in flight at once (the driver's maxWritesInFlight; asynchronous storage writes). 1 is
   * the synchronous driver: a new Ready only once the previous write is done.
   */
  readonly maxWritesInFlight: number;
  /**
   * Model the real driver's leaderLost (src/node/driver.ts): a follower told its leader is
   * unreachable forgets it and campaigns after a random delay below half an election timeout,
   * unless a leader showed up. On unless false.
   */
  readonly leaderLossCampaign?: boolean;
}

/** What a node needs from the cluster around it. */
export interface NodeHost {
  nowUs(): number;
  scheduleDiskDone(node: NodeId, incarnation: number, atUs: number): void;
  sendPeer(msg: Message): void;
  reply(node: NodeId, req: ClientRequest, reply: ClientReply): void;
  onConfChangeApplied(node: NodeId, index: number, cc: ConfChange, cs: ConfState): void;
  /** The node just made a vote for another node durable and sent it (a moment the nemesis likes). */
  onVoteCast(node: NodeId): void;
  readonly checker: SafetyChecker;
  /** Only set while tracing. */
  readonly trace: ((line: string) => void) | null;
}

interface PendingWrite {
  readonly rd: Ready;
  readonly sent: boolean;
  /** Messages of `rd` already sent before the write (the leader's appends and heartbeats). */
  readonly early: ReadonlySet<Message> | null;
  /** The disk has this write to do (a Ready with nothing to persist only waits for the ones before it). */
  readonly needsDisk: boolean;
  /** The disk finished it (always true for a write with nothing to persist). */
  done: boolean;
}

/** A batch entry this node proposed: one request per command, in order (null once answered). */
interface PendingProposal {
  readonly term: number;
  readonly reqs: (ClientRequest | null)[];
  readonly cmds: readonly Command[];
}

interface PendingRead {
  readonly req: ClientRequest;
  readonly key: string;
  index: number;
  readonly sinceUs: number;
}

export class SimNode {
  readonly id: NodeId;
  private readonly settings: NodeSettings;
  private readonly host: NodeHost;
  private readonly rng: Rng;
  /** Bumped at every crash and restart, so events of a previous life are ignored. */
  incarnation = 0;
  up = false;
  /** Permanently stopped after its removal from the configuration. */
  removed = false;
  storage: MemoryStorage;
  private raw: RawNode | null = null;
  private sm: KvStateMachine;
  private confState: ConfState;
  private applied = 0;
  /** Writes in flight, in the order they were issued (they complete in that order). */
  private pending: PendingWrite[] = [];
  /** When the disk finishes the last write issued (writes are done one after another). */
  private diskFreeAtUs = 0;
  /** The Ready being observed by the checks (before it becomes the pending write). */
  private observing: Ready | null = null;
  private readonly proposals = new Map<number, PendingProposal>();
  /** Commands waiting in proposals (a batch entry has many). */
  private proposalCommands = 0;
  /** Write requests gathered while a write is pending: the next pass proposes them as one entry. */
  private batchReqs: ClientRequest[] = [];
  private batchCmds: Uint8Array[] = [];
  private batchBytes = 0;
  /** Batch entries proposed and commands in them, for stats. */
  batchesProposed = 0;
  commandsProposed = 0;
  maxBatchCommands = 0;
  /** The most writes this node had in flight at once (asynchronous writes), for stats. */
  maxWritesInFlightSeen = 0;
  private readonly reads = new Map<string, PendingRead>();
  private readCounter = 0;
  /** The core's role/term/commit as last reported by a Ready. */
  role: Role = 'follower';
  lead: NodeId = 0;
  term = 0;
  private commit = 0;
  private votedFor: NodeId = 0;
  /** Disk writes done, for stats. */
  writes = 0;
  disk: DiskProfile;

  constructor(
    id: NodeId,
    initialConf: ConfState,
    settings: NodeSettings,
    host: NodeHost,
    rng: Rng,
    disk: DiskProfile,
  ) {
    this.id = id;
    this.settings = settings;
    this.host = host;
    this.rng = rng;
    this.storage = new MemoryStorage(initialConf);
    this.confState = initialConf;
    this.sm = new KvStateMachine(settings.sessionLimits, !settings.simBugs.applyRetryTwice, settings.simBugs.refuseRetryAsStale === true);
    this.disk = disk;
  }

  get appliedIndex(): number {
    return this.applied;
  }

  /**
   * What src/node/snapshots.ts sends for the core's MsgSnap (issue 15): not the snapshot the core
   * named but the state at this node's applied index (at or past it; the log goes on from there),
   * as etcd's createMergedSnapshotMessage does. Its digest is recorded, so the checker compares
   * it with every other node's state at that index.
   */
  stateSnapshotFor(msg: MsgSnap): MsgSnap {
    const data = this.sm.serialize();
    this.host.checker.onDigest(this.id, this.applied, fnv1a(data));
    return { ...msg, snapshot: { metadata: { index: this.applied, term: this.storage.term(this.applied), confState: this.confState }, data } };
  }

  get conf(): ConfState {
    return this.confState;
  }

  get isWriting(): boolean {
    return this.pending.length > 0;
  }

  /** Digest of the state-machine image (for the end-of-run convergence check). */
  stateDigest(): number {
    return fnv1a(this.sm.serialize());
  }

  /** Start (or restart after a crash) from durable storage. */
  start(): void {
    if (this.up || this.removed) return;
    this.incarnation++;
    this.up = true;
    this.storage = this.storage.clone();
    const snap = this.storage.snapshot();
    this.sm = KvStateMachine.deserialize(snap.data, this.settings.sessionLimits, !this.settings.simBugs.applyRetryTwice, this.settings.simBugs.refuseRetryAsStale === true);
    this.applied = snap.metadata.index;
    this.sm.setApplied(this.applied);
    this.confState = snap.metadata.confState;
    this.host.checker.onStart(this.id, this.applied);
    if (this.settings.simBugs.applyBatchTwice && this.incarnation > 1 && this.applied >= this.storage.firstIndex()) {
      // The bug: the replay starts at the snapshot's index, and that entry's batch goes through
      // the state machine again, past the session table.
      const e = this.storage.entries(this.applied, this.applied + 1, Infinity)[0]!;
      if (e.type === 'normal' && e.data.length > 0) {
        this.host.checker.onApply(this.id, e);
        this.sm.reapplyWithoutDedupe(e.index, decodeEntry(e.data));
        this.host.trace?.(`n${this.id} re-applied the batch at ${e.index} (applyBatchTwice)`);
      }
    }
    this.role = 'follower';
    this.lead = 0;
    const hs = this.storage.initialState().hardState;
    this.term = hs.term;
    this.commit = hs.commit;
    this.votedFor = hs.vote;
    const s = this.settings;
    const trace = this.host.trace;
    const coreRng = this.rng;
    this.raw = new RawNode({
      id: this.id,
      electionTick: s.electionTick,
      heartbeatTick: s.heartbeatTick,
      storage: this.storage,
      applied: this.applied,
      rng: (bound) => coreRng.int(bound),
      preVote: s.preVote,
      checkQuorum: s.checkQuorum,
      readOnlyOption: 'safe',
      maxSizePerMsg: s.maxSizePerMsg,
      maxInflightMsgs: s.maxInflightMsgs,
      ...(s.maxCommittedSizePerReady !== null ? { maxCommittedSizePerReady: s.maxCommittedSizePerReady } : {}),
      ...(s.maxUncommittedEntriesSize !== null ? { maxUncommittedEntriesSize: s.maxUncommittedEntriesSize } : {}),
      unsafeBugs: s.coreBugs,
      ...(trace ? { logger: (line: string) => trace(`n${this.id} core ${line}`) } : {}),
    });
    this.host.trace?.(`n${this.id} start (incarnation ${this.incarnation}) applied=${this.applied} hs=${JSON.stringify(hs)} last=${this.storage.lastIndex()}`);
  }

  /** Crash: lose the core, the state machine, pending writes and the service's pending work. */
  crash(): void {
    if (!this.up) return;
    this.incarnation++;
    this.up = false;
    this.raw = null;
    this.pending = [];
    this.proposals.clear();
    this.proposalCommands = 0;
    this.batchReqs = [];
    this.batchCmds = [];
    this.batchBytes = 0;
    this.reads.clear();
    this.role = 'follower';
    this.host.checker.onDown(this.id);
    this.host.trace?.(`n${this.id} crash (durable last=${this.storage.lastIndex()} hs=${JSON.stringify(this.storage.initialState().hardState)})`);
  }

  tick(): void {
    const raw = this.raw;
    if (raw === null) return;
    raw.tick();
    if (this.reads.size > 0) {
      const now = this.host.nowUs();
      for (const [ctx, r] of this.reads) if (now - r.sinceUs > this.settings.readTimeoutUs) this.reads.delete(ctx);
    }
    this.processReady();
  }

  step(msg: Message): void {
    const raw = this.raw;
    if (raw === null) return;
    raw.step(msg);
    this.processReady();
  }

  reportSnapshot(to: NodeId, ok: boolean): void {
    if (this.raw === null) return;
    this.raw.reportSnapshot(to, ok);
    this.processReady();
  }

  /**
   * When this follower forgot its leader `to` (leaderLossCampaign), the configuration and term it
   * forgot it in: the cluster then schedules campaignIfLeaderless (leaderLossDelayMs). null otherwise.
   */
  reportUnreachable(to: NodeId): { cs: ConfState; term: number } | null {
    if (this.raw === null) return null;
    this.raw.reportUnreachable(to);
    let forgot: { cs: ConfState; term: number } | null = null;
    const st = this.raw.status();
    if (this.settings.leaderLossCampaign !== false && st.softState.role === 'follower' && st.softState.lead === to && this.raw.forgetLeader()) forgot = { cs: st.confState, term: st.hardState.term };
    if (forgot) this.host.trace?.(`n${this.id} lost leader ${to}: forgot it`);
    this.processReady();
    return forgot;
  }

  /** The driver's campaignIfLeaderless: campaign if still a follower without a leader. */
  campaignIfLeaderless(incarnation: number, term: number): void {
    if (this.raw === null || incarnation !== this.incarnation) return;
    const st = this.raw.status();
    if (st.softState.role !== 'follower' || st.softState.lead !== NONE || st.hardState.term !== term) return;
    this.host.trace?.(`n${this.id} campaigns: leader lost`);
    this.raw.campaign();
    this.processReady();
  }

  campaign(): void {
    this.raw?.campaign();
    this.processReady();
  }

  transferLeadership(to: NodeId): boolean {
    if (this.raw === null) return false;
    try {
      this.raw.transferLeadership(to);
    } catch (e) {
      if (e instanceof RaftError) return false;
      throw e;
    }
    this.processReady();
    return true;
  }

  proposeConfChange(cc: ConfChange): boolean {
    if (this.raw === null) return false;
    try {
      this.raw.proposeConfChange(cc);
    } catch (e) {
      if (e instanceof RaftError) {
        this.host.trace?.(`n${this.id} conf change ${JSON.stringify(cc.changes)} refused: ${e.message}`);
        return false;
      }
      throw e;
    }
    this.host.trace?.(`n${this.id} proposed conf change ${JSON.stringify(cc.changes)}`);
    this.processReady();
    return true;
  }

  /** The node-side service: a client request arrives. */
  handleRequest(req: ClientRequest): void {
    const raw = this.raw;
    if (raw === null) return; // down: the client times out
    const cmd = req.cmd;
    if (cmd.type === 'kv' && cmd.input.op === 'get') {
      const key = cmd.input.key;
      if (this.settings.simBugs.readWithoutReadIndex) {
        this.answer(req, { type: 'result', result: { type: 'kv', output: { op: 'get', value: this.sm.read(key) } } });
        return;
      }
      if (this.reads.size >= this.settings.maxPendingReads) {
        this.answer(req, { type: 'retry', reason: 'too many pending reads' });
        return;
      }
      const ctx = `${this.id}.${this.incarnation}.${++this.readCounter}`;
      try {
        raw.readIndex(ctx);
      } catch (e) {
        if (e instanceof RaftError && e.code === 'NOT_LEADER') {
          this.answer(req, { type: 'notLeader', leader: e.leader });
          return;
        }
        throw e;
      }
      this.reads.set(ctx, { req, key, index: -1, sinceUs: this.host.nowUs() });
      this.processReady();
      return;
    }
    if (this.proposalCommands + this.batchReqs.length >= this.settings.maxPendingProposals) {
      this.answer(req, { type: 'retry', reason: 'too many pending proposals' });
      return;
    }
    // Into the current pass's batch (the driver's handle): a full batch is proposed first.
    const data = encodeCommand(cmd);
    if (this.batchCmds.length >= MAX_COMMANDS_PER_ENTRY || (this.batchCmds.length > 0 && this.batchBytes + data.length > MAX_BATCH_ENTRY_BYTES)) this.proposeBatch(raw);
    this.batchReqs.push(req);
    this.batchCmds.push(data);
    this.batchBytes += data.length;
    this.processReady();
  }

  /**
   * Propose the gathered commands as one entry stamped with this node's clock (the driver's
   * proposeBatch), and wait for it by index with one request per command.
   */
  private proposeBatch(raw: RawNode): void {
    const reqs = this.batchReqs;
    const data = this.batchCmds;
    this.batchReqs = [];
    this.batchCmds = [];
    this.batchBytes = 0;
    let id: { index: number; term: number };
    try {
      id = raw.propose(encodeEntry(data, Math.floor(this.host.nowUs() / 1000)));
    } catch (e) {
      if (e instanceof RaftError && e.code === 'NOT_LEADER') {
        for (const req of reqs) this.answer(req, { type: 'notLeader', leader: e.leader });
        return;
      }
      if (e instanceof RaftError && e.code === 'PROPOSAL_DROPPED') {
        for (const req of reqs) this.answer(req, { type: 'retry', reason: e.message });
        return;
      }
      throw e;
    }
    this.batchesProposed++;
    this.commandsProposed += reqs.length;
    this.maxBatchCommands = Math.max(this.maxBatchCommands, reqs.length);
    this.host.trace?.(`n${this.id} proposed ${reqs.map((r) => `c${r.clientId}.op${r.opId}`).join(',')} at (${id.index}, t${id.term}) ${reqs.length === 1 ? JSON.stringify(reqs[0]!.cmd) : `(${reqs.length} commands)`}`);
    const waiting: (ClientRequest | null)[] = reqs.slice();
    if (this.settings.simBugs.ackBeforeCommit) {
      reqs.forEach((req, i) => {
        const cmd = req.cmd;
        if (cmd.type !== 'kv') return;
        const out: KvOutput = evaluate(this.sm.read(cmd.input.key), cmd.input).output;
        this.answer(req, { type: 'result', result: { type: 'kv', output: out } });
        waiting[i] = null;
      });
    }
    const replaced = this.proposals.get(id.index);
    if (replaced !== undefined) this.lost(id.index, replaced, 'entry replaced');
    this.proposals.set(id.index, { term: id.term, reqs: waiting, cmds: reqs.map((r) => r.cmd) });
    this.proposalCommands += reqs.length;
  }

  /**
   * The entry at `index` that this node proposed will never apply (another term's entry holds the
   * index): every command still waiting is told to retry with the same (session, seq).
   */
  private lost(index: number, pr: PendingProposal, why: string): void {
    this.proposals.delete(index);
    this.proposalCommands -= pr.reqs.length;
    let answered = 0;
    if (this.settings.simBugs.splitBatchAcrossLeaderChange && pr.reqs.length >= 2) {
      // The bug: the first half is answered as if the lost entry had been applied.
      const results = this.speculativeCopy().applyBatch(this.applied + 1, pr.cmds);
      answered = Math.floor(pr.reqs.length / 2);
      for (let i = 0; i < answered; i++) {
        const req = pr.reqs[i];
        if (req) this.answer(req, { type: 'result', result: results[i]! });
      }
      this.host.trace?.(`n${this.id} answered ${answered} of the ${pr.reqs.length} commands of lost entry ${index} (splitBatchAcrossLeaderChange)`);
    }
    for (let i = answered; i < pr.reqs.length; i++) {
      const req = pr.reqs[i];
      if (req) this.answer(req, { type: 'retry', reason: why });
    }
  }

  /** A copy of the state machine (for the deliberate bugs that answer from a state not yet reached). */
  private speculativeCopy(): KvStateMachine {
    return KvStateMachine.deserialize(this.sm.serialize(), this.settings.sessionLimits);
  }

  private answer(req: ClientRequest, reply: ClientReply): void {
    this.host.reply(this.id, req, reply);
  }

  /** Take Ready batches while the pipeline has room (or until there is no more work). */
  processReady(): void {
    for (;;) {
      const raw = this.raw;
      if (raw === null || this.pending.length >= this.settings.maxWritesInFlight) return;
      // The pipeline has room: the driver's next pass, which proposes what gathered meanwhile.
      if (this.batchReqs.length > 0) this.proposeBatch(raw);
      if (!raw.hasReady()) return;
      const rd = raw.ready();
      this.observe(rd);
      raw.acceptReady();
      let sent = false;
      if (this.settings.simBugs.sendBeforePersist && rd.messages.length > 0) {
        for (const m of rd.messages) this.host.sendPeer(m);
        sent = true;
      }
      const needsDisk = rd.mustSync || rd.snapshot !== null || rd.entries.length > 0;
      if (!needsDisk && this.pending.length === 0) {
        // Only the commit index changed, or nothing to persist, and no write is in flight: no
        // fsync is owed (commit can be re-learned), so the write is treated as done at once.
        this.complete({ rd, sent, early: null, needsDisk, done: true });
        continue;
      }
      if (!needsDisk && !sent && this.settings.simBugs.sendAheadOfWrites && rd.messages.length > 0) {
        for (const m of rd.messages) this.host.sendPeer(m);
        sent = true;
      }
      let early: Set<Message> | null = null;
      if (!sent && this.settings.parallelLeaderAppend !== false && this.role === 'leader') {
        // §10.2.1: appends and heartbeats promise nothing about this node's disk.
        early = new Set(rd.messages.filter((m) => m.type === 'app' || m.type === 'heartbeat'));
        for (const m of early) this.host.sendPeer(m);
      }
      this.pending.push({ rd, sent, early, needsDisk, done: !needsDisk });
      this.maxWritesInFlightSeen = Math.max(this.maxWritesInFlightSeen, this.pending.length);
      if (!needsDisk) continue;
      const d = this.disk;
      let latencyUs = d.latencyMinUs + this.rng.int(Math.max(1, d.latencyMaxUs - d.latencyMinUs + 1));
      if (d.slowP > 0 && this.rng.chance(d.slowP)) latencyUs += this.rng.int(Math.max(1, d.slowMaxUs));
      // One disk: a write starts when the one before it is done.
      this.diskFreeAtUs = Math.max(this.host.nowUs(), this.diskFreeAtUs) + latencyUs;
      this.host.scheduleDiskDone(this.id, this.incarnation, this.diskFreeAtUs);
    }
  }

  /** The disk finished the oldest write it was given: complete every write that is done, in order. */
  diskDone(incarnation: number): void {
    if (incarnation !== this.incarnation) return;
    const w = this.pending.find((p) => !p.done);
    if (w === undefined) return;
    w.done = true;
    while (this.pending.length > 0 && this.pending[0]!.done && this.raw !== null) this.complete(this.pending.shift()!);
    this.processReady();
  }

  /** Safety checks on what a Ready reveals about the core's role, term and commit. */
  private observe(rd: Ready): void {
    this.observing = rd;
    try {
      this.observeChecks(rd);
    } finally {
      this.observing = null;
    }
  }

  private observeChecks(rd: Ready): void {
    const checker = this.host.checker;
    // Leader of the same term before and after this Ready: every commit advance in between was
    // made by this leader's commit rule (a node cannot lose and regain leadership in one term).
    const ledThroughout = this.role === 'leader' && (rd.hardState === null || rd.hardState.term === this.term) && (rd.softState === null || rd.softState.role === 'leader');
    if (rd.hardState !== null) this.term = rd.hardState.term;
    if (rd.softState !== null) {
      this.role = rd.softState.role;
      this.lead = rd.softState.lead;
    }
    if (rd.softState !== null || rd.hardState !== null) {
      checker.onRole(this.id, this.role, this.term, this.logView());
    }
    if (rd.hardState !== null && rd.hardState.commit > this.commit) {
      if (this.role === 'leader') checker.onLeaderCommit(this.id, this.term, rd.hardState.commit, this.logView(), ledThroughout);
      this.commit = rd.hardState.commit;
    }
    const tr = this.host.trace;
    if (tr) {
      const parts: string[] = [];
      if (rd.softState) parts.push(`soft=${rd.softState.role}/lead${rd.softState.lead}`);
      if (rd.hardState) parts.push(`hard=t${rd.hardState.term}/v${rd.hardState.vote}/c${rd.hardState.commit}`);
      if (rd.snapshot) parts.push(`snap=${rd.snapshot.metadata.index}/t${rd.snapshot.metadata.term}`);
      if (rd.entries.length) parts.push(`ents=${rd.entries.map((e) => `${e.index}t${e.term}`).join(',')}`);
      if (rd.committedEntries.length) parts.push(`commit=[${rd.committedEntries[0]!.index}..${rd.committedEntries[rd.committedEntries.length - 1]!.index}]`);
      if (rd.readStates.length) parts.push(`reads=${rd.readStates.map((r) => `${r.context}@${r.index}`).join(',')}`);
      parts.push(`msgs=${rd.messages.length}`);
      tr(`n${this.id} ready ${parts.join(' ')}`);
    }
  }

  /**
   * The node's log as visible to the simulator: entries of the Ready being observed, then those of
   * the pending write, then durable storage (each layer replaces everything from its first index
   * on). A live view: it reads the node's state when called, and knows nothing after a crash.
   */
  private logView(): LogTermFn {
    const incarnation = this.incarnation;
    return (i) => {
      if (incarnation !== this.incarnation) return null;
      // Newest first: each layer replaces everything from its first index on.
      const layers = [this.observing?.entries, ...this.pending.map((p) => p.rd.entries).reverse()];
      for (const ents of layers) {
        if (ents !== undefined && ents.length > 0 && i >= ents[0]!.index) {
          const e = ents[i - ents[0]!.index];
          return e === undefined ? undefined : e.term;
        }
      }
      const s = this.storage;
      if (i < s.firstIndex() - 1) return null;
      if (i > s.lastIndex()) return undefined;
      return s.term(i);
    };
  }

  /** Persist (already waited for), send, apply, report: steps 1-5 of the Ready contract. */
  private complete(p: PendingWrite): void {
    const { rd } = p;
    const raw = this.raw!;
    const checker = this.host.checker;
    // 1. Snapshot.
    if (rd.snapshot !== null) {
      const snap = rd.snapshot;
      this.storage.applySnapshot(snap);
      this.sm = KvStateMachine.deserialize(snap.data, this.settings.sessionLimits, !this.settings.simBugs.applyRetryTwice, this.settings.simBugs.refuseRetryAsStale === true);
      this.sm.setApplied(snap.metadata.index);
      this.applied = snap.metadata.index;
      this.confState = snap.metadata.confState;
      checker.onSnapshotInstalled(this.id, snap.metadata.index, snap.metadata.term, fnv1a(snap.data));
      for (const [index, pr] of this.proposals) {
        if (index <= snap.metadata.index) {
          this.proposals.delete(index);
          this.proposalCommands -= pr.reqs.length;
          for (const req of pr.reqs) if (req) this.answer(req, { type: 'retry', reason: 'outcome folded into a snapshot' });
        }
      }
    }
    // 2. Entries and hard state.
    if (rd.entries.length > 0) {
      const s = this.storage;
      const entries = this.settings.simBugs.corruptEntryOnDisk && this.id === CORRUPTING_NODE ? rd.entries.map(corrupted) : rd.entries;
      const stored = entries.filter((e) => e.index > s.firstIndex() - 1);
      if (stored.length > 0) {
        const first = stored[0]!.index;
        const prevTerm = first - 1 <= s.lastIndex() ? s.term(first - 1) : -1;
        checker.onPersist(this.id, stored, prevTerm);
      }
      s.append(entries);
    }
    if (rd.hardState !== null) {
      this.storage.setHardState(this.settings.simBugs.forgetVote ? { ...rd.hardState, vote: 0 } : rd.hardState);
    }
    if (rd.mustSync || rd.entries.length > 0 || rd.snapshot !== null) this.writes++;
    if (this.settings.simBugs.ackBeforeMajorityFsync && this.role === 'leader' && rd.entries.length > 0) this.ackOwnDurable(rd.entries);
    const votedForOther = rd.hardState !== null && rd.hardState.vote !== 0 && rd.hardState.vote !== this.id && rd.hardState.vote !== this.votedFor;
    if (rd.hardState !== null) this.votedFor = rd.hardState.vote;
    raw.persisted(persistedOf(rd));
    // 3. Messages.
    if (!p.sent) for (const m of rd.messages) if (p.early === null || !p.early.has(m)) this.host.sendPeer(m);
    // 4. Apply, then serve reads.
    const committed = this.settings.simBugs.skipFirstCommitted && rd.committedEntries.length > 1 ? rd.committedEntries.slice(1) : rd.committedEntries;
    for (const e of committed) this.applyEntry(raw, e);
    for (const rs of rd.readStates) {
      const r = this.reads.get(rs.context);
      if (r !== undefined) r.index = rs.index;
    }
    this.serveReads();
    // 5. Report the application (the core was told of every committed entry, bug or not).
    if (rd.committedEntries.length > 0) raw.appliedTo(rd.committedEntries[rd.committedEntries.length - 1]!.index, rd.committedEntries);
    this.maybeSnapshot();
    if (votedForOther) this.host.onVoteCast(this.id);
  }

  private applyEntry(raw: RawNode, e: Entry): void {
    if (e.index <= this.applied) {
      throw new RaftInvariantError(`n${this.id}: committed entry ${e.index} re-delivered at or below applied ${this.applied}`);
    }
    this.host.checker.onApply(this.id, e);
    this.applied = e.index;
    const pr = this.proposals.get(e.index);
    // Answer only if it is the very entry this node proposed (same index AND term).
    if (pr !== undefined && pr.term !== e.term) this.lost(e.index, pr, `entry ${e.index} is from term ${e.term}, proposed in ${pr.term}`);
    if (e.type === 'confChange') {
      const cc = decodeConfChange(e.data);
      this.confState = raw.applyConfChange(cc);
      this.sm.skip(e.index);
      this.host.trace?.(`n${this.id} applied conf change ${e.index}: ${JSON.stringify(cc.changes)} -> ${JSON.stringify(this.confState)}`);
      this.host.onConfChangeApplied(this.id, e.index, cc, this.confState);
      return;
    }
    if (e.data.length === 0) {
      this.sm.skip(e.index); // the leader's no-op (§5.4.2)
      return;
    }
    const results = this.sm.applyBatch(e.index, decodeEntry(e.data));
    if (pr !== undefined && pr.term === e.term) {
      this.proposals.delete(e.index);
      this.proposalCommands -= pr.reqs.length;
      if (results.length !== pr.reqs.length) throw new RaftInvariantError(`n${this.id}: entry ${e.index} applied ${results.length} commands, ${pr.reqs.length} were proposed`);
      pr.reqs.forEach((req, i) => req && this.answer(req, { type: 'result', result: results[i]! }));
    }
  }

  /**
   * The ackBeforeMajorityFsync bug: this leader's write of `entries` is durable; answer the
   * commands of its own batches among them at once, with the results a copy of its state machine
   * gives when its log up to each entry is applied to it.
   */
  private ackOwnDurable(entries: readonly Entry[]): void {
    const mine = entries.filter((e) => {
      const pr = this.proposals.get(e.index);
      return pr !== undefined && pr.term === e.term && pr.reqs.some((r) => r !== null);
    });
    if (mine.length === 0) return;
    const copy = this.speculativeCopy();
    const last = mine[mine.length - 1]!.index;
    for (const e of this.storage.entries(this.applied + 1, last + 1, Infinity)) {
      if (e.type !== 'normal' || e.data.length === 0) {
        copy.skip(e.index);
        continue;
      }
      const results = copy.applyBatch(e.index, decodeEntry(e.data));
      const pr = this.proposals.get(e.index);
      if (pr === undefined || pr.term !== e.term) continue;
      pr.reqs.forEach((req, i) => {
        if (req === null) return;
        this.answer(req, { type: 'result', result: results[i]! });
        pr.reqs[i] = null;
      });
    }
  }

  private serveReads(): void {
    if (this.reads.size === 0) return;
    for (const [ctx, r] of this.reads) {
      if (r.index >= 0 && r.index <= this.applied) {
        this.reads.delete(ctx);
        this.answer(r.req, { type: 'result', result: { type: 'kv', output: { op: 'get', value: this.sm.read(r.key) } } });
      }
    }
  }

  /** Snapshot the state machine every N applied entries and compact the log behind it. */
  private maybeSnapshot(): void {
    const s = this.storage;
    const snapIndex = s.snapshot().metadata.index;
    if (this.applied - snapIndex < this.settings.snapshotEveryEntries) return;
    const data = this.sm.serialize();
    s.createSnapshot(this.applied, this.confState, data);
    this.host.checker.onDigest(this.id, this.applied, fnv1a(data));
    const compactTo = this.applied - this.settings.keepEntries;
    if (compactTo >= s.firstIndex()) s.compact(compactTo);
    this.host.trace?.(`n${this.id} snapshot at ${this.applied}, log now [${s.firstIndex()}..${s.lastIndex()}]`);
  }
}
