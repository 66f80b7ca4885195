// The read cache of HTTP workers: small, read-mostly tables (status now; clients, signing keys and
// configuration later) that the primary pushes so a worker can answer from memory without an IPC
// round trip (DESIGN "Process model").
//
// Each push replaces a whole table and carries a version that increases by one per push of that
// table. A worker applies an update only if its version is newer than what it holds, so a table
// sent twice (the full snapshot a new worker receives, racing a concurrent publish) never rolls a
// table back. The data is as fresh as the primary's last push: readers that need more must ask
// the node.

/**
 * The read-cache table holding this node's status, under STATUS_KEY. Here, not in http.ts, so the
 * primary can publish it without loading the HTTP app (docs/operations.md, "Boot time").
 */
export const STATUS_TABLE = 'status';
export const STATUS_KEY = 'self';

/** One push of one table, as it crosses the IPC channel. */
export interface CacheUpdate {
  readonly table: string;
  /** The whole table: [key, value] pairs. */
  readonly entries: readonly (readonly [string, unknown])[];
  /** Per-table version, from 1. */
  readonly version: number;
}

export interface ReadCacheLimits {
  /** Distinct tables held. */
  readonly maxTables: number;
  /** Entries in one table. */
  readonly maxEntriesPerTable: number;
}

/** Small tables only: anything bigger belongs in a read against the node. */
export const DEFAULT_READ_CACHE_LIMITS: ReadCacheLimits = { maxTables: 32, maxEntriesPerTable: 10_000 };

const MAX_TABLE_NAME_CHARS = 64;

export class ReadCacheError extends Error {
  constructor(message: string) {
    super(message);
    this.name = 'ReadCacheError';
  }
}

/** Check an update's shape and limits; throws ReadCacheError. Used on both sides of the channel. */
export function checkCacheUpdate(u: unknown, limits: ReadCacheLimits): CacheUpdate {
  if (typeof u !== 'object' || u === null) throw new ReadCacheError('cache update is not a map');
  const o = u as Record<string, unknown>;
  if (typeof o.table !== 'string' || o.table.length === 0 || o.table.length > MAX_TABLE_NAME_CHARS) {
    throw new ReadCacheError(`cache update table must be a name of 1 to ${MAX_TABLE_NAME_CHARS} characters`);
  }
  if (typeof o.version !== 'number' || !Number.isSafeInteger(o.version) || o.version < 1) throw new ReadCacheError(`cache update ${o.table}: bad version`);
  if (!Array.isArray(o.entries)) throw new ReadCacheError(`cache update ${o.table}: entries must be a list`);
  if (o.entries.length > limits.maxEntriesPerTable) {
    throw new ReadCacheError(`cache update ${o.table}: ${o.entries.length} entries exceed the limit of ${limits.maxEntriesPerTable}`);
  }
  for (const e of o.entries as unknown[]) {
    if (!Array.isArray(e) || e.length !== 2 || typeof e[0] !== 'string') throw new ReadCacheError(`cache update ${o.table}: each entry must be [key, value]`);
  }
  return o as unknown as CacheUpdate;
}

interface Table {
  readonly version: number;
  readonly entries: ReadonlyMap<string, unknown>;
}

export class ReadCache {
  private readonly limits: ReadCacheLimits;
  private readonly tables = new Map<string, Table>();

  constructor(limits: ReadCacheLimits = DEFAULT_READ_CACHE_LIMITS) {
    this.limits = limits;
  }

  /** Apply a pushed table. Returns false (and changes nothing) if it is not newer than the table held. */
  apply(update: unknown): boolean {
    const u = checkCacheUpdate(update, this.limits);
    const held = this.tables.get(u.table);
    if (held && held.version >= u.version) return false;
    if (!held && this.tables.size >= this.limits.maxTables) throw new ReadCacheError(`cache holds ${this.tables.size} tables, the limit; refusing table ${u.table}`);
    this.tables.set(u.table, { version: u.version, entries: new Map(u.entries) });
    return true;
  }

  get(table: string, key: string): unknown {
    return this.tables.get(table)?.entries.get(key);
  }

  /** The table's version, or 0 if it was never pushed. */
  version(table: string): number {
    return this.tables.get(table)?.version ?? 0;
  }

  entries(table: string): ReadonlyMap<string, unknown> {
    return this.tables.get(table)?.entries ?? new Map();
  }
}

/**
 * The primary's side: holds the latest version of every table, keeps its own ReadCache current
 * (HTTP served by the primary reads the same cache the workers do), and hands each update to the
 * subscribers (one per worker). A new subscriber first receives every table.
 */
export class CachePublisher {
  private readonly limits: ReadCacheLimits;
  readonly local: ReadCache;
  private readonly latest = new Map<string, CacheUpdate>();
  private readonly subscribers = new Set<(u: CacheUpdate) => void>();

  constructor(limits: ReadCacheLimits = DEFAULT_READ_CACHE_LIMITS) {
    this.limits = limits;
    this.local = new ReadCache(limits);
  }

  publish(table: string, entries: Iterable<readonly [string, unknown]>): CacheUpdate {
    const list = [...entries];
    const version = (this.latest.get(table)?.version ?? 0) + 1;
    if (!this.latest.has(table) && this.latest.size >= this.limits.maxTables) throw new ReadCacheError(`cannot publish table ${table}: ${this.latest.size} tables is the limit`);
    const u = checkCacheUpdate({ table, entries: list, version }, this.limits);
    this.latest.set(table, u);
    this.local.apply(u);
    for (const s of this.subscribers) s(u);
    return u;
  }

  /** Receive every table now, then every update. Returns the unsubscribe function. */
  subscribe(send: (u: CacheUpdate) => void): () => void {
    for (const u of this.latest.values()) send(u);
    this.subscribers.add(send);
    return () => this.subscribers.delete(send);
  }
}
