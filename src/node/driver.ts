// The raft driver: the actor that owns the Raft core, the durable store and the state machine of
// a node. It is a shell: an inbox of typed inputs, the Ready cycle, and the storage pipeline; its
// collaborators keep the waiters (waiters.ts), the snapshots it starts and streams (snapshots.ts),
// the peer list (peers.ts), the contact ages (liveness.ts) and the campaign after a lost leader
// (leader-loss.ts). Nothing else touches the core, the store or the state machine (DESIGN
// principle 2).
//
// Storage writes are asynchronous (etcd's AsyncStorageWrites; Raft dissertation §10.2.1): the
// driver does not wait for a Ready's fsync before taking the next one. For each Ready, in order:
//
//   1. install a received snapshot (atomic state-generation flip) — only with no write in flight;
//   2. apply the committed entries to the state machine in memory; apply reads through the
//      write-behind view (write-behind.ts), so it sees the state of writes still in flight;
//   3. send what may leave before the write: a leader's appends and heartbeats (they promise
//      nothing about its own disk; the core counts the leader towards a commit quorum only once
//      persisted() reports its write), and everything when the Ready owes no fsync and no write
//      is in flight;
//   4. hand the Ready over (RawNode.acceptReady) and its write — hard state + new entries + the
//      state writes of step 2 + the applied index + the conf state, ONE LevelDB batch — to the
//      storage writer (storage/storage-writer.ts), which merges the writes of Readys taken while a
//      group commit is in flight into the next one: one fsync for all of them;
//   5. when a write is durable (writes complete in the order they were issued), report it
//      (persisted, appliedTo), send the messages that waited for it (votes, append
//      acknowledgements: a Ready with nothing to write still waits behind the writes in flight,
//      since its acknowledgements may promise their entries), advance the applied index (state
//      and reads see it only now), and answer the proposals and reads it settled.
//
// At most maxWritesInFlight Readys are in flight (1 by default: DEFAULT_MAX_WRITES_IN_FLIGHT says
// why); beyond that the inbox waits. The simulator
// (test/sim/node.ts) models this pipeline and its message rules, with bug switches for each.
import type { RawNode } from '../raft/raw-node.ts';
import { persistedOf } from '../raft/raw-node.ts';
import { decodeConfChange } from '../raft/confchange.ts';
import { RaftError, RaftInvariantError } from '../raft/errors.ts';
import type { ConfChange, ConfState, Entry, Message, MsgSnap, NodeId, Ready, SnapshotMetadata, SoftState, Status } from '../raft/types.ts';
import { NONE } from '../raft/types.ts';
import type { DurableStorage, StorageWrite } from '../storage/durable-storage.ts';
import { StorageWriter } from '../storage/storage-writer.ts';
import type { ApplyResult } from './api.ts';
import type { Applier, StateChangeSet } from './applier.ts';
import { prepareEntries } from './applier.ts';
import { LeaderLossTimer, leaderLossDelayMs } from './leader-loss.ts';
import { ContactTracker } from './liveness.ts';
import { PeerSync } from './peers.ts';
import { SnapshotDuty } from './snapshots.ts';
import type { SnapshotNowOutcome } from './snapshots.ts';
import { Waiters } from './waiters.ts';
import type { DropCode, ProposeOutcome, ReadOutcome } from './waiters.ts';
import type { WriteBehind } from './write-behind.ts';
import { MAX_BATCH_ENTRY_BYTES, MAX_COMMANDS_PER_ENTRY, encodeBatchEntry, isBinaryFormat } from './command.ts';
import type { MemberAddress } from './members.ts';

export type { DropCode, ProposeOutcome, ReadOutcome } from './waiters.ts';
export type { SnapshotNowOutcome } from './snapshots.ts';

/** Inputs beyond this many wait-less messages are dropped (raft tolerates loss); proposals are refused. */
export const MAX_INBOX = 20_000;
/** Most proposals and reads waiting for their outcome at once; more are refused as overload. */
export const MAX_WAITERS = 50_000;
/**
 * Readys whose write may be in flight at once. With 1 the loop still never waits for the disk (it
 * steps messages, ticks and gathers proposals while a write is in flight), but takes the next
 * Ready only once the write is done, so what arrived meanwhile leaves as one Ready: one append per
 * follower, one write. Deeper pipelines hand out more, smaller Readys: on the 2-core machine of
 * docs/write-path.md, 8 in flight cost about 35% more CPU per write in the primaries at 16 and 64
 * writes in flight (bench:replication --raftauth-writes-in-flight), and the machine is CPU-bound
 * there, so the default is 1; raft.maxWritesInFlight raises it. Below the storage writer's queue
 * limit (maxPendingWrites), which it therefore never reaches.
 */
