// Errors of the durable store, in the project's three kinds (STYLE.md):
//  - StorageCorruptError: a record failed its checksum or the store's structure is broken. The
//    node must stop: it never serves from a damaged store (DESIGN principle 6). The message tells
//    the operator which store and which record, and how to recover.
//  - StorageError: an expected, handled condition, named by a code from a closed union.
//  - storageAssert(): a broken invariant of the caller or of this module: a bug, stop the node.

export type StorageErrorCode =
  /** A configuration value is missing, not an integer, or out of range. */
  | 'INVALID_CONFIG'
  /** The store is not open (never opened, closed, or stopped after a simulated crash). */
  | 'CLOSED'
  /** A keyspace name, key or value is malformed or exceeds its size limit. */
  | 'INVALID_ARGUMENT'
  /** The write queue is full (maxPendingWrites / maxPendingBytes): back off and retry. */
  | 'OVERLOADED'
  /** The requested snapshot file does not exist (superseded or never written). */
  | 'SNAPSHOT_UNAVAILABLE'
  /** A snapshot at or after this index already exists. */
  | 'SNAPSHOT_OUT_OF_DATE'
  /** A snapshot stream or file is malformed, truncated, oversized or fails its checksums. */
  | 'SNAPSHOT_INVALID'
  /** A fault-injection point stopped the store (tests only): behave as if the process died here. */
  | 'SIMULATED_CRASH'
  /** Another process (or another handle in this one) holds the store's LevelDB lock. */
  | 'LOCKED'
  /** The underlying LevelDB or file system failed (I/O error). */
  | 'IO';

export class StorageError extends Error {
  readonly code: StorageErrorCode;
  constructor(code: StorageErrorCode, message: string, options?: { cause?: unknown }) {
    super(`${code}: ${message}`, options);
    this.name = 'StorageError';
    this.code = code;
  }
}

/** Which part of the node's data a damaged record belongs to. */
export type DamagedStore = 'raft log' | 'hard state' | 'conf state' | 'applied index' | 'log head' | 'state generation' | 'snapshot' | 'state' | 'leveldb';

export class StorageCorruptError extends Error {
  readonly code = 'STORAGE_CORRUPT' as const;
  readonly store: DamagedStore;
  /** The LevelDB key (printable form) or the snapshot file of the damaged record. */
  readonly key: string;
  /** For the raft log: the log index of the damaged entry. */
  readonly index: number | null;
  readonly dataDir: string;
  constructor(args: { store: DamagedStore; key: string; index?: number | null; detail: string; dataDir: string }) {
    const where = args.index != null ? `${args.store} entry at index ${args.index} (key ${args.key})` : `${args.store} record ${args.key}`;
    super(
      `STORAGE_CORRUPT: the ${where} is damaged: ${args.detail}. ` +
        `This node refuses to serve from a damaged store. To recover: stop the node, remove it from the cluster ` +
        `through the admin API, wipe its data directory (${args.dataDir}) and add it back as a learner; the leader ` +
        `will send it a snapshot. (Do not restart a wiped voter under its old identity: it has forgotten its vote.)`,
    );
    this.name = 'StorageCorruptError';
    this.store = args.store;
    this.key = args.key;
    this.index = args.index ?? null;
    this.dataDir = args.dataDir;
  }
}

export class StorageInvariantError extends Error {
  constructor(message: string) {
    super(`storage invariant broken: ${message}`);
    this.name = 'StorageInvariantError';
  }
}

/** Assert an invariant of the storage layer. A failure is a bug (here or in the driver): stop the node. */
export function storageAssert(cond: unknown, message: string | (() => string)): asserts cond {
  if (!cond) throw new StorageInvariantError(typeof message === 'string' ? message : message());
}
