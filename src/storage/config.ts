// Configuration of the durable store. Every limit is explicit and enforced (TIGER_STYLE: put a
// limit on everything). Each key is documented where its default is set; validateStorageConfig
// refuses a bad value at start-up with a message naming the key.
import { StorageError } from './errors.ts';

export interface StorageConfig {
  /**
   * Compact the log once its entries cost more than this many bytes (each entry's data plus
   * LOG_ENTRY_OVERHEAD_BYTES; see DurableStorage.shouldCompact). Compaction copies no state: the
   * state already lives in LevelDB beside its applied index (issue 15). Bounds the log's disk and
   * memory footprint (the log after the head is cached in memory for the core).
   */
  readonly compactLogBytes: number;
  /**
   * Entries kept behind the compaction point, so a follower that is only slightly behind can catch
   * up from the log instead of receiving the whole state (etcd's SnapshotCatchUpEntries); fewer
   * when they would cost more than half of compactLogBytes.
   */
  readonly snapshotCatchupEntries: number;
  /** State files kept on disk (the newest N at or below the applied index; a received one waiting to be installed is kept too): a cache for followers and backups, each as large as the state. */
  readonly keepSnapshotFiles: number;
  /** Largest piece of a snapshot file handed to the transport in one message. */
  readonly maxChunkBytes: number;
  /** Largest snapshot file this node writes or accepts from a leader. */
  readonly maxSnapshotBytes: number;
  /** A snapshot frame is closed once its records reach this size (a single record may exceed it, up to maxRecordBytes). */
  readonly snapshotFrameBytes: number;
  /** Largest state record (keyspace + key + value) and largest log entry payload accepted. */
  readonly maxRecordBytes: number;
  /** Records per LevelDB batch while loading a snapshot into a new state generation. */
  readonly installBatchRecords: number;
  /** Bytes per LevelDB batch while loading a snapshot into a new state generation. */
  readonly installBatchBytes: number;
  /** Keys per LevelDB batch when deleting an old state generation or stale log keys. */
  readonly deleteBatchKeys: number;
  /** Largest `limit` accepted by iterate(). */
  readonly maxIterateLimit: number;
  /** StorageWriter: writes waiting for the next group commit before submit() refuses (OVERLOADED). */
  readonly maxPendingWrites: number;
  /** StorageWriter: bytes of entries and state values waiting for the next group commit before submit() refuses. */
  readonly maxPendingBytes: number;
  /**
   * LevelDB's max_open_files: the table files it keeps open — and memory-maps, so their pages count
   * in the process's RSS. LevelDB's own default (1000) maps a large state whole (issue 15); 74 is
   * the least it accepts (it keeps 10 for other files: 64 tables of ~2 MiB).
   */
  readonly levelMaxOpenFiles: number;
}

/** LevelDB clips max_open_files to this range (db_impl.cc SanitizeOptions); outside it a value would not mean what it says. */
export const LEVEL_MAX_OPEN_FILES_RANGE = { min: 74, max: 50_000 } as const;

const MiB = 1024 * 1024;

/**
 * What an entry costs the log beyond its data, for compactLogBytes: its key and framing on disk,
 * and its Entry object and Uint8Array in the in-memory cache.
 */
export const LOG_ENTRY_OVERHEAD_BYTES = 128;

export const defaultStorageConfig: StorageConfig = {
  compactLogBytes: 16 * MiB,
  snapshotCatchupEntries: 5_000,
  keepSnapshotFiles: 1,
  maxChunkBytes: 1 * MiB,
  maxSnapshotBytes: 4096 * MiB,
  snapshotFrameBytes: 256 * 1024,
  maxRecordBytes: 4 * MiB,
  installBatchRecords: 10_000,
  installBatchBytes: 4 * MiB,
  deleteBatchKeys: 10_000,
  maxIterateLimit: 10_000,
  maxPendingWrites: 10_000,
  maxPendingBytes: 64 * MiB,
  levelMaxOpenFiles: LEVEL_MAX_OPEN_FILES_RANGE.min,
};

/** Merge `partial` over the defaults and validate the result. */
export function resolveStorageConfig(partial: Partial<StorageConfig> = {}): StorageConfig {
  const c: StorageConfig = { ...defaultStorageConfig, ...partial };
  validateStorageConfig(c);
  return c;
}

export function validateStorageConfig(c: StorageConfig): void {
  const keys = Object.keys(defaultStorageConfig) as (keyof StorageConfig)[];
  for (const k of keys) {
    const v = c[k];
    if (typeof v !== 'number' || !Number.isSafeInteger(v) || v <= 0) {
      throw new StorageError('INVALID_CONFIG', `storage.${k} must be a positive integer, got ${String(v)}`);
    }
  }
  for (const k of Object.keys(c)) {
    if (!(k in defaultStorageConfig)) throw new StorageError('INVALID_CONFIG', `unknown storage config key storage.${k}`);
  }
  if (c.snapshotCatchupEntries * LOG_ENTRY_OVERHEAD_BYTES * 2 > c.compactLogBytes) {
    // The kept entries must fit in half the budget, or a compaction could leave the log over it
    // and the next entry would compact again.
    throw new StorageError(
      'INVALID_CONFIG',
      `storage.snapshotCatchupEntries (${c.snapshotCatchupEntries}) times ${LOG_ENTRY_OVERHEAD_BYTES * 2} bytes must not exceed storage.compactLogBytes (${c.compactLogBytes})`,
    );
  }
  if (c.levelMaxOpenFiles < LEVEL_MAX_OPEN_FILES_RANGE.min || c.levelMaxOpenFiles > LEVEL_MAX_OPEN_FILES_RANGE.max) {
    throw new StorageError('INVALID_CONFIG', `storage.levelMaxOpenFiles must be between ${LEVEL_MAX_OPEN_FILES_RANGE.min} and ${LEVEL_MAX_OPEN_FILES_RANGE.max} (LevelDB clips it to that range), got ${c.levelMaxOpenFiles}`);
  }
  if (c.maxChunkBytes < 1024) throw new StorageError('INVALID_CONFIG', `storage.maxChunkBytes must be at least 1024, got ${c.maxChunkBytes}`);
  if (c.snapshotFrameBytes > c.maxRecordBytes) {
    throw new StorageError('INVALID_CONFIG', `storage.snapshotFrameBytes (${c.snapshotFrameBytes}) must not exceed storage.maxRecordBytes (${c.maxRecordBytes})`);
  }
}
