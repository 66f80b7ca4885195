// The durable store of a raftauth node: raft log, hard state, conf state, snapshot metadata and
// the state machine's keyspaces in one LevelDB (key layout in keys.ts), snapshot files beside it.
//
// The Raft core reads storage synchronously (etcd's Storage interface), so this store keeps the
// log tail and hard state in a MemoryStorage cache and LevelDB is the durable copy: open() loads
// and verifies everything the cache needs; commit() writes one fsynced batch and only then updates
// the cache. The cache therefore never shows the core anything that is not durable.
//
// Concurrency contract (asserted, since a violation is a driver bug):
//  - commit() calls never overlap (the driver, or StorageWriter, serializes them);
//  - createSnapshot() runs when the applied index equals the snapshot's index and no state write
//    is in flight; installSnapshot() never overlaps a commit() (Ready order: install the snapshot,
//    then persist entries; a driver using StorageWriter awaits writer.idle() first). Commits are
//    refused for the duration of an install, as etcd's ApplySnapshot blocks its raft loop.
import { mkdir, readdir, rename, copyFile, unlink, open as fsOpen, stat } from 'node:fs/promises';
import { join, resolve } from 'node:path';
import { ClassicLevel } from 'classic-level';
import { BOOTSTRAP_INDEX, BOOTSTRAP_TERM, MemoryStorage } from '../raft/memory-storage.ts';
import type { ConfState, Entry, HardState, Snapshot, SnapshotMetadata, Storage } from '../raft/types.ts';
import { emptyConfState } from '../raft/util.ts';
import { resolveStorageConfig, type StorageConfig } from './config.ts';
import { StorageCorruptError, StorageError, storageAssert, type DamagedStore } from './errors.ts';
import {
  LOG_PREFIX,
  META,
  MAX_STATE_GEN,
  STATE_PREFIX,
  keyBytes,
  keyspacePrefix,
  logKey,
  parseLogKey,
  parseStateGen,
  parseStateKey,
  prefixEnd,
  printableKey,
  stateGenEnd,
  stateGenPrefix,
  stateKey,
  checkKeyspace,
  concatBytes,
} from './keys.ts';
import { Mutex } from './mutex.ts';
import {
  DecodeError,
  decodeConfState,
  decodeEntry,
  decodeHardState,
  decodeLogHead,
  decodeNat,
  decodeSnapshotMeta,
  encodeConfState,
  encodeEntry,
  encodeHardState,
  encodeLogHead,
  encodeNat,
  encodeSnapshotMeta,
  frameValue,
  pack,
  unframeValue,
} from './records.ts';
import { SnapshotFileWriter, compareBytes, parseSnapshotFileName, readSnapshotFile, snapshotFileName, snapshotLimits, sortKey, syncDir } from './snapshot-format.ts';
import type { SnapshotRecord } from './snapshot-format.ts';
import { SnapshotReceiver, type ReceivedSnapshot } from './snapshot-receiver.ts';

type Bytes = Uint8Array;
type DB = ClassicLevel<Bytes, Bytes>;

/** classic-level's own batch (its abstract-level "private API"): operations as it receives them after encoding. */
interface RawBatchDb {
  _batch(operations: readonly BatchOp[], options: { sync: boolean }): Promise<void>;
}

/**
 * The group-commit write of every Ready. abstract-level's public batch() clones each operation,
 * validates it and runs it through the 'view' transcoder, which is the identity for our
 * Uint8Array keys and values: at 64 writes in flight that was an eighth of the leader's CPU
 * (bench:replication profile). plan() builds only well-formed put/del operations of Uint8Arrays,
 * so this hot path hands them to classic-level directly; a database that is not open goes the
 * public way, which raises abstract-level's usual error.
 */
function writeBatch(db: DB, ops: BatchOp[], sync: boolean): Promise<void> {
  if (db.status !== 'open') return db.batch(ops, { sync });
  return (db as unknown as RawBatchDb)._batch(ops, { sync });
}
type BatchOp = { type: 'put'; key: Bytes; value: Bytes } | { type: 'del'; key: Bytes };

export type StateKey = string | Uint8Array;

/** State-machine changes of one write. A key may not be both put and deleted in one write. */
export interface StateChanges {
  readonly puts?: readonly (readonly [keyspace: string, key: StateKey, value: Uint8Array])[];
  readonly dels?: readonly (readonly [keyspace: string, key: StateKey])[];
}

/** One unit of durable work: the persist half of a Ready and/or the result of applying entries. */
export interface StorageWrite {
  readonly hardState?: HardState;
  /** Replace any entries at or after entries[0].index with these (Ready.entries). */
  readonly entries?: readonly Entry[];
  /** The conf state as of `applied` (written with it, so the two always agree). */
  readonly confState?: ConfState;
  /** The last log index whose effects are in `state` (this write's or earlier ones). */
  readonly applied?: number;
  readonly state?: StateChanges;
}

export interface CommitOptions {
  /**
   * fsync before resolving (default true). False is allowed only for writes that promise nothing to
   * a peer (Ready.mustSync false: commit index, applied index and state): a crash may lose them, but
   * LevelDB loses only a suffix of its writes, so state and applied index stay together and the
   * entries are re-applied from the log. Entries or a term/vote change with sync false is a bug.
   */
  readonly sync?: boolean;
}

export interface StateRecord {
  readonly key: Uint8Array;
  readonly value: Uint8Array;
}

export interface IterateOptions {
  /** Keys inside the keyspace, inclusive lower bound. */
  readonly gte?: StateKey;
  /** Keys inside the keyspace, exclusive upper bound. */
  readonly lt?: StateKey;
  /** Required, at most config.maxIterateLimit: page through a keyspace with gte = last key + 0x00. */
  readonly limit: number;
}

export interface SnapshotInfo {
  readonly metadata: SnapshotMetadata;
  readonly path: string;
  readonly bytes: number;
  readonly records: number;
  /** The log was compacted through this index (its term is kept as the log head). */
  readonly compactedThrough: number;
}

export interface SnapshotChunkStream {
  readonly metadata: SnapshotMetadata;
  readonly totalBytes: number;
  /** Chunks of at most maxChunkBytes, in order. The file stays readable even if it is pruned meanwhile. */
  readonly chunks: AsyncGenerator<Uint8Array>;
}

/** Fault injection for crash tests. The loader of the node config never sets it. */
export interface StorageFaults {
  /** During installSnapshot, stop dead after this many batches of the new generation are written. */
  readonly crashAfterInstallBatches?: number;
  /** During installSnapshot, stop dead right after the flip batch, before any cleanup or cache update. */
  readonly crashAfterInstallFlip?: boolean;
}

