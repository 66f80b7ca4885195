// The raft driver: the actor that owns the Raft core, the durable store and the state machine of
// a node, and carries out each Ready in the order of the persistence contract (src/raft/types.ts):
//
//   1. install a received snapshot (atomic state-generation flip);
//   2. apply the committed entries to the state machine in memory (an overlay over the store);
//   3. ONE fsynced LevelDB batch: hard state + new log entries + the state writes of step 2 + the
//      applied index + the conf state. This is the group commit: every proposal that arrived since
//      the previous Ready shares one fsync. The state writes may ride in the same batch as entries
//      that were not yet durable here, because committed entries are durable on a quorum already,
//      and the batch is atomic: after a crash the applied index and the state always agree.
//   4. send the messages (only now: votes and acknowledgements are durable). Exceptions, sent
//      before step 3: everything of a Ready that owes no fsync, and a leader's appends and
//      heartbeats (§10.2.1, the leader's disk write in parallel with its followers'; see
//      handleReady and the simulator's parallelLeaderAppend, which models it);
//   5. answer the proposals and reads that this Ready settled; advance().
//
// Everything reaches the driver as a typed input in its bounded inbox; nothing else touches the
// core, the store or the state machine (DESIGN principle 2).
import type { RawNode } from '../raft/raw-node.ts';
import { decodeConfChange } from '../raft/confchange.ts';
import { RaftError, RaftInvariantError } from '../raft/errors.ts';
import type { ConfChange, ConfState, Entry, Message, MsgSnap, NodeId, Ready, SoftState, Status } from '../raft/types.ts';
import { NONE } from '../raft/types.ts';
import type { DurableStorage, SnapshotChunkStream } from '../storage/durable-storage.ts';
import { StorageError } from '../storage/errors.ts';
import type { ApplyResult } from './api.ts';
import type { Applier, StateChangeSet } from './applier.ts';
import { prepareEntries } from './applier.ts';
import { leaderLossDelayMs } from './leader-loss.ts';
import { MAX_BATCH_ENTRY_BYTES, MAX_COMMANDS_PER_ENTRY, encodeBatchEntry, isBinaryFormat } from './command.ts';
import type { MemberAddress } from './members.ts';

/** Inputs beyond this many wait-less messages are dropped (raft tolerates loss); proposals are refused. */
export const MAX_INBOX = 20_000;
/** Most proposals and reads waiting for their outcome at once; more are refused as overload. */
export const MAX_WAITERS = 50_000;

export type ProposeOutcome =
  | { readonly kind: 'applied'; readonly result: ApplyResult }
  /** The entry was overwritten by another leader's entry (it will never apply): retry. */
  | { readonly kind: 'lost' }
  | { readonly kind: 'notLeader'; readonly leader: NodeId }
  | { readonly kind: 'dropped'; readonly reason: string };

export type ReadOutcome = { readonly kind: 'ready'; readonly index: number } | { readonly kind: 'notLeader'; readonly leader: NodeId } | { readonly kind: 'dropped'; readonly reason: string };

/** A backup snapshot (raftauth snapshot save): the file of the state at the applied index, opened for reading. */
export type SnapshotNowOutcome = { readonly kind: 'ok'; readonly stream: SnapshotChunkStream } | { readonly kind: 'dropped'; readonly reason: string };

export type DriverInput =
  | { readonly kind: 'messages'; readonly messages: readonly Message[] }
  | { readonly kind: 'propose'; readonly data: Uint8Array; readonly reply: (o: ProposeOutcome) => void }
  | { readonly kind: 'readIndex'; readonly context: string; readonly reply: (o: ReadOutcome) => void }
  | { readonly kind: 'confChange'; readonly cc: ConfChange; readonly reply: (o: ProposeOutcome) => void }
  | { readonly kind: 'transfer'; readonly to: NodeId; readonly reply: (err: Error | null) => void }
  | { readonly kind: 'snapshotReceived'; readonly msg: MsgSnap; readonly path: string }
  | { readonly kind: 'unreachable'; readonly id: NodeId }
  /** A peer announced its raft address on a stream it opened to us (learnPeerAddress). */
  | { readonly kind: 'peerAddress'; readonly id: NodeId; readonly address: string }
  /** The delay after losing the leader's connection ran out: campaign if still leaderless (leaderLost). */
  | { readonly kind: 'campaignIfLeaderless' }
  | { readonly kind: 'snapshotStatus'; readonly id: NodeId; readonly ok: boolean }
  | { readonly kind: 'snapshotNow'; readonly reply: (o: SnapshotNowOutcome) => void };

