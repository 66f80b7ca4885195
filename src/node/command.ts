// The replicated command and the log entry that carries a batch of them (DESIGN "Encode once").
//
// A command is a fixed binary header and a payload. The payload (the domain's operation and its
// arguments, msgpack) is encoded once, where the write is created, and nothing between its creator
// and apply decodes it: not the router, not the follower that forwards it, not the leader. The
// header carries what the node layer needs — the client session and sequence number for
// exactly-once (Raft dissertation §6.3), the session's acknowledgement floor, and the proposing
// leader's clock — at fixed offsets, so the leader stamps its time by writing 8 bytes instead of
// decoding and re-encoding the command (DESIGN principle 3: apply never reads a node's clock).
//
//   command := magic:u8 (0xC1) version:u8 (2) ts:f64 seq:f64 ack:f64 sidLen:u8 sid[sidLen] payload
//
// 0xC1 is the one byte msgpack never uses, so a command of this format can never be mistaken for
// the msgpack map of the format-1 commands that older entries on disk still hold (state/command.ts
// reads those). sidLen 0 means no session (leader housekeeping); seq and ack are then 0.
//
// A normal log entry proposed by this version carries a batch: every command proposed on the
// leader during one turn of its driver loop shares one entry, one log record and one slot in each
// append message (DESIGN "Batch end to end"):
//
//   entry := magic:u8 (0xC1) kind:u8 (0xB1) count:u32 (len:u32 command[len])*count
//
// Results are routed back per command: apply answers a batch entry with one result per command,
// in order.
export const COMMAND_MAGIC = 0xc1;
export const COMMAND_VERSION = 2;
export const BATCH_KIND = 0xb1;

/** Largest encoded command: 1 MiB, well under the transport's batch and message limits. */
export const MAX_COMMAND_BYTES = 1 << 20;
/** A batch entry is closed once its commands reach this many bytes (a lone larger command goes alone). */
export const MAX_BATCH_ENTRY_BYTES = 1 << 20;
/** Most commands in one batch entry. */
export const MAX_COMMANDS_PER_ENTRY = 1024;
/** Longest session id (ASCII), as the session table accepts them. */
export const MAX_SID_BYTES = 64;

const TS_OFFSET = 2;
const SEQ_OFFSET = 10;
const ACK_OFFSET = 18;
const SID_LEN_OFFSET = 26;
const HEADER_BYTES = 27;
const BATCH_HEADER_BYTES = 6;

export class CommandFormatError extends Error {
  constructor(message: string) {
    super(`command: ${message}`);
    this.name = 'CommandFormatError';
  }
}

export interface CommandHeader {
  readonly sid: string | null;
  readonly seq: number;
  readonly ack: number;
  /** Leader time (ms since the epoch); 0 until the leader stamps it. */
  readonly ts: number;
}

function view(b: Uint8Array): DataView {
  return new DataView(b.buffer, b.byteOffset, b.byteLength);
}

/** A command: the header (ts 0: the leader stamps it) followed by the payload, copied once. */
export function encodeCommandBytes(h: Omit<CommandHeader, 'ts'>, payload: Uint8Array): Uint8Array {
  const sid = h.sid ?? '';
  if (sid.length > MAX_SID_BYTES || !/^[\x20-\x7e]*$/.test(sid)) throw new CommandFormatError(`session id must be at most ${MAX_SID_BYTES} printable ASCII characters`);
  if (!Number.isSafeInteger(h.seq) || h.seq < 0 || !Number.isSafeInteger(h.ack) || h.ack < 0) throw new CommandFormatError('seq and ack must be non-negative safe integers');
  const size = HEADER_BYTES + sid.length + payload.length;
  if (size > MAX_COMMAND_BYTES) throw new CommandFormatError(`command of ${size} bytes exceeds ${MAX_COMMAND_BYTES}`);
  const b = new Uint8Array(size);
  const v = view(b);
  b[0] = COMMAND_MAGIC;
  b[1] = COMMAND_VERSION;
  v.setFloat64(TS_OFFSET, 0);
  v.setFloat64(SEQ_OFFSET, h.seq);
  v.setFloat64(ACK_OFFSET, h.ack);
  b[SID_LEN_OFFSET] = sid.length;
  for (let i = 0; i < sid.length; i++) b[HEADER_BYTES + i] = sid.charCodeAt(i);
  b.set(payload, HEADER_BYTES + sid.length);
  return b;
}

