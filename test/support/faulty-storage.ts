// Fault injection for storage tests: a wrapper around the store's batch writer
// (OpenOptions.wrapWrites), so the production store has no fault branches. A rule picks the n-th
// batch of one kind (WritePurpose) and either
//  - fails it before anything is written (an IO error: nothing of the batch is durable), or
//  - lets it become durable and then "crashes" (StorageError SIMULATED_CRASH), as a process killed
//    right after the write would leave the disk.
// Either way the store stops for good (every later call throws the same error) and cleans nothing
// up; reopening the data directory shows what a restart after that crash would see.
import type { BatchWrite, WrapWrites, WritePurpose } from '../../src/storage/durable-storage.ts';
import { StorageError } from '../../src/storage/errors.ts';

export interface WriteFault {
  readonly purpose: WritePurpose;
  /** The n-th batch of `purpose` (1-based) since the store was opened. */
  readonly nth: number;
  /** 'fail': refuse the batch unwritten; 'crash': write it, then stop dead. */
  readonly kind: 'fail' | 'crash';
}

export class FaultyWrites {
  private readonly faults: readonly WriteFault[];
  private readonly counts = new Map<WritePurpose, number>();
  /** Every batch that reached the real writer, in order (ops included). */
  readonly written: BatchWrite[] = [];
  /** The faults that fired, in order. */
  readonly fired: WriteFault[] = [];

  constructor(...faults: WriteFault[]) {
    for (const f of faults) {
      if (!Number.isSafeInteger(f.nth) || f.nth < 1) throw new RangeError(`fault nth must be a positive integer, got ${f.nth}`);
    }
    this.faults = faults;
  }

  /** Batches of `purpose` the store tried to write (failed ones included). */
  count(purpose: WritePurpose): number {
    return this.counts.get(purpose) ?? 0;
  }

  /** Pass as OpenOptions.wrapWrites. */
  readonly wrapWrites: WrapWrites = (write) => async (w) => {
    const n = this.count(w.purpose) + 1;
    this.counts.set(w.purpose, n);
    const fault = this.faults.find((f) => f.purpose === w.purpose && f.nth === n);
    if (fault?.kind === 'fail') {
      this.fired.push(fault);
      throw Object.assign(new Error(`EIO: injected write failure of ${w.purpose} batch ${n}`), { code: 'EIO' });
    }
    await write(w);
    this.written.push(w);
    if (fault?.kind === 'crash') {
      this.fired.push(fault);
      throw new StorageError('SIMULATED_CRASH', `fault injection: the store stopped right after ${w.purpose} batch ${n}`);
    }
  };
}

/** Crash after `n` batches of a snapshot install's new generation are durable (before the flip). */
export const crashAfterInstallBatches = (n: number): FaultyWrites => new FaultyWrites({ purpose: 'install-load', nth: n, kind: 'crash' });

/** Crash right after the flip to an installed snapshot is durable, before any cleanup or cache update. */
export const crashAfterInstallFlip = (): FaultyWrites => new FaultyWrites({ purpose: 'install-flip', nth: 1, kind: 'crash' });