/** What the driver needs from the transport. */
export interface DriverTransport {
  send(messages: readonly Message[]): void;
  sendSnapshot(to: NodeId, header: { term: number; metadata: MsgSnap['snapshot']['metadata'] }, chunks: AsyncIterable<Uint8Array>): Promise<void>;
  addPeer(id: NodeId, address: string): void;
  updatePeer(id: NodeId, address: string): void;
  removePeer(id: NodeId): void;
}

export interface DriverLogger {
  info(obj: object, msg: string): void;
  warn(obj: object, msg: string): void;
  error(obj: object, msg: string): void;
}

/** Metrics hooks (src/node/metrics.ts implements them); called synchronously, must not throw. */
export interface DriverObserver {
  /** The leader this node knows changed (to `leader`, NONE when it lost it). */
  leaderChanged(leader: NodeId, term: number): void;
  /** This node, as leader, proposed an entry carrying `commands` commands. */
  proposedEntry?(commands: number): void;
  /** A snapshot was created, installed or streamed to a follower; bytes when known. */
  snapshot(event: 'created' | 'installed' | 'sent' | 'send_failed', bytes: number | null): void;
  /**
   * Applied state changed durably: the keyspaces written or deleted in, or null after a snapshot
   * was installed (anything may have changed). Read caches (src/server/oauth-node.ts) rebuild from it.
   */
  stateChanged?(keyspaces: ReadonlySet<string> | null): void;
}

export interface DriverOptions {
  readonly id: NodeId;
  readonly node: RawNode;
  readonly storage: DurableStorage;
  readonly sm: Applier;
  readonly transport: DriverTransport;
  readonly logger: DriverLogger;
  /** A fatal error: the node must stop (broken invariant, damaged or failing store). */
  readonly onFatal: (err: unknown) => void;
  /** Leader or role changed. */
  readonly onSoftState?: (ss: SoftState, term: number) => void;
  /** Debug-only: answer writes as soon as they are proposed (negative control for the checkers). */
  readonly unsafeAckBeforeCommit?: boolean;
  readonly observer?: DriverObserver;
  /**
   * Wall clock for the liveness facts (last contact with each peer). Measured here, in the
   * driver, never in the core: src/raft/ stays pure and counts logical ticks only.
   */
  readonly now?: () => number;
  /**
   * A follower whose leader's connection fails (the transport reports it unreachable: a killed
   * leader's host closes its sockets at once) forgets it and campaigns after a delay made of
   * slots of this length (leaderLossDelayMs), instead of waiting out the election timeout (see
   * leaderLost). 0 turns this off.
   */
  readonly leaderLossSlotMs?: number;
  /** Randomness of that delay, in [0, 1) (tests make it deterministic). */
  readonly random?: () => number;
  /** Arms that delay; returns its cancel. setTimeout unless a test drives it. */
  readonly setTimer?: (fn: () => void, ms: number) => () => void;
}

function realTimer(fn: () => void, ms: number): () => void {
  const t = setTimeout(fn, ms);
  return () => clearTimeout(t);
}

/** The proposers of one entry: one reply per command of a batch entry, in order; one for any other entry. */
interface ProposalWaiter {
  readonly term: number;
  readonly replies: readonly ((o: ProposeOutcome) => void)[];
}

export class RaftDriver {
  private readonly opts: DriverOptions;
  private readonly id: NodeId;
  private readonly node: RawNode;
  private readonly storage: DurableStorage;
  private readonly sm: Applier;
  private readonly transport: DriverTransport;
  private readonly log: DriverLogger;
  private inbox: DriverInput[] = [];
  private pendingTicks = 0;
  private wake: (() => void) | null = null;
  private running = false;
  private stopped = false;
  private loopDone: Promise<void> = Promise.resolve();
  private fatal: unknown = null;

