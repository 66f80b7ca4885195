// The snapshot file format. A snapshot is the state machine's keyspaces at one applied index,
// written from a LevelDB snapshot, shipped to followers in bounded chunks and installed by them.
//
//   preamble   "RAFTSNAP" (8 bytes) + u32be format version (1)
//   frame*     u8 type + u32be payloadLength + payload + u32be crc32(type ++ length ++ payload)
//     type 1   header: msgpack { index, term, confState }                    exactly one, first
//     type 2   records: repeated [u8 keyspaceLen][keyspace][u32be keyLen][key][u32be valueLen][value]
//              in strictly increasing (keyspace, key) order (the LevelDB order)  zero or more
//     type 3   trailer: u64be recordCount + u64be bodyBytes + SHA-256(32 bytes) of every byte before
//              the trailer frame (preamble included)                          exactly one, last
//
// Each frame carries its own CRC so damage is located to a frame and refused before anything is
// applied; the SHA-256 in the trailer binds the whole body (no frame dropped, duplicated or
// reordered, nothing appended) and the record count is a second, independent check. A parser
// refuses a frame longer than its limit before buffering it, so a hostile or broken stream cannot
// make the receiver allocate more than one frame.
import { createHash, type Hash } from 'node:crypto';
import { crc32 } from 'node:zlib';
import { open as fsOpen, rename, unlink, type FileHandle } from 'node:fs/promises';
import type { SnapshotMetadata } from '../raft/types.ts';
import { StorageError } from './errors.ts';
import { pack, snapshotMetaFromPlain, snapshotMetaToPlain, unpackPlain } from './records.ts';

export const SNAPSHOT_MAGIC = new TextEncoder().encode('RAFTSNAP');
export const SNAPSHOT_FORMAT_VERSION = 1;
export const PREAMBLE_BYTES = 12;
const FRAME_HEADER_BYTES = 5;
const FRAME_CRC_BYTES = 4;
export const FRAME_OVERHEAD_BYTES = FRAME_HEADER_BYTES + FRAME_CRC_BYTES;
const FRAME_HEADER = 1;
const FRAME_RECORDS = 2;
const FRAME_TRAILER = 3;
const TRAILER_PAYLOAD_BYTES = 8 + 8 + 32;
const MAX_HEADER_PAYLOAD_BYTES = 64 * 1024;
/** Per-record framing in a records frame, plus the longest keyspace name (64). */
export const RECORD_OVERHEAD_BYTES = 1 + 4 + 4 + 64;

export interface SnapshotRecord {
  readonly keyspace: string;
  readonly key: Uint8Array;
  readonly value: Uint8Array;
}

export interface SnapshotLimits {
  /** Largest records-frame payload: a frame is closed at snapshotFrameBytes, plus one record. */
  readonly maxFramePayloadBytes: number;
  readonly maxSnapshotBytes: number;
}

export function snapshotLimits(c: { snapshotFrameBytes: number; maxRecordBytes: number; maxSnapshotBytes: number }): SnapshotLimits {
  return { maxFramePayloadBytes: c.snapshotFrameBytes + c.maxRecordBytes + RECORD_OVERHEAD_BYTES, maxSnapshotBytes: c.maxSnapshotBytes };
}

export function snapshotFileName(term: number, index: number): string {
  return `${term}-${index}.snap`;
}

/** term and index of a snapshot file name, or null for any other file. */
/** Snapshot.data handed to the Raft core: a reference to the snapshot file, which the transport streams. */
export function snapshotRef(meta: SnapshotMetadata): Uint8Array {
  return pack({ file: snapshotFileName(meta.term, meta.index) });
}

export function parseSnapshotFileName(name: string): { term: number; index: number } | null {
  const m = /^(\d{1,16})-(\d{1,16})\.snap$/.exec(name);
  if (!m) return null;
  return { term: Number(m[1]), index: Number(m[2]) };
}