export interface OpenOptions {
  readonly config?: Partial<StorageConfig>;
  /**
   * Verify the checksum of every state record at open (default true), so a damaged store refuses
   * to start rather than failing on the first read of the damaged record. It reads the whole live
   * generation once (sequentially, bounded memory); records are verified on every read regardless.
   */
  readonly verifyState?: boolean;
  readonly faults?: StorageFaults;
}

export interface StorageStats {
  /** fsynced LevelDB batches written by commit() (one per group commit). */
  readonly syncBatches: number;
  /** Batches written without fsync (commit(..., { sync: false }): commit-index-only Readys, apply results). */
  readonly unsyncedBatches: number;
  /** StorageWrite units written by commit(). */
  readonly writesCommitted: number;
  readonly stateGeneration: number;
  readonly firstIndex: number;
  readonly lastIndex: number;
  readonly applied: number;
  readonly snapshotIndex: number;
}

/** Snapshot.data handed to the Raft core: a reference to the snapshot file, which the transport streams. */
export function snapshotRef(meta: SnapshotMetadata): Uint8Array {
  return pack({ file: snapshotFileName(meta.term, meta.index) });
}

const isNat = (v: unknown): v is number => typeof v === 'number' && Number.isSafeInteger(v) && v >= 0;

export class DurableStorage implements Storage {
  readonly dataDir: string;
  readonly snapDir: string;
  readonly config: StorageConfig;
  private readonly db: DB;
  private readonly faults: StorageFaults;
  private readonly cache: MemoryStorage;
  private confStateValue: ConfState;
  private appliedIndex: number;
  private stateGen: number;
  private snapMeta: SnapshotMetadata;
  private logHead: { index: number; term: number };

  private readonly writeLock = new Mutex();
  private readonly snapshotLock = new Mutex();
  private commitInFlight = false;
  private stateCommitInFlight = false;
  private installing = false;
  private closed = false;
  /** Set when the store must not be used any more: damage found, an fsync failed, or a simulated crash. */
  private stopped: Error | null = null;
  private background: Promise<void> = Promise.resolve();
  private backgroundError: unknown = null;
  /**
   * Metrics hook: called after each commit() batch is written, with its duration in seconds and
   * whether it was fsynced (the fsync latency histogram). Must not throw.
   */
  onBatchWritten: ((seconds: number, synced: boolean) => void) | null = null;
  private syncBatches = 0;
  private unsyncedBatches = 0;
  private writesCommitted = 0;

  private constructor(args: {
    dataDir: string;
    db: DB;
    config: StorageConfig;
    faults: StorageFaults;
    cache: MemoryStorage;
    confState: ConfState;
    applied: number;
    stateGen: number;
    snapMeta: SnapshotMetadata;
    logHead: { index: number; term: number };
  }) {
    this.dataDir = args.dataDir;
    this.snapDir = join(args.dataDir, 'snap');
    this.db = args.db;
    this.config = args.config;
    this.faults = args.faults;
    this.cache = args.cache;
    this.confStateValue = args.confState;
    this.appliedIndex = args.applied;
    this.stateGen = args.stateGen;
    this.snapMeta = args.snapMeta;
    this.logHead = args.logHead;
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
    await mkdir(join(dir, 'snap'), { recursive: true, mode: 0o700 });
    const db: DB = new ClassicLevel<Bytes, Bytes>(join(dir, 'db'), { keyEncoding: 'view', valueEncoding: 'view' });
    try {
      await db.open();
    } catch (e) {
      if (isLockHeld(e)) {
        // The usual cause: the node is already running (a second start, or a tool run beside it).
        throw new StorageError('LOCKED', `another process holds the store at ${dir} (its LevelDB lock ${join(dir, 'db', 'LOCK')}): is this node already running? Stop that process first, or give this one another node.dataDir`, { cause: e });
      }
      throw levelError(e, dir, `open LevelDB in ${join(dir, 'db')}`);
    }
    try {
      return await DurableStorage.load(dir, db, config, options.faults ?? {}, options.verifyState ?? true);
    } catch (e) {
      await db.close().catch(() => undefined);
      throw e;
    }
  }

  private static async load(dir: string, db: DB, config: StorageConfig, faults: StorageFaults, verifyState: boolean): Promise<DurableStorage> {
    const readMeta = async <T>(name: keyof typeof META, store: DamagedStore, decode: (b: Bytes) => T, dflt: T): Promise<T> => {
      const key = META[name];
      let raw: Bytes | undefined;
      try {
        raw = await db.get(key);
      } catch (e) {
        throw levelError(e, dir, `read ${printableKey(key)}`);
      }
      if (raw === undefined) return dflt;
      return verifyAndDecode(dir, store, key, raw, null, decode);
    };
    const hardState = await readMeta('hardState', 'hard state', decodeHardState, { term: 0, vote: 0, commit: 0 });
    const confState = await readMeta('confState', 'conf state', decodeConfState, emptyConfState());
    const applied = await readMeta('applied', 'applied index', (b) => decodeNat(b, 'applied index'), 0);
    const logHead = await readMeta('logHead', 'log head', decodeLogHead, { index: 0, term: 0 });
    const snapMeta = await readMeta('snapshot', 'snapshot', decodeSnapshotMeta, { index: 0, term: 0, confState: emptyConfState() });
    const stateGen = await readMeta('stateGen', 'state generation', (b) => decodeNat(b, 'state generation'), 0);

    const store = new DurableStorage({ dataDir: dir, db, config, faults, cache: new MemoryStorage(), confState, applied, stateGen, snapMeta, logHead });
    await store.removeGarbageGenerations();
    await store.removeStaleLogPrefix();
    const entries = await store.loadLog();
    store.buildCache(hardState, entries);
    await store.removeTempFiles();
    if (verifyState) await store.scrubState();
    return store;
  }

  /**
   * Read every record of the live state generation and verify its checksum and key (a scrub).
   * Throws StorageCorruptError for the first damaged record and stops the store. Returns the count.
   */
  async scrubState(): Promise<number> {
    this.checkUsable();
    const gen = this.stateGen;
    const it = this.db.iterator({ gte: stateGenPrefix(gen), lt: stateGenEnd(gen) });
    let n = 0;
    try {
      for (;;) {
        let rows: [Bytes, Bytes][];
        try {
          rows = await it.nextv(1000);
        } catch (e) {
          throw levelError(e, this.dataDir, 'scan the state');
        }
        if (rows.length === 0) return n;
        for (const [k, v] of rows) {
          if (parseStateKey(k) === null) throw this.stop(this.corrupt('state', k, null, 'malformed state key'));
          this.verifyState(k, v);
          n++;
        }
      }
    } finally {
      await it.close().catch(() => undefined);
    }
  }

