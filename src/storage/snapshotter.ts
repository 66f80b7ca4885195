// The snapshotter: snapshot files in `<dataDir>/snap/<term>-<index>.snap` (format in
// snapshot-format.ts) and the record of the newest one (`m/snapshot`). It creates a snapshot from
// the state store and compacts the log store behind it, streams files to followers, receives them,
// installs one (a new state generation, then one flip batch across all three modules), prunes old
// files, bootstraps a founding member, and says when the next snapshot is due.
//
// One snapshot operation runs at a time (its own lock); every batch it writes takes the shared
// write lock like a commit, so a snapshot is recorded between two commits, never inside one.
import { readdir, rename, copyFile, unlink, open as fsOpen, stat } from 'node:fs/promises';
import { join, resolve } from 'node:path';
import { BOOTSTRAP_INDEX, BOOTSTRAP_TERM } from '../raft/memory-storage.ts';
import type { ConfState, HardState, SnapshotMetadata } from '../raft/types.ts';
import { emptyConfState } from '../raft/util.ts';
import type { StorageConfig } from './config.ts';
import { StorageCorruptError, StorageError, storageAssert } from './errors.ts';
import { META } from './keys.ts';
import type { BatchOp, LevelStore } from './level-store.ts';
import type { LogStore } from './log-store.ts';
import { Mutex } from './mutex.ts';
import { decodeSnapshotMeta, encodeSnapshotMeta, frameValue } from './records.ts';
import { SnapshotFileWriter, compareBytes, parseSnapshotFileName, readSnapshotFile, snapshotFileName, snapshotLimits, sortKey, syncDir } from './snapshot-format.ts';
import type { SnapshotRecord } from './snapshot-format.ts';
import { SnapshotReceiver, type ReceivedSnapshot } from './snapshot-receiver.ts';
import type { StateStore } from './state-store.ts';
import type { SnapshotChunkStream, SnapshotInfo, StateFileInfo } from './types.ts';

export interface SnapshotterParts {
  readonly level: LevelStore;
  readonly config: StorageConfig;
  readonly snapDir: string;
  readonly log: LogStore;
  readonly state: StateStore;
}

export class Snapshotter {
  readonly snapDir: string;
  private readonly level: LevelStore;
  private readonly config: StorageConfig;
  private readonly log: LogStore;
  private readonly state: StateStore;
  private meta: SnapshotMetadata;
  /** Records and installs (the snapshot record and the state generation). */
  private readonly lock = new Mutex();
  /** State files being written (one at a time; never held while recording). */
  private readonly fileLock = new Mutex();
  private installingNow = false;
  private background: Promise<void> = Promise.resolve();
  private backgroundError: unknown = null;

  constructor(parts: SnapshotterParts, meta: SnapshotMetadata) {
    this.snapDir = parts.snapDir;
    this.level = parts.level;
    this.config = parts.config;
    this.log = parts.log;
    this.state = parts.state;
    this.meta = meta;
  }

  /** The recorded snapshot's metadata (the log store needs it to rebuild its cache, so it is read first). */
  static readMeta(level: LevelStore): Promise<SnapshotMetadata> {
    return level.readMeta(META.snapshot, 'snapshot', decodeSnapshotMeta, { index: 0, term: 0, confState: emptyConfState() });
  }

  /** Remove temporary files of snapshots whose writing or receiving was cut short. */
  async removeTempFiles(): Promise<void> {
    for (const name of await readdir(this.snapDir)) {
      if (name.endsWith('.tmp')) await unlink(join(this.snapDir, name)).catch(() => undefined);
    }
  }

  get metadata(): SnapshotMetadata {
    return this.meta;
  }

  /** True while installSnapshot() runs (commits are refused meanwhile). */
  get installing(): boolean {
    return this.installingNow;
  }

  /** True once the log's entries cost more than `thresholdBytes` (default compactLogBytes) and the applied index moved past the recorded snapshot. */
  shouldCompact(thresholdBytes: number = this.config.compactLogBytes): boolean {
    return this.log.bytes > thresholdBytes && this.state.applied > this.meta.index;
  }