const enc = new TextEncoder();
const dec = new TextDecoder('utf-8', { fatal: true });

function frameBytes(type: number, payload: Uint8Array): Uint8Array {
  const out = new Uint8Array(FRAME_OVERHEAD_BYTES + payload.length);
  const dv = new DataView(out.buffer);
  out[0] = type;
  dv.setUint32(1, payload.length);
  out.set(payload, FRAME_HEADER_BYTES);
  dv.setUint32(FRAME_HEADER_BYTES + payload.length, crc32(out.subarray(0, FRAME_HEADER_BYTES + payload.length)));
  return out;
}

export function compareBytes(a: Uint8Array, b: Uint8Array): number {
  const n = Math.min(a.length, b.length);
  for (let i = 0; i < n; i++) if (a[i] !== b[i]) return a[i]! - b[i]!;
  return a.length - b.length;
}

/** The order of records in a snapshot file: keyspace bytes, '/', key bytes. */
export function sortKey(keyspace: Uint8Array, key: Uint8Array): Uint8Array {
  const out = new Uint8Array(keyspace.length + 1 + key.length);
  out.set(keyspace, 0);
  out[keyspace.length] = 0x2f;
  out.set(key, keyspace.length + 1);
  return out;
}

/**
 * Writes one snapshot file: to `<path>.tmp`, then fsync, rename, and fsync of the directory, so
 * a crash leaves either no file or a complete one under the final name.
 */
export class SnapshotFileWriter {
  private readonly path: string;
  private readonly dirPath: string;
  private readonly limits: { snapshotFrameBytes: number; maxRecordBytes: number; maxSnapshotBytes: number };
  private readonly tmpPath: string;
  private fh: FileHandle | null = null;
  private readonly hash: Hash = createHash('sha256');
  private frame: Uint8Array[] = [];
  private frameBytesPending = 0;
  private bytesWritten = 0;
  private records = 0;
  private lastSortKey: Uint8Array | null = null;
  private done = false;

  constructor(
    path: string,
    dirPath: string,
    limits: { snapshotFrameBytes: number; maxRecordBytes: number; maxSnapshotBytes: number },
  ) {
    this.path = path;
    this.dirPath = dirPath;
    this.limits = limits;
    this.tmpPath = `${path}.tmp`;
  }

  async begin(meta: SnapshotMetadata): Promise<void> {
    this.fh = await fsOpen(this.tmpPath, 'w', 0o600);
    const pre = new Uint8Array(PREAMBLE_BYTES);
    pre.set(SNAPSHOT_MAGIC, 0);
    new DataView(pre.buffer).setUint32(8, SNAPSHOT_FORMAT_VERSION);
    await this.write(pre);
    await this.write(frameBytes(FRAME_HEADER, pack(snapshotMetaToPlain(meta))));
  }

  async add(rec: SnapshotRecord): Promise<void> {
    const ks = enc.encode(rec.keyspace);
    const size = ks.length + rec.key.length + rec.value.length;
    if (size > this.limits.maxRecordBytes) {
      throw new StorageError('INVALID_ARGUMENT', `state record ${rec.keyspace}/… of ${size} bytes exceeds maxRecordBytes ${this.limits.maxRecordBytes}`);
    }
    const sk = sortKey(ks, rec.key);
    if (this.lastSortKey !== null && compareBytes(this.lastSortKey, sk) >= 0) {
      throw new StorageError('INVALID_ARGUMENT', 'snapshot records must be added in strictly increasing (keyspace, key) order');
    }
    this.lastSortKey = sk;
    const r = new Uint8Array(1 + ks.length + 4 + rec.key.length + 4 + rec.value.length);
    const dv = new DataView(r.buffer);
    let o = 0;
    r[o++] = ks.length;
    r.set(ks, o);
    o += ks.length;
    dv.setUint32(o, rec.key.length);
    o += 4;
    r.set(rec.key, o);
    o += rec.key.length;
    dv.setUint32(o, rec.value.length);
    o += 4;
    r.set(rec.value, o);
    this.frame.push(r);
    this.frameBytesPending += r.length;
    this.records++;
    if (this.frameBytesPending >= this.limits.snapshotFrameBytes) await this.flushFrame();
  }

