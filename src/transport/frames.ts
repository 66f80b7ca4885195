// The binary frames of the two hot peer streams (proto/raft.proto: `Stream` and `ProposeStream`).
//
// On the wire each frame is the protobuf message `Frame { bytes data = 1; }`, so the service
// stays described by raft.proto and any gRPC tool can see frame boundaries; `data` is this file's
// fixed binary layout. Why not protobuf fields all the way down: decoding a raft batch through
// protobufjs built an object per message and per entry and turned every uint64 into a Long and
// then a decimal string (`longs: String`) that the codec parsed back with a regular expression.
// A profile of the replicated write path at 64 writes in flight put protobuf and that codec at
// 10–15% of each node's CPU. Here a batch is encoded in one pass into one buffer, and decoded
// in one pass with entry data left as views into the received buffer (no copy).
//
// Layout (all integers big-endian; "u53" = a uint64 that must be a safe integer, < 2^53):
//   Frame.data  := version:u8 (=1) kind:u8 body
//   kind 1 (raft batch)  body := from:u53 to:u53 count:u32 message*count
//     message := type:u8 term:u53 fields-of-type   (from/to are the batch's: one sender, one receiver)
//       app           logTerm:u53 index:u53 commit:u53 n:u32 entry*n
//       entry         term:u53 index:u53 type:u8 (0 normal, 1 confChange) len:u32 data[len]
//       appResp       index:u53 reject:u8 rejectHint:u53 logTerm:u53
//       vote/preVote  logTerm:u53 index:u53 transfer:u8
//       voteResp/preVoteResp  reject:u8
//       heartbeat     commit:u53 context:optstr
//       heartbeatResp context:optstr
//       timeoutNow    -
//       readIndex     context:str
//       readIndexResp context:str index:u53
//       transferLeader transferee:u53
//     str := len:u32 utf8[len]; optstr := 0xFFFFFFFF (null) | str
//   kind 2 (forwarded writes) body := from:u53 count:u32 item*count
//     item := id:u53 timeoutMs:u32 sessionId:str seq:u53 command:bytes
//   kind 3 (their outcomes)   body := count:u32 outcome*count
//     outcome := id:u53 ok:u8; ok=1: result:bytes; ok=0: code:u8 leaderHint:u53 message:str
//     bytes := len:u32 data[len]
// A decoder refuses (TransportError MALFORMED) anything else: an unknown version, kind, message
// or entry type, an integer past 2^53, a length past the end of the frame, bytes left over.
import type { Entry, Message, NodeId } from '../raft/types.ts';
import { TransportError } from './errors.ts';
import type { ForwardError, ForwardErrorCode } from './types.ts';

export const FRAME_VERSION = 1;
export const FRAME_RAFT = 1;
export const FRAME_FORWARD = 2;
export const FRAME_OUTCOMES = 3;

/** The protobuf key of `Frame.data` (field 1, wire type 2: length-delimited). */
const DATA_KEY = 0x0a;
const NULL_STR = 0xffffffff;
const TWO_32 = 0x1_0000_0000;

const MESSAGE_TYPES = ['app', 'appResp', 'vote', 'preVote', 'voteResp', 'preVoteResp', 'heartbeat', 'heartbeatResp', 'timeoutNow', 'readIndex', 'readIndexResp', 'transferLeader'] as const;
type WireMessageType = (typeof MESSAGE_TYPES)[number];
const TYPE_CODE = new Map<string, number>(MESSAGE_TYPES.map((t, i) => [t, i + 1]));

const FORWARD_ERROR_CODES: readonly ForwardErrorCode[] = ['NOT_LEADER', 'TIMEOUT', 'PROPOSAL_DROPPED', 'UNAVAILABLE', 'INTERNAL'];

function malformed(what: string): never {
  throw new TransportError('MALFORMED', `frame: ${what}`);
}

const utf8 = new TextEncoder();
const fromUtf8 = new TextDecoder('utf-8', { fatal: true });

/** Bytes a protobuf varint of `n` takes. */
function varintBytes(n: number): number {
  let b = 1;
  while (n >= 0x80) {
    n = Math.floor(n / 128);
    b++;
  }
  return b;
}

/**
 * Writes a frame body into one buffer that already starts with the protobuf key and length of
 * `Frame.data`, so the result goes to gRPC as it is. The size is computed first (sizeOf*), so the
 * buffer is allocated once.
 */
