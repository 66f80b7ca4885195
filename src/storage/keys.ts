// The LevelDB key layout of a node's store. One LevelDB per node, in <dataDir>/db; snapshot files
// in <dataDir>/snap. Keys are bytes; every prefix is ASCII so `ldb dump` output stays readable.
//
//   l/ + u64be(index)                      raft log entry at `index`: msgpack [term, type, data]
//   m/hardState                            msgpack [term, vote, commit]            (Raft fig. 2)
//   m/confState                            msgpack ConfState as of m/applied
//   m/applied                              msgpack number: last log index applied to the state
//   m/logHead                              msgpack [index, term]: the last compacted log position;
//                                          the log holds exactly the entries after it
//   m/snapshot                             msgpack SnapshotMetadata of the newest snapshot file
//   m/stateGen                             msgpack number: the live state generation
//   s/ + u32be(gen) + / + keyspace + / + key    state-machine record of generation `gen`
//
// Every value is [crc32(key bytes ++ payload), 4 bytes big-endian][payload] (records.ts), so a
// flipped bit, a torn value or a value copied under another key is detected when it is read.
// Big-endian fixed-width numbers make LevelDB's byte order equal to numeric order, so a log range
// or a generation is one contiguous key range. State generations make snapshot installation atomic:
// a snapshot is loaded into generation gen+1 beside the live one and a single small batch flips
// m/stateGen; any generation other than the live one is garbage and is deleted at open.
import { StorageError } from './errors.ts';

const enc = new TextEncoder();
const dec = new TextDecoder('utf-8', { fatal: false });

export const LOG_PREFIX = enc.encode('l/');
export const STATE_PREFIX = enc.encode('s/');
const SLASH = 0x2f;

export const META = {
  hardState: enc.encode('m/hardState'),
  confState: enc.encode('m/confState'),
  applied: enc.encode('m/applied'),
  logHead: enc.encode('m/logHead'),
  snapshot: enc.encode('m/snapshot'),
  stateGen: enc.encode('m/stateGen'),
} as const;

export type MetaName = keyof typeof META;

/** Largest generation number (u32 in the key). One generation is used per installed snapshot. */
export const MAX_STATE_GEN = 0xffff_ffff;

const KEYSPACE_RE = /^[a-z][a-z0-9_.-]{0,63}$/;

export function logKey(index: number): Uint8Array {
  // u64be(index) from two u32 halves: no BigInt or DataView per key (one key per entry written,
  // on the group-commit path of every node). index is a safe integer, so hi < 2^21.
  const k = new Uint8Array(10);
  k[0] = LOG_PREFIX[0]!;
  k[1] = LOG_PREFIX[1]!;
  const hi = Math.floor(index / 0x1_0000_0000);
  const lo = index >>> 0;
  k[2] = hi >>> 24;
  k[3] = (hi >>> 16) & 0xff;
  k[4] = (hi >>> 8) & 0xff;
  k[5] = hi & 0xff;
  k[6] = lo >>> 24;
  k[7] = (lo >>> 16) & 0xff;
  k[8] = (lo >>> 8) & 0xff;
  k[9] = lo & 0xff;
  return k;
}

/** The index of a log key, or null if `key` is not a well-formed log key. */
export function parseLogKey(key: Uint8Array): number | null {
  if (key.length !== 10 || key[0] !== LOG_PREFIX[0] || key[1] !== LOG_PREFIX[1]) return null;
  const v = new DataView(key.buffer, key.byteOffset, key.byteLength).getBigUint64(2);
  return v > BigInt(Number.MAX_SAFE_INTEGER) ? null : Number(v);
}

/** Lower bound (inclusive) of all keys of generation `gen`: s/ + u32be(gen). */
export function stateGenPrefix(gen: number): Uint8Array {
  if (!Number.isInteger(gen) || gen < 0 || gen > MAX_STATE_GEN) throw new StorageError('INVALID_ARGUMENT', `state generation ${gen} out of range`);
  const k = new Uint8Array(6);
  k.set(STATE_PREFIX, 0);
  new DataView(k.buffer).setUint32(2, gen);
  return k;
}

/** Exclusive upper bound of generation `gen`'s keys. */
export function stateGenEnd(gen: number): Uint8Array {
  if (gen === MAX_STATE_GEN) return enc.encode('s0'); // '0' = '/' + 1: just past every s/ key
  return stateGenPrefix(gen + 1);
}