  // ---------------------------------------------------------------------------------------------
  // Compacting (no copy of the state) and state files (for followers and backups)

  /**
   * Record `meta` (at or below the applied index) as the newest snapshot and compact the log
   * behind it — without copying the state: the state already lives in LevelDB beside its applied
   * index, and a follower that needs it gets a state file written on demand (writeFile). The
   * compacted entries' keys are deleted in the background in bounded batches; the log head never
   * moves past `floor`. Returns null when a snapshot at or past `meta.index` is recorded already.
   */
  async compact(meta: SnapshotMetadata, floor?: number): Promise<{ metadata: SnapshotMetadata; compactedThrough: number } | null> {
    this.log.checkSnapshotPosition(meta);
    return this.lock.run(async () => {
      if (meta.index <= this.meta.index) return null;
      storageAssert(meta.index <= this.state.applied, () => `compact at ${meta.index}, beyond the applied index ${this.state.applied}`);
      const compactedThrough = await this.record(meta, floor);
      this.startBackground(() => this.log.deleteCompacted());
      return { metadata: meta, compactedThrough };
    });
  }

  /**
   * Write a state file of the live state at `meta.index` (the caller checks that it is the applied
   * index and that no state write is in flight), for a follower or a backup; records nothing.
   * An existing file at that index is the same state and is kept. The LevelDB snapshot is taken
   * synchronously at the call, so commits may go on while the file is written; they are not in it.
   */
  async writeFile(meta: SnapshotMetadata): Promise<StateFileInfo> {
    this.log.checkSnapshotPosition(meta);
    const read = this.state.openSnapshotRead();
    return this.fileLock.run(async () => {
      const path = join(this.snapDir, snapshotFileName(meta.term, meta.index));
      const existing = await stat(path).catch(() => null);
      if (existing !== null) {
        await read.close();
        return { path, bytes: existing.size, records: null };
      }
      const writer = new SnapshotFileWriter(path, this.snapDir, this.config);
      let written: { bytes: number; records: number };
      try {
        await writer.begin(meta);
        for await (const r of read.records) await writer.add(r);
        written = await writer.finish();
      } catch (e) {
        await writer.abort();
        throw e instanceof StorageError || e instanceof StorageCorruptError ? e : this.level.levelError(e, 'write a snapshot');
      } finally {
        await read.close();
      }
      await this.prune();
      return { path, bytes: written.bytes, records: written.records };
    });
  }

  /**
   * The newest state file at or past `minIndex` and at or below the applied index (one a follower
   * can be sent: the log goes on from it), or null.
   */
  async newestFile(minIndex: number): Promise<SnapshotMetadata | null> {
    let best: { term: number; index: number } | null = null;
    for (const name of await readdir(this.snapDir)) {
      const p = parseSnapshotFileName(name);
      if (p !== null && p.index >= minIndex && p.index <= this.state.applied && (best === null || p.index > best.index)) best = p;
    }
    if (best === null) return null;
    // Read through the verifying parser: a damaged file is not offered to a follower.
    const path = join(this.snapDir, snapshotFileName(best.term, best.index));
    for await (const meta of readSnapshotHeader(path, this.config)) return meta;
    return null;
  }

  /**
   * Write a state file at `meta.index` (see writeFile), then record it as the newest snapshot and
   * compact the log behind it: what an offline recovery (src/ops/backup.ts) does.
   */
  async create(meta: SnapshotMetadata): Promise<SnapshotInfo> {
    if (meta.index <= this.meta.index) throw new StorageError('SNAPSHOT_OUT_OF_DATE', `a snapshot at ${this.meta.index} exists; cannot create one at ${meta.index}`);
    const written = await this.writeFile(meta);
    const done = await this.compact(meta);
    if (done === null) throw new StorageError('SNAPSHOT_OUT_OF_DATE', `a snapshot at ${this.meta.index} was recorded meanwhile; dropping the one at ${meta.index}`);
    return { metadata: meta, path: written.path, bytes: written.bytes, records: written.records, compactedThrough: done.compactedThrough };
  }

