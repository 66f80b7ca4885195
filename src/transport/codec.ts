// Converts between the Raft core's snapshot types (src/raft/types.ts) and the protobuf shapes of
// src/transport/raft.proto's Snapshot call (raft messages and forwarded writes travel in the binary
// frames of frames.ts). The decoder validates everything it reads: integers must be safe integers
// (< 2^53; a rounded term or index would corrupt the log). It throws TransportError('MALFORMED')
// otherwise.
import type { ConfState, Message, MsgSnap, NodeId, SnapshotMetadata } from '../raft/types.ts';
import { TransportError } from './errors.ts';
import type { SnapshotHeader } from './types.ts';
import type { WireConfState, WireSnapshotHeader, WireSnapshotMetadata, WireU64 } from './proto.ts';

/** A peer's address: host:port, with an IPv6 host in brackets. */
export const PEER_ADDRESS = /^(\[[0-9a-fA-F:.]+\]|[A-Za-z0-9.-]+):([1-9][0-9]{0,4})$/;

function malformed(what: string): never {
  throw new TransportError('MALFORMED', what);
}

/** A uint64 from the wire as a safe integer, or MALFORMED. */
export function u64(v: WireU64 | null | undefined, field: string): number {
  if (typeof v === 'number') {
    if (Number.isSafeInteger(v) && v >= 0) return v;
  } else if (typeof v === 'string' && /^[0-9]{1,16}$/.test(v)) {
    const n = Number(v);
    if (Number.isSafeInteger(n)) return n;
  }
  return malformed(`${field}: ${String(v)} is not a uint64 below 2^53`);
}

function nodeId(v: WireU64 | null | undefined, field: string): NodeId {
  return u64(v, field);
}

/** A plain Uint8Array view of protobuf bytes (no copy), so callers never see Buffer semantics. */
export function bytesView(b: Uint8Array | null | undefined, field: string): Uint8Array {
  if (!(b instanceof Uint8Array)) return malformed(`${field}: not bytes`);
  return new Uint8Array(b.buffer, b.byteOffset, b.byteLength);
}

function encodeConfState(c: ConfState): WireConfState {
  return { voters: [...c.voters], learners: [...c.learners], votersOutgoing: [...c.votersOutgoing], learnersNext: [...c.learnersNext], autoLeave: c.autoLeave };
}

function idList(v: WireU64[] | null | undefined, field: string): NodeId[] {
  if (!Array.isArray(v)) return malformed(`${field}: not a list`);
  return v.map((x, i) => nodeId(x, `${field}[${i}]`));
}

function decodeConfState(w: WireConfState | null | undefined, field: string): ConfState {
  if (w === null || w === undefined) return malformed(`${field}: missing`);
  return {
    voters: idList(w.voters, `${field}.voters`),
    learners: idList(w.learners, `${field}.learners`),
    votersOutgoing: idList(w.votersOutgoing, `${field}.votersOutgoing`),
    learnersNext: idList(w.learnersNext, `${field}.learnersNext`),
    autoLeave: w.autoLeave === true,
  };
}

export function encodeSnapshotMetadata(m: SnapshotMetadata): WireSnapshotMetadata {
  return { index: m.index, term: m.term, confState: encodeConfState(m.confState) };
}

export function decodeSnapshotMetadata(w: WireSnapshotMetadata | null | undefined, field = 'metadata'): SnapshotMetadata {
  if (w === null || w === undefined) return malformed(`${field}: missing`);
  return { index: u64(w.index, `${field}.index`), term: u64(w.term, `${field}.term`), confState: decodeConfState(w.confState, `${field}.confState`) };
}

// ---- snapshots ---------------------------------------------------------------------------------

export function snapshotHeaderOf(m: MsgSnap): SnapshotHeader {
  return { from: m.from, to: m.to, term: m.term, metadata: m.snapshot.metadata };
}

/** The MsgSnap to step once a snapshot stream has arrived whole. */
export function snapMessage(h: SnapshotHeader, data: Uint8Array): MsgSnap {
  return { type: 'snap', from: h.from, to: h.to, term: h.term, snapshot: { metadata: h.metadata, data } };
}

export function encodeSnapshotHeader(h: SnapshotHeader): WireSnapshotHeader {
  return { from: h.from, to: h.to, term: h.term, metadata: encodeSnapshotMetadata(h.metadata) };
}

export function decodeSnapshotHeader(w: WireSnapshotHeader | null | undefined): SnapshotHeader {
  if (w === null || w === undefined) return malformed('snapshot header missing');
  return { from: nodeId(w.from, 'header.from'), to: nodeId(w.to, 'header.to'), term: u64(w.term, 'header.term'), metadata: decodeSnapshotMetadata(w.metadata, 'header.metadata') };
}

// ---- sizing ------------------------------------------------------------------------------------

// Upper bounds of a message's size in a batch, for batching without encoding twice. They were
// derived for protobuf (a field tag at most 2 bytes, a varint of a safe integer at most 8, a length
// prefix at most 5) and bound the binary frames of frames.ts as well, which are tighter
// (test/unit/transport/frames.test.ts checks the bound against real frames).
const VARINT_FIELD_MAX_BYTES = 2 + 8;
const LEN_FIELD_OVERHEAD_MAX_BYTES = 2 + 5;
const ENTRY_OVERHEAD_MAX_BYTES = LEN_FIELD_OVERHEAD_MAX_BYTES + 3 * VARINT_FIELD_MAX_BYTES + LEN_FIELD_OVERHEAD_MAX_BYTES;
/** A message's own wrapper, from/to/term, the oneof arm's wrapper and up to 4 scalar fields. */
const MESSAGE_OVERHEAD_MAX_BYTES = LEN_FIELD_OVERHEAD_MAX_BYTES + 3 * VARINT_FIELD_MAX_BYTES + LEN_FIELD_OVERHEAD_MAX_BYTES + 4 * VARINT_FIELD_MAX_BYTES;

function utf8Bytes(s: string | null): number {
  return s === null ? 0 : LEN_FIELD_OVERHEAD_MAX_BYTES + Buffer.byteLength(s, 'utf8');
}

/** An upper bound of the bytes `m` adds to a raft frame (tested against real frames). */
export function estimateMessageBytes(m: Message): number {
  let n = MESSAGE_OVERHEAD_MAX_BYTES;
  switch (m.type) {
    case 'app':
      for (const e of m.entries) n += ENTRY_OVERHEAD_MAX_BYTES + e.data.length;
      break;
    case 'heartbeat':
    case 'heartbeatResp':
    case 'readIndex':
    case 'readIndexResp':
      n += utf8Bytes(m.context);
      break;
    case 'snap':
      n += m.snapshot.data.length;
      break;
    default:
      break;
  }
  return n;
}
