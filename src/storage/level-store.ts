// The one LevelDB (classic-level) of a node's store, shared by the log store, the state store and
// the snapshotter (docs/storage.md, Modules). It owns what they must share to stay consistent:
//  - the write lock: every batch, and the in-memory update that follows it, runs under it, so the
//    caches above always reflect a prefix of the durable writes, in order;
//  - the one write path (`write`): each module *plans* operations into a batch it is handed, and
//    the caller writes the batch once, so a commit is one fsynced batch however many modules it
//    touches;
//  - the stopped state: after damage, a failed write or a simulated crash no module serves again.
//
// Fault injection wraps the write path (OpenOptions.wrapWrites: a test wrapper decides when a
// write fails or "crashes"); nothing here branches on a fault.
import { join } from 'node:path';
import { defaultStorageConfig } from './config.ts';
import { ClassicLevel } from 'classic-level';
import { StorageCorruptError, StorageError, type DamagedStore } from './errors.ts';
import { printableKey } from './keys.ts';
import { Mutex } from './mutex.ts';
import { DecodeError, unframeValue } from './records.ts';

type Bytes = Uint8Array;
export type DB = ClassicLevel<Bytes, Bytes>;
export type BatchOp = { type: 'put'; key: Bytes; value: Bytes } | { type: 'del'; key: Bytes };

/** Which kind of write a batch is (so a fault-injecting wrapper can pick its moment). */
export type WritePurpose =
  /** commit(): a group commit (log entries, hard state, applied state). */
  | 'commit'
  /** createSnapshot(): record the snapshot and compact the log. */
  | 'snapshot-record'
  /** installSnapshot(): one bounded batch of the new state generation (invisible until the flip). */
  | 'install-load'
  /** installSnapshot(): the atomic flip to the new generation. */
  | 'install-flip'
  /** bootstrap(): the founding member's first state. */
  | 'bootstrap'
  /** Deleting garbage (old generations, a stale log prefix): a failure leaves garbage for the next open. */
  | 'cleanup';

export interface BatchWrite {
  readonly ops: readonly BatchOp[];
  readonly sync: boolean;
  readonly purpose: WritePurpose;
}

export type WriteBatch = (write: BatchWrite) => Promise<void>;

/**
 * Wraps the store's batch writer: given the real writer, returns the one the store uses. Meant for
 * fault injection in tests (test/support/faulty-storage.ts); the node config loader never sets it.
 * A wrapper that throws after calling the real writer simulates a crash after a durable write.
 */
export type WrapWrites = (write: WriteBatch) => WriteBatch;

/** classic-level's own batch (its abstract-level "private API"): operations as it receives them after encoding. */
interface RawBatchDb {
  _batch(operations: readonly BatchOp[], options: { sync: boolean }): Promise<void>;
}

/**
 * The group-commit write of every Ready. abstract-level's public batch() clones each operation,
 * validates it and runs it through the 'view' transcoder, which is the identity for our
 * Uint8Array keys and values: at 64 writes in flight that was an eighth of the leader's CPU
 * (bench:replication profile). The stores build only well-formed put/del operations of
 * Uint8Arrays, so this hot path hands them to classic-level directly; a database that is not open
 * goes the public way, which raises abstract-level's usual error.
 */
function rawBatch(db: DB, ops: readonly BatchOp[], sync: boolean): Promise<void> {
  if (db.status !== 'open') return db.batch(ops as BatchOp[], { sync });
  return (db as unknown as RawBatchDb)._batch(ops, { sync });
}

export class LevelStore {
  readonly dataDir: string;
  readonly db: DB;
  /** Serializes every batch and the cache update that follows it. */
  readonly writeLock = new Mutex();
  private readonly writeFn: WriteBatch;
  private closed = false;
  /** Set when the store must not be used any more: damage found, a write failed, or a simulated crash. */
  private stopped: Error | null = null;

  private constructor(dataDir: string, db: DB, wrapWrites: WrapWrites | undefined) {
    this.dataDir = dataDir;
    this.db = db;
    const real: WriteBatch = ({ ops, sync, purpose }) => (purpose === 'commit' ? rawBatch(db, ops, sync) : db.batch(ops as BatchOp[], { sync }));
    this.writeFn = wrapWrites ? wrapWrites(real) : real;
  }