  /** Delete every state generation but the live one (left by an install that crashed before its flip, or whose cleanup was cut short). */
  private async removeGarbageGenerations(): Promise<void> {
    let cursor: Bytes = STATE_PREFIX;
    const end = prefixEnd(STATE_PREFIX);
    for (;;) {
      const keys = await this.db.keys({ gte: cursor, lt: end, limit: 1 }).all();
      if (keys.length === 0) return;
      const k = keys[0]!;
      const gen = parseStateGen(k);
      if (gen === null) throw this.corrupt('state', k, null, 'malformed state key');
      if (gen !== this.stateGen) await this.deleteRange(stateGenPrefix(gen), stateGenEnd(gen));
      if (gen === MAX_STATE_GEN) return;
      cursor = stateGenEnd(gen);
    }
  }

  /** Delete log keys at or below the log head (a compaction whose deletes were cut short). */
  private async removeStaleLogPrefix(): Promise<void> {
    if (this.logHead.index === 0) return;
    await this.deleteRange(LOG_PREFIX, logKey(this.logHead.index + 1));
  }

  private async loadLog(): Promise<Entry[]> {
    const out: Entry[] = [];
    let expected = this.logHead.index + 1;
    let prevTerm = this.logHead.term;
    const it = this.db.iterator({ gte: logKey(expected), lt: prefixEnd(LOG_PREFIX) });
    try {
      for await (const [k, v] of it) {
        const index = parseLogKey(k);
        if (index === null) throw this.corrupt('raft log', k, null, 'malformed log key');
        if (index !== expected) throw this.corrupt('raft log', logKey(expected), expected, `entry missing (the next stored entry is ${index})`);
        const e = verifyAndDecode(this.dataDir, 'raft log', k, v, index, (b) => decodeEntry(index, b));
        if (e.term < prevTerm) throw this.corrupt('raft log', k, index, `term ${e.term} is below the previous entry's term ${prevTerm}`);
        prevTerm = e.term;
        out.push(e);
        expected++;
      }
    } catch (e) {
      throw e instanceof StorageCorruptError ? e : levelError(e, this.dataDir, 'read the raft log');
    } finally {
      await it.close().catch(() => undefined);
    }
    return out;
  }

  private buildCache(hardState: HardState, entries: Entry[]): void {
    const snap = this.snapMeta;
    const head = this.logHead;
    if (snap.index < head.index) {
      throw this.corrupt('log head', META.logHead, null, `the log is compacted through ${head.index}, beyond the snapshot at ${snap.index}`);
    }
    if (snap.index === head.index) {
      if (snap.index > 0) {
        if (snap.term !== head.term) throw this.corrupt('snapshot', META.snapshot, null, `snapshot term ${snap.term} differs from the log head's term ${head.term}`);
        this.cache.applySnapshot({ metadata: snap, data: snapshotRef(snap) });
      }
      this.cache.append(entries);
    } else {
      // The log keeps snapshotCatchupEntries entries behind the snapshot: rebuild the cache as it
      // was (log head as its dummy entry, then the snapshot recorded over the retained entries).
      if (head.index > 0) this.cache.applySnapshot({ metadata: { index: head.index, term: head.term, confState: snap.confState }, data: new Uint8Array(0) });
      this.cache.append(entries);
      if (snap.index > this.cache.lastIndex()) throw this.corrupt('snapshot', META.snapshot, null, `snapshot index ${snap.index} is beyond the last log index ${this.cache.lastIndex()}`);
      if (this.cache.term(snap.index) !== snap.term) {
        throw this.corrupt('snapshot', META.snapshot, null, `snapshot term ${snap.term} differs from the log's term ${this.cache.term(snap.index)} at ${snap.index}`);
      }
      this.cache.createSnapshot(snap.index, snap.confState, snapshotRef(snap));
    }
    this.cache.setHardState(hardState);
    if (this.appliedIndex < snap.index) throw this.corrupt('applied index', META.applied, null, `applied index ${this.appliedIndex} is behind the snapshot at ${snap.index}`);
    if (this.appliedIndex > Math.max(hardState.commit, snap.index)) {
      throw this.corrupt('applied index', META.applied, null, `applied index ${this.appliedIndex} is beyond the commit index ${hardState.commit}`);
    }
    if (this.appliedIndex > this.cache.lastIndex()) {
      throw this.corrupt('applied index', META.applied, null, `applied index ${this.appliedIndex} is beyond the last log index ${this.cache.lastIndex()}`);
    }
  }

  private async removeTempFiles(): Promise<void> {
    for (const name of await readdir(this.snapDir)) {
      if (name.endsWith('.tmp')) await unlink(join(this.snapDir, name)).catch(() => undefined);
    }
  }

  /**
   * Make a fresh store the store of a founding member (docs/raft.md, Bootstrapping): a snapshot at
   * index 1, term 1 carrying the initial configuration and an empty state, exactly what
   * `new MemoryStorage(initialConfState)` gives the simulator. Every founding member writes the
   * same snapshot, and its file is what a node that joins later is sent first. Returns false (and
   * changes nothing) if the store is not fresh: a founding member restarting keeps its state.
   */
  async bootstrap(confState: ConfState, records: readonly SnapshotRecord[] = []): Promise<boolean> {
    this.checkUsable();
    storageAssert(confState.voters.length > 0, 'bootstrap needs at least one voter');
    storageAssert(!this.commitInFlight && !this.installing, 'bootstrap() during a commit or an install');
    const hs = this.hardState;
    const fresh = hs.term === 0 && hs.vote === 0 && hs.commit === 0 && this.cache.lastIndex() === 0 && this.snapMeta.index === 0 && this.appliedIndex === 0;
    if (!fresh) return false;
    return this.snapshotLock.run(async () => {
      const meta: SnapshotMetadata = { index: BOOTSTRAP_INDEX, term: BOOTSTRAP_TERM, confState };
      const writer = new SnapshotFileWriter(join(this.snapDir, snapshotFileName(meta.term, meta.index)), this.snapDir, this.config);
      try {
        await writer.begin(meta);
        // The snapshot file and the live state must hold the same records (in the file's order).
        const enc = new TextEncoder();
        const sorted = [...records].sort((a, b) => compareBytes(sortKey(enc.encode(a.keyspace), a.key), sortKey(enc.encode(b.keyspace), b.key)));
        for (const r of sorted) await writer.add(r);
        await writer.finish();
      } catch (e) {
        await writer.abort();
        throw e;
      }
      const newHs: HardState = { term: BOOTSTRAP_TERM, vote: 0, commit: BOOTSTRAP_INDEX };
      await this.writeLock.run(async () => {
        this.checkUsable();
        const ops: BatchOp[] = [
          { type: 'put', key: META.snapshot, value: frameValue(META.snapshot, encodeSnapshotMeta(meta)) },
          { type: 'put', key: META.logHead, value: frameValue(META.logHead, encodeLogHead(meta.index, meta.term)) },
          { type: 'put', key: META.confState, value: frameValue(META.confState, encodeConfState(confState)) },
          { type: 'put', key: META.applied, value: frameValue(META.applied, encodeNat(meta.index)) },
          { type: 'put', key: META.hardState, value: frameValue(META.hardState, encodeHardState(newHs)) },
        ];
        for (const r of records) {
          const k = stateKey(this.stateGen, r.keyspace, r.key);
          ops.push({ type: 'put', key: k, value: frameValue(k, r.value) });
        }
        try {
          await this.db.batch(ops, { sync: true });
        } catch (e) {
          throw this.stop(levelError(e, this.dataDir, 'bootstrap'));
        }
        this.snapMeta = meta;
        this.logHead = { index: meta.index, term: meta.term };
        this.confStateValue = confState;
        this.appliedIndex = meta.index;
        this.cache.applySnapshot({ metadata: meta, data: snapshotRef(meta) });
        this.cache.setHardState(newHs);
      });
      return true;
    });
  }

