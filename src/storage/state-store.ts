// The state store: the state machine's keyspaces (`s/` + u32be(gen) + `/` + keyspace + `/` + key),
// the applied index (`m/applied`), the conf state as of it (`m/confState`) and the live state
// generation (`m/stateGen`). Reads (get, getSync, iterate, scrub) verify every record's checksum;
// a damaged record stops the whole store.
//
// Like the log store it never commits on its own: it plans its part of a batch (planWrite,
// planFlip, planBootstrap) and updates its in-memory fields (after*) once the batch that the facade
// or the snapshotter wrote is durable. The only batches it writes itself are the ones no reader
// can see: the bounded batches that load a new generation before the snapshotter flips to it.
import type { ConfState, SnapshotMetadata } from '../raft/types.ts';
import { emptyConfState } from '../raft/util.ts';
import type { StorageConfig } from './config.ts';
import { StorageError, storageAssert } from './errors.ts';
import {
  MAX_STATE_GEN,
  META,
  STATE_PREFIX,
  checkKeyspace,
  concatBytes,
  keyBytes,
  keyspacePrefix,
  parseStateGen,
  parseStateKey,
  prefixEnd,
  printableKey,
  stateGenEnd,
  stateGenPrefix,
  stateKey,
} from './keys.ts';
import type { BatchOp, LevelStore } from './level-store.ts';
import { decodeConfState, decodeNat, encodeConfState, encodeNat, frameValue, unframeValue } from './records.ts';
import type { SnapshotRecord } from './snapshot-format.ts';
import type { IterateOptions, StateKey, StateRecord, StorageWrite } from './types.ts';

type Bytes = Uint8Array;

/** The records of one state generation as of one moment (a LevelDB snapshot), in key order. */
export interface StateSnapshotRead {
  readonly generation: number;
  readonly records: AsyncGenerator<SnapshotRecord>;
  /** Release the LevelDB snapshot (also when `records` was never started). */
  close(): Promise<void>;
}

/** Writes the records of a new generation in bounded, synced batches (invisible until the flip). */
export interface GenerationLoader {
  add(r: SnapshotRecord): Promise<void>;
  /** Write what is buffered. */
  flush(): Promise<void>;
}

const isNat = (v: unknown): v is number => typeof v === 'number' && Number.isSafeInteger(v) && v >= 0;

export class StateStore {
  private readonly level: LevelStore;
  private readonly config: StorageConfig;
  private gen: number;
  private appliedIndex: number;
  private confStateValue: ConfState;

  private constructor(level: LevelStore, config: StorageConfig, gen: number, applied: number, confState: ConfState) {
    this.level = level;
    this.config = config;
    this.gen = gen;
    this.appliedIndex = applied;
    this.confStateValue = confState;
  }

  /** Read the applied index, conf state and live generation; delete every other generation (garbage). */
  static async load(level: LevelStore, config: StorageConfig): Promise<StateStore> {
    const confState = await level.readMeta(META.confState, 'conf state', decodeConfState, emptyConfState());
    const applied = await level.readMeta(META.applied, 'applied index', (b) => decodeNat(b, 'applied index'), 0);
    const gen = await level.readMeta(META.stateGen, 'state generation', (b) => decodeNat(b, 'state generation'), 0);
    const store = new StateStore(level, config, gen, applied, confState);
    await store.removeGarbageGenerations();
    return store;
  }

  /** Delete every state generation but the live one (left by an install that crashed before its flip, or whose cleanup was cut short). */
  private async removeGarbageGenerations(): Promise<void> {
    let cursor: Bytes = STATE_PREFIX;
    const end = prefixEnd(STATE_PREFIX);
    for (;;) {
      const keys = await this.level.db.keys({ gte: cursor, lt: end, limit: 1 }).all();
      if (keys.length === 0) return;
      const k = keys[0]!;
      const gen = parseStateGen(k);
      if (gen === null) throw this.level.corrupt('state', k, null, 'malformed state key');
      if (gen !== this.gen) await this.dropGeneration(gen);
      if (gen === MAX_STATE_GEN) return;
      cursor = stateGenEnd(gen);
    }
  }

  get applied(): number {
    return this.appliedIndex;
  }

  get confState(): ConfState {
    return this.confStateValue;
  }

  get generation(): number {
    return this.gen;
  }

  // ---------------------------------------------------------------------------------------------
  // Reads (checksum-verified; a damaged record stops the store)

  async get(keyspace: string, key: StateKey): Promise<Uint8Array | undefined> {
    this.level.checkUsable();
    const k = stateKey(this.gen, keyspace, key);
    let raw: Bytes | undefined;
    try {
      raw = await this.level.db.get(k);
    } catch (e) {
      throw this.level.levelError(e, `read ${printableKey(k)}`);
    }
    return raw === undefined ? undefined : this.verify(k, raw);
  }

