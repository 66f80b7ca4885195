// Receives a snapshot from the leader, chunk by chunk, into a temporary file in the snapshot
// directory, verifying it as it arrives (frame CRCs, record order, sizes) and at the end (record
// count, SHA-256 of the body). Only a fully verified file is renamed to <term>-<index>.snap and
// handed to installSnapshot(). Anything malformed is refused with SNAPSHOT_INVALID, the temporary
// file is removed, and the receiver is dead: the leader must start the transfer again.
import { randomUUID } from 'node:crypto';
import { open as fsOpen, rename, unlink, type FileHandle } from 'node:fs/promises';
import { join } from 'node:path';
import type { SnapshotMetadata } from '../raft/types.ts';
import type { StorageConfig } from './config.ts';
import { StorageError } from './errors.ts';
import { SnapshotParser, snapshotFileName, snapshotLimits, syncDir } from './snapshot-format.ts';

export interface ReceivedSnapshot {
  readonly path: string;
  readonly metadata: SnapshotMetadata;
  readonly bytes: number;
  readonly records: number;
}

export class SnapshotReceiver {
  private readonly dir: string;
  private readonly tmpPath: string;
  private fh: FileHandle | null;
  private readonly config: Pick<StorageConfig, 'maxChunkBytes' | 'maxSnapshotBytes' | 'snapshotFrameBytes' | 'maxRecordBytes'>;
  private readonly expect: { index: number; term: number } | undefined;
  private readonly parser: SnapshotParser;
  private received = 0;
  private meta: SnapshotMetadata | null = null;
  private state: 'receiving' | 'done' | 'failed' = 'receiving';

  private constructor(
    dir: string,
    tmpPath: string,
    fh: FileHandle | null,
    config: Pick<StorageConfig, 'maxChunkBytes' | 'maxSnapshotBytes' | 'snapshotFrameBytes' | 'maxRecordBytes'>,
    expect: { index: number; term: number } | undefined,
  ) {
    this.dir = dir;
    this.tmpPath = tmpPath;
    this.fh = fh;
    this.config = config;
    this.expect = expect;
    this.parser = new SnapshotParser(snapshotLimits(config));
  }

  /**
   * @param dir the store's snapshot directory (the file is renamed inside it, atomically)
   * @param expect the index and term announced by the leader's MsgSnap; the header must match
   */
  static async create(
    dir: string,
    config: Pick<StorageConfig, 'maxChunkBytes' | 'maxSnapshotBytes' | 'snapshotFrameBytes' | 'maxRecordBytes'>,
    expect?: { index: number; term: number },
  ): Promise<SnapshotReceiver> {
    const tmpPath = join(dir, `recv-${randomUUID()}.tmp`);
    const fh = await fsOpen(tmpPath, 'wx', 0o600);
    return new SnapshotReceiver(dir, tmpPath, fh, config, expect);
  }

  get bytesReceived(): number {
    return this.received;
  }

  /**
   * Accept the next chunk. `offset`, when the transport sends one, must equal the bytes received
   * so far: a lost, repeated or reordered chunk is refused instead of corrupting the file.
   */
  async push(chunk: Uint8Array, offset?: number): Promise<void> {
    this.checkReceiving();
    try {
      if (!(chunk instanceof Uint8Array)) this.refuse('chunk is not bytes');
      if (chunk.length === 0) this.refuse('empty chunk');
      if (chunk.length > this.config.maxChunkBytes) this.refuse(`chunk of ${chunk.length} bytes exceeds maxChunkBytes ${this.config.maxChunkBytes}`);
      if (offset !== undefined && offset !== this.received) this.refuse(`chunk at offset ${offset}, expected ${this.received} (lost or reordered chunk)`);
      if (this.received + chunk.length > this.config.maxSnapshotBytes) this.refuse(`snapshot exceeds maxSnapshotBytes ${this.config.maxSnapshotBytes}`);
      for (const item of this.parser.push(chunk)) {
        if (item.kind === 'header') {
          this.meta = item.meta;
          if (this.expect && (item.meta.index !== this.expect.index || item.meta.term !== this.expect.term)) {
            this.refuse(`header says index ${item.meta.index} term ${item.meta.term}, the leader announced index ${this.expect.index} term ${this.expect.term}`);
          }
        }
      }
      let off = 0;
      while (off < chunk.length) {
        const { bytesWritten } = await this.fh!.write(chunk, off, chunk.length - off);
        off += bytesWritten;
      }
      this.received += chunk.length;
    } catch (e) {
      await this.fail();
      throw e;
    }
  }

  /** The stream is complete: verify the end, fsync, and move the file to its final name. */
  async finish(): Promise<ReceivedSnapshot> {
    this.checkReceiving();
    try {
      const { meta, recordCount, totalBytes } = this.parser.end();
      const fh = this.fh!;
      await fh.sync();
      await fh.close();
      this.fh = null;
      const path = join(this.dir, snapshotFileName(meta.term, meta.index));
      await rename(this.tmpPath, path);
      await syncDir(this.dir);
      this.state = 'done';
      return { path, metadata: meta, bytes: totalBytes, records: recordCount };
    } catch (e) {
      await this.fail();
      throw e;
    }
  }

  /** Give up (the transfer was cancelled): remove the temporary file. */
  async abort(): Promise<void> {
    if (this.state === 'receiving') await this.fail();
  }

  /** The metadata from the header, once it has arrived. */
  get metadata(): SnapshotMetadata | null {
    return this.meta;
  }

  private checkReceiving(): void {
    if (this.state !== 'receiving') throw new StorageError('SNAPSHOT_INVALID', `snapshot receiver is ${this.state}; start a new transfer`);
  }

  private refuse(why: string): never {
    throw new StorageError('SNAPSHOT_INVALID', `snapshot chunk refused: ${why}`);
  }

  private async fail(): Promise<void> {
    this.state = 'failed';
    if (this.fh) await this.fh.close().catch(() => undefined);
    this.fh = null;
    await unlink(this.tmpPath).catch(() => undefined);
  }
}