  /** Write the trailer, fsync, and move the file to its final name. Returns the file's size. */
  async finish(): Promise<{ bytes: number; records: number; sha256: Uint8Array }> {
    await this.flushFrame();
    const bodyBytes = this.bytesWritten;
    const sha = new Uint8Array(this.hash.digest());
    const t = new Uint8Array(TRAILER_PAYLOAD_BYTES);
    const dv = new DataView(t.buffer);
    dv.setBigUint64(0, BigInt(this.records));
    dv.setBigUint64(8, BigInt(bodyBytes));
    t.set(sha, 16);
    await this.write(frameBytes(FRAME_TRAILER, t), false);
    const fh = this.fh!;
    await fh.sync();
    await fh.close();
    this.fh = null;
    await rename(this.tmpPath, this.path);
    await syncDir(this.dirPath);
    this.done = true;
    return { bytes: this.bytesWritten, records: this.records, sha256: sha };
  }

  /** Remove the temporary file after a failure. */
  async abort(): Promise<void> {
    if (this.done) return;
    if (this.fh) await this.fh.close().catch(() => undefined);
    this.fh = null;
    await unlink(this.tmpPath).catch(() => undefined);
  }

  private async flushFrame(): Promise<void> {
    if (this.frame.length === 0) return;
    const payload = new Uint8Array(this.frameBytesPending);
    let o = 0;
    for (const r of this.frame) {
      payload.set(r, o);
      o += r.length;
    }
    this.frame = [];
    this.frameBytesPending = 0;
    await this.write(frameBytes(FRAME_RECORDS, payload));
  }

  private async write(b: Uint8Array, hashed = true): Promise<void> {
    if (this.bytesWritten + b.length > this.limits.maxSnapshotBytes) {
      throw new StorageError('SNAPSHOT_INVALID', `snapshot would exceed maxSnapshotBytes ${this.limits.maxSnapshotBytes}`);
    }
    if (hashed) this.hash.update(b);
    let off = 0;
    while (off < b.length) {
      const { bytesWritten } = await this.fh!.write(b, off, b.length - off);
      off += bytesWritten;
    }
    this.bytesWritten += b.length;
  }
}

/** fsync a directory so a rename or unlink in it is durable. */
export async function syncDir(dirPath: string): Promise<void> {
  const d = await fsOpen(dirPath, 'r');
  try {
    await d.sync();
  } finally {
    await d.close();
  }
}

export type ParsedItem =
  | { readonly kind: 'header'; readonly meta: SnapshotMetadata }
  | { readonly kind: 'records'; readonly records: readonly SnapshotRecord[] }
  | { readonly kind: 'trailer'; readonly recordCount: number; readonly totalBytes: number };

/**
 * Incremental, push-based parser and verifier of a snapshot byte stream. Used both by the receiver
 * (bytes from the network) and by the file reader (bytes from disk), so there is one definition of
 * "a valid snapshot".
 */
export class SnapshotParser {
  private readonly limits: SnapshotLimits;
  private pending: Uint8Array = new Uint8Array(0);
  private offset = 0; // stream offset of pending[0]
  private state: 'preamble' | 'header' | 'body' | 'done' = 'preamble';
  private readonly hash: Hash = createHash('sha256');
  private records = 0;
  private lastSortKey: Uint8Array | null = null;
  private meta: SnapshotMetadata | null = null;

  constructor(limits: SnapshotLimits) {
    this.limits = limits;
  }

  /** Bytes consumed so far plus bytes buffered. */
  get totalBytes(): number {
    return this.offset + this.pending.length;
  }