/** The generation of a state key, or null if it is not one. */
export function parseStateGen(key: Uint8Array): number | null {
  if (key.length < 7 || key[0] !== STATE_PREFIX[0] || key[1] !== STATE_PREFIX[1] || key[6] !== SLASH) return null;
  return new DataView(key.buffer, key.byteOffset, key.byteLength).getUint32(2);
}

export function checkKeyspace(keyspace: string): void {
  if (!KEYSPACE_RE.test(keyspace)) {
    throw new StorageError('INVALID_ARGUMENT', `keyspace ${JSON.stringify(keyspace)} must match ${KEYSPACE_RE.source}`);
  }
}

export function keyBytes(key: string | Uint8Array): Uint8Array {
  return typeof key === 'string' ? enc.encode(key) : key;
}

/** s/ + u32be(gen) + / + keyspace + / : the prefix of every record of `keyspace` in `gen`. */
export function keyspacePrefix(gen: number, keyspace: string): Uint8Array {
  checkKeyspace(keyspace);
  const ks = enc.encode(keyspace);
  const g = stateGenPrefix(gen);
  const k = new Uint8Array(g.length + 1 + ks.length + 1);
  k.set(g, 0);
  k[g.length] = SLASH;
  k.set(ks, g.length + 1);
  k[k.length - 1] = SLASH;
  return k;
}

/**
 * keyspacePrefix by generation and keyspace: every state read and write of every node builds a
 * key, and there are a few dozen keyspaces and one live generation. Cleared when it reaches
 * PREFIX_CACHE_MAX entries (a bound, never reached in practice).
 */
const prefixCache = new Map<string, Uint8Array>();
const PREFIX_CACHE_MAX = 1024;

export function stateKey(gen: number, keyspace: string, key: string | Uint8Array): Uint8Array {
  const ck = `${gen}/${keyspace}`;
  let p = prefixCache.get(ck);
  if (p === undefined) {
    p = keyspacePrefix(gen, keyspace);
    if (prefixCache.size >= PREFIX_CACHE_MAX) prefixCache.clear();
    prefixCache.set(ck, p);
  }
  const kb = keyBytes(key);
  const k = new Uint8Array(p.length + kb.length);
  k.set(p, 0);
  k.set(kb, p.length);
  return k;
}

/** Split a state key of a known generation into keyspace and key; null if malformed. */
export function parseStateKey(key: Uint8Array): { gen: number; keyspace: string; key: Uint8Array } | null {
  const gen = parseStateGen(key);
  if (gen === null) return null;
  const end = key.indexOf(SLASH, 7);
  if (end < 0) return null;
  const keyspace = dec.decode(key.subarray(7, end));
  if (!KEYSPACE_RE.test(keyspace)) return null;
  return { gen, keyspace, key: key.slice(end + 1) };
}

/** The smallest key greater than every key that starts with `prefix` (for exclusive range ends). */
export function prefixEnd(prefix: Uint8Array): Uint8Array {
  const out = prefix.slice();
  for (let i = out.length - 1; i >= 0; i--) {
    if (out[i]! < 0xff) {
      out[i]! += 1;
      return out.slice(0, i + 1);
    }
  }
  throw new StorageError('INVALID_ARGUMENT', 'prefix of 0xff bytes has no upper bound');
}

export function concatBytes(a: Uint8Array, b: Uint8Array): Uint8Array {
  const out = new Uint8Array(a.length + b.length);
  out.set(a, 0);
  out.set(b, a.length);
  return out;
}

/** A printable form of a key for error messages: l/<index>, m/<name>, s/<gen>/<keyspace>/<key>. */
export function printableKey(key: Uint8Array): string {
  const li = parseLogKey(key);
  if (li !== null) return `l/${li}`;
  const sk = parseStateKey(key);
  if (sk !== null) {
    const text = dec.decode(sk.key);
    const printable = /^[\x20-\x7e]*$/.test(text) ? text : `0x${Buffer.from(sk.key).toString('hex')}`;
    return `s/${sk.gen}/${sk.keyspace}/${printable}`;
  }
  const text = dec.decode(key);
  return /^[\x20-\x7e]*$/.test(text) ? text : `0x${Buffer.from(key).toString('hex')}`;
}