  /** Durably record `meta` as the newest snapshot and move the log head behind it (one small batch); then the caches. */
  private async record(meta: SnapshotMetadata, floor?: number): Promise<number> {
    return this.level.writeLock.run(async () => {
      this.level.checkUsable();
      const ops: BatchOp[] = [{ type: 'put', key: META.snapshot, value: frameValue(META.snapshot, encodeSnapshotMeta(meta)) }];
      const head = this.log.planCompaction(meta, ops, floor);
      await this.level.write(ops, true, 'snapshot-record', 'record a snapshot');
      this.meta = meta;
      this.log.afterCompaction(meta, head);
      return head.index;
    });
  }

  /**
   * Keep the newest keepSnapshotFiles state files at or below the applied index; a file past it is
   * a received snapshot waiting to be installed, and is kept.
   */
  async prune(): Promise<void> {
    const files = (await readdir(this.snapDir))
      .map((name) => ({ name, parsed: parseSnapshotFileName(name) }))
      .filter((f): f is { name: string; parsed: { term: number; index: number } } => f.parsed !== null)
      .sort((a, b) => b.parsed.index - a.parsed.index);
    let kept = 0;
    let removed = false;
    for (const f of files) {
      if (f.parsed.index > this.state.applied) continue;
      if (kept < this.config.keepSnapshotFiles) {
        kept++;
        continue;
      }
      await unlink(join(this.snapDir, f.name)).catch(() => undefined);
      removed = true;
    }
    if (removed) await syncDir(this.snapDir);
  }

  // ---------------------------------------------------------------------------------------------
  // Sending and receiving

  /** The path of the snapshot file at `index`, or null if there is none on disk. */
  async filePath(index: number): Promise<string | null> {
    for (const name of await readdir(this.snapDir)) {
      const p = parseSnapshotFileName(name);
      if (p !== null && p.index === index) return join(this.snapDir, name);
    }
    return null;
  }

  /**
   * Stream the snapshot file at `index` in chunks of at most maxChunkBytes. The file is opened now,
   * so pruning it later does not cut the stream short.
   */
  async openChunks(index: number): Promise<SnapshotChunkStream> {
    const path = await this.filePath(index);
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
    return { metadata, totalBytes, chunks: closingUnstarted(chunks(), () => fh.close()) };
  }

  /** A receiver that writes an incoming snapshot into the snapshot directory. */
  createReceiver(expect?: { index: number; term: number }): Promise<SnapshotReceiver> {
    return SnapshotReceiver.create(this.snapDir, this.config, expect);
  }

  /** Receive a snapshot stream into a verified file; any failure removes the partial file and rethrows. */
  async receive(expect: { index: number; term: number }, chunks: AsyncIterable<Uint8Array>): Promise<ReceivedSnapshot> {
    const rx = await this.createReceiver(expect);
    try {
      for await (const c of chunks) await rx.push(c);
      return await rx.finish();
    } catch (e) {
      await rx.abort();
      throw e;
    }
  }

  // ---------------------------------------------------------------------------------------------
  // Installing

