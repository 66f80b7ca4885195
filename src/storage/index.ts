// The durable storage layer's public surface (see durable-storage.ts for the design).
export { DurableStorage, snapshotRef } from './durable-storage.ts';
export type {
  CommitOptions,
  IterateOptions,
  OpenOptions,
  SnapshotChunkStream,
  SnapshotInfo,
  StateChanges,
  StateKey,
  StateRecord,
  StorageStats,
  StorageWrite,
  WrapWrites,
  WriteBatch,
  WritePurpose,
  BatchWrite,
} from './durable-storage.ts';
export { StorageWriter } from './storage-writer.ts';
export type { StorageWriterStats } from './storage-writer.ts';
export { SnapshotReceiver } from './snapshot-receiver.ts';
export type { ReceivedSnapshot } from './snapshot-receiver.ts';
export { defaultStorageConfig, resolveStorageConfig, validateStorageConfig } from './config.ts';
export type { StorageConfig } from './config.ts';
export { StorageCorruptError, StorageError, StorageInvariantError } from './errors.ts';
export type { DamagedStore, StorageErrorCode } from './errors.ts';