  push(bytes: Uint8Array): ParsedItem[] {
    if (this.offset + this.pending.length + bytes.length > this.limits.maxSnapshotBytes) {
      this.fail(this.offset + this.pending.length, `stream exceeds maxSnapshotBytes ${this.limits.maxSnapshotBytes}`);
    }
    if (this.state === 'done' && bytes.length > 0) this.fail(this.offset, 'bytes after the trailer');
    this.pending = this.pending.length === 0 ? bytes.slice() : concat(this.pending, bytes);
    const out: ParsedItem[] = [];
    for (;;) {
      const item = this.step();
      if (item === null) break;
      if (item !== 'consumed') out.push(item);
    }
    return out;
  }

  /** The stream has ended: it must have ended exactly after the trailer. */
  end(): { meta: SnapshotMetadata; recordCount: number; totalBytes: number } {
    if (this.state !== 'done') this.fail(this.offset + this.pending.length, `truncated stream (ended while expecting the ${this.state === 'body' ? 'next frame or trailer' : this.state})`);
    return { meta: this.meta!, recordCount: this.records, totalBytes: this.offset };
  }

  private step(): ParsedItem | 'consumed' | null {
    if (this.state === 'done') {
      if (this.pending.length > 0) this.fail(this.offset, 'bytes after the trailer');
      return null;
    }
    if (this.state === 'preamble') {
      if (this.pending.length < PREAMBLE_BYTES) return null;
      const p = this.pending.subarray(0, PREAMBLE_BYTES);
      for (let i = 0; i < SNAPSHOT_MAGIC.length; i++) if (p[i] !== SNAPSHOT_MAGIC[i]) this.fail(0, 'not a raftauth snapshot (bad magic)');
      const version = new DataView(p.buffer, p.byteOffset, p.byteLength).getUint32(8);
      if (version !== SNAPSHOT_FORMAT_VERSION) this.fail(8, `unsupported snapshot format version ${version} (this node reads ${SNAPSHOT_FORMAT_VERSION})`);
      this.consume(PREAMBLE_BYTES, true);
      this.state = 'header';
      return 'consumed';
    }
    if (this.pending.length < FRAME_HEADER_BYTES) return null;
    const dv = new DataView(this.pending.buffer, this.pending.byteOffset, this.pending.byteLength);
    const type = this.pending[0]!;
    const len = dv.getUint32(1);
    const expected = this.state === 'header' ? [FRAME_HEADER] : [FRAME_RECORDS, FRAME_TRAILER];
    if (!expected.includes(type)) this.fail(this.offset, `unexpected frame type ${type} (expected ${expected.join(' or ')})`);
    const maxLen = type === FRAME_HEADER ? MAX_HEADER_PAYLOAD_BYTES : type === FRAME_TRAILER ? TRAILER_PAYLOAD_BYTES : this.limits.maxFramePayloadBytes;
    if (len > maxLen || (type === FRAME_TRAILER && len !== TRAILER_PAYLOAD_BYTES)) this.fail(this.offset, `frame of type ${type} has length ${len} (limit ${maxLen})`);
    const total = FRAME_OVERHEAD_BYTES + len;
    if (this.pending.length < total) return null;
    const body = this.pending.subarray(0, FRAME_HEADER_BYTES + len);
    const stored = dv.getUint32(FRAME_HEADER_BYTES + len);
    if (crc32(body) !== stored) this.fail(this.offset, `frame of type ${type} fails its CRC`);
    const payload = this.pending.slice(FRAME_HEADER_BYTES, FRAME_HEADER_BYTES + len);
    const frameOffset = this.offset;
    if (type === FRAME_TRAILER) {
      const t = new DataView(payload.buffer);
      const count = t.getBigUint64(0);
      const bodyBytes = t.getBigUint64(8);
      const sha = new Uint8Array(this.hash.digest());
      if (count !== BigInt(this.records)) this.fail(frameOffset, `trailer counts ${count} records, the stream held ${this.records}`);
      if (bodyBytes !== BigInt(frameOffset)) this.fail(frameOffset, `trailer says the body is ${bodyBytes} bytes, it was ${frameOffset}`);
      if (Buffer.compare(sha, payload.subarray(16)) !== 0) this.fail(frameOffset, 'SHA-256 of the body does not match the trailer');
      this.consume(total, false);
      this.state = 'done';
      return { kind: 'trailer', recordCount: this.records, totalBytes: this.offset };
    }
    this.consume(total, true);
    if (type === FRAME_HEADER) {
      try {
        this.meta = snapshotMetaFromPlain(unpackPlain(payload));
      } catch (e) {
        this.fail(frameOffset, `malformed header: ${(e as Error).message}`);
      }
      this.state = 'body';
      return { kind: 'header', meta: this.meta };
    }
    return { kind: 'records', records: this.parseRecords(payload, frameOffset) };
  }