  /** Proposals by log index, settled when an entry at that index is applied. */
  private readonly proposals = new Map<number, ProposalWaiter>();
  /** Commands proposed during the current pass over the inbox: they leave as one batch entry. */
  private batchCommands: Uint8Array[] = [];
  private batchReplies: ((o: ProposeOutcome) => void)[] = [];
  private batchBytes = 0;
  /** Replies waiting in proposals (a batch entry has many). */
  private proposalReplies = 0;
  /** ReadIndex requests by context, settled by a ReadState and then the applied index. */
  private readonly readContexts = new Map<string, (o: ReadOutcome) => void>();
  /** Reads whose read index is known, waiting for applied >= index (sorted by arrival). */
  private readsWaitingApply: { index: number; reply: (o: ReadOutcome) => void }[] = [];
  /** Received snapshot files by snapshot index, until their MsgSnap's Ready installs them. */
  private readonly receivedSnapshots = new Map<number, string>();
  private confState: ConfState;
  private applied: number;
  private softState: SoftState = { lead: NONE, role: 'follower' };
  private readonly now: () => number;
  /** When a message from each known peer was last received (wall clock, ms); peers only, so bounded by the membership. */
  private readonly lastHeard = new Map<NodeId, number>();
  /** The snapshot being written in the background (startSnapshot), if any. */
  private snapshotting: Promise<void> | null = null;
  /** Armed by leaderLost (its cancel): the campaign after the leader's connection failed. */
  private leaderLossTimer: (() => void) | null = null;
  /** The term in which leaderLost forgot the leader. */
  private leaderLossTerm = 0;

  constructor(opts: DriverOptions) {
    this.opts = opts;
    this.id = opts.id;
    this.node = opts.node;
    this.storage = opts.storage;
    this.sm = opts.sm;
    this.transport = opts.transport;
    this.log = opts.logger;
    this.confState = opts.storage.confState;
    this.applied = opts.storage.applied;
    this.now = opts.now ?? Date.now;
  }

  /**
   * How long ago this node last had evidence of a working leader (NodeHealth.leaderContactAgeMs):
   * a follower, since the last message from its leader; the leader, since a majority of each voter
   * set (both halves of a joint configuration, §6) was last heard from, itself counting as now.
   * null when no leader is known or there is no such evidence yet.
   */
  leaderContactAgeMs(): number | null {
    const now = this.now();
    const st = this.node.status();
    const lead = st.softState.lead;
    if (lead === NONE) return null;
    if (lead !== this.id) {
      const t = this.lastHeard.get(lead);
      return t === undefined ? null : Math.max(0, now - t);
    }
    const cs = st.confState;
    let worst = 0;
    for (const voters of [cs.voters, cs.votersOutgoing]) {
      if (voters.length === 0) continue;
      const ages = voters
        .map((id) => {
          if (id === this.id) return 0;
          const t = this.lastHeard.get(id);
          return t === undefined ? Infinity : Math.max(0, now - t);
        })
        .sort((a, b) => a - b);
      // The majority's contact is as old as its oldest member: the (⌊n/2⌋+1)-th freshest.
      worst = Math.max(worst, ages[Math.floor(voters.length / 2)]!);
    }
    return Number.isFinite(worst) ? worst : null;
  }

  start(): void {
    if (this.running) return;
    this.running = true;
    this.loopDone = this.loop();
  }

  async stop(): Promise<void> {
    this.stopped = true;
    this.leaderLossTimer?.();
    this.leaderLossTimer = null;
    this.wake?.();
    await this.loopDone;
    // A snapshot being written holds a LevelDB snapshot of the store the node is about to close.
    await this.snapshotting;
    this.failAll('STOPPING');
  }

  /**
   * The core's status, read live: a caller answered from inside a Ready (a proposal's waiter) sees
   * the membership and commit index that answer produced, not those of the previous batch.
   */
  status(): Status {
    return this.node.status();
  }

  appliedIndex(): number {
    return this.applied;
  }

  tick(): void {
    this.pendingTicks = Math.min(this.pendingTicks + 1, 1000);
    this.wake?.();
  }

  /** Queue an input. Returns false if the inbox is full (the input's reply, if any, is told). */
  enqueue(input: DriverInput): boolean {
    if (this.stopped || this.fatal !== null) {
      this.refuse(input, this.fatal !== null ? 'node stopped after a fatal error' : 'node stopping');
      return false;
    }
    if (this.inbox.length >= MAX_INBOX) {
      this.refuse(input, 'driver inbox full');
      return false;
    }
    this.inbox.push(input);
    this.wake?.();
    return true;
  }

