// Where an incoming snapshot's chunks go. The transport verifies the stream (chunk and total
// limits, length and SHA-256 trailer); a sink only stores. The storage layer provides a sink that
// writes to disk; MemorySnapshotSink keeps the bytes in memory (tests, small state machines).
//
// A TransportHandler's onSnapshot typically is:
//   async onSnapshot(header, chunks) { driver.step(await receiveSnapshot(header, chunks, storage.snapshotSink(header))) }
import type { MsgSnap } from '../raft/types.ts';
import { snapMessage } from './codec.ts';
import { TransportError } from './errors.ts';
import type { SnapshotHeader } from './types.ts';

export interface SnapshotSink {
  /** Stores the next chunk. The chunk's memory may be reused after the promise settles: copy it. */
  write(chunk: Uint8Array): Promise<void>;
  /**
   * The stream arrived whole: make the snapshot durable and return the data to carry in the
   * MsgSnap (the image itself, or whatever the storage layer's apply step recognizes).
   */
  finish(): Promise<Uint8Array>;
  /** The stream failed: discard what was written. */
  abort(reason: unknown): Promise<void>;
}

/** Drains `chunks` into `sink` and returns the MsgSnap to step; aborts the sink on any failure. */
export async function receiveSnapshot(header: SnapshotHeader, chunks: AsyncIterable<Uint8Array>, sink: SnapshotSink): Promise<MsgSnap> {
  try {
    for await (const chunk of chunks) await sink.write(chunk);
    return snapMessage(header, await sink.finish());
  } catch (e) {
    await sink.abort(e);
    throw e;
  }
}

/** Collects a snapshot in memory, refusing more than maxBytes. */
export class MemorySnapshotSink implements SnapshotSink {
  private readonly maxBytes: number;
  private readonly parts: Uint8Array[] = [];
  private bytes = 0;
  private state: 'open' | 'finished' | 'aborted' = 'open';
  readonly chunkSizes: number[] = [];

  constructor(maxBytes: number) {
    this.maxBytes = maxBytes;
  }

  get status(): 'open' | 'finished' | 'aborted' {
    return this.state;
  }

  async write(chunk: Uint8Array): Promise<void> {
    if (this.state !== 'open') throw new TransportError('STOPPED', `snapshot sink is ${this.state}`);
    this.bytes += chunk.length;
    if (this.bytes > this.maxBytes) throw new TransportError('LIMIT_EXCEEDED', `snapshot exceeds the sink's ${this.maxBytes} bytes`);
    this.parts.push(Uint8Array.from(chunk));
    this.chunkSizes.push(chunk.length);
  }

  async finish(): Promise<Uint8Array> {
    if (this.state !== 'open') throw new TransportError('STOPPED', `snapshot sink is ${this.state}`);
    this.state = 'finished';
    const data = new Uint8Array(this.bytes);
    let off = 0;
    for (const p of this.parts) {
      data.set(p, off);
      off += p.length;
    }
    this.parts.length = 0;
    return data;
  }

  async abort(): Promise<void> {
    this.state = 'aborted';
    this.parts.length = 0;
  }
}