  /**
   * Install a verified snapshot file: load it into a new state generation in bounded batches, then
   * flip to it with one small sync batch that records the snapshot, the state generation, conf
   * state and applied index (state store) and the commit index and log head, dropping the whole
   * log (log store). A crash before the flip leaves the old state (the partial generation is
   * garbage that open() removes); a crash after it leaves the new state. The old generation is
   * deleted in the background.
   */
  async install(file: string): Promise<SnapshotMetadata> {
    return this.lock.run(async () => {
      this.level.checkUsable();
      storageAssert(!this.installingNow, 'installSnapshot() re-entered');
      this.installingNow = true;
      const oldGen = this.state.generation;
      let newGen: number | null = null;
      let flipped = false;
      try {
        await this.backgroundIdle(); // a previous install's cleanup must not race with this one's generation
        newGen = await this.state.prepareNextGeneration();
        const gen = newGen;
        let meta: SnapshotMetadata | null = null;
        const loader = this.state.loader(gen);
        for await (const item of readSnapshotFile(file, snapshotLimits(this.config))) {
          if (item.kind === 'header') {
            meta = item.meta;
            if (meta.index <= this.state.applied || meta.index <= this.meta.index) {
              throw new StorageError('SNAPSHOT_OUT_OF_DATE', `snapshot at ${meta.index} is not ahead of the applied index ${this.state.applied}`);
            }
          } else if (item.kind === 'records') {
            for (const r of item.records) await loader.add(r);
          }
        }
        await loader.flush();
        storageAssert(meta !== null, 'snapshot file without a header passed verification');
        const finalPath = join(this.snapDir, snapshotFileName(meta.term, meta.index));
        if (resolve(file) !== finalPath) await moveFile(file, finalPath);
        await syncDir(this.snapDir);
        const m = meta;
        await this.level.writeLock.run(async () => {
          this.level.checkUsable();
          const ops: BatchOp[] = [{ type: 'put', key: META.snapshot, value: frameValue(META.snapshot, encodeSnapshotMeta(m)) }];
          this.state.planFlip(gen, m, ops);
          const hs: HardState = this.log.planReset(m, ops);
          await this.level.write(ops, true, 'install-flip', 'flip to the installed snapshot');
          flipped = true;
          this.meta = m;
          this.state.afterFlip(gen, m);
          this.log.afterReset(m, hs);
        });
        this.startBackground(() => this.state.dropGeneration(oldGen));
        await this.prune();
        return m;
      } catch (e) {
        if (!flipped && newGen !== null && !this.level.isStopped) {
          // A real failure (bad file, out of date): drop the partial generation now. After a failed
          // write (or a simulated crash) the store is stopped and open() removes it instead.
          await this.state.dropGeneration(newGen).catch(() => undefined);
        }
        throw e;
      } finally {
        this.installingNow = false;
      }
    });
  }

  // ---------------------------------------------------------------------------------------------
  // Bootstrap

  /**
   * Make a fresh store the store of a founding member (docs/raft.md, Bootstrapping): a snapshot at
   * index 1, term 1 carrying the initial configuration and `records`, exactly what
   * `new MemoryStorage(initialConfState)` gives the simulator. The caller checks that the store is fresh.
   */
  async bootstrap(confState: ConfState, records: readonly SnapshotRecord[]): Promise<void> {
    await this.lock.run(async () => {
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
      const hs: HardState = { term: BOOTSTRAP_TERM, vote: 0, commit: BOOTSTRAP_INDEX };
      await this.level.writeLock.run(async () => {
        this.level.checkUsable();
        const ops: BatchOp[] = [{ type: 'put', key: META.snapshot, value: frameValue(META.snapshot, encodeSnapshotMeta(meta)) }];
        this.log.planBootstrap(meta, hs, ops);
        this.state.planBootstrap(confState, meta.index, records, ops);
        await this.level.write(ops, true, 'bootstrap', 'bootstrap');
        this.meta = meta;
        this.state.afterBootstrap(confState, meta.index);
        this.log.afterReset(meta, hs);
      });
    });
  }

  // ---------------------------------------------------------------------------------------------
  // Background cleanup (old state generations)

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

  /** Resolves once background cleanup is finished. */
  async backgroundIdle(): Promise<void> {
    await this.background;
  }

  /** The last background cleanup failure, if any (garbage is then removed at the next open). */
  get lastBackgroundError(): unknown {
    return this.backgroundError;
  }
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

/**
 * `gen`, except that return() or throw() before the first next() also runs `close`: a generator
 * that never started skips its finally block, so a stream opened and then abandoned (a send that
 * failed before reading) would otherwise keep its file open.
 */
function closingUnstarted<T>(gen: AsyncGenerator<T>, close: () => Promise<void>): AsyncGenerator<T> {
  let started = false;
  const closeIfUnstarted = async (): Promise<void> => {
    if (started) return;
    started = true;
    await close();
  };
  const wrapped: AsyncGenerator<T> = {
    next: (...args) => {
      started = true;
      return gen.next(...args);
    },
    return: async (v) => {
      await closeIfUnstarted();
      return gen.return(v);
    },
    throw: async (e) => {
      await closeIfUnstarted();
      return gen.throw(e);
    },
    [Symbol.asyncIterator]: () => wrapped,
  };
  return wrapped;
}