  private parseRecords(p: Uint8Array, frameOffset: number): SnapshotRecord[] {
    const dv = new DataView(p.buffer, p.byteOffset, p.byteLength);
    const out: SnapshotRecord[] = [];
    let o = 0;
    const need = (n: number): void => {
      if (o + n > p.length) this.fail(frameOffset, `record ${this.records} runs past the end of its frame`);
    };
    while (o < p.length) {
      need(1);
      const ksLen = p[o++]!;
      need(ksLen);
      const ksBytes = p.subarray(o, o + ksLen);
      o += ksLen;
      let keyspace: string;
      try {
        keyspace = dec.decode(ksBytes);
      } catch {
        this.fail(frameOffset, `record ${this.records} has a keyspace that is not UTF-8`);
      }
      if (!/^[a-z][a-z0-9_.-]{0,63}$/.test(keyspace)) this.fail(frameOffset, `record ${this.records} has a malformed keyspace`);
      need(4);
      const keyLen = dv.getUint32(o);
      o += 4;
      need(keyLen);
      const key = p.subarray(o, o + keyLen);
      o += keyLen;
      need(4);
      const valueLen = dv.getUint32(o);
      o += 4;
      need(valueLen);
      const value = p.subarray(o, o + valueLen);
      o += valueLen;
      const sk = sortKey(ksBytes, key);
      if (this.lastSortKey !== null && compareBytes(this.lastSortKey, sk) >= 0) this.fail(frameOffset, `record ${this.records} is out of order or duplicated`);
      this.lastSortKey = sk;
      this.records++;
      out.push({ keyspace, key, value });
    }
    return out;
  }

  private consume(n: number, hashed: boolean): void {
    if (hashed) this.hash.update(this.pending.subarray(0, n));
    this.pending = this.pending.subarray(n);
    this.offset += n;
  }

  private fail(offset: number, why: string): never {
    throw new StorageError('SNAPSHOT_INVALID', `snapshot stream refused at byte ${offset}: ${why}`);
  }
}

function concat(a: Uint8Array, b: Uint8Array): Uint8Array {
  const out = new Uint8Array(a.length + b.length);
  out.set(a, 0);
  out.set(b, a.length);
  return out;
}

/** Read and verify a snapshot file, yielding its parsed items in order. Throws SNAPSHOT_INVALID on any defect. */
export async function* readSnapshotFile(path: string, limits: SnapshotLimits, readBytes = 256 * 1024): AsyncGenerator<ParsedItem> {
  const fh = await fsOpen(path, 'r');
  try {
    const parser = new SnapshotParser(limits);
    const buf = new Uint8Array(readBytes);
    for (;;) {
      const { bytesRead } = await fh.read(buf, 0, buf.length, null);
      if (bytesRead === 0) break;
      for (const item of parser.push(buf.subarray(0, bytesRead))) yield item;
    }
    parser.end();
  } finally {
    await fh.close();
  }
}