class Writer {
  readonly buf: Buffer;
  private readonly view: DataView;
  private pos: number;

  constructor(bodyBytes: number) {
    const head = 1 + varintBytes(bodyBytes);
    this.buf = Buffer.allocUnsafe(head + bodyBytes);
    this.view = new DataView(this.buf.buffer, this.buf.byteOffset, this.buf.byteLength);
    this.buf[0] = DATA_KEY;
    let n = bodyBytes;
    let p = 1;
    while (n >= 0x80) {
      this.buf[p++] = (n % 128) | 0x80;
      n = Math.floor(n / 128);
    }
    this.buf[p++] = n;
    this.pos = p;
  }

  u8(v: number): void {
    this.view.setUint8(this.pos, v);
    this.pos += 1;
  }

  u32(v: number): void {
    this.view.setUint32(this.pos, v);
    this.pos += 4;
  }

  u53(v: number): void {
    if (!Number.isSafeInteger(v) || v < 0) throw new TransportError('MALFORMED', `frame: ${v} is not a uint64 below 2^53`);
    this.view.setUint32(this.pos, Math.floor(v / TWO_32));
    this.view.setUint32(this.pos + 4, v >>> 0);
    this.pos += 8;
  }

  bytes(b: Uint8Array): void {
    this.u32(b.length);
    this.buf.set(b, this.pos);
    this.pos += b.length;
  }

  /** A string already encoded as UTF-8 (see strBytes). */
  str(b: Uint8Array | null): void {
    if (b === null) this.u32(NULL_STR);
    else this.bytes(b);
  }

  done(): Buffer {
    if (this.pos !== this.buf.length) throw new Error(`frame writer: wrote ${this.pos} of ${this.buf.length} bytes (size and layout disagree)`);
    return this.buf;
  }
}

class Reader {
  private readonly data: Uint8Array;
  private readonly view: DataView;
  private pos = 0;

  constructor(data: Uint8Array) {
    this.data = data;
    this.view = new DataView(data.buffer, data.byteOffset, data.byteLength);
  }

  private need(n: number, what: string): void {
    if (this.pos + n > this.data.length) malformed(`${what}: ${n} bytes needed at offset ${this.pos}, frame has ${this.data.length}`);
  }

  u8(what: string): number {
    this.need(1, what);
    return this.view.getUint8(this.pos++);
  }

  bool(what: string): boolean {
    const v = this.u8(what);
    if (v > 1) malformed(`${what}: ${v} is not a boolean`);
    return v === 1;
  }

  u32(what: string): number {
    this.need(4, what);
    const v = this.view.getUint32(this.pos);
    this.pos += 4;
    return v;
  }

  u53(what: string): number {
    this.need(8, what);
    const hi = this.view.getUint32(this.pos);
    const lo = this.view.getUint32(this.pos + 4);
    this.pos += 8;
    if (hi >= 0x20_0000) malformed(`${what}: not a uint64 below 2^53`);
    return hi * TWO_32 + lo;
  }

  /** A view into the frame (no copy): valid as long as the frame's buffer is. */
  bytes(what: string, max: number): Uint8Array {
    const n = this.u32(what);
    if (n > max) throw new TransportError('LIMIT_EXCEEDED', `frame: ${what} of ${n} bytes exceeds ${max}`);
    this.need(n, what);
    // A plain Uint8Array view, never a Buffer (callers must not see Buffer semantics).
    const b = new Uint8Array(this.data.buffer, this.data.byteOffset + this.pos, n);
    this.pos += n;
    return b;
  }

  str(what: string, max: number): string {
    const b = this.bytes(what, max);
    try {
      return fromUtf8.decode(b);
    } catch {
      return malformed(`${what}: not UTF-8`);
    }
  }

  optStr(what: string, max: number): string | null {
    this.need(4, what);
    if (this.view.getUint32(this.pos) === NULL_STR) {
      this.pos += 4;
      return null;
    }
    return this.str(what, max);
  }

  end(): void {
    if (this.pos !== this.data.length) malformed(`${this.data.length - this.pos} bytes after the last field`);
  }
}