  // ---------------------------------------------------------------------------------------------
  // Storage (the core's synchronous, read-only view; served from the verified cache)

  initialState(): { hardState: HardState; confState: ConfState } {
    // The conf state as of `applied`, not as of the snapshot: the core restarts with
    // Config.applied = this.applied and does not re-apply conf changes at or below it.
    return { hardState: this.cache.initialState().hardState, confState: this.confStateValue };
  }

  entries(lo: number, hi: number, maxBytes: number): Entry[] {
    return this.cache.entries(lo, hi, maxBytes);
  }

  term(i: number): number {
    return this.cache.term(i);
  }

  firstIndex(): number {
    return this.cache.firstIndex();
  }

  lastIndex(): number {
    return this.cache.lastIndex();
  }

  snapshot(): Snapshot {
    return this.cache.snapshot();
  }

  get applied(): number {
    return this.appliedIndex;
  }

  get confState(): ConfState {
    return this.confStateValue;
  }

  get hardState(): HardState {
    return this.cache.initialState().hardState;
  }

  get stateGeneration(): number {
    return this.stateGen;
  }

  get snapshotMetadata(): SnapshotMetadata {
    return this.snapMeta;
  }

  stats(): StorageStats {
    return {
      syncBatches: this.syncBatches,
      unsyncedBatches: this.unsyncedBatches,
      writesCommitted: this.writesCommitted,
      stateGeneration: this.stateGen,
      firstIndex: this.cache.firstIndex(),
      lastIndex: this.cache.lastIndex(),
      applied: this.appliedIndex,
      snapshotIndex: this.snapMeta.index,
    };
  }

  // ---------------------------------------------------------------------------------------------
  // Writing

  /**
   * Make `writes` durable, in order, with exactly one LevelDB batch written with sync: true (unless
   * opts.sync is false, see CommitOptions), then update the cache. Several writes (a Ready's persist half and an apply loop's results, or many
   * group-committed units) share the one fsync. Resolves only after the fsync.
   */
  async commit(writes: StorageWrite | readonly StorageWrite[], opts: CommitOptions = {}): Promise<void> {
    this.checkUsable();
    const sync = opts.sync ?? true;
    storageAssert(!this.commitInFlight, 'commit() called while another commit() is in flight: the driver must serialize commits (StorageWriter does)');
    storageAssert(!this.installing, 'commit() called during installSnapshot(): persist a Ready\'s entries only after its snapshot is installed');
    const list: readonly StorageWrite[] = isWriteList(writes) ? writes : [writes];
    this.commitInFlight = true;
    this.stateCommitInFlight = list.some((w) => w.state !== undefined || w.applied !== undefined || w.confState !== undefined);
    try {
      await this.writeLock.run(async () => {
        this.checkUsable();
        // Planned under the lock: a snapshot record or an install may have moved the log meanwhile.
        const ops = this.plan(list);
        if (!sync) {
          // Ready.mustSync is false only when nothing a peer was promised changes (docs/raft.md).
          const hs = this.hardState;
          for (const w of list) {
            storageAssert(w.entries === undefined || w.entries.length === 0, 'a commit with log entries must be synced (mustSync)');
            storageAssert(w.hardState === undefined || (w.hardState.term === hs.term && w.hardState.vote === hs.vote), 'a commit that changes the term or the vote must be synced (mustSync)');
          }
        }
        const startNs = process.hrtime.bigint();
        try {
          await writeBatch(this.db, ops, sync);
        } catch (e) {
          // After a failed fsync the state of the file is unknown (the kernel may have dropped the
          // dirty pages): stop rather than guess. The node restarts and re-reads what is durable.
          throw this.stop(levelError(e, this.dataDir, 'write a sync batch'));
        }
        this.onBatchWritten?.(Number(process.hrtime.bigint() - startNs) / 1e9, sync);
        if (sync) this.syncBatches++;
        else this.unsyncedBatches++;
        this.writesCommitted += list.length;
        for (const w of list) this.applyToCache(w);
      });
    } finally {
      this.commitInFlight = false;
      this.stateCommitInFlight = false;
    }
  }

