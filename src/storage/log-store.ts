// The log store: the raft log (`l/` + u64be(index)), the hard state (`m/hardState`) and the log
// head (`m/logHead`, the last compacted entry), with the in-memory cache (a MemoryStorage) that the
// Raft core reads synchronously: entries, terms, first/last index and the core's snapshot view.
//
// It never writes on its own: it validates and *plans* its part of a batch (planWrite,
// planCompaction, planReset, planBootstrap) into operations that the facade or the snapshotter
// writes as one batch through the LevelStore, and it updates its cache (after*) only once that
// batch is durable, under the same write lock. So the core never sees anything that is not durable.
import { MemoryStorage } from '../raft/memory-storage.ts';
import type { Entry, HardState, Snapshot, SnapshotMetadata } from '../raft/types.ts';
import { LOG_ENTRY_OVERHEAD_BYTES, type StorageConfig } from './config.ts';
import { StorageCorruptError, StorageError, storageAssert } from './errors.ts';
import { LOG_PREFIX, META, logKey, parseLogKey, prefixEnd } from './keys.ts';
import { verifyAndDecode, type BatchOp, type LevelStore } from './level-store.ts';
import { decodeEntry, decodeHardState, decodeLogHead, encodeEntry, encodeHardState, encodeLogHead, frameValue } from './records.ts';
import { snapshotRef } from './snapshot-format.ts';
import type { StorageWrite } from './types.ts';

export interface LogHead {
  readonly index: number;
  readonly term: number;
}

/** The log's position while a batch of writes is planned (each write is checked against the ones before it). */
export interface LogPlan {
  last: number;
  hardState: HardState;
  /** The commit index that is durable now (before the batch): entries at or below it are never rewritten. */
  readonly durableCommit: number;
}

const isNat = (v: unknown): v is number => typeof v === 'number' && Number.isSafeInteger(v) && v >= 0;

export class LogStore {
  private readonly level: LevelStore;
  private readonly config: StorageConfig;
  private readonly cache = new MemoryStorage();
  private head: LogHead;
  /** What the entries after the head cost (entryCost each): the compaction policy's measure. */
  private logBytes = 0;

  private constructor(level: LevelStore, config: StorageConfig, head: LogHead) {
    this.level = level;
    this.config = config;
    this.head = head;
  }

  /**
   * Load the hard state and the log after the log head, verifying every record, and rebuild the
   * cache around the recorded snapshot `snap` (which the snapshotter owns). Deletes log keys at or
   * below the log head first (a compaction whose deletes were cut short).
   */
  static async load(level: LevelStore, config: StorageConfig, snap: SnapshotMetadata): Promise<LogStore> {
    const hardState = await level.readMeta(META.hardState, 'hard state', decodeHardState, { term: 0, vote: 0, commit: 0 });
    const head = await level.readMeta(META.logHead, 'log head', decodeLogHead, { index: 0, term: 0 });
    const log = new LogStore(level, config, head);
    if (head.index > 0) await level.deleteRange(LOG_PREFIX, logKey(head.index + 1), config.deleteBatchKeys);
    const entries = await log.readLog();
    log.buildCache(hardState, entries, snap);
    return log;
  }

  private async readLog(): Promise<Entry[]> {
    const out: Entry[] = [];
    let expected = this.head.index + 1;
    let prevTerm = this.head.term;
    const it = this.level.db.iterator({ gte: logKey(expected), lt: prefixEnd(LOG_PREFIX) });
    try {
      for await (const [k, v] of it) {
        const index = parseLogKey(k);
        if (index === null) throw this.level.corrupt('raft log', k, null, 'malformed log key');
        if (index !== expected) throw this.level.corrupt('raft log', logKey(expected), expected, `entry missing (the next stored entry is ${index})`);
        const e = verifyAndDecode(this.level.dataDir, 'raft log', k, v, index, (b) => decodeEntry(index, b));
        if (e.term < prevTerm) throw this.level.corrupt('raft log', k, index, `term ${e.term} is below the previous entry's term ${prevTerm}`);
        prevTerm = e.term;
        out.push(e);
        expected++;
      }
    } catch (e) {
      throw e instanceof StorageCorruptError ? e : this.level.levelError(e, 'read the raft log');
    } finally {
      await it.close().catch(() => undefined);
    }
    return out;
  }