/** The `data` of a protobuf Frame, as a view (no copy); MALFORMED unless it is exactly one such field. */
export function frameData(buf: Uint8Array): Uint8Array {
  if (buf.length === 0) return buf; // protobuf's encoding of an empty Frame
  if (buf[0] !== DATA_KEY) malformed(`not a Frame (first byte ${buf[0]})`);
  let n = 0;
  let mul = 1;
  let p = 1;
  for (;;) {
    if (p >= buf.length || p > 5) malformed('bad length of Frame.data');
    const b = buf[p++]!;
    n += (b & 0x7f) * mul;
    if (b < 0x80) break;
    mul *= 128;
  }
  if (p + n !== buf.length) malformed(`Frame.data says ${n} bytes, ${buf.length - p} follow`);
  return buf.subarray(p);
}

function header(r: Reader, kind: number): void {
  const v = r.u8('version');
  if (v !== FRAME_VERSION) malformed(`unknown version ${v}`);
  const k = r.u8('kind');
  if (k !== kind) malformed(`kind ${k} where ${kind} was expected`);
}

// ---- raft batches -------------------------------------------------------------------------------

const strBytes = (s: string | null): Uint8Array | null => (s === null ? null : utf8.encode(s));
const strSize = (b: Uint8Array | null): number => 4 + (b === null ? 0 : b.length);

export interface RaftBatch {
  readonly from: NodeId;
  readonly to: NodeId;
  readonly messages: readonly Message[];
}

/** One batch of raft messages, all from `from` to `to`, as a protobuf Frame. MsgSnap is refused. */
export function encodeRaftFrame(from: NodeId, to: NodeId, messages: readonly Message[]): Buffer {
  // Context strings are encoded once, for the size and then for the write.
  const ctx: (Uint8Array | null)[] = [];
  let size = 2 + 8 + 8 + 4;
  for (const m of messages) {
    if (m.from !== from || m.to !== to) throw new TransportError('MALFORMED', `frame: message ${m.from}→${m.to} in a batch ${from}→${to}`);
    size += 1 + 8;
    switch (m.type) {
      case 'app':
        size += 8 * 3 + 4;
        for (const e of m.entries) size += 8 + 8 + 1 + 4 + e.data.length;
        break;
      case 'appResp':
        size += 8 + 1 + 8 + 8;
        break;
      case 'vote':
      case 'preVote':
        size += 8 + 8 + 1;
        break;
      case 'voteResp':
      case 'preVoteResp':
        size += 1;
        break;
      case 'heartbeat': {
        const c = strBytes(m.context);
        ctx.push(c);
        size += 8 + strSize(c);
        break;
      }
      case 'heartbeatResp':
      case 'readIndex': {
        const c = strBytes(m.context);
        ctx.push(c);
        size += strSize(c);
        break;
      }
      case 'readIndexResp': {
        const c = strBytes(m.context);
        ctx.push(c);
        size += strSize(c) + 8;
        break;
      }
      case 'timeoutNow':
        break;
      case 'transferLeader':
        size += 8;
        break;
      case 'snap':
        throw new TransportError('MALFORMED', 'MsgSnap travels on the snapshot stream, not in a batch');
    }
  }
  const w = new Writer(size);
  w.u8(FRAME_VERSION);
  w.u8(FRAME_RAFT);
  w.u53(from);
  w.u53(to);
  w.u32(messages.length);
  let ci = 0;
  for (const m of messages) {
    w.u8(TYPE_CODE.get(m.type)!);
    w.u53(m.term);
    switch (m.type) {
      case 'app':
        w.u53(m.logTerm);
        w.u53(m.index);
        w.u53(m.commit);
        w.u32(m.entries.length);
        for (const e of m.entries) {
          w.u53(e.term);
          w.u53(e.index);
          w.u8(e.type === 'normal' ? 0 : 1);
          w.bytes(e.data);
        }
        break;
      case 'appResp':
        w.u53(m.index);
        w.u8(m.reject ? 1 : 0);
        w.u53(m.rejectHint);
        w.u53(m.logTerm);
        break;
      case 'vote':
      case 'preVote':
        w.u53(m.logTerm);
        w.u53(m.index);
        w.u8(m.transfer ? 1 : 0);
        break;
      case 'voteResp':
      case 'preVoteResp':
        w.u8(m.reject ? 1 : 0);
        break;
      case 'heartbeat':
        w.u53(m.commit);
        w.str(ctx[ci++]!);
        break;
      case 'heartbeatResp':
      case 'readIndex':
        w.str(ctx[ci++]!);
        break;
      case 'readIndexResp':
        w.str(ctx[ci++]!);
        w.u53(m.index);
        break;
      case 'timeoutNow':
        break;
      case 'transferLeader':
        w.u53(m.transferee);
        break;
      case 'snap':
        break; // refused above
    }
  }
  return w.done();
}

