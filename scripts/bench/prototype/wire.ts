// The prototype's byte formats and its node configuration (node.ts; what the prototype is: README
// "Prototype"). Pure functions, unit-tested in wire.test.ts.
//
// A write is encoded ONCE, where the HTTP request is parsed, as an `item`; every later hop copies
// the item's bytes (IPC, forward stream, log entry) and only apply decodes it.
//   item     := keyLen:u16 key[keyLen] valueLen:u32 value[valueLen]          (key and value UTF-8)
//   writes   := count:u32 (id:u32 item)*count    worker → primary (IPC), follower → leader (forward stream)
//   outcomes := count:u32 (id:u32 ok:u8)*count    the answers to `writes`, the other way
//   entry    := count:u32 item*count              one log entry: every write of one leader turn
//   append   := index:u48 commit:u48 entry         leader → follower (replication stream)
//   ack      := index:u48                          follower → leader: every entry up to index is fsynced
// All integers big-endian. Every decoder refuses (WireError) a length past the end or bytes left over.

/** Longest key (bytes), as raftauth's KV_MAX_KEY_BYTES order of magnitude; the u16 length bounds it anyway. */
export const MAX_KEY_BYTES = 1024;
/** Longest value (bytes). */
export const MAX_VALUE_BYTES = 64 * 1024;
/** Largest log index a u48 carries. */
export const MAX_INDEX = 2 ** 48 - 1;

export class WireError extends Error {}

export function encodeItem(key: string, value: string): Buffer {
  const k = Buffer.byteLength(key);
  const v = Buffer.byteLength(value);
  if (k === 0 || k > MAX_KEY_BYTES) throw new WireError(`key of ${k} bytes (1..${MAX_KEY_BYTES})`);
  if (v > MAX_VALUE_BYTES) throw new WireError(`value of ${v} bytes (at most ${MAX_VALUE_BYTES})`);
  const b = Buffer.allocUnsafe(6 + k + v);
  b.writeUInt16BE(k, 0);
  b.write(key, 2, 'utf8');
  b.writeUInt32BE(v, 2 + k);
  b.write(value, 6 + k, 'utf8');
  return b;
}

/** End offset of the item that starts at `off`. */
function itemEnd(b: Buffer, off: number): number {
  if (off + 2 > b.length) throw new WireError('item: truncated key length');
  const k = b.readUInt16BE(off);
  if (off + 6 + k > b.length) throw new WireError('item: truncated key or value length');
  const end = off + 6 + k + b.readUInt32BE(off + 2 + k);
  if (end > b.length) throw new WireError('item: truncated value');
  return end;
}

export function decodeItem(item: Buffer): { key: Buffer; value: Buffer } {
  if (itemEnd(item, 0) !== item.length) throw new WireError('item: bytes left over');
  const k = item.readUInt16BE(0);
  return { key: item.subarray(2, 2 + k), value: item.subarray(6 + k) };
}

/** The callers keep a running byte count; a wrong one would truncate or leave garbage, so it is checked. */
function checkBytes(what: string, items: readonly Buffer[], bytes: number): void {
  let n = 0;
  for (const it of items) n += it.length;
  if (n !== bytes) throw new WireError(`${what}: ${bytes} item bytes announced, ${n} given`);
}

/** `writes`: ids and items (copies of the bytes). */
export function encodeWrites(ids: readonly number[], items: readonly Buffer[], bytes: number): Buffer {
  if (ids.length !== items.length) throw new WireError(`writes: ${ids.length} ids for ${items.length} items`);
  checkBytes('writes', items, bytes);
  const b = Buffer.allocUnsafe(4 + 4 * ids.length + bytes);
  b.writeUInt32BE(ids.length, 0);
  let p = 4;
  for (let i = 0; i < ids.length; i++) {
    b.writeUInt32BE(ids[i]!, p);
    p += 4 + items[i]!.copy(b, p + 4);
  }
  return b;
}

/** Calls `each(id, item)` for every write, the item a view into `b` (no copy). */
export function decodeWrites(b: Buffer, each: (id: number, item: Buffer) => void): void {
  if (b.length < 4) throw new WireError('writes: truncated count');
  const n = b.readUInt32BE(0);
  let p = 4;
  // Validate the whole frame before the first callback: a bad frame changes nothing.
  const spans: number[] = [];
  for (let i = 0; i < n; i++) {
    if (p + 4 > b.length) throw new WireError('writes: truncated id');
    const end = itemEnd(b, p + 4);
    spans.push(p, end);
    p = end;
  }
  if (p !== b.length) throw new WireError('writes: bytes left over');
  for (let i = 0; i < spans.length; i += 2) each(b.readUInt32BE(spans[i]!), b.subarray(spans[i]! + 4, spans[i + 1]!));
}

export function encodeOutcomes(ids: readonly number[], oks: readonly boolean[]): Buffer {
  const b = Buffer.allocUnsafe(4 + 5 * ids.length);
  b.writeUInt32BE(ids.length, 0);
  for (let i = 0; i < ids.length; i++) {
    b.writeUInt32BE(ids[i]!, 4 + 5 * i);
    b[8 + 5 * i] = oks[i] ? 1 : 0;
  }
  return b;
}

