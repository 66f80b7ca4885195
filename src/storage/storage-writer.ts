// The storage writer actor: group commit. Writes submitted while a sync batch is in flight (or in
// the same turn of the event loop) are merged, in submission order, into the next single
// DurableStorage.commit(): one LevelDB batch, one fsync, however many proposals, Ready halves
// and apply results arrived meanwhile. Each submit() resolves only after the fsync that covers
// it, so nothing is acknowledged before it is durable (Raft §5: persist before you respond).
//
// The queue is bounded (maxPendingWrites, maxPendingBytes): beyond it submit() refuses with
// OVERLOADED instead of buffering without limit while the disk is slow.
import type { StorageConfig } from './config.ts';
import type { DurableStorage, StorageWrite } from './durable-storage.ts';
import { StorageError } from './errors.ts';

interface Pending {
  readonly write: StorageWrite;
  readonly sync: boolean;
  readonly bytes: number;
  readonly resolve: () => void;
  readonly reject: (e: unknown) => void;
}

export interface StorageWriterStats {
  /** Group commits (sync batches) issued by this writer. */
  readonly flushes: number;
  /** Writes made durable. */
  readonly writes: number;
  /** Writes in the largest group commit so far. */
  readonly maxWritesPerFlush: number;
  readonly pendingWrites: number;
  readonly pendingBytes: number;
}

/** Bytes a write counts for against maxPendingBytes: entry data and state keys and values. */
export function writeBytes(w: StorageWrite): number {
  let n = 64;
  for (const e of w.entries ?? []) n += e.data.length + 16;
  for (const [ks, k, v] of w.state?.puts ?? []) n += ks.length + k.length + v.length;
  for (const [ks, k] of w.state?.dels ?? []) n += ks.length + k.length;
  return n;
}

export class StorageWriter {
  private readonly store: DurableStorage;
  private readonly limits: Pick<StorageConfig, 'maxPendingWrites' | 'maxPendingBytes'>;
  private queue: Pending[] = [];
  private queuedBytes = 0;
  private flushing = false;
  private scheduled = false;
  private flushes = 0;
  private writes = 0;
  private maxWritesPerFlush = 0;
  private idleWaiters: (() => void)[] = [];

  constructor(
    store: DurableStorage,
    limits: Pick<StorageConfig, 'maxPendingWrites' | 'maxPendingBytes'> = store.config,
  ) {
    this.store = store;
    this.limits = limits;
  }

  /**
   * Queue a write for the next group commit. Resolves after the fsync that makes it durable. With
   * `sync: false` (see CommitOptions) the write needs no fsync of its own, but it is fsynced anyway
   * if it shares its group with a write that does.
   */
  submit(write: StorageWrite, opts: { sync?: boolean } = {}): Promise<void> {
    const bytes = writeBytes(write);
    if (this.queue.length >= this.limits.maxPendingWrites || this.queuedBytes + bytes > this.limits.maxPendingBytes) {
      return Promise.reject(
        new StorageError('OVERLOADED', `write queue full (${this.queue.length} writes, ${this.queuedBytes} bytes; limits ${this.limits.maxPendingWrites} writes, ${this.limits.maxPendingBytes} bytes)`),
      );
    }
    return new Promise<void>((resolve, reject) => {
      this.queue.push({ write, sync: opts.sync ?? true, bytes, resolve, reject });
      this.queuedBytes += bytes;
      this.schedule();
    });
  }

  stats(): StorageWriterStats {
    return { flushes: this.flushes, writes: this.writes, maxWritesPerFlush: this.maxWritesPerFlush, pendingWrites: this.queue.length, pendingBytes: this.queuedBytes };
  }

  /** Resolves when nothing is queued or in flight. */
  idle(): Promise<void> {
    if (!this.flushing && !this.scheduled && this.queue.length === 0) return Promise.resolve();
    return new Promise((r) => this.idleWaiters.push(r));
  }

  private schedule(): void {
    if (this.flushing || this.scheduled) return; // the running flush picks the queue up when it ends
    this.scheduled = true;
    // Wait for the end of this event-loop turn so that writes submitted together share a batch.
    setImmediate(() => {
      this.scheduled = false;
      void this.flushLoop();
    });
  }

  private async flushLoop(): Promise<void> {
    this.flushing = true;
    try {
      while (this.queue.length > 0) {
        const group = this.queue;
        this.queue = [];
        this.queuedBytes = 0;
        try {
          await this.store.commit(
            group.map((p) => p.write),
            { sync: group.some((p) => p.sync) },
          );
          this.flushes++;
          this.writes += group.length;
          this.maxWritesPerFlush = Math.max(this.maxWritesPerFlush, group.length);
          for (const p of group) p.resolve();
        } catch (e) {
          // A failed commit fails every write of the group; none of them is durable.
          for (const p of group) p.reject(e);
        }
      }
    } finally {
      this.flushing = false;
      const waiters = this.idleWaiters;
      this.idleWaiters = [];
      for (const w of waiters) w();
    }
  }
}