  private refuse(input: DriverInput, reason: string): void {
    switch (input.kind) {
      case 'propose':
      case 'confChange':
      case 'readIndex':
        input.reply({ kind: 'dropped', reason });
        return;
      case 'transfer':
        input.reply(new Error(reason));
        return;
      case 'snapshotNow':
        input.reply({ kind: 'dropped', reason });
        return;
      default:
        return;
    }
  }

  private async loop(): Promise<void> {
    try {
      while (!this.stopped) {
        if (this.inbox.length === 0 && this.pendingTicks === 0 && !this.node.hasReady()) {
          await new Promise<void>((resolve) => (this.wake = resolve));
          this.wake = null;
          continue;
        }
        // Messages before ticks: a heartbeat that arrived while this loop was held up (a slow
        // fsync) must count before the ticks that piled up meanwhile, or a follower could time out
        // on a leader whose heartbeat sits in its inbox (an election for nothing, under load).
        const inputs = this.inbox;
        this.inbox = [];
        for (const input of inputs) this.handle(input);
        if (this.batchCommands.length > 0) this.proposeBatch();
        const ticks = this.pendingTicks;
        this.pendingTicks = 0;
        for (let i = 0; i < ticks; i++) this.node.tick();
        while (this.node.hasReady() && !this.stopped) {
          const rd = this.node.ready();
          await this.handleReady(rd);
          this.node.advance();
        }
      }
    } catch (e) {
      this.fail(e);
    }
  }

  /** A fatal error: stop the loop, refuse every waiter, and tell the node (once). */
  private fail(e: unknown): void {
    if (this.fatal !== null) return;
    this.fatal = e;
    this.stopped = true;
    this.log.error({ err: e instanceof Error ? e.message : String(e), stack: e instanceof Error ? e.stack : undefined }, 'raft driver stopped by a fatal error');
    this.failAll('FATAL');
    this.opts.onFatal(e);
  }

  private failAll(why: string): void {
    for (const w of this.proposals.values()) for (const reply of w.replies) reply({ kind: 'dropped', reason: why });
    this.proposals.clear();
    this.proposalReplies = 0;
    for (const reply of this.batchReplies) reply({ kind: 'dropped', reason: why });
    this.batchCommands = [];
    this.batchReplies = [];
    this.batchBytes = 0;
    for (const r of this.readContexts.values()) r({ kind: 'dropped', reason: why });
    this.readContexts.clear();
    for (const r of this.readsWaitingApply) r.reply({ kind: 'dropped', reason: why });
    this.readsWaitingApply = [];
  }

  private waiterCount(): number {
    return this.proposalReplies + this.batchReplies.length + this.readContexts.size + this.readsWaitingApply.length;
  }

  /**
   * Proposes the commands gathered in this pass as one entry, stamped with this leader's clock
   * (node/command.ts), and registers one reply per command under the entry's index.
   */
  private proposeBatch(): void {
    const commands = this.batchCommands;
    const replies = this.batchReplies;
    this.batchCommands = [];
    this.batchReplies = [];
    this.batchBytes = 0;
    let id;
    try {
      id = this.node.propose(encodeBatchEntry(commands, this.now()));
    } catch (e) {
      const o = proposeError(e);
      for (const reply of replies) reply(o);
      return;
    }
    if (this.opts.unsafeAckBeforeCommit) {
      // Deliberately wrong: acknowledge before the entry is committed or applied.
      for (const reply of replies) reply({ kind: 'applied', result: { ok: true, value: { unsafe: true } } });
      return;
    }
    this.proposals.set(id.index, { term: id.term, replies });
    this.proposalReplies += replies.length;
    this.opts.observer?.proposedEntry?.(commands.length);
  }