  /** Validate `writes` against the current state and turn them into batch operations. */
  private plan(writes: readonly StorageWrite[]): BatchOp[] {
    const ops: BatchOp[] = [];
    let last = this.cache.lastIndex();
    const first = this.cache.firstIndex();
    let hs = this.hardState;
    let applied = this.appliedIndex;
    const durableCommit = hs.commit;
    for (const w of writes) {
      if (w.hardState !== undefined) {
        const n = w.hardState;
        if (!isNat(n.term) || !isNat(n.vote) || !isNat(n.commit)) throw new StorageError('INVALID_ARGUMENT', `malformed hard state ${JSON.stringify(n)}`);
        storageAssert(n.term >= hs.term, () => `hard state term went backwards from ${hs.term} to ${n.term} (Raft §5.1: terms only increase)`);
        storageAssert(n.term > hs.term || hs.vote === 0 || n.vote === hs.vote, () => `vote in term ${n.term} changed from ${hs.vote} to ${n.vote} (Raft §5.2: at most one vote per term)`);
        storageAssert(n.commit >= hs.commit, () => `commit index went backwards from ${hs.commit} to ${n.commit}`);
        hs = n;
        ops.push({ type: 'put', key: META.hardState, value: frameValue(META.hardState, encodeHardState(n)) });
      }
      if (w.entries !== undefined && w.entries.length > 0) {
        let es = w.entries;
        for (let i = 0; i < es.length; i++) {
          const e = es[i]!;
          if (!isNat(e.index) || !isNat(e.term) || !(e.data instanceof Uint8Array) || (e.type !== 'normal' && e.type !== 'confChange')) {
            throw new StorageError('INVALID_ARGUMENT', `malformed entry at position ${i}`);
          }
          if (e.data.length > this.config.maxRecordBytes) throw new StorageError('INVALID_ARGUMENT', `entry ${e.index} has ${e.data.length} bytes of data, over maxRecordBytes ${this.config.maxRecordBytes}`);
          storageAssert(i === 0 || (e.index === es[i - 1]!.index + 1 && e.term >= es[i - 1]!.term), () => `entries not contiguous with non-decreasing terms at index ${e.index}`);
        }
        if (es[0]!.index < first) es = es.slice(Math.min(es.length, first - es[0]!.index)); // already compacted (as MemoryStorage.append)
        if (es.length > 0) {
          const lo = es[0]!.index;
          const hi = es[es.length - 1]!.index;
          storageAssert(lo <= last + 1, () => `entries start at ${lo}, leaving a gap after the last index ${last}`);
          // Raft never rewrites a committed entry (Log Matching + Leader Completeness, §5.3/§5.4).
          for (let i = lo; i <= Math.min(hi, durableCommit, this.cache.lastIndex()); i++) {
            storageAssert(this.cache.term(i) === es[i - lo]!.term, () => `entries would overwrite committed entry ${i} (term ${this.cache.term(i)}) with term ${es[i - lo]!.term}`);
          }
          for (const e of es) {
            const k = logKey(e.index);
            ops.push({ type: 'put', key: k, value: frameValue(k, encodeEntry(e)) });
          }
          for (let i = hi + 1; i <= last; i++) ops.push({ type: 'del', key: logKey(i) }); // the stale suffix
          last = hi;
        }
      }
      if (w.confState !== undefined) {
        ops.push({ type: 'put', key: META.confState, value: frameValue(META.confState, encodeConfState(w.confState)) });
      }
      if (w.state !== undefined) {
        const seen = new Set<string>();
        for (const [ks, key] of w.state.dels ?? []) {
          const k = stateKey(this.stateGen, ks, key);
          seen.add(Buffer.from(k).toString('latin1'));
          ops.push({ type: 'del', key: k });
        }
        for (const [ks, key, value] of w.state.puts ?? []) {
          if (!(value instanceof Uint8Array)) throw new StorageError('INVALID_ARGUMENT', `value of ${ks}/${String(key)} is not a Uint8Array`);
          const k = stateKey(this.stateGen, ks, key);
          if (k.length + value.length > this.config.maxRecordBytes) {
            throw new StorageError('INVALID_ARGUMENT', `state record ${printableKey(k)} of ${k.length + value.length} bytes exceeds maxRecordBytes ${this.config.maxRecordBytes}`);
          }
          if (seen.has(Buffer.from(k).toString('latin1'))) throw new StorageError('INVALID_ARGUMENT', `${printableKey(k)} is both put and deleted in one write`);
          ops.push({ type: 'put', key: k, value: frameValue(k, value) });
        }
      }
      if (w.applied !== undefined) {
        const a = w.applied;
        if (!isNat(a)) throw new StorageError('INVALID_ARGUMENT', `applied ${a} is not a non-negative integer`);
        storageAssert(a >= applied, () => `applied index went backwards from ${applied} to ${a}`);
        storageAssert(a <= hs.commit, () => `applied index ${a} is beyond the commit index ${hs.commit} (only committed entries are applied, §5.3)`);
        applied = a;
        ops.push({ type: 'put', key: META.applied, value: frameValue(META.applied, encodeNat(a)) });
      }
    }
    return ops;
  }

  private applyToCache(w: StorageWrite): void {
    if (w.hardState !== undefined) this.cache.setHardState(w.hardState);
    if (w.entries !== undefined && w.entries.length > 0) this.cache.append(w.entries);
    if (w.confState !== undefined) this.confStateValue = w.confState;
    if (w.applied !== undefined) this.appliedIndex = w.applied;
  }

  // ---------------------------------------------------------------------------------------------
  // State reads (checksum-verified; a damaged record stops the store)

  async get(keyspace: string, key: StateKey): Promise<Uint8Array | undefined> {
    this.checkUsable();
    const k = stateKey(this.stateGen, keyspace, key);
    let raw: Bytes | undefined;
    try {
      raw = await this.db.get(k);
    } catch (e) {
      throw levelError(e, this.dataDir, `read ${printableKey(k)}`);
    }
    return raw === undefined ? undefined : this.verifyState(k, raw);
  }

  /** Synchronous point read (LevelDB getSync) for an apply function that must not yield. */
  getSync(keyspace: string, key: StateKey): Uint8Array | undefined {
    this.checkUsable();
    const k = stateKey(this.stateGen, keyspace, key);
    let raw: Bytes | undefined;
    try {
      raw = this.db.getSync(k);
    } catch (e) {
      throw levelError(e, this.dataDir, `read ${printableKey(k)}`);
    }
    return raw === undefined ? undefined : this.verifyState(k, raw);
  }

  /** Up to `limit` records of `keyspace` in key order within [gte, lt). */
  async iterate(keyspace: string, opts: IterateOptions): Promise<StateRecord[]> {
    this.checkUsable();
    checkKeyspace(keyspace);
    if (!Number.isSafeInteger(opts.limit) || opts.limit <= 0 || opts.limit > this.config.maxIterateLimit) {
      throw new StorageError('INVALID_ARGUMENT', `iterate limit must be in 1..${this.config.maxIterateLimit}, got ${opts.limit}`);
    }
    const prefix = keyspacePrefix(this.stateGen, keyspace);
    const gte = opts.gte !== undefined ? concatBytes(prefix, keyBytes(opts.gte)) : prefix;
    const lt = opts.lt !== undefined ? concatBytes(prefix, keyBytes(opts.lt)) : prefixEnd(prefix);
    let rows: [Bytes, Bytes][];
    try {
      rows = await this.db.iterator({ gte, lt, limit: opts.limit }).all();
    } catch (e) {
      throw levelError(e, this.dataDir, `iterate keyspace ${keyspace}`);
    }
    return rows.map(([k, v]) => ({ key: k.slice(prefix.length), value: this.verifyState(k, v) }));
  }

  private verifyState(k: Bytes, raw: Bytes): Uint8Array {
    const payload = unframeValue(k, raw);
    if (payload === null) throw this.stop(this.corrupt('state', k, null, 'checksum mismatch'));
    return new Uint8Array(payload);
  }

  // ---------------------------------------------------------------------------------------------
  // Snapshots

