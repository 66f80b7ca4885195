// The durable store of a raftauth node (docs/storage.md): one facade over three modules that share
// one LevelDB (level-store.ts; key layout in keys.ts) and the snapshot files beside it:
//  - the log store (log-store.ts): raft log, hard state, log head, and the cache the core reads;
//  - the state store (state-store.ts): the state machine's keyspaces, applied index, conf state;
//  - the snapshotter (snapshotter.ts): snapshot files, the snapshot record, create/install/prune.
//
// The facade opens them in order, checks what spans them, and owns the commit path: each module
// plans its part of every write into ONE batch, the batch is written once (fsynced unless the
// Ready promised nothing), and only then do the modules update their in-memory views. The Raft
// core reads storage synchronously (etcd's Storage interface) from the log store's cache, which
// therefore never shows the core anything that is not durable.
//
// Concurrency contract (asserted, since a violation is a driver bug):
//  - commit() calls never overlap (the driver, or StorageWriter, serializes them);
//  - writeStateFile() and createSnapshot() run when the applied index equals the file's index and
//    no state write is in flight (compactLog() needs neither: it reads the durable applied index); installSnapshot() never overlaps a commit() (Ready order: install the snapshot,
//    then persist entries; a driver using StorageWriter awaits writer.idle() first). Commits are
//    refused for the duration of an install, as etcd's ApplySnapshot blocks its raft loop.
import { mkdir } from 'node:fs/promises';
import { join, resolve } from 'node:path';
import type { ConfState, Entry, HardState, Snapshot, SnapshotMetadata, Storage } from '../raft/types.ts';
import { resolveStorageConfig, type StorageConfig } from './config.ts';
import { storageAssert } from './errors.ts';
import { META } from './keys.ts';
import { LevelStore, type BatchOp, type WrapWrites } from './level-store.ts';
import { LogStore } from './log-store.ts';
import type { SnapshotRecord } from './snapshot-format.ts';
import type { ReceivedSnapshot, SnapshotReceiver } from './snapshot-receiver.ts';
import { Snapshotter } from './snapshotter.ts';
import { StateStore } from './state-store.ts';
import type { CommitOptions, IterateOptions, SnapshotChunkStream, SnapshotInfo, StateFileInfo, StateKey, StateRecord, StorageStats, StorageWrite } from './types.ts';

export type { CommitOptions, IterateOptions, SnapshotChunkStream, SnapshotInfo, StateChanges, StateFileInfo, StateKey, StateRecord, StorageStats, StorageWrite } from './types.ts';
export type { BatchWrite, WrapWrites, WriteBatch, WritePurpose } from './level-store.ts';
export { snapshotRef } from './snapshot-format.ts';

export interface OpenOptions {
  readonly config?: Partial<StorageConfig>;
  /**
   * Verify the checksum of every state record at open (default true), so a damaged store refuses
   * to start rather than failing on the first read of the damaged record. It reads the whole live
   * generation once (sequentially, bounded memory); records are verified on every read regardless.
   */
  readonly verifyState?: boolean;
  /**
   * Wrap every LevelDB batch the store writes: fault injection for crash tests
   * (test/support/faulty-storage.ts, and the node's unsafe crash switch). The loader of the node
   * config never sets it.
   */
  readonly wrapWrites?: WrapWrites;
}

export class DurableStorage implements Storage {
  readonly dataDir: string;
  readonly snapDir: string;
  readonly config: StorageConfig;
  private readonly level: LevelStore;
  private readonly log: LogStore;
  private readonly state: StateStore;
  private readonly snapshots: Snapshotter;

  private commitInFlight = false;
  private stateCommitInFlight = false;
  /**
   * Metrics hook: called after each commit() batch is written, with its duration in seconds and
   * whether it was fsynced (the fsync latency histogram). Must not throw.
   */
  onBatchWritten: ((seconds: number, synced: boolean) => void) | null = null;
  private syncBatches = 0;
  private unsyncedBatches = 0;
  private writesCommitted = 0;

  private constructor(config: StorageConfig, level: LevelStore, log: LogStore, state: StateStore, snapshots: Snapshotter) {
    this.dataDir = level.dataDir;
    this.snapDir = snapshots.snapDir;
    this.config = config;
    this.level = level;
    this.log = log;
    this.state = state;
    this.snapshots = snapshots;
  }

  // ---------------------------------------------------------------------------------------------
  // Opening