  private buildCache(hardState: HardState, entries: Entry[], snap: SnapshotMetadata): void {
    const head = this.head;
    if (snap.index < head.index) {
      throw this.level.corrupt('log head', META.logHead, null, `the log is compacted through ${head.index}, beyond the snapshot at ${snap.index}`);
    }
    if (snap.index === head.index) {
      if (snap.index > 0) {
        if (snap.term !== head.term) throw this.level.corrupt('snapshot', META.snapshot, null, `snapshot term ${snap.term} differs from the log head's term ${head.term}`);
        this.cache.applySnapshot({ metadata: snap, data: snapshotRef(snap) });
      }
      this.cache.append(entries);
    } else {
      // The log keeps snapshotCatchupEntries entries behind the snapshot: rebuild the cache as it
      // was (log head as its dummy entry, then the snapshot recorded over the retained entries).
      if (head.index > 0) this.cache.applySnapshot({ metadata: { index: head.index, term: head.term, confState: snap.confState }, data: new Uint8Array(0) });
      this.cache.append(entries);
      if (snap.index > this.cache.lastIndex()) throw this.level.corrupt('snapshot', META.snapshot, null, `snapshot index ${snap.index} is beyond the last log index ${this.cache.lastIndex()}`);
      if (this.cache.term(snap.index) !== snap.term) {
        throw this.level.corrupt('snapshot', META.snapshot, null, `snapshot term ${snap.term} differs from the log's term ${this.cache.term(snap.index)} at ${snap.index}`);
      }
      this.cache.createSnapshot(snap.index, snap.confState, snapshotRef(snap));
    }
    this.cache.setHardState(hardState);
    this.logBytes = sumCost(entries);
  }

  /** What the entries after the log head cost (data plus LOG_ENTRY_OVERHEAD_BYTES each). */
  get bytes(): number {
    return this.logBytes;
  }

  // ---------------------------------------------------------------------------------------------
  // The core's synchronous view (served from the verified cache)

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

  get hardState(): HardState {
    return this.cache.initialState().hardState;
  }

  get logHead(): LogHead {
    return this.head;
  }

  /** Nothing was ever written: no term, no vote, no commit, no entry, no compaction. */
  get isEmpty(): boolean {
    const hs = this.hardState;
    return hs.term === 0 && hs.vote === 0 && hs.commit === 0 && this.cache.lastIndex() === 0 && this.head.index === 0;
  }

  // ---------------------------------------------------------------------------------------------
  // Commit: plan the hard state and entries of each write, then update the cache

  beginPlan(): LogPlan {
    const hs = this.hardState;
    return { last: this.cache.lastIndex(), hardState: hs, durableCommit: hs.commit };
  }