/** True when `data` starts like a command or a batch entry of this format (not a format-1 msgpack command). */
export function isBinaryFormat(data: Uint8Array): boolean {
  return data.length >= 2 && data[0] === COMMAND_MAGIC;
}

/** The header of a command, checked; throws CommandFormatError. */
export function readHeader(cmd: Uint8Array): CommandHeader {
  if (cmd.length < HEADER_BYTES) throw new CommandFormatError(`${cmd.length} bytes is shorter than a header`);
  if (cmd[0] !== COMMAND_MAGIC || cmd[1] !== COMMAND_VERSION) throw new CommandFormatError(`unknown format ${cmd[0]}/${cmd[1]}`);
  const v = view(cmd);
  const ts = v.getFloat64(TS_OFFSET);
  const seq = v.getFloat64(SEQ_OFFSET);
  const ack = v.getFloat64(ACK_OFFSET);
  for (const [name, x] of [['ts', ts], ['seq', seq], ['ack', ack]] as const) {
    if (!Number.isSafeInteger(x) || x < 0) throw new CommandFormatError(`${name} ${x} is not a non-negative safe integer`);
  }
  const sidLen = cmd[SID_LEN_OFFSET]!;
  if (sidLen > MAX_SID_BYTES || HEADER_BYTES + sidLen > cmd.length) throw new CommandFormatError(`session id length ${sidLen}`);
  let sid = '';
  for (let i = 0; i < sidLen; i++) sid += String.fromCharCode(cmd[HEADER_BYTES + i]!);
  return { sid: sidLen === 0 ? null : sid, seq, ack, ts };
}

/** The payload of a command (a view, no copy). Call after readHeader has accepted it. */
export function payloadOf(cmd: Uint8Array): Uint8Array {
  return cmd.subarray(HEADER_BYTES + cmd[SID_LEN_OFFSET]!);
}

/**
 * One log entry carrying `commands`, each stamped with the leader time `ts` (written into the
 * entry's copy of its header; the caller's bytes are not changed).
 */
export function encodeBatchEntry(commands: readonly Uint8Array[], ts: number): Uint8Array {
  if (commands.length === 0 || commands.length > MAX_COMMANDS_PER_ENTRY) throw new CommandFormatError(`a batch holds 1..${MAX_COMMANDS_PER_ENTRY} commands, not ${commands.length}`);
  let size = BATCH_HEADER_BYTES;
  for (const c of commands) size += 4 + c.length;
  const b = new Uint8Array(size);
  const v = view(b);
  b[0] = COMMAND_MAGIC;
  b[1] = BATCH_KIND;
  v.setUint32(2, commands.length);
  let p = BATCH_HEADER_BYTES;
  for (const c of commands) {
    if (c.length < HEADER_BYTES || c[0] !== COMMAND_MAGIC || c[1] !== COMMAND_VERSION) throw new CommandFormatError('a batch holds only commands of this format');
    v.setUint32(p, c.length);
    b.set(c, p + 4);
    v.setFloat64(p + 4 + TS_OFFSET, ts);
    p += 4 + c.length;
  }
  return b;
}

/**
 * The commands of a batch entry, as views into `data` (no copy), or null when `data` is not a
 * batch entry of this format. A malformed batch throws CommandFormatError: every node reads the
 * same bytes the same way, so the caller answers it with an error on every node alike.
 */
export function splitBatchEntry(data: Uint8Array): Uint8Array[] | null {
  if (data.length < 2 || data[0] !== COMMAND_MAGIC || data[1] !== BATCH_KIND) return null;
  if (data.length < BATCH_HEADER_BYTES) throw new CommandFormatError('batch header cut short');
  const v = view(data);
  const count = v.getUint32(2);
  if (count === 0 || count > MAX_COMMANDS_PER_ENTRY) throw new CommandFormatError(`a batch holds 1..${MAX_COMMANDS_PER_ENTRY} commands, not ${count}`);
  const out: Uint8Array[] = [];
  let p = BATCH_HEADER_BYTES;
  for (let i = 0; i < count; i++) {
    if (p + 4 > data.length) throw new CommandFormatError(`batch cut short at command ${i}`);
    const n = v.getUint32(p);
    if (p + 4 + n > data.length) throw new CommandFormatError(`command ${i} of ${n} bytes runs past the entry`);
    out.push(data.subarray(p + 4, p + 4 + n));
    p += 4 + n;
  }
  if (p !== data.length) throw new CommandFormatError(`${data.length - p} bytes after the last command`);
  return out;
}