  /** Synchronous point read (LevelDB getSync) for an apply function that must not yield. */
  getSync(keyspace: string, key: StateKey): Uint8Array | undefined {
    this.level.checkUsable();
    const k = stateKey(this.gen, keyspace, key);
    let raw: Bytes | undefined;
    try {
      raw = this.level.db.getSync(k);
    } catch (e) {
      throw this.level.levelError(e, `read ${printableKey(k)}`);
    }
    return raw === undefined ? undefined : this.verify(k, raw);
  }

  /** Up to `limit` records of `keyspace` in key order within [gte, lt). */
  async iterate(keyspace: string, opts: IterateOptions): Promise<StateRecord[]> {
    this.level.checkUsable();
    checkKeyspace(keyspace);
    if (!Number.isSafeInteger(opts.limit) || opts.limit <= 0 || opts.limit > this.config.maxIterateLimit) {
      throw new StorageError('INVALID_ARGUMENT', `iterate limit must be in 1..${this.config.maxIterateLimit}, got ${opts.limit}`);
    }
    const prefix = keyspacePrefix(this.gen, keyspace);
    const gte = opts.gte !== undefined ? concatBytes(prefix, keyBytes(opts.gte)) : prefix;
    const lt = opts.lt !== undefined ? concatBytes(prefix, keyBytes(opts.lt)) : prefixEnd(prefix);
    let rows: [Bytes, Bytes][];
    try {
      rows = await this.level.db.iterator({ gte, lt, limit: opts.limit }).all();
    } catch (e) {
      throw this.level.levelError(e, `iterate keyspace ${keyspace}`);
    }
    return rows.map(([k, v]) => ({ key: k.slice(prefix.length), value: this.verify(k, v) }));
  }

  /**
   * Read every record of the live state generation and verify its checksum and key (a scrub).
   * Throws StorageCorruptError for the first damaged record and stops the store. Returns the count.
   */
  async scrub(signal?: AbortSignal): Promise<number> {
    this.level.checkUsable();
    const gen = this.gen;
    const it = this.level.db.iterator({ gte: stateGenPrefix(gen), lt: stateGenEnd(gen) });
    let n = 0;
    try {
      for (;;) {
        if (signal?.aborted === true || this.gen !== gen) return n;
        let rows: [Bytes, Bytes][];
        try {
          rows = await it.nextv(1000);
        } catch (e) {
          throw this.level.levelError(e, 'scan the state');
        }
        if (rows.length === 0) return n;
        for (const [k, v] of rows) {
          if (parseStateKey(k) === null) throw this.level.stop(this.level.corrupt('state', k, null, 'malformed state key'));
          this.verify(k, v);
          n++;
        }
      }
    } finally {
      await it.close().catch(() => undefined);
    }
  }

  private verify(k: Bytes, raw: Bytes): Uint8Array {
    const payload = unframeValue(k, raw);
    if (payload === null) throw this.level.stop(this.level.corrupt('state', k, null, 'checksum mismatch'));
    return new Uint8Array(payload);
  }

  /**
   * The live generation as of now: the LevelDB snapshot is taken synchronously at the call, so
   * writes committed while the records are read are not among them. Damage stops the store (it
   * must never be shipped to a follower).
   */
  openSnapshotRead(): StateSnapshotRead {
    const levelSnap = this.level.db.snapshot();
    const gen = this.gen;
    const level = this.level;
    async function* records(): AsyncGenerator<SnapshotRecord> {
      const it = level.db.iterator({ gte: stateGenPrefix(gen), lt: stateGenEnd(gen), snapshot: levelSnap });
      try {
        for (;;) {
          const rows = await it.nextv(1000);
          if (rows.length === 0) return;
          for (const [k, v] of rows) {
            const payload = unframeValue(k, v);
            if (payload === null) throw level.stop(level.corrupt('state', k, null, 'checksum mismatch (found while writing a snapshot)'));
            const parsed = parseStateKey(k);
            if (parsed === null) throw level.stop(level.corrupt('state', k, null, 'malformed state key'));
            yield { keyspace: parsed.keyspace, key: parsed.key, value: payload };
          }
        }
      } finally {
        await it.close();
      }
    }
    return { generation: gen, records: records(), close: () => levelSnap.close() };
  }

  // ---------------------------------------------------------------------------------------------
  // Commit: plan the conf state, state changes and applied index of each write

  beginPlan(): { applied: number } {
    return { applied: this.appliedIndex };
  }

