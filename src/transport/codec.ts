// Converts between the Raft core's Message union (src/raft/types.ts) and the protobuf shapes of
// src/transport/raft.proto. The decoder validates everything it reads: integers must be safe integers
// (< 2^53; a rounded term or index would corrupt the log), the oneof arm must be known, and a
// message must be the variant it claims. It throws TransportError('MALFORMED') otherwise.
import type { ConfState, Entry, EntryType, Message, MsgSnap, NodeId, SnapshotMetadata } from '../raft/types.ts';
import { TransportError } from './errors.ts';
import type { ForwardError, ForwardErrorCode, SnapshotHeader } from './types.ts';
import type {
  WireBodyName,
  WireConfState,
  WireEntry,
  WireForwardError,
  WireForwardErrorCode,
  WireRaftMessage,
  WireSnapshotHeader,
  WireSnapshotMetadata,
  WireU64,
} from './proto.ts';

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

function encodeEntry(e: Entry): WireEntry {
  return { term: e.term, index: e.index, type: e.type === 'normal' ? 'ENTRY_TYPE_NORMAL' : 'ENTRY_TYPE_CONF_CHANGE', data: e.data };
}

function decodeEntry(w: WireEntry, field: string): Entry {
  let type: EntryType;
  if (w.type === 'ENTRY_TYPE_NORMAL') type = 'normal';
  else if (w.type === 'ENTRY_TYPE_CONF_CHANGE') type = 'confChange';
  else return malformed(`${field}.type: unknown entry type ${String(w.type)}`);
  return { term: u64(w.term, `${field}.term`), index: u64(w.index, `${field}.index`), type, data: bytesView(w.data, `${field}.data`) };
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

function ctxOut(context: string | null): { hasContext: boolean; context: string } {
  return context === null ? { hasContext: false, context: '' } : { hasContext: true, context };
}

function ctxIn(w: { hasContext: boolean; context: string }, field: string): string | null {
  if (typeof w.context !== 'string') return malformed(`${field}.context: not a string`);
  return w.hasContext ? w.context : null;
}

/** One raft message for a MessageBatch. MsgSnap is refused: it travels on the snapshot stream. */
export function encodeMessage(m: Message): WireRaftMessage {
  const base = { from: m.from, to: m.to, term: m.term };
  switch (m.type) {
    case 'app':
      return { ...base, app: { logTerm: m.logTerm, index: m.index, entries: m.entries.map(encodeEntry), commit: m.commit } };
    case 'appResp':
      return { ...base, appResp: { index: m.index, reject: m.reject, rejectHint: m.rejectHint, logTerm: m.logTerm } };
    case 'vote':
      return { ...base, vote: { logTerm: m.logTerm, index: m.index, transfer: m.transfer } };
    case 'preVote':
      return { ...base, preVote: { logTerm: m.logTerm, index: m.index, transfer: m.transfer } };
    case 'voteResp':
      return { ...base, voteResp: { reject: m.reject } };
    case 'preVoteResp':
      return { ...base, preVoteResp: { reject: m.reject } };
    case 'heartbeat':
      return { ...base, heartbeat: { commit: m.commit, ...ctxOut(m.context) } };
    case 'heartbeatResp':
      return { ...base, heartbeatResp: ctxOut(m.context) };
    case 'timeoutNow':
      return { ...base, timeoutNow: {} };
    case 'readIndex':
      return { ...base, readIndex: { context: m.context } };
    case 'readIndexResp':
      return { ...base, readIndexResp: { context: m.context, index: m.index } };
    case 'transferLeader':
      return { ...base, transferLeader: { transferee: m.transferee } };
    case 'snap':
      throw new TransportError('MALFORMED', 'MsgSnap travels on the snapshot stream, not in a batch');
  }
}

function arm<K extends WireBodyName>(w: WireRaftMessage, name: K): NonNullable<WireRaftMessage[K]> {
  const body = w[name];
  if (body === null || body === undefined) return malformed(`message body ${name} missing`);
  return body as NonNullable<WireRaftMessage[K]>;
}

export function decodeMessage(w: WireRaftMessage): Message {
  const from = nodeId(w.from, 'from');
  const to = nodeId(w.to, 'to');
  const term = u64(w.term, 'term');
  const base = { from, to, term };
  switch (w.body) {
    case 'app': {
      const b = arm(w, 'app');
      if (!Array.isArray(b.entries)) return malformed('app.entries: not a list');
      return {
        ...base,
        type: 'app',
        logTerm: u64(b.logTerm, 'app.logTerm'),
        index: u64(b.index, 'app.index'),
        entries: b.entries.map((e, i) => decodeEntry(e, `app.entries[${i}]`)),
        commit: u64(b.commit, 'app.commit'),
      };
    }
    case 'appResp': {
      const b = arm(w, 'appResp');
      return { ...base, type: 'appResp', index: u64(b.index, 'appResp.index'), reject: b.reject === true, rejectHint: u64(b.rejectHint, 'appResp.rejectHint'), logTerm: u64(b.logTerm, 'appResp.logTerm') };
    }
    case 'vote':
    case 'preVote': {
      const b = arm(w, w.body);
      return { ...base, type: w.body, logTerm: u64(b.logTerm, `${w.body}.logTerm`), index: u64(b.index, `${w.body}.index`), transfer: b.transfer === true };
    }
    case 'voteResp':
    case 'preVoteResp': {
      const b = arm(w, w.body);
      return { ...base, type: w.body, reject: b.reject === true };
    }
    case 'heartbeat': {
      const b = arm(w, 'heartbeat');
      return { ...base, type: 'heartbeat', commit: u64(b.commit, 'heartbeat.commit'), context: ctxIn(b, 'heartbeat') };
    }
    case 'heartbeatResp': {
      const b = arm(w, 'heartbeatResp');
      return { ...base, type: 'heartbeatResp', context: ctxIn(b, 'heartbeatResp') };
    }
    case 'timeoutNow':
      arm(w, 'timeoutNow');
      return { ...base, type: 'timeoutNow' };
    case 'readIndex': {
      const b = arm(w, 'readIndex');
      if (typeof b.context !== 'string') return malformed('readIndex.context: not a string');
      return { ...base, type: 'readIndex', context: b.context };
    }
    case 'readIndexResp': {
      const b = arm(w, 'readIndexResp');
      if (typeof b.context !== 'string') return malformed('readIndexResp.context: not a string');
      return { ...base, type: 'readIndexResp', context: b.context, index: u64(b.index, 'readIndexResp.index') };
    }
    case 'transferLeader': {
      const b = arm(w, 'transferLeader');
      return { ...base, type: 'transferLeader', transferee: nodeId(b.transferee, 'transferLeader.transferee') };
    }
    default:
      return malformed(`unknown or missing message body ${String(w.body)}`);
  }
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

// ---- forwarding errors -------------------------------------------------------------------------

const FORWARD_CODES: ReadonlyArray<readonly [ForwardErrorCode, WireForwardErrorCode]> = [
  ['NOT_LEADER', 'FORWARD_ERROR_CODE_NOT_LEADER'],
  ['TIMEOUT', 'FORWARD_ERROR_CODE_TIMEOUT'],
  ['PROPOSAL_DROPPED', 'FORWARD_ERROR_CODE_PROPOSAL_DROPPED'],
  ['UNAVAILABLE', 'FORWARD_ERROR_CODE_UNAVAILABLE'],
  ['INTERNAL', 'FORWARD_ERROR_CODE_INTERNAL'],
];

export function encodeForwardError(e: ForwardError): WireForwardError {
  const wire = FORWARD_CODES.find(([c]) => c === e.code)?.[1];
  if (wire === undefined) throw new TransportError('MALFORMED', `unknown forward error code ${String(e.code)}`);
  return { code: wire, leaderHint: e.leaderHint, message: e.message };
}

export function decodeForwardError(w: WireForwardError | null | undefined): ForwardError {
  if (w === null || w === undefined) return malformed('forward error missing');
  const code = FORWARD_CODES.find(([, c]) => c === w.code)?.[0];
  if (code === undefined) return malformed(`unknown forward error code ${String(w.code)}`);
  return { code, leaderHint: nodeId(w.leaderHint, 'error.leaderHint'), message: typeof w.message === 'string' ? w.message : '' };
}

// ---- sizing ------------------------------------------------------------------------------------

// Upper bounds of protobuf encodings, for batching without encoding twice: a field tag is at most
// 2 bytes (field numbers < 2048), a varint of a safe integer at most 8 bytes, a length prefix at
// most 5 bytes.
const VARINT_FIELD_MAX_BYTES = 2 + 8;
const LEN_FIELD_OVERHEAD_MAX_BYTES = 2 + 5;
const ENTRY_OVERHEAD_MAX_BYTES = LEN_FIELD_OVERHEAD_MAX_BYTES + 3 * VARINT_FIELD_MAX_BYTES + LEN_FIELD_OVERHEAD_MAX_BYTES;
/** A message's own wrapper, from/to/term, the oneof arm's wrapper and up to 4 scalar fields. */
const MESSAGE_OVERHEAD_MAX_BYTES = LEN_FIELD_OVERHEAD_MAX_BYTES + 3 * VARINT_FIELD_MAX_BYTES + LEN_FIELD_OVERHEAD_MAX_BYTES + 4 * VARINT_FIELD_MAX_BYTES;

function utf8Bytes(s: string | null): number {
  return s === null ? 0 : LEN_FIELD_OVERHEAD_MAX_BYTES + Buffer.byteLength(s, 'utf8');
}

/** An upper bound of the bytes `m` adds to an encoded MessageBatch (tested against real encodings). */
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