export const DEFAULT_MAX_WRITES_IN_FLIGHT = 1;

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
  /** The log was compacted (no state copied); how long recording it took. */
  compacted?(seconds: number): void;
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
  /**
   * The view of the state that `sm` reads through (the state machine must be built over it): the
   * driver records each write in flight there, so the next Ready's apply sees it.
   */
  readonly stateView: WriteBehind;
  /** Readys whose write may be in flight at once (DEFAULT_MAX_WRITES_IN_FLIGHT); 1 is the synchronous driver. */
  readonly maxWritesInFlight?: number;
}

function realTimer(fn: () => void, ms: number): () => void {
  const t = setTimeout(fn, ms);
  return () => clearTimeout(t);
}

/** A Ready handed to the storage writer, and what to do once its write is durable. */
interface WriteJob {
  readonly rd: Ready;
  /** Messages that leave only once this write (and every one before it) is durable. */
  readonly late: readonly Message[];
  /** Entries applied by this Ready, with their results, to answer their proposers. */
  readonly settled: readonly { readonly e: Entry; readonly results: readonly ApplyResult[] | undefined }[];
  readonly changes: StateChangeSet | undefined;
  /** The write-behind record of `changes` (null when there are none). */
  readonly behind: number | null;
  readonly appliedTo: number | undefined;
  /** The configuration after this Ready's conf changes, when it has any. */
  readonly confChanged: ConfState | null;
  /** The write is durable (a Ready with nothing to write is done at once, but waits its turn). */
  done: boolean;
}

export class RaftDriver {
  private readonly opts: DriverOptions;
  private readonly id: NodeId;
  private readonly node: RawNode;
  private readonly storage: DurableStorage;
  private readonly sm: Applier;
  private readonly transport: DriverTransport;
  private readonly log: DriverLogger;
  private readonly writer: StorageWriter;
  private readonly stateView: WriteBehind;
  private readonly maxWritesInFlight: number;
  private readonly waiters = new Waiters();
  private readonly snapshots: SnapshotDuty;
  private readonly peers: PeerSync;
  private readonly contact: ContactTracker;
  private readonly leaderLoss: LeaderLossTimer;
  private inbox: DriverInput[] = [];
  private pendingTicks = 0;
  private wake: (() => void) | null = null;
  private running = false;
  private stopped = false;
  private loopDone: Promise<void> = Promise.resolve();
  private fatal: unknown = null;

  /** Readys handed to the storage writer, oldest first; completed in this order. */
  private jobs: WriteJob[] = [];
  /** A Ready carrying a snapshot, waiting for the writes in flight before it is installed. */
  private deferred: Ready | null = null;
  /** Commands proposed during the current pass over the inbox: they leave as one batch entry. */
  private batchCommands: Uint8Array[] = [];
  private batchReplies: ((o: ProposeOutcome) => void)[] = [];
  private batchBytes = 0;
  /** Received snapshot files by snapshot index, until their MsgSnap's Ready installs them. */
  private readonly receivedSnapshots = new Map<number, string>();
  /** Asked for a state file (followers behind the log, backups): written once the storage writer is idle (it must be the applied state). */
  private stateFileWaiters: { resolve: (m: SnapshotMetadata) => void; reject: (e: unknown) => void }[] = [];
  private confState: ConfState;
  /** Applied, and visible in the store: reads and answers wait for this, not for the in-memory apply. */
  private applied: number;
  private softState: SoftState = { lead: NONE, role: 'follower' };
  private readonly now: () => number;