  /** True once `applied` is snapshotEveryEntries past the latest snapshot. */
  shouldSnapshot(applied: number = this.appliedIndex): boolean {
    return applied - this.snapMeta.index >= this.config.snapshotEveryEntries;
  }

  /**
   * Write a snapshot of the live state generation at `meta.index`, which must be the applied
   * index, then record it as the newest snapshot and compact the log behind
   * `meta.index - snapshotCatchupEntries`. The LevelDB snapshot is taken synchronously at the call,
   * so commits may go on while the file is written; they are not in it.
   */
  async createSnapshot(meta: SnapshotMetadata): Promise<SnapshotInfo> {
    this.checkUsable();
    storageAssert(meta.index === this.appliedIndex, () => `createSnapshot at ${meta.index}, but the applied index is ${this.appliedIndex}: the state would not match the metadata`);
    // A commit carrying only log entries and hard state may be in flight (the core does not stop
    // for a snapshot), but not one that changes the state or the applied index: its batch could be
    // in LevelDB already, and so in the LevelDB snapshot, while `applied` still says otherwise.
    storageAssert(!this.stateCommitInFlight, 'createSnapshot() while a commit with state changes is in flight: the snapshot would not be the state at the applied index');
    if (meta.index <= this.snapMeta.index) throw new StorageError('SNAPSHOT_OUT_OF_DATE', `a snapshot at ${this.snapMeta.index} exists; cannot create one at ${meta.index}`);
    storageAssert(meta.index >= this.cache.firstIndex() - 1 && meta.index <= this.cache.lastIndex(), () => `createSnapshot at ${meta.index} outside the log [${this.cache.firstIndex() - 1}, ${this.cache.lastIndex()}]`);
    storageAssert(this.cache.term(meta.index) === meta.term, () => `createSnapshot term ${meta.term} differs from the log's term ${this.cache.term(meta.index)} at ${meta.index}`);
    // Taken before any await: the LevelDB snapshot and the generation it reads belong together.
    const levelSnap = this.db.snapshot();
    const gen = this.stateGen;
    return this.snapshotLock.run(async () => {
      if (meta.index <= this.snapMeta.index) {
        // An install (or another snapshot) got the lock first.
        await levelSnap.close();
        throw new StorageError('SNAPSHOT_OUT_OF_DATE', `a snapshot at ${this.snapMeta.index} was recorded meanwhile; dropping the one at ${meta.index}`);
      }
      const path = join(this.snapDir, snapshotFileName(meta.term, meta.index));
      const writer = new SnapshotFileWriter(path, this.snapDir, this.config);
      let written: { bytes: number; records: number };
      try {
        await writer.begin(meta);
        const it = this.db.iterator({ gte: stateGenPrefix(gen), lt: stateGenEnd(gen), snapshot: levelSnap });
        try {
          for (;;) {
            const rows = await it.nextv(1000);
            if (rows.length === 0) break;
            for (const [k, v] of rows) {
              const payload = unframeValue(k, v);
              // Never ship damage to a follower.
              if (payload === null) throw this.stop(this.corrupt('state', k, null, 'checksum mismatch (found while writing a snapshot)'));
              const parsed = parseStateKey(k);
              if (parsed === null) throw this.stop(this.corrupt('state', k, null, 'malformed state key'));
              await writer.add({ keyspace: parsed.keyspace, key: parsed.key, value: payload });
            }
          }
        } finally {
          await it.close();
        }
        written = await writer.finish();
      } catch (e) {
        await writer.abort();
        throw e instanceof StorageError || e instanceof StorageCorruptError ? e : levelError(e, this.dataDir, 'write a snapshot');
      } finally {
        await levelSnap.close();
      }
      const compactedThrough = await this.recordSnapshot(meta);
      await this.pruneSnapshotFiles();
      return { metadata: meta, path, bytes: written.bytes, records: written.records, compactedThrough };
    });
  }

  /** Durably record `meta` as the newest snapshot and compact the log behind it; then the cache. */
  private async recordSnapshot(meta: SnapshotMetadata): Promise<number> {
    return this.writeLock.run(async () => {
      this.checkUsable();
      const target = Math.max(this.logHead.index, meta.index - this.config.snapshotCatchupEntries);
      const compactTo = Math.min(target, this.cache.lastIndex());
      const ops: BatchOp[] = [{ type: 'put', key: META.snapshot, value: frameValue(META.snapshot, encodeSnapshotMeta(meta)) }];
      let head = this.logHead;
      if (compactTo > this.logHead.index) {
        head = { index: compactTo, term: this.cache.term(compactTo) };
        ops.push({ type: 'put', key: META.logHead, value: frameValue(META.logHead, encodeLogHead(head.index, head.term)) });
        // Bounded by snapshotEveryEntries + snapshotCatchupEntries keys: one snapshot interval.
        for (let i = this.logHead.index + 1; i <= compactTo; i++) ops.push({ type: 'del', key: logKey(i) });
      }
      try {
        await this.db.batch(ops, { sync: true });
      } catch (e) {
        throw this.stop(levelError(e, this.dataDir, 'record a snapshot'));
      }
      this.snapMeta = meta;
      this.cache.createSnapshot(meta.index, meta.confState, snapshotRef(meta));
      if (head.index > this.logHead.index) this.cache.compact(head.index);
      this.logHead = head;
      return head.index;
    });
  }

  /** Keep the newest keepSnapshotFiles snapshot files (by index); the recorded one is always kept. */
  private async pruneSnapshotFiles(): Promise<void> {
    const files = (await readdir(this.snapDir))
      .map((name) => ({ name, parsed: parseSnapshotFileName(name) }))
      .filter((f): f is { name: string; parsed: { term: number; index: number } } => f.parsed !== null)
      .sort((a, b) => b.parsed.index - a.parsed.index);
    const current = snapshotFileName(this.snapMeta.term, this.snapMeta.index);
    let kept = 0;
    let removed = false;
    for (const f of files) {
      if (f.name === current || (kept < this.config.keepSnapshotFiles && f.parsed.index <= this.snapMeta.index)) {
        kept++;
        continue;
      }
      // A newer file than the recorded one is a received snapshot about to be installed: keep it.
      if (f.parsed.index > this.snapMeta.index) continue;
      await unlink(join(this.snapDir, f.name)).catch(() => undefined);
      removed = true;
    }
    if (removed) await syncDir(this.snapDir);
  }

  /** The path of the snapshot file at `index`, or null if there is none on disk. */
  async snapshotFilePath(index: number): Promise<string | null> {
    for (const name of await readdir(this.snapDir)) {
      const p = parseSnapshotFileName(name);
      if (p !== null && p.index === index) return join(this.snapDir, name);
    }
    return null;
  }