  private handle(input: DriverInput): void {
    switch (input.kind) {
      case 'messages': {
        const t = this.now();
        for (const m of input.messages) {
          // Only members (known peers) are tracked, so the map cannot grow past the membership.
          if (this.knownPeers.has(m.from)) this.lastHeard.set(m.from, t);
          this.node.step(m);
        }
        return;
      }
      case 'propose':
      case 'confChange': {
        if (this.waiterCount() >= MAX_WAITERS) {
          input.reply({ kind: 'dropped', reason: 'too many proposals in flight' });
          return;
        }
        if (input.kind === 'propose' && isBinaryFormat(input.data)) {
          // Batched: every command of this pass shares one entry (proposeBatch, after the pass).
          if (this.batchCommands.length >= MAX_COMMANDS_PER_ENTRY || (this.batchCommands.length > 0 && this.batchBytes + input.data.length > MAX_BATCH_ENTRY_BYTES)) this.proposeBatch();
          this.batchCommands.push(input.data);
          this.batchReplies.push(input.reply);
          this.batchBytes += input.data.length;
          return;
        }
        try {
          // A conf change, or opaque bytes of another format (tests; older callers): an entry of its own.
          const id = input.kind === 'propose' ? this.node.propose(input.data) : this.node.proposeConfChange(input.cc);
          if (this.opts.unsafeAckBeforeCommit && input.kind === 'propose') {
            // Deliberately wrong: acknowledge before the entry is committed or applied.
            input.reply({ kind: 'applied', result: { ok: true, value: { unsafe: true } } });
            return;
          }
          this.proposals.set(id.index, { term: id.term, replies: [input.reply] });
          this.proposalReplies++;
        } catch (e) {
          input.reply(proposeError(e));
        }
        return;
      }
      case 'readIndex': {
        if (this.waiterCount() >= MAX_WAITERS) {
          input.reply({ kind: 'dropped', reason: 'too many reads in flight' });
          return;
        }
        try {
          this.node.readIndex(input.context);
          this.readContexts.set(input.context, input.reply);
        } catch (e) {
          if (e instanceof RaftError && e.code === 'NOT_LEADER') input.reply({ kind: 'notLeader', leader: e.leader });
          else throw e;
        }
        return;
      }
      case 'transfer':
        try {
          this.node.transferLeadership(input.to);
          input.reply(null);
        } catch (e) {
          if (e instanceof RaftError) input.reply(e);
          else throw e;
        }
        return;
      case 'snapshotReceived':
        this.receivedSnapshots.set(input.msg.snapshot.metadata.index, input.path);
        this.node.step(input.msg);
        return;
      case 'unreachable':
        this.node.reportUnreachable(input.id);
        this.leaderLost(input.id);
        return;
      case 'peerAddress':
        this.learnPeerAddress(input.id, input.address);
        return;
      case 'campaignIfLeaderless': {
        this.leaderLossTimer = null;
        const st = this.node.status();
        // Another node won meanwhile (we follow it now), the old leader came back, or another
        // survivor's election is under way (it raised the term): leave it to them; the election
        // timeout still stands behind every case.
        if (st.softState.role === 'follower' && st.softState.lead === NONE && st.hardState.term === this.leaderLossTerm) {
          this.log.info({ term: st.hardState.term }, 'campaigning: the leader was lost');
          this.node.campaign();
        }
        return;
      }
      case 'snapshotStatus':
        this.node.reportSnapshot(input.id, input.ok);
        return;
      case 'snapshotNow':
        this.backupSnapshot(input.reply);
        return;
    }
  }

  /**
   * The transport could not reach `id`. When `id` is this follower's leader, forget it
   * (RawNode.forgetLeader: grant pre-votes at once) and campaign after leaderLossDelayMs if no
   * leader has shown up by then. The other followers lose the same connection at the same moment
   * and do the same, in their own slots, so one of them asks first and wins the others' votes.
   * This only shortens the wait after a failure the transport sees (a closed connection, a refused
   * reconnect, an unacknowledged batch): a leader that vanishes silently is still found by the
   * election timeout. Safety does not depend on it (an election may start at any time); liveness
   * is protected by pre-vote: a follower still hearing from a live leader refuses the pre-vote.
   */
  private leaderLost(id: NodeId): void {
    const slotMs = this.opts.leaderLossSlotMs ?? 0;
    if (slotMs <= 0 || this.leaderLossTimer !== null) return;
    const st = this.node.status();
    if (st.softState.role !== 'follower' || st.softState.lead !== id) return;
    const delayMs = leaderLossDelayMs(this.id, id, st.confState, slotMs, this.opts.random ?? Math.random);
    if (delayMs === null || !this.node.forgetLeader()) return;
    this.leaderLossTerm = st.hardState.term;
    this.log.info({ leader: id, delayMs }, 'lost the connection to the leader: forgot it, campaigning unless a leader shows up');
    this.leaderLossTimer = (this.opts.setTimer ?? realTimer)(() => this.enqueue({ kind: 'campaignIfLeaderless' }), delayMs);
  }