  constructor(opts: DriverOptions) {
    this.opts = opts;
    this.id = opts.id;
    this.node = opts.node;
    this.storage = opts.storage;
    this.sm = opts.sm;
    this.transport = opts.transport;
    this.log = opts.logger;
    this.stateView = opts.stateView;
    this.maxWritesInFlight = opts.maxWritesInFlight ?? DEFAULT_MAX_WRITES_IN_FLIGHT;
    if (!Number.isInteger(this.maxWritesInFlight) || this.maxWritesInFlight < 1 || this.maxWritesInFlight >= opts.storage.config.maxPendingWrites) {
      throw new RangeError(`maxWritesInFlight ${this.maxWritesInFlight} must be an integer in [1, the store's maxPendingWrites ${opts.storage.config.maxPendingWrites})`);
    }
    this.writer = new StorageWriter(opts.storage);
    this.confState = opts.storage.confState;
    this.applied = opts.storage.applied;
    this.now = opts.now ?? Date.now;
    this.contact = new ContactTracker(opts.id);
    this.leaderLoss = new LeaderLossTimer(opts.setTimer ?? realTimer);
    this.peers = new PeerSync(opts.id, opts.transport, opts.logger, (id) => {
      const b = this.storage.getSync('sys.members', String(id));
      return b ? (JSON.parse(new TextDecoder().decode(b)) as MemberAddress) : undefined;
    });
    this.snapshots = new SnapshotDuty({
      id: opts.id,
      storage: opts.storage,
      log: opts.logger,
      ...(opts.observer ? { events: opts.observer } : {}),
      fail: (e) => this.failFromStore(e),
      stopping: () => this.stopped,
      progress: () => this.node.status().progress,
      requestStateFile: () =>
        new Promise<SnapshotMetadata>((resolve, reject) => {
          if (this.stopped || this.fatal !== null) {
            reject(new Error('node stopping'));
            return;
          }
          this.stateFileWaiters.push({ resolve, reject });
          this.wake?.();
        }),
    });
  }

  /** How long ago this node last had evidence of a working leader (ContactTracker). */
  leaderContactAgeMs(): number | null {
    return this.contact.leaderContactAgeMs(this.node.status(), this.now());
  }

  start(): void {
    if (this.running) return;
    this.running = true;
    this.loopDone = this.loop();
  }