  /**
   * Open (or create) the store in `dataDir`. Loads hard state, conf state, snapshot metadata and
   * the log after the log head into the cache, verifying every checksum; deletes garbage left by
   * an interrupted snapshot install. Throws StorageCorruptError naming the damaged record.
   */
  static async open(dataDir: string, options: OpenOptions = {}): Promise<DurableStorage> {
    const config = resolveStorageConfig(options.config);
    const dir = resolve(dataDir);
    const snapDir = join(dir, 'snap');
    await mkdir(snapDir, { recursive: true, mode: 0o700 });
    const level = await LevelStore.open(dir, options.wrapWrites, config.levelMaxOpenFiles);
    try {
      const snapMeta = await Snapshotter.readMeta(level);
      const state = await StateStore.load(level, config);
      const log = await LogStore.load(level, config, snapMeta);
      const snapshots = new Snapshotter({ level, config, snapDir, log, state }, snapMeta);
      const store = new DurableStorage(config, level, log, state, snapshots);
      store.checkAcrossModules();
      await snapshots.removeTempFiles();
      if (options.verifyState ?? true) await state.scrub();
      return store;
    } catch (e) {
      await level.close().catch(() => undefined);
      throw e;
    }
  }

  /** What no single module can check: the applied index lies between the snapshot and the commit index and log. */
  private checkAcrossModules(): void {
    const applied = this.state.applied;
    const snap = this.snapshots.metadata;
    const commit = this.log.hardState.commit;
    if (applied < snap.index) throw this.level.corrupt('applied index', META.applied, null, `applied index ${applied} is behind the snapshot at ${snap.index}`);
    if (applied > Math.max(commit, snap.index)) throw this.level.corrupt('applied index', META.applied, null, `applied index ${applied} is beyond the commit index ${commit}`);
    if (applied > this.log.lastIndex()) throw this.level.corrupt('applied index', META.applied, null, `applied index ${applied} is beyond the last log index ${this.log.lastIndex()}`);
  }

  /**
   * Read every record of the live state generation and verify its checksum and key (a scrub).
   * Throws StorageCorruptError for the first damaged record and stops the store. Returns the count
   * (of those read: it stops early when `signal` aborts, or when an installed snapshot replaced the
   * generation it was reading).
   */
  scrubState(signal?: AbortSignal): Promise<number> {
    return this.state.scrub(signal);
  }

  /**
   * Make a fresh store the store of a founding member (docs/raft.md, Bootstrapping): a snapshot at
   * index 1, term 1 carrying the initial configuration and an empty state, exactly what
   * `new MemoryStorage(initialConfState)` gives the simulator. Every founding member writes the
   * same snapshot, and its file is what a node that joins later is sent first. Returns false (and
   * changes nothing) if the store is not fresh: a founding member restarting keeps its state.
   */
  async bootstrap(confState: ConfState, records: readonly SnapshotRecord[] = []): Promise<boolean> {
    this.level.checkUsable();
    storageAssert(confState.voters.length > 0, 'bootstrap needs at least one voter');
    storageAssert(!this.commitInFlight && !this.snapshots.installing, 'bootstrap() during a commit or an install');
    const fresh = this.log.isEmpty && this.snapshots.metadata.index === 0 && this.state.applied === 0;
    if (!fresh) return false;
    await this.snapshots.bootstrap(confState, records);
    return true;
  }

  // ---------------------------------------------------------------------------------------------
  // Storage (the core's synchronous, read-only view; served from the log store's verified cache)

  initialState(): { hardState: HardState; confState: ConfState } {
    // The conf state as of `applied`, not as of the snapshot: the core restarts with
    // Config.applied = this.applied and does not re-apply conf changes at or below it.
    return { hardState: this.log.hardState, confState: this.state.confState };
  }

  entries(lo: number, hi: number, maxBytes: number): Entry[] {
    return this.log.entries(lo, hi, maxBytes);
  }

  term(i: number): number {
    return this.log.term(i);
  }

  firstIndex(): number {
    return this.log.firstIndex();
  }

  lastIndex(): number {
    return this.log.lastIndex();
  }

  snapshot(): Snapshot {
    return this.log.snapshot();
  }

  get applied(): number {
    return this.state.applied;
  }

  get confState(): ConfState {
    return this.state.confState;
  }

  get hardState(): HardState {
    return this.log.hardState;
  }

  get stateGeneration(): number {
    return this.state.generation;
  }

  /** What the log's entries after the head cost (compactLogBytes' measure). */
  get logBytes(): number {
    return this.log.bytes;
  }

  get snapshotMetadata(): SnapshotMetadata {
    return this.snapshots.metadata;
  }