  /** Validate the hard state and entries of `w` against `plan` (then advance it) and add their operations to `ops`. */
  planWrite(plan: LogPlan, w: StorageWrite, ops: BatchOp[]): void {
    if (w.hardState !== undefined) {
      const n = w.hardState;
      const hs = plan.hardState;
      if (!isNat(n.term) || !isNat(n.vote) || !isNat(n.commit)) throw new StorageError('INVALID_ARGUMENT', `malformed hard state ${JSON.stringify(n)}`);
      storageAssert(n.term >= hs.term, () => `hard state term went backwards from ${hs.term} to ${n.term} (Raft §5.1: terms only increase)`);
      storageAssert(n.term > hs.term || hs.vote === 0 || n.vote === hs.vote, () => `vote in term ${n.term} changed from ${hs.vote} to ${n.vote} (Raft §5.2: at most one vote per term)`);
      storageAssert(n.commit >= hs.commit, () => `commit index went backwards from ${hs.commit} to ${n.commit}`);
      plan.hardState = n;
      ops.push({ type: 'put', key: META.hardState, value: frameValue(META.hardState, encodeHardState(n)) });
    }
    if (w.entries === undefined || w.entries.length === 0) return;
    let es = w.entries;
    for (let i = 0; i < es.length; i++) {
      const e = es[i]!;
      if (!isNat(e.index) || !isNat(e.term) || !(e.data instanceof Uint8Array) || (e.type !== 'normal' && e.type !== 'confChange')) {
        throw new StorageError('INVALID_ARGUMENT', `malformed entry at position ${i}`);
      }
      if (e.data.length > this.config.maxRecordBytes) throw new StorageError('INVALID_ARGUMENT', `entry ${e.index} has ${e.data.length} bytes of data, over maxRecordBytes ${this.config.maxRecordBytes}`);
      storageAssert(i === 0 || (e.index === es[i - 1]!.index + 1 && e.term >= es[i - 1]!.term), () => `entries not contiguous with non-decreasing terms at index ${e.index}`);
    }
    const first = this.cache.firstIndex();
    if (es[0]!.index < first) es = es.slice(Math.min(es.length, first - es[0]!.index)); // already compacted (as MemoryStorage.append)
    if (es.length === 0) return;
    const lo = es[0]!.index;
    const hi = es[es.length - 1]!.index;
    const last = plan.last;
    storageAssert(lo <= last + 1, () => `entries start at ${lo}, leaving a gap after the last index ${last}`);
    // Raft never rewrites a committed entry (Log Matching + Leader Completeness, §5.3/§5.4).
    for (let i = lo; i <= Math.min(hi, plan.durableCommit, this.cache.lastIndex()); i++) {
      storageAssert(this.cache.term(i) === es[i - lo]!.term, () => `entries would overwrite committed entry ${i} (term ${this.cache.term(i)}) with term ${es[i - lo]!.term}`);
    }
    for (const e of es) {
      const k = logKey(e.index);
      ops.push({ type: 'put', key: k, value: frameValue(k, encodeEntry(e)) });
    }
    for (let i = hi + 1; i <= last; i++) ops.push({ type: 'del', key: logKey(i) }); // the stale suffix
    plan.last = hi;
  }

  /** After the batch holding `w` is durable. */
  afterWrite(w: StorageWrite): void {
    if (w.hardState !== undefined) this.cache.setHardState(w.hardState);
    if (w.entries !== undefined && w.entries.length > 0) {
      const first = this.cache.firstIndex();
      const last = this.cache.lastIndex();
      const es = w.entries;
      // A conflicting suffix is replaced (MemoryStorage.append truncates it): it no longer costs.
      const from = Math.max(es[0]!.index, first);
      if (from <= last) this.logBytes -= sumCost(this.cache.entries(from, last + 1, Number.MAX_SAFE_INTEGER));
      this.cache.append(es);
      for (const e of es) if (e.index >= first) this.logBytes += entryCost(e);
    }
  }

  // ---------------------------------------------------------------------------------------------
  // Snapshots

  /** Check that `meta` names an entry of the log, with its term (a snapshot is taken at a log position). */
  checkSnapshotPosition(meta: SnapshotMetadata): void {
    storageAssert(meta.index >= this.cache.firstIndex() - 1 && meta.index <= this.cache.lastIndex(), () => `createSnapshot at ${meta.index} outside the log [${this.cache.firstIndex() - 1}, ${this.cache.lastIndex()}]`);
    storageAssert(this.cache.term(meta.index) === meta.term, () => `createSnapshot term ${meta.term} differs from the log's term ${this.cache.term(meta.index)} at ${meta.index}`);
  }