  async stop(): Promise<void> {
    this.stopped = true;
    this.leaderLoss.disarm();
    this.wake?.();
    await this.loopDone;
    // Writes in flight finish (the store closes after this); nobody is answered from them.
    await this.writer.idle();
    // A state file being written holds a LevelDB snapshot of the store the node is about to close.
    await this.snapshots.idle();
    this.failAll('STOPPING', 'node stopping');
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

  /** Readys handed to the storage writer and not yet completed (those with nothing to write wait their turn). */
  writesInFlight(): number {
    return this.jobs.length;
  }

  tick(): void {
    this.pendingTicks = Math.min(this.pendingTicks + 1, 1000);
    this.wake?.();
  }

  /** Queue an input. Returns false if the inbox is full (the input's reply, if any, is told). */
  enqueue(input: DriverInput): boolean {
    if (this.stopped || this.fatal !== null) {
      if (this.fatal !== null) this.refuse(input, 'FATAL', 'node stopped after a fatal error');
      else this.refuse(input, 'STOPPING', 'node stopping');
      return false;
    }
    if (this.inbox.length >= MAX_INBOX) {
      this.refuse(input, 'OVERLOADED', 'driver inbox full');
      return false;
    }
    this.inbox.push(input);
    this.wake?.();
    return true;
  }

  private refuse(input: DriverInput, code: DropCode, reason: string): void {
    switch (input.kind) {
      case 'propose':
      case 'confChange':
      case 'readIndex':
        input.reply({ kind: 'dropped', code, reason });
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

  /** Work that waits for the storage writer to be idle: a state file someone asked for. */
  private idleWorkWaiting(): boolean {
    return this.stateFileWaiters.length > 0;
  }

  /** A new Ready may be taken: room in the pipeline, no snapshot waiting, no idle work waiting. */
  private canTakeReady(): boolean {
    return this.deferred === null && this.jobs.length < this.maxWritesInFlight && !this.idleWorkWaiting();
  }

  private hasWork(): boolean {
    if (this.inbox.length > 0 || this.pendingTicks > 0) return true;
    if (this.jobs.length > 0 && this.jobs[0]!.done) return true;
    if (this.jobs.length === 0 && (this.deferred !== null || this.idleWorkWaiting())) return true;
    return this.canTakeReady() && this.node.hasReady();
  }

  private async loop(): Promise<void> {
    try {
      while (!this.stopped) {
        if (!this.hasWork()) {
          await new Promise<void>((resolve) => (this.wake = resolve));
          this.wake = null;
          continue;
        }
        // Writes that became durable first: what they settle is answered, and the core learns
        // what is on this node's disk before it steps what arrived meanwhile.
        this.completeWrites();
        // Messages before ticks: a heartbeat that arrived while this loop was held up must count
        // before the ticks that piled up meanwhile, or a follower could time out on a leader whose
        // heartbeat sits in its inbox (an election for nothing, under load).
        const inputs = this.inbox;
        this.inbox = [];
        for (const input of inputs) this.handle(input);
        if (this.batchCommands.length > 0) this.proposeBatch();
        const ticks = this.pendingTicks;
        this.pendingTicks = 0;
        for (let i = 0; i < ticks; i++) this.node.tick();
        if (this.jobs.length === 0) {
          this.runIdleWork();
          if (this.deferred !== null) {
            const rd = this.deferred;
            this.deferred = null;
            await this.handleReadyBody(rd);
          }
        }
        while (!this.stopped && this.canTakeReady() && this.node.hasReady()) await this.handleReady(this.node.ready());
      }
    } catch (e) {
      this.fail(e);
    }
  }

  /** The store reported damage outside the loop (the state scrub, a compaction, a state file): stop as a failed write does. */
  failFromStore(e: unknown): void {
    this.fail(e);
    this.wake?.();
  }

  /** A fatal error: stop the loop, refuse every waiter, and tell the node (once). */
  private fail(e: unknown): void {
    if (this.fatal !== null) return;
    this.fatal = e;
    this.stopped = true;
    this.log.error({ err: e instanceof Error ? e.message : String(e), stack: e instanceof Error ? e.stack : undefined }, 'raft driver stopped by a fatal error');
    this.failAll('FATAL', 'node stopped after a fatal error');
    this.opts.onFatal(e);
  }

  private failAll(code: 'STOPPING' | 'FATAL', reason: string): void {
    this.waiters.failAll(code, reason);
    for (const reply of this.batchReplies) reply({ kind: 'dropped', code, reason });
    this.batchCommands = [];
    this.batchReplies = [];
    this.batchBytes = 0;
    const fileWaiters = this.stateFileWaiters;
    this.stateFileWaiters = [];
    for (const w of fileWaiters) w.reject(new Error(reason));
  }

  private waiterCount(): number {
    return this.waiters.count + this.batchReplies.length;
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
    this.waiters.propose(id.index, id.term, replies);
    this.opts.observer?.proposedEntry?.(commands.length);
  }

  private handle(input: DriverInput): void {
    switch (input.kind) {
      case 'messages': {
        const t = this.now();
        for (const m of input.messages) {
          // Only members (known peers) are tracked, so the map cannot grow past the membership.
          if (this.peers.has(m.from)) this.contact.heard(m.from, t);
          this.node.step(m);
        }
        return;
      }
      case 'propose':
      case 'confChange': {
        if (this.waiterCount() >= MAX_WAITERS) {
          input.reply({ kind: 'dropped', code: 'OVERLOADED', reason: 'too many proposals in flight' });
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
          this.waiters.propose(id.index, id.term, [input.reply]);
        } catch (e) {
          input.reply(proposeError(e));
        }
        return;
      }
      case 'readIndex': {
        if (this.waiterCount() >= MAX_WAITERS) {
          input.reply({ kind: 'dropped', code: 'OVERLOADED', reason: 'too many reads in flight' });
          return;
        }
        try {
          this.node.readIndex(input.context);
          this.waiters.read(input.context, input.reply);
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
        this.peers.learn(input.id, input.address, this.confState);
        return;
      case 'campaignIfLeaderless': {
        this.leaderLoss.fired();
        const st = this.node.status();
        // Another node won meanwhile (we follow it now), the old leader came back, or another
        // survivor's election is under way (it raised the term): leave it to them; the election
        // timeout still stands behind every case.
        if (st.softState.role === 'follower' && st.softState.lead === NONE && st.hardState.term === this.leaderLoss.term) {
          this.log.info({ term: st.hardState.term }, 'campaigning: the leader was lost');
          this.node.campaign();
        }
        return;
      }
      case 'snapshotStatus':
        this.node.reportSnapshot(input.id, input.ok);
        return;
      case 'snapshotNow':
        // Its file must be the state at the applied index: written once the writer is idle.
        this.snapshots.backup(input.reply);
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
    if (slotMs <= 0 || this.leaderLoss.armed) return;
    const st = this.node.status();
    if (st.softState.role !== 'follower' || st.softState.lead !== id) return;
    const delayMs = leaderLossDelayMs(this.id, id, st.confState, slotMs, this.opts.random ?? Math.random);
    if (delayMs === null || !this.node.forgetLeader()) return;
    this.log.info({ leader: id, delayMs }, 'lost the connection to the leader: forgot it, campaigning unless a leader shows up');
    this.leaderLoss.arm(st.hardState.term, delayMs, () => this.enqueue({ kind: 'campaignIfLeaderless' }));
  }

  /**
   * Work that needs the storage writer idle, so that the store's applied index is this.applied
   * and no state write is in flight (writeStateFile's precondition): one state file for everyone
   * who asked. It only starts here; the file is written without holding up the loop.
   */
  private runIdleWork(): void {
    const waiters = this.stateFileWaiters;
    this.stateFileWaiters = [];
    if (waiters.length === 0) return;
    this.snapshots.writeStateFile(this.applied, this.confState).then(
      (meta) => {
        for (const w of waiters) w.resolve(meta);
      },
      (e: unknown) => {
        for (const w of waiters) w.reject(e);
      },
    );
  }

  private async handleReady(rd: Ready): Promise<void> {
    if (rd.softState) {
      const changedLeader = rd.softState.lead !== this.softState.lead;
      this.softState = rd.softState;
      if (changedLeader) {
        this.waiters.leaderChanged(rd.softState.lead);
        const term = this.node.status().hardState.term;
        this.log.info({ leader: rd.softState.lead, role: rd.softState.role, term }, 'leader changed');
        this.opts.observer?.leaderChanged(rd.softState.lead, term);
      }
      this.opts.onSoftState?.(rd.softState, this.node.status().hardState.term);
    }
    if (rd.snapshot && this.jobs.length > 0) {
      // Installed only with no write in flight: those writes belong to the state it replaces.
      this.deferred = rd;
      return;
    }
    await this.handleReadyBody(rd);
  }

  private async handleReadyBody(rd: Ready): Promise<void> {
    if (rd.snapshot) {
      const idx = rd.snapshot.metadata.index;
      const path = this.receivedSnapshots.get(idx);
      if (path === undefined) throw new RaftInvariantError(`Ready carries snapshot ${idx} but no received file is known for it`);
      this.receivedSnapshots.delete(idx);
      await this.storage.installSnapshot(path);
      this.sm.resetCaches();
      this.confState = rd.snapshot.metadata.confState;
      this.applied = idx;
      this.peers.sync(rd.snapshot.metadata.confState);
      this.log.info({ index: idx, term: rd.snapshot.metadata.term }, 'installed snapshot');
      this.opts.observer?.snapshot('installed', null);
      this.opts.observer?.stateChanged?.(null);
    }

    // Apply in memory; the writes go into the same batch as the entries and hard state.
    const settled: { e: Entry; results: readonly ApplyResult[] | undefined }[] = [];
    let changes: StateChangeSet | undefined;
    let appliedTo: number | undefined;
    let confChanged: ConfState | null = null;
    if (rd.committedEntries.length > 0) {
      // The state machine writes each conf change's state (member table, its audit record) in log
      // order with the commands; the core's side of the change is applied here, in the same order.
      const batch = this.sm.applyEntries(prepareEntries(rd.committedEntries));
      for (const e of rd.committedEntries) {
        if (e.type === 'confChange') {
          this.confState = this.node.applyConfChange(decodeConfChange(e.data));
          confChanged = this.confState;
          settled.push({ e, results: [{ ok: true, value: { confState: this.confState } }] });
        } else {
          settled.push({ e, results: batch.results.get(e.index) });
        }
      }
      changes = batch.changes;
      appliedTo = batch.applied;
    }

    const hasWrite = rd.hardState !== null || rd.entries.length > 0 || changes !== undefined;
    // What may leave now: a leader's appends and heartbeats (§10.2.1: they promise nothing about
    // its own disk), and everything when this Ready owes no fsync and no write is in flight (no
    // promise is pending). Votes, vote refusals with a new term and append acknowledgements wait
    // for this write and every one before it: an acknowledgement may promise entries an earlier
    // Ready handed to the disk (the simulator's sendAheadOfWrites shows the crash that follows).
    const leading = this.softState.role === 'leader';
    const quiet = !rd.mustSync && this.jobs.length === 0;
    const early: Message[] = [];
    const late: Message[] = [];
    for (const m of rd.messages) {
      if (m.type === 'snap') late.push(m);
      else if (quiet || (leading && (m.type === 'app' || m.type === 'heartbeat'))) early.push(m);
      else late.push(m);
    }
    if (early.length > 0) this.transport.send(early);

    this.node.acceptReady();
    this.waiters.readStates(rd.readStates);
    const behind = changes !== undefined ? this.stateView.record(changes) : null;
    const job: WriteJob = { rd, late, settled, changes, behind, appliedTo, confChanged, done: !hasWrite };
    this.jobs.push(job);
    if (hasWrite) {
      // fsync only when the Ready carries a promise (entries, term, vote). Applied state and the
      // commit index may be lost in a crash: the log re-creates them, and they are written
      // atomically with the applied index, so they never disagree.
      const write: StorageWrite = {
        ...(rd.hardState ? { hardState: rd.hardState } : {}),
        ...(rd.entries.length > 0 ? { entries: rd.entries } : {}),
        ...(changes ? { state: { puts: changes.puts, dels: changes.dels } } : {}),
        ...(appliedTo !== undefined ? { applied: appliedTo, confState: this.confState } : {}),
      };
      this.writer.submit(write, { sync: rd.mustSync }).then(
        () => {
          job.done = true;
          this.wake?.();
        },
        (e: unknown) => {
          this.fail(e);
          this.wake?.();
        },
      );
    } else if (this.jobs.length === 1) {
      // Nothing to write and nothing in flight: done now.
      this.completeWrites();
    }
  }

  /** Complete the writes that are durable, in the order they were issued. */
  private completeWrites(): void {
    while (this.jobs.length > 0 && this.jobs[0]!.done && !this.stopped) this.complete(this.jobs.shift()!);
  }

  private complete(job: WriteJob): void {
    const { rd } = job;
    this.node.persisted(persistedOf(rd));
    if (job.behind !== null && job.changes) this.stateView.release(job.behind, job.changes);
    if (job.appliedTo !== undefined) this.applied = job.appliedTo;
    if (job.confChanged) this.peers.sync(job.confChanged);
    const changes = job.changes;
    if (changes && this.opts.observer?.stateChanged && (changes.puts.length > 0 || changes.dels.length > 0)) {
      const touched = new Set<string>();
      for (const [ks] of changes.puts) touched.add(ks);
      for (const [ks] of changes.dels) touched.add(ks);
      this.opts.observer.stateChanged(touched);
    }

    // Durable: now the rest may leave.
    const late: Message[] = [];
    for (const m of job.late) {
      if (m.type === 'snap') this.snapshots.stream(m, this.transport, (ok) => this.enqueue({ kind: 'snapshotStatus', id: m.to, ok }));
      else late.push(m);
    }
    if (late.length > 0) this.transport.send(late);

    for (const { e, results } of job.settled) this.waiters.applied(e.index, e.term, results);
    if (rd.committedEntries.length > 0) {
      // A proposal whose index was passed by entries of another term will never apply.
      this.waiters.passed(this.applied);
      this.node.appliedTo(rd.committedEntries[rd.committedEntries.length - 1]!.index, rd.committedEntries);
    }
    this.waiters.serveReads(this.applied);

    if (job.appliedTo !== undefined && this.snapshots.compactionDue()) this.snapshots.compact();
  }

  /** Addresses of members, from the replicated member table. */
  memberAddress(id: NodeId): MemberAddress | undefined {
    return this.peers.memberAddress(id);
  }

  setKnownPeers(peers: ReadonlyMap<NodeId, string>): void {
    this.peers.setKnown(peers);
  }
}

function proposeError(e: unknown): ProposeOutcome {
  if (e instanceof RaftError) {
    if (e.code === 'NOT_LEADER') return { kind: 'notLeader', leader: e.leader };
    if (e.code === 'CONF_CHANGE_PENDING') return { kind: 'dropped', code: 'BUSY', reason: e.message };
    if (e.code === 'INVALID_CONF_CHANGE') return { kind: 'dropped', code: 'INVALID', reason: e.message };
    return { kind: 'dropped', code: 'REFUSED', reason: e.message };
  }
  throw e;
}
