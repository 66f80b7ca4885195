// Record framing and value codecs. Every LevelDB value is
//   [crc32(key ++ payload), u32 big-endian][payload]
// The key is inside the checksum so a value that ends up under the wrong key (a bug, a botched
// manual repair) is caught as surely as a flipped bit. CRC-32 (node:zlib, IEEE polynomial) detects
// every burst error up to 32 bits and all but 2^-32 of the rest: enough for damage detection; it
// is not a defence against an attacker (the disk is trusted, secrets are sealed before proposal).
import { crc32 } from 'node:zlib';
import { Packr } from 'msgpackr';
import type { ConfState, Entry, EntryType, HardState, SnapshotMetadata } from '../raft/types.ts';

const packr = new Packr({ useRecords: false, moreTypes: false, mapsAsObjects: true });

export const CHECKSUM_BYTES = 4;

export function checksum(key: Uint8Array, payload: Uint8Array): number {
  return crc32(payload, crc32(key));
}

export function frameValue(key: Uint8Array, payload: Uint8Array): Uint8Array {
  const out = new Uint8Array(CHECKSUM_BYTES + payload.length);
  new DataView(out.buffer).setUint32(0, checksum(key, payload));
  out.set(payload, CHECKSUM_BYTES);
  return out;
}

/** The payload of a framed value, or null if the checksum does not match (the record is damaged). */
export function unframeValue(key: Uint8Array, value: Uint8Array): Uint8Array | null {
  if (value.length < CHECKSUM_BYTES) return null;
  const stored = new DataView(value.buffer, value.byteOffset, value.byteLength).getUint32(0);
  const payload = value.subarray(CHECKSUM_BYTES);
  return checksum(key, payload) === stored ? payload : null;
}

export function pack(v: unknown): Uint8Array {
  const b = packr.pack(v);
  return new Uint8Array(b.buffer, b.byteOffset, b.byteLength);
}

/** Thrown by the decoders when a payload passed its checksum but has the wrong shape (a bug or a format mismatch). */
export class DecodeError extends Error {}

function unpack(b: Uint8Array): unknown {
  try {
    return packr.unpack(b);
  } catch (e) {
    throw new DecodeError(`undecodable msgpack: ${(e as Error).message}`);
  }
}

const isNat = (v: unknown): v is number => typeof v === 'number' && Number.isSafeInteger(v) && v >= 0;
const isIdList = (v: unknown): v is number[] => Array.isArray(v) && v.every(isNat);

/** A plain Uint8Array copy: msgpackr hands out Buffers that share the decoded value's memory. */
function ownBytes(b: Uint8Array): Uint8Array {
  return new Uint8Array(b);
}

const ENTRY_TYPES: readonly EntryType[] = ['normal', 'confChange'];

export function encodeEntry(e: Entry): Uint8Array {
  return pack([e.term, ENTRY_TYPES.indexOf(e.type), e.data]);
}

export function decodeEntry(index: number, b: Uint8Array): Entry {
  const v = unpack(b);
  if (!Array.isArray(v) || v.length !== 3 || !isNat(v[0]) || !isNat(v[1]) || ENTRY_TYPES[v[1]] === undefined || !(v[2] instanceof Uint8Array)) {
    throw new DecodeError('log entry is not [term, type, data]');
  }
  return { index, term: v[0], type: ENTRY_TYPES[v[1]]!, data: ownBytes(v[2]) };
}

export function encodeHardState(hs: HardState): Uint8Array {
  return pack([hs.term, hs.vote, hs.commit]);
}

export function decodeHardState(b: Uint8Array): HardState {
  const v = unpack(b);
  if (!Array.isArray(v) || v.length !== 3 || !v.every(isNat)) throw new DecodeError('hard state is not [term, vote, commit]');
  return { term: v[0], vote: v[1], commit: v[2] };
}

export function encodeConfState(cs: ConfState): Uint8Array {
  return pack(confStateToPlain(cs));
}

function confStateToPlain(cs: ConfState): unknown {
  return { voters: [...cs.voters], learners: [...cs.learners], votersOutgoing: [...cs.votersOutgoing], learnersNext: [...cs.learnersNext], autoLeave: cs.autoLeave };
}

export function confStateFromPlain(v: unknown): ConfState {
  if (typeof v !== 'object' || v === null) throw new DecodeError('conf state is not an object');
  const o = v as Record<string, unknown>;
  if (!isIdList(o.voters) || !isIdList(o.learners) || !isIdList(o.votersOutgoing) || !isIdList(o.learnersNext) || typeof o.autoLeave !== 'boolean') {
    throw new DecodeError('conf state has a missing or malformed field');
  }
  return { voters: o.voters, learners: o.learners, votersOutgoing: o.votersOutgoing, learnersNext: o.learnersNext, autoLeave: o.autoLeave };
}

export function decodeConfState(b: Uint8Array): ConfState {
  return confStateFromPlain(unpack(b));
}

export function encodeNat(n: number): Uint8Array {
  return pack(n);
}

export function decodeNat(b: Uint8Array, what: string): number {
  const v = unpack(b);
  if (!isNat(v)) throw new DecodeError(`${what} is not a non-negative integer`);
  return v;
}

export function encodeLogHead(index: number, term: number): Uint8Array {
  return pack([index, term]);
}

export function decodeLogHead(b: Uint8Array): { index: number; term: number } {
  const v = unpack(b);
  if (!Array.isArray(v) || v.length !== 2 || !v.every(isNat)) throw new DecodeError('log head is not [index, term]');
  return { index: v[0], term: v[1] };
}

export function snapshotMetaToPlain(m: SnapshotMetadata): unknown {
  return { index: m.index, term: m.term, confState: confStateToPlain(m.confState) };
}

export function snapshotMetaFromPlain(v: unknown): SnapshotMetadata {
  if (typeof v !== 'object' || v === null) throw new DecodeError('snapshot metadata is not an object');
  const o = v as Record<string, unknown>;
  if (!isNat(o.index) || !isNat(o.term)) throw new DecodeError('snapshot metadata has a malformed index or term');
  return { index: o.index, term: o.term, confState: confStateFromPlain(o.confState) };
}

export function encodeSnapshotMeta(m: SnapshotMetadata): Uint8Array {
  return pack(snapshotMetaToPlain(m));
}

export function decodeSnapshotMeta(b: Uint8Array): SnapshotMetadata {
  return snapshotMetaFromPlain(unpack(b));
}

export function unpackPlain(b: Uint8Array): unknown {
  return unpack(b);
}