export interface RaftFrameLimits {
  readonly maxMessagesPerBatch: number;
  /** Longest entry data (a command) accepted. */
  readonly maxEntryBytes: number;
  /** Longest context string (ReadIndex contexts are short ids). */
  readonly maxContextBytes: number;
}

/** The batch in `data` (a Frame's data). Entry data are views into `data`. */
export function decodeRaftFrame(data: Uint8Array, limits: RaftFrameLimits): RaftBatch {
  const r = new Reader(data);
  header(r, FRAME_RAFT);
  const from = r.u53('from');
  const to = r.u53('to');
  const count = r.u32('count');
  if (count > limits.maxMessagesPerBatch) {
    throw new TransportError('LIMIT_EXCEEDED', `batch of ${count} messages exceeds maxMessagesPerBatch ${limits.maxMessagesPerBatch}`);
  }
  const messages: Message[] = [];
  for (let i = 0; i < count; i++) {
    const code = r.u8('message type');
    const type: WireMessageType | undefined = MESSAGE_TYPES[code - 1];
    if (type === undefined) malformed(`unknown message type ${code}`);
    const term = r.u53('term');
    const base = { from, to, term };
    switch (type) {
      case 'app': {
        const logTerm = r.u53('app.logTerm');
        const index = r.u53('app.index');
        const commit = r.u53('app.commit');
        const n = r.u32('app.entries');
        // Each entry takes at least 21 bytes: a count past what is left is a lie, caught before
        // allocating for it.
        if (n * 21 > data.length) malformed(`app.entries: ${n} entries cannot fit in ${data.length} bytes`);
        const entries: Entry[] = new Array(n);
        for (let j = 0; j < n; j++) {
          const eTerm = r.u53('entry.term');
          const eIndex = r.u53('entry.index');
          const t = r.u8('entry.type');
          if (t > 1) malformed(`unknown entry type ${t}`);
          entries[j] = { term: eTerm, index: eIndex, type: t === 0 ? 'normal' : 'confChange', data: r.bytes('entry.data', limits.maxEntryBytes) };
        }
        messages.push({ ...base, type, logTerm, index, commit, entries });
        break;
      }
      case 'appResp':
        messages.push({ ...base, type, index: r.u53('appResp.index'), reject: r.bool('appResp.reject'), rejectHint: r.u53('appResp.rejectHint'), logTerm: r.u53('appResp.logTerm') });
        break;
      case 'vote':
      case 'preVote':
        messages.push({ ...base, type, logTerm: r.u53(`${type}.logTerm`), index: r.u53(`${type}.index`), transfer: r.bool(`${type}.transfer`) });
        break;
      case 'voteResp':
      case 'preVoteResp':
        messages.push({ ...base, type, reject: r.bool(`${type}.reject`) });
        break;
      case 'heartbeat':
        messages.push({ ...base, type, commit: r.u53('heartbeat.commit'), context: r.optStr('heartbeat.context', limits.maxContextBytes) });
        break;
      case 'heartbeatResp':
        messages.push({ ...base, type, context: r.optStr('heartbeatResp.context', limits.maxContextBytes) });
        break;
      case 'timeoutNow':
        messages.push({ ...base, type });
        break;
      case 'readIndex':
        messages.push({ ...base, type, context: r.str('readIndex.context', limits.maxContextBytes) });
        break;
      case 'readIndexResp':
        messages.push({ ...base, type, context: r.str('readIndexResp.context', limits.maxContextBytes), index: r.u53('readIndexResp.index') });
        break;
      case 'transferLeader':
        messages.push({ ...base, type, transferee: r.u53('transferLeader.transferee') });
        break;
    }
  }
  r.end();
  return { from, to, messages };
}

// ---- forwarded writes ---------------------------------------------------------------------------

export interface ForwardItem {
  /** The sender's id for the write, echoed in its outcome. */
  readonly id: number;
  readonly timeoutMs: number;
  readonly sessionId: string;
  readonly seq: number;
  readonly command: Uint8Array;
}