  /**
   * A snapshot file of the state at the applied index, for a backup. Inputs are handled between
   * Readys, where no commit is in flight and `applied` is the store's applied index: the
   * precondition of createSnapshot, which takes its LevelDB snapshot synchronously, at this call.
   * The file is then written without holding up the loop (commits may go on meanwhile; they are not
   * in it). When the newest snapshot already is at the applied index (nothing applied since), that
   * file is the state and is streamed as it is. The stream is opened before replying, so pruning
   * the file later does not cut it short.
   */
  private backupSnapshot(reply: (o: SnapshotNowOutcome) => void): void {
    const index = this.applied;
    const made =
      index === this.storage.snapshotMetadata.index
        ? Promise.resolve()
        : this.storage.createSnapshot({ index, term: this.storage.term(index), confState: this.confState }).then(
            (info) => {
              this.log.info({ index, term: info.metadata.term, bytes: info.bytes, records: info.records, compactedThrough: info.compactedThrough }, 'created snapshot for a backup');
              this.opts.observer?.snapshot('created', info.bytes);
            },
            (e: unknown) => {
              // Another backup (or a received snapshot's install) recorded a snapshot at this index
              // first: its file is the same state.
              if (!(e instanceof StorageError && e.code === 'SNAPSHOT_OUT_OF_DATE' && this.storage.snapshotMetadata.index === index)) throw e;
            },
          );
    made
      .then(() => this.storage.openSnapshotChunks(index))
      .then(
        (stream) => reply({ kind: 'ok', stream }),
        (e: unknown) => reply({ kind: 'dropped', reason: e instanceof Error ? e.message : String(e) }),
      );
  }

