// Configuration of the durable store. Every limit is explicit and enforced (TIGER_STYLE: put a
// limit on everything). Each key is documented where its default is set; validateStorageConfig
// refuses a bad value at start-up with a message naming the key.
import { StorageError } from './errors.ts';

export interface StorageConfig {
  /**
   * Take a snapshot once this many entries have been applied since the last one
   * (see DurableStorage.shouldSnapshot). Bounds the log's disk and memory footprint.
   */
  readonly snapshotEveryEntries: number;
  /**
   * Entries kept behind a new snapshot, so a follower that is only slightly behind can catch up
   * from the log instead of receiving a whole snapshot (etcd's SnapshotCatchUpEntries).
   */
  readonly snapshotCatchupEntries: number;
  /** Snapshot files kept on disk (the newest N); older ones are deleted after a new one is recorded. */
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
}

const MiB = 1024 * 1024;

export const defaultStorageConfig: StorageConfig = {
  snapshotEveryEntries: 10_000,
  snapshotCatchupEntries: 5_000,
  keepSnapshotFiles: 2,
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
  if (c.snapshotCatchupEntries >= c.snapshotEveryEntries) {
    // Otherwise a snapshot would never compact anything: the log would only grow.
    throw new StorageError('INVALID_CONFIG', `storage.snapshotCatchupEntries (${c.snapshotCatchupEntries}) must be below storage.snapshotEveryEntries (${c.snapshotEveryEntries})`);
  }
  if (c.maxChunkBytes < 1024) throw new StorageError('INVALID_CONFIG', `storage.maxChunkBytes must be at least 1024, got ${c.maxChunkBytes}`);
  if (c.snapshotFrameBytes > c.maxRecordBytes) {
    throw new StorageError('INVALID_CONFIG', `storage.snapshotFrameBytes (${c.snapshotFrameBytes}) must not exceed storage.maxRecordBytes (${c.maxRecordBytes})`);
  }
}