  stats(): StorageStats {
    return {
      syncBatches: this.syncBatches,
      unsyncedBatches: this.unsyncedBatches,
      writesCommitted: this.writesCommitted,
      stateGeneration: this.state.generation,
      firstIndex: this.log.firstIndex(),
      lastIndex: this.log.lastIndex(),
      applied: this.state.applied,
      snapshotIndex: this.snapshots.metadata.index,
      logBytes: this.logBytes,
    };
  }

  // ---------------------------------------------------------------------------------------------
  // Writing

  /**
   * Make `writes` durable, in order, with exactly one LevelDB batch written with sync: true (unless
   * opts.sync is false, see CommitOptions), then update the caches. Several writes (a Ready's
   * persist half and an apply loop's results, or many group-committed units) share the one fsync.
   * Resolves only after the fsync.
   */
  async commit(writes: StorageWrite | readonly StorageWrite[], opts: CommitOptions = {}): Promise<void> {
    this.level.checkUsable();
    const sync = opts.sync ?? true;
    storageAssert(!this.commitInFlight, 'commit() called while another commit() is in flight: the driver must serialize commits (StorageWriter does)');
    storageAssert(!this.snapshots.installing, 'commit() called during installSnapshot(): persist a Ready\'s entries only after its snapshot is installed');
    const list: readonly StorageWrite[] = isWriteList(writes) ? writes : [writes];
    this.commitInFlight = true;
    this.stateCommitInFlight = list.some((w) => w.state !== undefined || w.applied !== undefined || w.confState !== undefined);
    try {
      await this.level.writeLock.run(async () => {
        this.level.checkUsable();
        // Planned under the lock: a snapshot record or an install may have moved the log meanwhile.
        const ops = this.plan(list);
        if (!sync) {
          // Ready.mustSync is false only when nothing a peer was promised changes (docs/raft.md).
          const hs = this.log.hardState;
          for (const w of list) {
            storageAssert(w.entries === undefined || w.entries.length === 0, 'a commit with log entries must be synced (mustSync)');
            storageAssert(w.hardState === undefined || (w.hardState.term === hs.term && w.hardState.vote === hs.vote), 'a commit that changes the term or the vote must be synced (mustSync)');
          }
        }
        const startNs = process.hrtime.bigint();
        await this.level.write(ops, sync, 'commit', 'write a sync batch');
        this.onBatchWritten?.(Number(process.hrtime.bigint() - startNs) / 1e9, sync);
        if (sync) this.syncBatches++;
        else this.unsyncedBatches++;
        this.writesCommitted += list.length;
        for (const w of list) {
          this.log.afterWrite(w);
          this.state.afterWrite(w);
        }
      });
    } finally {
      this.commitInFlight = false;
      this.stateCommitInFlight = false;
    }
  }

  /** Validate `writes` in order (each against the ones before it) and turn them into the one batch's operations. */
  private plan(writes: readonly StorageWrite[]): BatchOp[] {
    const ops: BatchOp[] = [];
    const logPlan = this.log.beginPlan();
    const statePlan = this.state.beginPlan();
    for (const w of writes) {
      this.log.planWrite(logPlan, w, ops);
      this.state.planWrite(statePlan, w, logPlan.hardState.commit, ops);
    }
    return ops;
  }

  // ---------------------------------------------------------------------------------------------
  // State reads (checksum-verified; a damaged record stops the store)

  get(keyspace: string, key: StateKey): Promise<Uint8Array | undefined> {
    return this.state.get(keyspace, key);
  }

  /** Synchronous point read (LevelDB getSync) for an apply function that must not yield. */
  getSync(keyspace: string, key: StateKey): Uint8Array | undefined {
    return this.state.getSync(keyspace, key);
  }

  /** Up to `limit` records of `keyspace` in key order within [gte, lt). */
  iterate(keyspace: string, opts: IterateOptions): Promise<StateRecord[]> {
    return this.state.iterate(keyspace, opts);
  }

  // ---------------------------------------------------------------------------------------------
  // Snapshots

  /**
   * True once the log's entries cost more than `thresholdBytes` (default storage.compactLogBytes;
   * a node passes its own, spread around it, so members do not compact at the same moment) and
   * the applied index moved past the recorded snapshot.
   */
  shouldCompact(thresholdBytes?: number): boolean {
    return this.snapshots.shouldCompact(thresholdBytes);
  }