  private async handleReady(rd: Ready): Promise<void> {
    if (rd.softState) {
      const changedLeader = rd.softState.lead !== this.softState.lead;
      this.softState = rd.softState;
      if (changedLeader) {
        // Reads waiting on the old leader's confirmation will never be answered: retry them.
        for (const r of this.readContexts.values()) r({ kind: 'notLeader', leader: rd.softState.lead });
        this.readContexts.clear();
        const term = this.node.status().hardState.term;
        this.log.info({ leader: rd.softState.lead, role: rd.softState.role, term }, 'leader changed');
        this.opts.observer?.leaderChanged(rd.softState.lead, term);
      }
      this.opts.onSoftState?.(rd.softState, this.node.status().hardState.term);
    }

    if (rd.snapshot) {
      const idx = rd.snapshot.metadata.index;
      const path = this.receivedSnapshots.get(idx);
      if (path === undefined) throw new RaftInvariantError(`Ready carries snapshot ${idx} but no received file is known for it`);
      this.receivedSnapshots.delete(idx);
      await this.storage.installSnapshot(path);
      this.sm.resetCaches();
      this.confState = rd.snapshot.metadata.confState;
      this.applied = idx;
      await this.syncPeers(rd.snapshot.metadata.confState);
      this.log.info({ index: idx, term: rd.snapshot.metadata.term }, 'installed snapshot');
      this.opts.observer?.snapshot('installed', null);
      this.opts.observer?.stateChanged?.(null);
    }

    // Apply in memory; the writes go into the same batch as the entries and hard state.
    const settled: { e: Entry; results: readonly ApplyResult[] | undefined }[] = [];
    let changes: StateChangeSet | undefined;
    let appliedTo: number | undefined;
    let confChanged = false;
    if (rd.committedEntries.length > 0) {
      // The state machine writes each conf change's state (member table, its audit record) in log
      // order with the commands; the core's side of the change is applied here, in the same order.
      const batch = this.sm.applyEntries(prepareEntries(rd.committedEntries));
      for (const e of rd.committedEntries) {
        if (e.type === 'confChange') {
          this.confState = this.node.applyConfChange(decodeConfChange(e.data));
          confChanged = true;
          settled.push({ e, results: [{ ok: true, value: { confState: this.confState } }] });
        } else {
          settled.push({ e, results: batch.results.get(e.index) });
        }
      }
      changes = batch.changes;
      appliedTo = batch.applied;
    }

    // Messages that may leave before this Ready's write: all of them when it owes no fsync (it
    // carries no promise: no entries, term or vote to make durable), and otherwise the leader's
    // appends and heartbeats. Those promise nothing about the leader's own disk, so the leader
    // writes its log in parallel with its followers (Raft dissertation §10.2.1); the core counts
    // the leader towards a commit quorum only after advance(), i.e. once its write is durable.
    // Votes, vote refusals with a new term and append acknowledgements wait for the write.
    const leading = this.softState.role === 'leader';
    const early: Message[] = [];
    const late: Message[] = [];
    for (const m of rd.messages) {
      if (m.type === 'snap') continue;
      if (!rd.mustSync || (leading && (m.type === 'app' || m.type === 'heartbeat'))) early.push(m);
      else late.push(m);
    }
    if (early.length > 0) this.transport.send(early);

    const durable = rd.hardState !== null || rd.entries.length > 0 || changes !== undefined;
    // fsync only when the Ready carries a promise (entries, term, vote). Applied state and the
    // commit index may be lost in a crash: the log re-creates them, and they are written atomically
    // with the applied index, so they never disagree.
    if (durable) await this.storage.commit({
      ...(rd.hardState ? { hardState: rd.hardState } : {}),
      ...(rd.entries.length > 0 ? { entries: rd.entries } : {}),
      ...(changes ? { state: { puts: changes.puts, dels: changes.dels } } : {}),
      ...(appliedTo !== undefined ? { applied: appliedTo, confState: this.confState } : {}),
    }, { sync: rd.mustSync });
    if (appliedTo !== undefined) this.applied = appliedTo;
    if (confChanged) await this.syncPeers(this.confState);
    if (changes && this.opts.observer?.stateChanged && (changes.puts.length > 0 || changes.dels.length > 0)) {
      const touched = new Set<string>();
      for (const [ks] of changes.puts) touched.add(ks);
      for (const [ks] of changes.dels) touched.add(ks);
      this.opts.observer.stateChanged(touched);
    }

    // Durable: now the rest may leave.
    for (const m of rd.messages) if (m.type === 'snap') this.streamSnapshot(m);
    if (late.length > 0) this.transport.send(late);

    for (const { e, results } of settled) {
      const w = this.proposals.get(e.index);
      if (!w) continue;
      this.proposals.delete(e.index);
      this.proposalReplies -= w.replies.length;
      if (w.term !== e.term) {
        for (const reply of w.replies) reply({ kind: 'lost' });
        continue;
      }
      // One result per command; a batch that failed to decode as a whole has one error for all.
      w.replies.forEach((reply, i) => reply({ kind: 'applied', result: results?.[results.length === 1 ? 0 : i] ?? { ok: true, value: null } }));
    }
    // A proposal whose index was passed by entries of another term will never apply.
    if (rd.committedEntries.length > 0) {
      for (const [idx, w] of this.proposals) {
        if (idx <= this.applied) {
          this.proposals.delete(idx);
          this.proposalReplies -= w.replies.length;
          for (const reply of w.replies) reply({ kind: 'lost' });
        }
      }
    }

    for (const rs of rd.readStates) {
      const reply = this.readContexts.get(rs.context);
      if (!reply) continue;
      this.readContexts.delete(rs.context);
      this.readsWaitingApply.push({ index: rs.index, reply });
    }
    if (this.readsWaitingApply.length > 0) {
      const still: typeof this.readsWaitingApply = [];
      for (const r of this.readsWaitingApply) {
        if (r.index <= this.applied) r.reply({ kind: 'ready', index: r.index });
        else still.push(r);
      }
      this.readsWaitingApply = still;
    }

    if (appliedTo !== undefined && this.snapshotting === null && this.storage.shouldSnapshot(this.applied)) this.startSnapshot();
  }