  /** Open the LevelDB in `<dataDir>/db`; a held lock gets an error that says what to do. */
  static async open(dataDir: string, wrapWrites?: WrapWrites, maxOpenFiles: number = defaultStorageConfig.levelMaxOpenFiles): Promise<LevelStore> {
    // maxOpenFiles bounds the table files LevelDB keeps open, and so memory-maps: at the default of
    // 1000 a large state's tables were all mapped, and their pages counted in the node's RSS (issue 15).
    const db: DB = new ClassicLevel<Bytes, Bytes>(join(dataDir, 'db'), { keyEncoding: 'view', valueEncoding: 'view', maxOpenFiles });
    try {
      await db.open();
    } catch (e) {
      if (isLockHeld(e)) {
        // The usual cause: the node is already running (a second start, or a tool run beside it).
        throw new StorageError('LOCKED', `another process holds the store at ${dataDir} (its LevelDB lock ${join(dataDir, 'db', 'LOCK')}): is this node already running? Stop that process first, or give this one another node.dataDir`, { cause: e });
      }
      throw levelError(e, dataDir, `open LevelDB in ${join(dataDir, 'db')}`);
    }
    return new LevelStore(dataDir, db, wrapWrites);
  }

  /**
   * Write one batch. A failure stops the store for good (after a failed fsync the state of the
   * file is unknown, so stop rather than guess; the node restarts and re-reads what is durable),
   * except for cleanup, whose failure only leaves garbage that the next open removes.
   */
  async write(ops: readonly BatchOp[], sync: boolean, purpose: WritePurpose, what: string): Promise<void> {
    try {
      await this.writeFn({ ops, sync, purpose });
    } catch (e) {
      if (purpose === 'cleanup') throw e;
      throw this.stop(levelError(e, this.dataDir, what));
    }
  }

  /** Read and verify a metadata record (`dflt` if absent). Damage is StorageCorruptError. */
  async readMeta<T>(key: Bytes, store: DamagedStore, decode: (b: Bytes) => T, dflt: T): Promise<T> {
    let raw: Bytes | undefined;
    try {
      raw = await this.db.get(key);
    } catch (e) {
      throw levelError(e, this.dataDir, `read ${printableKey(key)}`);
    }
    if (raw === undefined) return dflt;
    return verifyAndDecode(this.dataDir, store, key, raw, null, decode);
  }

  /** Delete all keys in [gte, lt) in batches of `batchKeys`, each under the write lock. */
  async deleteRange(gte: Bytes, lt: Bytes, batchKeys: number): Promise<number> {
    let deleted = 0;
    for (;;) {
      if (this.stopped !== null) return deleted;
      const n = await this.writeLock.run(async () => {
        const keys = await this.db.keys({ gte, lt, limit: batchKeys }).all();
        if (keys.length === 0) return 0;
        await this.write(
          keys.map((key) => ({ type: 'del' as const, key })),
          false,
          'cleanup',
          'delete garbage',
        );
        return keys.length;
      });
      if (n === 0) return deleted;
      deleted += n;
    }
  }

  get isStopped(): boolean {
    return this.stopped !== null;
  }

  checkUsable(): void {
    if (this.stopped !== null) throw this.stopped;
    if (this.closed) throw new StorageError('CLOSED', `the store in ${this.dataDir} is closed`);
  }

  /** Stop the store for good: every later call throws `err`. Returns `err` for `throw`. */
  stop(err: Error): Error {
    if (this.stopped === null) this.stopped = err;
    return err;
  }

  corrupt(store: DamagedStore, key: Bytes, index: number | null, detail: string): StorageCorruptError {
    return new StorageCorruptError({ store, key: printableKey(key), index, detail, dataDir: this.dataDir });
  }

  levelError(e: unknown, what: string): Error {
    return levelError(e, this.dataDir, what);
  }

  /** Refuse further calls at once, let `drain` finish (background cleanup), then close LevelDB. */
  async close(drain: () => Promise<void> = async () => undefined): Promise<void> {
    if (this.closed) return;
    this.closed = true;
    await drain();
    await this.db.close();
  }
}

export function verifyAndDecode<T>(dataDir: string, store: DamagedStore, key: Bytes, raw: Bytes, index: number | null, decode: (b: Bytes) => T): T {
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
export function levelError(e: unknown, dataDir: string, what: string): Error {
  if (e instanceof StorageError || e instanceof StorageCorruptError) return e;
  const code = (e as { code?: unknown }).code;
  const cause = (e as { cause?: { code?: unknown } }).cause;
  if (code === 'LEVEL_CORRUPTION' || cause?.code === 'LEVEL_CORRUPTION') {
    return new StorageCorruptError({ store: 'leveldb', key: '(LevelDB internal)', detail: `LevelDB reports corruption while trying to ${what}: ${(e as Error).message}`, dataDir });
  }
  return new StorageError('IO', `failed to ${what}: ${(e as Error).message}`, { cause: e });
}