  /**
   * Compact the log behind the durable applied index (issue 15): record a snapshot there (its
   * term, the conf state as of it) and move the log head behind it, keeping
   * snapshotCatchupEntries entries. No state is copied: the state lives in LevelDB beside its
   * applied index, and a follower that needs it is sent a state file written on demand
   * (writeStateFile). One small batch; the compacted keys are deleted in the background in
   * bounded batches. The log head never moves past `floor`: entries a follower that was just sent
   * a state file needs to go on from it. Returns null when there is nothing new to record.
   */
  async compactLog(floor?: number): Promise<{ metadata: SnapshotMetadata; compactedThrough: number } | null> {
    this.level.checkUsable();
    // One consistent reading: a commit updates the applied index and the conf state together, in
    // one synchronous step after its batch is durable.
    const index = this.state.applied;
    const meta = { index, term: this.log.term(index), confState: this.state.confState };
    if (meta.index <= this.snapshots.metadata.index) return null;
    return this.snapshots.compact(meta, floor);
  }

  /**
   * Write a state file of the live state at `meta.index`, which must be the applied index, with no
   * state write in flight (the file must be the state at that index): for a follower that needs
   * the whole state, or a backup. Records nothing; an existing file at that index is kept.
   */
  async writeStateFile(meta: SnapshotMetadata): Promise<StateFileInfo> {
    this.level.checkUsable();
    this.checkStateFilePosition(meta);
    return this.snapshots.writeFile(meta);
  }

  /**
   * The newest state file a follower can be sent: at or past the recorded snapshot (so the log
   * goes on from it) and at or below the applied index. Null if there is none.
   */
  newestSendableStateFile(): Promise<SnapshotMetadata | null> {
    this.level.checkUsable();
    return this.snapshots.newestFile(this.snapshots.metadata.index);
  }

  /**
   * Write a state file at `meta.index` (see writeStateFile), then record it as the newest snapshot
   * and compact the log behind it (offline recovery does this). The LevelDB snapshot is taken
   * synchronously at the call, so commits may go on while the file is written; they are not in it.
   */
  async createSnapshot(meta: SnapshotMetadata): Promise<SnapshotInfo> {
    this.level.checkUsable();
    this.checkStateFilePosition(meta);
    return this.snapshots.create(meta);
  }

  private checkStateFilePosition(meta: SnapshotMetadata): void {
    storageAssert(meta.index === this.state.applied, () => `a state file at ${meta.index}, but the applied index is ${this.state.applied}: the state would not match the metadata`);
    // A commit carrying only log entries and hard state may be in flight (the core does not stop
    // for a snapshot), but not one that changes the state or the applied index: its batch could be
    // in LevelDB already, and so in the LevelDB snapshot, while `applied` still says otherwise.
    storageAssert(!this.stateCommitInFlight, 'a state file while a commit with state changes is in flight: the file would not be the state at the applied index');
  }

  /**
   * Stream the state file at `index` (newestSendableStateFile's or writeStateFile's) for the transport, in
   * chunks of at most maxChunkBytes. The file is opened now, so pruning it later does not cut the
   * stream short.
   */
  async openSnapshotChunks(index: number): Promise<SnapshotChunkStream> {
    this.level.checkUsable();
    return this.snapshots.openChunks(index);
  }

  /** A receiver that writes an incoming snapshot into this store's snapshot directory. */
  async createSnapshotReceiver(expect?: { index: number; term: number }): Promise<SnapshotReceiver> {
    this.level.checkUsable();
    return this.snapshots.createReceiver(expect);
  }

  /**
   * Receive a snapshot stream from the transport (TransportHandler.onSnapshot) into a verified file
   * in the snapshot directory. Any failure, including one thrown by `chunks`, removes the partial
   * file and rethrows; the leader retries the transfer.
   */
  async receiveSnapshot(expect: { index: number; term: number }, chunks: AsyncIterable<Uint8Array>): Promise<ReceivedSnapshot> {
    this.level.checkUsable();
    return this.snapshots.receive(expect, chunks);
  }

  /**
   * Install a verified snapshot file (from SnapshotReceiver): see Snapshotter.install. A crash
   * before the flip leaves the old state; a crash after it leaves the new state.
   */
  async installSnapshot(file: string): Promise<SnapshotMetadata> {
    this.level.checkUsable();
    storageAssert(!this.commitInFlight, 'installSnapshot() while a commit is in flight');
    return this.snapshots.install(file);
  }

  // ---------------------------------------------------------------------------------------------
  // Housekeeping

  /** Resolves once background cleanup (old generations) is finished. */
  backgroundIdle(): Promise<void> {
    return this.snapshots.backgroundIdle();
  }

  /** The last background cleanup failure, if any (garbage is then removed at the next open). */
  get lastBackgroundError(): unknown {
    return this.snapshots.lastBackgroundError;
  }

  async close(): Promise<void> {
    await this.level.close(() => this.snapshots.backgroundIdle());
  }
}

function isWriteList(w: StorageWrite | readonly StorageWrite[]): w is readonly StorageWrite[] {
  return Array.isArray(w);
}