  /**
   * Writes a snapshot of the state at the applied index WITHOUT holding up this loop (issue 15: a
   * snapshot of a large state written inside the loop stopped ticks and heartbeats for seconds, and
   * every such snapshot cost an election). createSnapshot takes its LevelDB snapshot synchronously,
   * here, between Readys, where no state commit is in flight and `applied` is the store's applied
   * index; the file is written while commits go on (they are not in it), and recording it and
   * compacting the log behind it take the store's write lock like any commit. One at a time. A
   * failure is fatal, as it was when the loop awaited it: the store reports damage this way.
   */
  private startSnapshot(): void {
    const index = this.applied;
    const term = this.storage.term(index);
    this.snapshotting = this.storage.createSnapshot({ index, term, confState: this.confState }).then(
      (info) => {
        this.log.info({ index, term, bytes: info.bytes, records: info.records, compactedThrough: info.compactedThrough }, 'created snapshot');
        this.opts.observer?.snapshot('created', info.bytes);
      },
      (e: unknown) => {
        // A backup or an installed snapshot recorded one at or past this index meanwhile: nothing lost.
        if (e instanceof StorageError && e.code === 'SNAPSHOT_OUT_OF_DATE') return;
        if (this.stopped) return;
        this.fail(e);
        this.wake?.();
      },
    ).finally(() => {
      this.snapshotting = null;
    });
  }

  /** Stream a snapshot file to a follower; report the outcome to the core through the inbox. */
  private streamSnapshot(m: MsgSnap): void {
    const md = m.snapshot.metadata;
    void (async () => {
      try {
        const stream = await this.storage.openSnapshotChunks(md.index);
        await this.transport.sendSnapshot(m.to, { term: m.term, metadata: md }, stream.chunks);
        this.opts.observer?.snapshot('sent', stream.totalBytes);
        this.enqueue({ kind: 'snapshotStatus', id: m.to, ok: true });
      } catch (e) {
        this.opts.observer?.snapshot('send_failed', null);
        this.log.warn({ to: m.to, index: md.index, err: e instanceof Error ? e.message : String(e) }, 'snapshot send failed');
        this.enqueue({ kind: 'snapshotStatus', id: m.to, ok: false });
      }
    })();
  }

  /** Keep the transport's peer list equal to the members of the configuration. */
  private async syncPeers(cs: ConfState): Promise<void> {
    const members = new Set([...cs.voters, ...cs.votersOutgoing, ...cs.learners, ...cs.learnersNext]);
    for (const id of members) {
      if (id === this.id) continue;
      const addr = this.memberAddress(id)?.raftAddress;
      const known = this.knownPeers.get(id);
      if (addr === undefined || addr === known) continue;
      if (known === undefined) this.transport.addPeer(id, addr);
      else this.transport.updatePeer(id, addr);
      this.knownPeers.set(id, addr);
    }
    for (const id of [...this.knownPeers.keys()]) {
      if (members.has(id)) continue;
      this.transport.removePeer(id);
      this.knownPeers.delete(id);
    }
  }

  /** Peers the transport knows, with their addresses. */
  private knownPeers = new Map<NodeId, string>();

  /**
   * A peer that opened a stream to us announced its raft address (issue 13: a joiner whose config
   * lists no current leader could not answer the leader's probes, so the leader never learned it
   * needed a snapshot and the joiner stalled). The member table stays the source of truth: the
   * announcement is used only for a peer we have no address for at all, and only if it is a member
   * of our configuration or we have none yet (a joiner before its snapshot). syncPeers replaces it
   * with the table's address, or drops it, at the next snapshot or conf change.
   */
  private learnPeerAddress(id: NodeId, address: string): void {
    if (id === this.id || this.knownPeers.has(id)) return;
    const cs = this.confState;
    const members = [...cs.voters, ...cs.votersOutgoing, ...cs.learners, ...cs.learnersNext];
    if (members.length > 0 && !members.includes(id)) return;
    this.transport.addPeer(id, address);
    this.knownPeers.set(id, address);
    this.log.info({ peer: id, address }, 'learned a peer\'s raft address from its connection (no member-table address for it yet)');
  }

  /** Addresses of members, from the replicated member table. */
  memberAddress(id: NodeId): MemberAddress | undefined {
    const b = this.storage.getSync('sys.members', String(id));
    return b ? (JSON.parse(new TextDecoder().decode(b)) as MemberAddress) : undefined;
  }

  setKnownPeers(peers: ReadonlyMap<NodeId, string>): void {
    this.knownPeers = new Map(peers);
  }
}

function proposeError(e: unknown): ProposeOutcome {
  if (e instanceof RaftError) {
    if (e.code === 'NOT_LEADER') return { kind: 'notLeader', leader: e.leader };
    return { kind: 'dropped', reason: e.message };
  }
  throw e;
}