export function decodeOutcomes(b: Buffer, each: (id: number, ok: boolean) => void): void {
  if (b.length < 4 || b.length !== 4 + 5 * b.readUInt32BE(0)) throw new WireError('outcomes: wrong length');
  for (let p = 4; p < b.length; p += 5) {
    if (b[p + 4]! > 1) throw new WireError('outcomes: ok is not 0 or 1');
  }
  for (let p = 4; p < b.length; p += 5) each(b.readUInt32BE(p), b[p + 4] === 1);
}

export function encodeEntry(items: readonly Buffer[], bytes: number): Buffer {
  checkBytes('entry', items, bytes);
  const b = Buffer.allocUnsafe(4 + bytes);
  b.writeUInt32BE(items.length, 0);
  let p = 4;
  for (const it of items) p += it.copy(b, p);
  return b;
}

/** The items of an entry, as views into it. */
export function decodeEntry(b: Buffer): Buffer[] {
  if (b.length < 4) throw new WireError('entry: truncated count');
  const n = b.readUInt32BE(0);
  const out: Buffer[] = [];
  let p = 4;
  for (let i = 0; i < n; i++) {
    const end = itemEnd(b, p);
    out.push(b.subarray(p, end));
    p = end;
  }
  if (p !== b.length) throw new WireError('entry: bytes left over');
  return out;
}

function u48(v: number, what: string): number {
  if (!Number.isInteger(v) || v < 0 || v > MAX_INDEX) throw new WireError(`${what} ${v} is not a u48`);
  return v;
}

export function encodeAppend(index: number, commit: number, entry: Buffer): Buffer {
  const b = Buffer.allocUnsafe(12 + entry.length);
  b.writeUIntBE(u48(index, 'index'), 0, 6);
  b.writeUIntBE(u48(commit, 'commit'), 6, 6);
  entry.copy(b, 12);
  return b;
}

export function decodeAppend(b: Buffer): { index: number; commit: number; entry: Buffer } {
  if (b.length < 16) throw new WireError('append: truncated');
  const entry = b.subarray(12);
  decodeEntry(entry); // validates
  return { index: b.readUIntBE(0, 6), commit: b.readUIntBE(6, 6), entry };
}

export function encodeAck(index: number): Buffer {
  const b = Buffer.allocUnsafe(6);
  b.writeUIntBE(u48(index, 'index'), 0, 6);
  return b;
}

export function decodeAck(b: Buffer): number {
  if (b.length !== 6) throw new WireError('ack: wrong length');
  return b.readUIntBE(0, 6);
}

/** The log key of entry `index`: fixed width, so LevelDB orders the log by index. */
export function logKey(index: number): Buffer {
  const b = Buffer.allocUnsafe(8);
  b.write('l/', 0, 'latin1');
  b.writeUIntBE(u48(index, 'index'), 2, 6);
  return b;
}

/** The state key of a KV key (a prefix keeps state apart from the log). */
export function stateKey(key: Buffer): Buffer {
  return Buffer.concat([Buffer.from('s/'), key]);
}

/** A node's configuration, passed by the launcher (scripts/bench/proto.ts) in PROTO_CONFIG_ENV as JSON. */
export interface ProtoNodeConfig {
  /** 1..3; node 1 is the leader, always (no elections: the prototype measures a ceiling). */
  readonly id: number;
  readonly httpPort: number;
  /** The peer (gRPC) port of node i + 1 at index i, on 127.0.0.1. */
  readonly peerPorts: readonly number[];
  readonly dataDir: string;
  /** Directory with ca.crt and node<id>.crt/.key (mTLS), or null: gRPC without TLS. */
  readonly tlsDir: string | null;
  /** true: one HTTP worker forked with node:cluster, IPC to the primary; false: the primary serves HTTP. */
  readonly worker: boolean;
}

export const PROTO_CONFIG_ENV = 'BENCH_PROTO_CONFIG';
export const PROTO_MEMBERS = 3;

const isPort = (v: unknown): v is number => typeof v === 'number' && Number.isInteger(v) && v >= 1 && v <= 65535;

export function parseNodeConfig(raw: string | undefined): ProtoNodeConfig {
  if (raw === undefined) throw new WireError(`${PROTO_CONFIG_ENV} is not set`);
  let c: Record<string, unknown>;
  try {
    c = JSON.parse(raw) as Record<string, unknown>;
  } catch (e) {
    throw new WireError(`${PROTO_CONFIG_ENV} is not JSON: ${(e as Error).message}`);
  }
  if (typeof c !== 'object' || c === null || Array.isArray(c)) throw new WireError(`${PROTO_CONFIG_ENV} is not an object`);
  const { id, httpPort, peerPorts, dataDir, tlsDir, worker } = c;
  if (typeof id !== 'number' || !Number.isInteger(id) || id < 1 || id > PROTO_MEMBERS) throw new WireError(`id must be 1..${PROTO_MEMBERS}`);
  if (!isPort(httpPort)) throw new WireError('httpPort must be a port number');
  if (!Array.isArray(peerPorts) || peerPorts.length !== PROTO_MEMBERS || !peerPorts.every(isPort)) throw new WireError(`peerPorts must be ${PROTO_MEMBERS} port numbers`);
  if (typeof dataDir !== 'string' || dataDir === '') throw new WireError('dataDir must be a path');
  if (tlsDir !== null && (typeof tlsDir !== 'string' || tlsDir === '')) throw new WireError('tlsDir must be a path or null');
  if (typeof worker !== 'boolean') throw new WireError('worker must be true or false');
  return { id, httpPort, peerPorts: peerPorts as number[], dataDir, tlsDir, worker };
}