  /**
   * Stream the snapshot file at `index` (normally snapshot().metadata.index) for the transport, in
   * chunks of at most maxChunkBytes. The file is opened now, so pruning it later does not cut the
   * stream short.
   */
  async openSnapshotChunks(index: number): Promise<SnapshotChunkStream> {
    this.checkUsable();
    const path = await this.snapshotFilePath(index);
    if (path === null) throw new StorageError('SNAPSHOT_UNAVAILABLE', `no snapshot file at index ${index} in ${this.snapDir}`);
    const fh = await fsOpen(path, 'r');
    let metadata: SnapshotMetadata | null = null;
    let totalBytes: number;
    try {
      totalBytes = (await fh.stat()).size;
      if (totalBytes > this.config.maxSnapshotBytes) throw new StorageError('SNAPSHOT_INVALID', `${path} is ${totalBytes} bytes, over maxSnapshotBytes`);
      // Read the header through the verifying parser so a damaged file is not offered to a follower.
      for await (const item of readSnapshotHeader(path, this.config)) metadata = item;
    } catch (e) {
      await fh.close();
      throw e;
    }
    storageAssert(metadata !== null && metadata.index === index, () => `snapshot file ${path} holds index ${metadata?.index}, not ${index}`);
    const chunkBytes = this.config.maxChunkBytes;
    async function* chunks(): AsyncGenerator<Uint8Array> {
      try {
        let pos = 0;
        while (pos < totalBytes) {
          const buf = new Uint8Array(Math.min(chunkBytes, totalBytes - pos));
          const { bytesRead } = await fh.read(buf, 0, buf.length, pos);
          if (bytesRead === 0) throw new StorageError('SNAPSHOT_INVALID', `${path} shrank while being streamed`);
          pos += bytesRead;
          yield bytesRead === buf.length ? buf : buf.subarray(0, bytesRead);
        }
      } finally {
        await fh.close();
      }
    }
    const gen = chunks();
    // If the consumer never starts the generator its finally never runs; return() closes the file.
    return { metadata, totalBytes, chunks: gen };
  }

  /** A receiver that writes an incoming snapshot into this store's snapshot directory. */
  async createSnapshotReceiver(expect?: { index: number; term: number }): Promise<SnapshotReceiver> {
    this.checkUsable();
    return SnapshotReceiver.create(this.snapDir, this.config, expect);
  }

  /**
   * Receive a snapshot stream from the transport (TransportHandler.onSnapshot) into a verified file
   * in the snapshot directory. Any failure, including one thrown by `chunks`, removes the partial
   * file and rethrows; the leader retries the transfer.
   */
  async receiveSnapshot(expect: { index: number; term: number }, chunks: AsyncIterable<Uint8Array>): Promise<ReceivedSnapshot> {
    const rx = await this.createSnapshotReceiver(expect);
    try {
      for await (const c of chunks) await rx.push(c);
      return await rx.finish();
    } catch (e) {
      await rx.abort();
      throw e;
    }
  }

  /**
   * Install a verified snapshot file (from SnapshotReceiver): load it into a new state generation
   * in bounded batches, then flip to it with one small sync batch that also records the snapshot,
   * the conf state, the applied index and the commit index, and drops the whole log. A crash before
   * the flip leaves the old state (the partial generation is garbage that open() removes); a crash
   * after it leaves the new state. The old generation is deleted in the background.
   */
  async installSnapshot(file: string): Promise<SnapshotMetadata> {
    this.checkUsable();
    storageAssert(!this.commitInFlight, 'installSnapshot() while a commit is in flight');
    return this.snapshotLock.run(async () => {
      this.checkUsable();
      storageAssert(!this.installing, 'installSnapshot() re-entered');
      this.installing = true;
      const oldGen = this.stateGen;
      const newGen = oldGen + 1;
      if (newGen > MAX_STATE_GEN) throw new StorageError('INVALID_ARGUMENT', 'state generations exhausted');
      let flipped = false;
      try {
        await this.backgroundIdle(); // a previous install's cleanup must not race with this one's generation
        await this.deleteRange(stateGenPrefix(newGen), stateGenEnd(newGen));
        let meta: SnapshotMetadata | null = null;
        let batch: BatchOp[] = [];
        let batchBytes = 0;
        let batches = 0;
        const flush = async (): Promise<void> => {
          if (batch.length === 0) return;
          // Synced, although invisible until the flip: a sync write fsyncs only LevelDB's current
          // write-ahead log, and if the memtable rolled over to a new log meanwhile, an unsynced
          // tail of the previous one could be lost in a crash while the flip survives. Batches are
          // installBatchBytes large, so the extra fsyncs cost little.
          await this.db.batch(batch, { sync: true });
          batch = [];
          batchBytes = 0;
          batches++;
          if (this.faults.crashAfterInstallBatches !== undefined && batches >= this.faults.crashAfterInstallBatches) {
            throw this.simulatedCrash('after a partial load of the new state generation');
          }
        };
        for await (const item of readSnapshotFile(file, snapshotLimits(this.config))) {
          if (item.kind === 'header') {
            meta = item.meta;
            if (meta.index <= this.appliedIndex || meta.index <= this.snapMeta.index) {
              throw new StorageError('SNAPSHOT_OUT_OF_DATE', `snapshot at ${meta.index} is not ahead of the applied index ${this.appliedIndex}`);
            }
          } else if (item.kind === 'records') {
            for (const r of item.records) {
              const k = stateKey(newGen, r.keyspace, r.key);
              const v = frameValue(k, r.value);
              batch.push({ type: 'put', key: k, value: v });
              batchBytes += k.length + v.length;
              if (batch.length >= this.config.installBatchRecords || batchBytes >= this.config.installBatchBytes) await flush();
            }
          }
        }
        await flush();
        storageAssert(meta !== null, 'snapshot file without a header passed verification');
        const finalPath = join(this.snapDir, snapshotFileName(meta.term, meta.index));
        if (resolve(file) !== finalPath) await moveFile(file, finalPath);
        await syncDir(this.snapDir);
        const m = meta;
        await this.writeLock.run(async () => {
          this.checkUsable();
          const hs = this.hardState;
          // Term and vote are the core's business (it persists them in the Ready); the snapshot only
          // moves the commit index, which can never be behind an installed snapshot.
          const newHs: HardState = { ...hs, commit: Math.max(hs.commit, m.index) };
          const ops: BatchOp[] = [
            { type: 'put', key: META.stateGen, value: frameValue(META.stateGen, encodeNat(newGen)) },
            { type: 'put', key: META.snapshot, value: frameValue(META.snapshot, encodeSnapshotMeta(m)) },
            { type: 'put', key: META.confState, value: frameValue(META.confState, encodeConfState(m.confState)) },
            { type: 'put', key: META.applied, value: frameValue(META.applied, encodeNat(m.index)) },
            { type: 'put', key: META.hardState, value: frameValue(META.hardState, encodeHardState(newHs)) },
            { type: 'put', key: META.logHead, value: frameValue(META.logHead, encodeLogHead(m.index, m.term)) },
          ];
          // The whole log goes (etcd's ApplySnapshot): entries after the snapshot index may conflict
          // with the leader's log. Bounded by the cached log, which compaction bounds.
          for (let i = this.cache.firstIndex(); i <= this.cache.lastIndex(); i++) ops.push({ type: 'del', key: logKey(i) });
          try {
            await this.db.batch(ops, { sync: true });
          } catch (e) {
            throw this.stop(levelError(e, this.dataDir, 'flip to the installed snapshot'));
          }
          flipped = true;
          if (this.faults.crashAfterInstallFlip) throw this.simulatedCrash('right after the flip to the new state generation');
          this.stateGen = newGen;
          this.snapMeta = m;
          this.confStateValue = m.confState;
          this.appliedIndex = m.index;
          this.logHead = { index: m.index, term: m.term };
          this.cache.applySnapshot({ metadata: m, data: snapshotRef(m) });
          this.cache.setHardState(newHs);
        });
        this.startBackground(() => this.deleteRange(stateGenPrefix(oldGen), stateGenEnd(oldGen)));
        await this.pruneSnapshotFiles();
        return m;
      } catch (e) {
        if (!flipped && this.stopped === null) {
          // A real failure (bad file, out of date): drop the partial generation now.
          await this.deleteRange(stateGenPrefix(newGen), stateGenEnd(newGen)).catch(() => undefined);
        }
        throw e;
      } finally {
        this.installing = false;
      }
    });
  }

