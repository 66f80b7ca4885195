// The storage layer's public types, shared by the facade (durable-storage.ts) and the modules
// behind it (log-store.ts, state-store.ts, snapshotter.ts).
import type { ConfState, Entry, HardState, SnapshotMetadata } from '../raft/types.ts';

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
  /** Records written; null when a file at that index was already on disk and was kept. */
  readonly records: number | null;
  /** The log was compacted through this index (its term is kept as the log head). */
  readonly compactedThrough: number;
}

/** A state file written for a follower or a backup (DurableStorage.writeStateFile). */
export interface StateFileInfo {
  readonly path: string;
  readonly bytes: number;
  /** Records written; null when a file at that index was already on disk and was kept. */
  readonly records: number | null;
}

export interface SnapshotChunkStream {
  readonly metadata: SnapshotMetadata;
  readonly totalBytes: number;
  /** Chunks of at most maxChunkBytes, in order. The file stays readable even if it is pruned meanwhile. */
  readonly chunks: AsyncGenerator<Uint8Array>;
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
  /** What the log's entries after the head cost (compactLogBytes' measure). */
  readonly logBytes: number;
}