  /**
   * Plan the compaction behind a snapshot record at `meta.index`: the new log head keeps
   * snapshotCatchupEntries entries behind it, so a briefly lagging follower can still catch up
   * from the log — fewer if the entries left would cost more than half of compactLogBytes. Only
   * the log head is written here; the compacted entries' keys are deleted afterwards in bounded
   * batches (deleteCompacted), so a compaction never writes one huge batch; a restart deletes
   * what a crash left (load). The head never moves past `floor` (entries a follower that was just
   * sent a state file still needs). Returns the new log head (the old one if nothing is
   * compacted). Call under the write lock.
   */
  planCompaction(meta: SnapshotMetadata, ops: BatchOp[], floor = Number.MAX_SAFE_INTEGER): LogHead {
    const upTo = Math.min(meta.index, this.cache.lastIndex(), floor);
    let target = Math.min(Math.max(this.head.index, meta.index - this.config.snapshotCatchupEntries), upTo);
    if (upTo > this.head.index) {
      // Entries (head, upTo], to weigh what compacting through each of them leaves.
      const es = this.cache.entries(this.head.index + 1, upTo + 1, Number.MAX_SAFE_INTEGER);
      let left = this.logBytes;
      for (const e of es) if (e.index <= target) left -= entryCost(e);
      for (const e of es) {
        if (e.index <= target) continue;
        if (left <= this.config.compactLogBytes / 2) break;
        target = e.index;
        left -= entryCost(e);
      }
    }
    if (target <= this.head.index) return this.head;
    const head = { index: target, term: this.cache.term(target) };
    ops.push({ type: 'put', key: META.logHead, value: frameValue(META.logHead, encodeLogHead(head.index, head.term)) });
    return head;
  }

  /** After the batch recording the snapshot `meta` and compacting to `head` is durable. */
  afterCompaction(meta: SnapshotMetadata, head: LogHead): void {
    this.cache.createSnapshot(meta.index, meta.confState, snapshotRef(meta));
    if (head.index > this.head.index) {
      this.logBytes -= sumCost(this.cache.entries(this.cache.firstIndex(), head.index + 1, Number.MAX_SAFE_INTEGER));
      this.cache.compact(head.index);
    }
    this.head = head;
  }

  /**
   * Delete the keys of entries at or below the log head (compacted), in batches of
   * deleteBatchKeys, each under the write lock between commits. Returns how many were deleted.
   */
  deleteCompacted(): Promise<number> {
    return this.level.deleteRange(LOG_PREFIX, logKey(this.head.index + 1), this.config.deleteBatchKeys);
  }

  /**
   * Plan the log's part of installing the snapshot `m`: the whole log goes (etcd's ApplySnapshot:
   * entries after the snapshot index may conflict with the leader's log), the log head moves to the
   * snapshot, and the commit index moves up to it (term and vote are the core's business: it
   * persists them in the Ready). Bounded by the cached log, which compaction bounds. Returns the
   * new hard state. Call under the write lock.
   */
  planReset(m: SnapshotMetadata, ops: BatchOp[]): HardState {
    const hs = this.hardState;
    const newHs: HardState = { ...hs, commit: Math.max(hs.commit, m.index) };
    ops.push({ type: 'put', key: META.hardState, value: frameValue(META.hardState, encodeHardState(newHs)) });
    ops.push({ type: 'put', key: META.logHead, value: frameValue(META.logHead, encodeLogHead(m.index, m.term)) });
    for (let i = this.cache.firstIndex(); i <= this.cache.lastIndex(); i++) ops.push({ type: 'del', key: logKey(i) });
    return newHs;
  }

  /** After the batch planned by planReset (or planBootstrap) is durable. */
  afterReset(m: SnapshotMetadata, hardState: HardState): void {
    this.head = { index: m.index, term: m.term };
    this.logBytes = 0;
    this.cache.applySnapshot({ metadata: m, data: snapshotRef(m) });
    this.cache.setHardState(hardState);
  }

  /** Plan the log of a founding member: empty, headed by the bootstrap snapshot `m`, with `hardState`. */
  planBootstrap(m: SnapshotMetadata, hardState: HardState, ops: BatchOp[]): void {
    ops.push({ type: 'put', key: META.logHead, value: frameValue(META.logHead, encodeLogHead(m.index, m.term)) });
    ops.push({ type: 'put', key: META.hardState, value: frameValue(META.hardState, encodeHardState(hardState)) });
  }
}

/** What an entry costs the log (compactLogBytes' measure). */
export function entryCost(e: Entry): number {
  return e.data.length + LOG_ENTRY_OVERHEAD_BYTES;
}

function sumCost(es: readonly Entry[]): number {
  let n = 0;
  for (const e of es) n += entryCost(e);
  return n;
}