  /**
   * Validate the state part of `w` against `plan` (then advance it) and add its operations to
   * `ops`. `commitIndex` is the commit index as of this write (the log store's plan), which the
   * applied index may not pass.
   */
  planWrite(plan: { applied: number }, w: StorageWrite, commitIndex: number, ops: BatchOp[]): void {
    if (w.confState !== undefined) {
      ops.push({ type: 'put', key: META.confState, value: frameValue(META.confState, encodeConfState(w.confState)) });
    }
    if (w.state !== undefined) {
      const seen = new Set<string>();
      for (const [ks, key] of w.state.dels ?? []) {
        const k = stateKey(this.gen, ks, key);
        seen.add(Buffer.from(k).toString('latin1'));
        ops.push({ type: 'del', key: k });
      }
      for (const [ks, key, value] of w.state.puts ?? []) {
        if (!(value instanceof Uint8Array)) throw new StorageError('INVALID_ARGUMENT', `value of ${ks}/${String(key)} is not a Uint8Array`);
        const k = stateKey(this.gen, ks, key);
        if (k.length + value.length > this.config.maxRecordBytes) {
          throw new StorageError('INVALID_ARGUMENT', `state record ${printableKey(k)} of ${k.length + value.length} bytes exceeds maxRecordBytes ${this.config.maxRecordBytes}`);
        }
        if (seen.has(Buffer.from(k).toString('latin1'))) throw new StorageError('INVALID_ARGUMENT', `${printableKey(k)} is both put and deleted in one write`);
        ops.push({ type: 'put', key: k, value: frameValue(k, value) });
      }
    }
    if (w.applied !== undefined) {
      const a = w.applied;
      const applied = plan.applied;
      if (!isNat(a)) throw new StorageError('INVALID_ARGUMENT', `applied ${a} is not a non-negative integer`);
      storageAssert(a >= applied, () => `applied index went backwards from ${applied} to ${a}`);
      storageAssert(a <= commitIndex, () => `applied index ${a} is beyond the commit index ${commitIndex} (only committed entries are applied, §5.3)`);
      plan.applied = a;
      ops.push({ type: 'put', key: META.applied, value: frameValue(META.applied, encodeNat(a)) });
    }
  }

  /** After the batch holding `w` is durable. */
  afterWrite(w: StorageWrite): void {
    if (w.confState !== undefined) this.confStateValue = w.confState;
    if (w.applied !== undefined) this.appliedIndex = w.applied;
  }

  // ---------------------------------------------------------------------------------------------
  // Installing a snapshot: load a new generation, then flip to it

  /** The generation an install loads into, emptied of anything an earlier attempt left. */
  async prepareNextGeneration(): Promise<number> {
    const next = this.gen + 1;
    if (next > MAX_STATE_GEN) throw new StorageError('INVALID_ARGUMENT', 'state generations exhausted');
    await this.dropGeneration(next);
    return next;
  }

  /** A loader of records into generation `gen`, in batches of installBatchRecords / installBatchBytes. */
  loader(gen: number): GenerationLoader {
    let batch: BatchOp[] = [];
    let batchBytes = 0;
    const flush = async (): Promise<void> => {
      if (batch.length === 0) return;
      // Synced, although invisible until the flip: a sync write fsyncs only LevelDB's current
      // write-ahead log, and if the memtable rolled over to a new log meanwhile, an unsynced tail
      // of the previous one could be lost in a crash while the flip survives. Batches are
      // installBatchBytes large, so the extra fsyncs cost little.
      const ops = batch;
      batch = [];
      batchBytes = 0;
      await this.level.write(ops, true, 'install-load', 'load a snapshot into a new state generation');
    };
    return {
      add: async (r) => {
        const k = stateKey(gen, r.keyspace, r.key);
        const v = frameValue(k, r.value);
        batch.push({ type: 'put', key: k, value: v });
        batchBytes += k.length + v.length;
        if (batch.length >= this.config.installBatchRecords || batchBytes >= this.config.installBatchBytes) await flush();
      },
      flush,
    };
  }

  /** Plan the flip to generation `gen`, which holds the state of the snapshot `m`. Call under the write lock. */
  planFlip(gen: number, m: SnapshotMetadata, ops: BatchOp[]): void {
    ops.push({ type: 'put', key: META.stateGen, value: frameValue(META.stateGen, encodeNat(gen)) });
    ops.push({ type: 'put', key: META.confState, value: frameValue(META.confState, encodeConfState(m.confState)) });
    ops.push({ type: 'put', key: META.applied, value: frameValue(META.applied, encodeNat(m.index)) });
  }

  /** After the flip batch is durable. */
  afterFlip(gen: number, m: SnapshotMetadata): void {
    this.gen = gen;
    this.confStateValue = m.confState;
    this.appliedIndex = m.index;
  }

  /** Delete every record of generation `gen` (in bounded batches; stops early if the store stops). */
  async dropGeneration(gen: number): Promise<void> {
    await this.level.deleteRange(stateGenPrefix(gen), stateGenEnd(gen), this.config.deleteBatchKeys);
  }

  // ---------------------------------------------------------------------------------------------
  // Bootstrap

  /** Plan the first state of a founding member: `records` in the live generation, applied through `index`. */
  planBootstrap(confState: ConfState, index: number, records: readonly SnapshotRecord[], ops: BatchOp[]): void {
    ops.push({ type: 'put', key: META.confState, value: frameValue(META.confState, encodeConfState(confState)) });
    ops.push({ type: 'put', key: META.applied, value: frameValue(META.applied, encodeNat(index)) });
    for (const r of records) {
      const k = stateKey(this.gen, r.keyspace, r.key);
      ops.push({ type: 'put', key: k, value: frameValue(k, r.value) });
    }
  }

  /** After the bootstrap batch is durable. */
  afterBootstrap(confState: ConfState, index: number): void {
    this.confStateValue = confState;
    this.appliedIndex = index;
  }
}