  // ---------------------------------------------------------------------------------------------
  // Housekeeping

  /** Delete all keys in [gte, lt) in batches of deleteBatchKeys, each under the write lock. */
  private async deleteRange(gte: Bytes, lt: Bytes): Promise<number> {
    let deleted = 0;
    for (;;) {
      if (this.stopped !== null) return deleted;
      const n = await this.writeLock.run(async () => {
        const keys = await this.db.keys({ gte, lt, limit: this.config.deleteBatchKeys }).all();
        if (keys.length === 0) return 0;
        await this.db.batch(
          keys.map((key) => ({ type: 'del' as const, key })),
          { sync: false },
        );
        return keys.length;
      });
      if (n === 0) return deleted;
      deleted += n;
    }
  }

  private startBackground(task: () => Promise<unknown>): void {
    this.background = this.background.then(async () => {
      try {
        await task();
      } catch (e) {
        // Garbage that outlives a failed cleanup is removed at the next open(); remember the error for stats/close.
        this.backgroundError = e;
      }
    });
  }

  /** Resolves once background cleanup (old generations) is finished. */
  async backgroundIdle(): Promise<void> {
    await this.background;
  }

  /** The last background cleanup failure, if any (garbage is then removed at the next open). */
  get lastBackgroundError(): unknown {
    return this.backgroundError;
  }

  async close(): Promise<void> {
    if (this.closed) return;
    this.closed = true;
    await this.background;
    await this.db.close();
  }

  private checkUsable(): void {
    if (this.stopped !== null) throw this.stopped;
    if (this.closed) throw new StorageError('CLOSED', `the store in ${this.dataDir} is closed`);
  }

  /** Stop the store for good: every later call throws `err`. Returns `err` for `throw`. */
  private stop(err: Error): Error {
    if (this.stopped === null) this.stopped = err;
    return err;
  }

  private simulatedCrash(where: string): Error {
    return this.stop(new StorageError('SIMULATED_CRASH', `fault injection: the store stopped ${where}`));
  }

  private corrupt(store: DamagedStore, key: Bytes, index: number | null, detail: string): StorageCorruptError {
    return new StorageCorruptError({ store, key: printableKey(key), index, detail, dataDir: this.dataDir });
  }
}

function isWriteList(w: StorageWrite | readonly StorageWrite[]): w is readonly StorageWrite[] {
  return Array.isArray(w);
}

function verifyAndDecode<T>(dataDir: string, store: DamagedStore, key: Bytes, raw: Bytes, index: number | null, decode: (b: Bytes) => T): T {
  const payload = unframeValue(key, raw);
  if (payload === null) throw new StorageCorruptError({ store, key: printableKey(key), index, detail: 'checksum mismatch', dataDir });
  try {
    return decode(payload);
  } catch (e) {
    if (e instanceof DecodeError) throw new StorageCorruptError({ store, key: printableKey(key), index, detail: e.message, dataDir });
    throw e;
  }
}

/** Whether a failed open was refused because the LevelDB lock is held. */
function isLockHeld(e: unknown): boolean {
  // classic-level nests the reason: "Database failed to open" (LEVEL_DATABASE_NOT_OPEN) → LEVEL_LOCKED
  // ("IO error: lock …/LOCK: already held by process" in this process, "Resource temporarily
  // unavailable" from another).
  for (let c: unknown = e, depth = 0; c instanceof Error && depth < 5; c = (c as { cause?: unknown }).cause, depth++) {
    if ((c as { code?: unknown }).code === 'LEVEL_LOCKED') return true;
  }
  return false;
}

/** Map a LevelDB failure to the store's errors: internal corruption is corruption, the rest is IO. */
function levelError(e: unknown, dataDir: string, what: string): Error {
  if (e instanceof StorageError || e instanceof StorageCorruptError) return e;
  const code = (e as { code?: unknown }).code;
  const cause = (e as { cause?: { code?: unknown } }).cause;
  if (code === 'LEVEL_CORRUPTION' || cause?.code === 'LEVEL_CORRUPTION') {
    return new StorageCorruptError({ store: 'leveldb', key: '(LevelDB internal)', detail: `LevelDB reports corruption while trying to ${what}: ${(e as Error).message}`, dataDir });
  }
  return new StorageError('IO', `failed to ${what}: ${(e as Error).message}`, { cause: e });
}

async function* readSnapshotHeader(path: string, config: StorageConfig): AsyncGenerator<SnapshotMetadata> {
  const it = readSnapshotFile(path, snapshotLimits(config), 64 * 1024);
  try {
    for await (const item of it) {
      if (item.kind === 'header') {
        yield item.meta;
        return;
      }
    }
  } finally {
    await it.return(undefined);
  }
}

async function moveFile(from: string, to: string): Promise<void> {
  try {
    await rename(from, to);
  } catch (e) {
    if ((e as { code?: string }).code !== 'EXDEV') throw e;
    await copyFile(from, to);
    const fh = await fsOpen(to, 'r+');
    await fh.sync();
    await fh.close();
    await unlink(from);
  }
  await stat(to);
}