export type ForwardOutcome = { readonly id: number; readonly ok: true; readonly result: Uint8Array } | { readonly id: number; readonly ok: false; readonly error: ForwardError };

export function encodeForwardFrame(from: NodeId, items: readonly ForwardItem[]): Buffer {
  const sids = items.map((it) => utf8.encode(it.sessionId));
  let size = 2 + 8 + 4;
  for (let i = 0; i < items.length; i++) size += 8 + 4 + 4 + sids[i]!.length + 8 + 4 + items[i]!.command.length;
  const w = new Writer(size);
  w.u8(FRAME_VERSION);
  w.u8(FRAME_FORWARD);
  w.u53(from);
  w.u32(items.length);
  for (let i = 0; i < items.length; i++) {
    const it = items[i]!;
    w.u53(it.id);
    w.u32(Math.max(0, Math.min(it.timeoutMs, NULL_STR - 1)));
    w.bytes(sids[i]!);
    w.u53(it.seq);
    w.bytes(it.command);
  }
  return w.done();
}

export interface ForwardFrameLimits {
  readonly maxForwardsPerFrame: number;
  readonly maxCommandBytes: number;
  readonly maxSessionIdChars: number;
}

export function decodeForwardFrame(data: Uint8Array, limits: ForwardFrameLimits): { readonly from: NodeId; readonly items: ForwardItem[] } {
  const r = new Reader(data);
  header(r, FRAME_FORWARD);
  const from = r.u53('from');
  const count = r.u32('count');
  if (count > limits.maxForwardsPerFrame) throw new TransportError('LIMIT_EXCEEDED', `frame of ${count} forwarded writes exceeds ${limits.maxForwardsPerFrame}`);
  const items: ForwardItem[] = [];
  for (let i = 0; i < count; i++) {
    const id = r.u53('id');
    const timeoutMs = r.u32('timeoutMs');
    const sessionId = r.str('sessionId', limits.maxSessionIdChars * 4);
    if (sessionId.length === 0 || sessionId.length > limits.maxSessionIdChars) malformed(`sessionId must be 1..${limits.maxSessionIdChars} characters`);
    const seq = r.u53('seq');
    const command = r.bytes('command', limits.maxCommandBytes);
    items.push({ id, timeoutMs, sessionId, seq, command });
  }
  r.end();
  return { from, items };
}

export function encodeOutcomesFrame(outcomes: readonly ForwardOutcome[]): Buffer {
  const msgs = outcomes.map((o) => (o.ok ? null : utf8.encode(o.error.message)));
  let size = 2 + 4;
  for (let i = 0; i < outcomes.length; i++) {
    const o = outcomes[i]!;
    size += 8 + 1 + (o.ok ? 4 + o.result.length : 1 + 8 + 4 + msgs[i]!.length);
  }
  const w = new Writer(size);
  w.u8(FRAME_VERSION);
  w.u8(FRAME_OUTCOMES);
  w.u32(outcomes.length);
  for (let i = 0; i < outcomes.length; i++) {
    const o = outcomes[i]!;
    w.u53(o.id);
    w.u8(o.ok ? 1 : 0);
    if (o.ok) w.bytes(o.result);
    else {
      w.u8(FORWARD_ERROR_CODES.indexOf(o.error.code));
      w.u53(o.error.leaderHint);
      w.bytes(msgs[i]!);
    }
  }
  return w.done();
}

export function decodeOutcomesFrame(data: Uint8Array, maxResultBytes: number): ForwardOutcome[] {
  const r = new Reader(data);
  header(r, FRAME_OUTCOMES);
  const count = r.u32('count');
  if (count * 9 > data.length) malformed(`${count} outcomes cannot fit in ${data.length} bytes`);
  const out: ForwardOutcome[] = [];
  for (let i = 0; i < count; i++) {
    const id = r.u53('id');
    if (r.bool('ok')) {
      out.push({ id, ok: true, result: r.bytes('result', maxResultBytes) });
    } else {
      const c = r.u8('error.code');
      const code = FORWARD_ERROR_CODES[c];
      if (code === undefined) malformed(`unknown forward error code ${c}`);
      out.push({ id, ok: false, error: { code, leaderHint: r.u53('error.leaderHint'), message: r.str('error.message', 64 * 1024) } });
    }
  }
  r.end();
  return out;
}
