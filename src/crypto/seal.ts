// Sealing at rest (DESIGN principle 5): envelope encryption with AES-256-GCM.
//
// - The operator's master keys (a file or RAFTAUTH_MASTER_KEY) never leave the process and are
//   never replicated. They only wrap data keys.
// - Data keys are 256-bit random keys kept in replicated state wrapped by the current master key
//   (crypto domain, DataKeyRing); every process unwraps them in memory.
// - Workers seal secret record fields with a data key before proposing them, so the Raft log,
//   snapshots and LevelDB hold ciphertext only.
//
// GCM needs a unique IV per key: IVs are 96-bit random (NIST SP 800-38D §8.2.2), which keeps the
// collision risk under 2^-32 for up to 2^32 seals per key (§8.3). The AAD binds each blob to its
// purpose and record ("raftauth seal v1|" + caller's aad, e.g. "rt:<hash>"), so a valid blob moved
// to another record, or a wrapped key relabelled with another id, fails authentication.
import { createCipheriv, createDecipheriv, createHash, createSecretKey, randomBytes } from 'node:crypto';
import type { KeyObject } from 'node:crypto';
import { closeSync, fstatSync, openSync, readSync } from 'node:fs';
import type { DataKeyRing } from './records.ts';
import { packValue, unpackValue } from '../codec/msgpack.ts';
import { randomId } from './tokens.ts';

export class SealError extends Error {
  constructor(message: string) {
    super(message);
    this.name = 'SealError';
  }
}

const KEY_BYTES = 32;
const IV_BYTES = 12;
const TAG_BYTES = 16;
const SEAL_VERSION = 0x01;
/** Largest plaintext sealed or opened: records are small; a bigger one is a bug or an attack. */
export const MAX_SEAL_PLAINTEXT_BYTES = 256 * 1024;
/** Data key ids are short ASCII (randomId(12) is 16 characters); the format allows up to 255. */
const MAX_KEY_ID_BYTES = 255;
/** A master key file is a few lines; anything bigger is not one. */
const MAX_MASTER_KEY_TEXT_CHARS = 64 * 1024;
/** Current key plus old ones kept for a rewrap: a handful at most. */
const MAX_MASTER_KEYS = 16;
const WRAPPED_BYTES = IV_BYTES + KEY_BYTES + TAG_BYTES;

const enc = new TextEncoder();

/** Sealed blobs and wrapped keys cross msgpack and IPC: Buffer or Uint8Array, both are fine. */
function isBytes(v: unknown): v is Uint8Array {
  return v instanceof Uint8Array;
}

function checkKeyId(id: unknown, what: string): string {
  if (typeof id !== 'string' || id.length === 0 || id.length > MAX_KEY_ID_BYTES || !/^[\x21-\x7e]+$/.test(id)) {
    throw new SealError(`${what} must be 1..${MAX_KEY_ID_BYTES} printable ASCII characters`);
  }
  return id;
}

function gcmEncrypt(key: KeyObject, plaintext: Uint8Array, aad: Uint8Array, out: Buffer, offset: number): void {
  const iv = randomBytes(IV_BYTES);
  iv.copy(out, offset);
  const c = createCipheriv('aes-256-gcm', key, iv, { authTagLength: TAG_BYTES });
  c.setAAD(aad);
  const body = c.update(plaintext);
  const tail = c.final(); // GCM is a stream mode: empty, but final() computes the tag
  body.copy(out, offset + IV_BYTES);
  tail.copy(out, offset + IV_BYTES + body.length);
  c.getAuthTag().copy(out, out.length - TAG_BYTES);
}

/** `data` = IV || ciphertext || tag. Throws SealError on an authentication failure. */
function gcmDecrypt(key: KeyObject, data: Uint8Array, aad: Uint8Array, what: string): Buffer {
  const iv = data.subarray(0, IV_BYTES);
  const tag = data.subarray(data.length - TAG_BYTES);
  const d = createDecipheriv('aes-256-gcm', key, iv, { authTagLength: TAG_BYTES });
  d.setAAD(aad);
  d.setAuthTag(tag);
  const body = d.update(data.subarray(IV_BYTES, data.length - TAG_BYTES));
  try {
    const tail = d.final();
    return tail.length === 0 ? body : Buffer.concat([body, tail]);
  } catch {
    throw new SealError(`${what}: authentication failed (wrong key, wrong aad, or the data was altered)`);
  }
}

// ---------------------------------------------------------------------------------------------
// Master keys

/** A master key's public id: first 16 chars of base64url(SHA-256("raftauth master key id" || key)). */
function masterKid(key: Uint8Array): string {
  return createHash('sha256').update('raftauth master key id', 'utf8').update(key).digest('base64url').slice(0, 16);
}

/** 32 bytes from base64url or standard base64 (padding optional), or null. Canonical encodings only. */
function decodeKey(s: string): Buffer | null {
  let b: Buffer;
  if (/^[A-Za-z0-9_-]+$/.test(s)) b = Buffer.from(s, 'base64url');
  else if (/^[A-Za-z0-9+/]+={0,2}$/.test(s)) b = Buffer.from(s, 'base64');
  else return null;
  // Buffer.from ignores stray trailing bits; re-encoding catches a typo in the last character.
  if (b.toString('base64url') !== s.replace(/=+$/, '').replace(/\+/g, '-').replace(/\//g, '_')) return null;
  return b;
}

const ENV_SOURCE = 'RAFTAUTH_MASTER_KEY';

export class MasterKeyRing {
  readonly currentKid: string;
  private readonly keys: ReadonlyMap<string, KeyObject>;

  private constructor(keys: Map<string, KeyObject>, currentKid: string) {
    this.keys = keys;
    this.currentKid = currentKid;
  }

  /**
   * One key per non-empty line not starting with '#'; the first is current, the others are old
   * keys kept so data keys wrapped by them can still be unwrapped (and rewrapped). Errors name the
   * source and the line, never the key.
   */
  static parse(text: string, source: string): MasterKeyRing {
    if (typeof text !== 'string') throw new SealError(`${source}: not text`);
    if (text.length > MAX_MASTER_KEY_TEXT_CHARS) throw new SealError(`${source}: longer than ${MAX_MASTER_KEY_TEXT_CHARS} characters; not a master key file`);
    const keys = new Map<string, KeyObject>();
    let current: string | null = null;
    const lines = text.split(/\r?\n/);
    for (let i = 0; i < lines.length; i++) {
      const line = lines[i]!.trim();
      if (line === '' || line.startsWith('#')) continue;
      const where = `${source} line ${i + 1}`;
      const key = decodeKey(line);
      if (key === null) throw new SealError(`${where}: not base64url or base64 (a master key is 32 random bytes)`);
      if (key.length !== KEY_BYTES) throw new SealError(`${where}: a master key must be exactly ${KEY_BYTES} bytes, this one is ${key.length}`);
      const kid = masterKid(key);
      if (keys.has(kid)) throw new SealError(`${where}: the same key appears twice (id ${kid})`);
      if (keys.size >= MAX_MASTER_KEYS) throw new SealError(`${where}: more than ${MAX_MASTER_KEYS} master keys`);
      keys.set(kid, createSecretKey(key));
      key.fill(0);
      current ??= kid;
    }
    if (current === null) throw new SealError(`${source}: contains no master key`);
    return new MasterKeyRing(keys, current);
  }

  /**
   * The environment (the text of RAFTAUTH_MASTER_KEY) wins over the file. The file must be the
   * operator's alone: a key readable by group or others is refused rather than used.
   */
  static load(opts: { file: string | null; env: string | undefined }): MasterKeyRing {
    if (opts.env !== undefined) return MasterKeyRing.parse(opts.env, `environment variable ${ENV_SOURCE}`);
    if (opts.file === null) throw new SealError(`no master key: set ${ENV_SOURCE} or configure a master key file`);
    const source = `master key file ${opts.file}`;
    let fd: number;
    try {
      fd = openSync(opts.file, 'r');
    } catch (e) {
      throw new SealError(`${source}: cannot open: ${(e as NodeJS.ErrnoException).code ?? (e as Error).message}`);
    }
    try {
      // fstat on the open descriptor: the file checked is the file read.
      const st = fstatSync(fd);
      if (!st.isFile()) throw new SealError(`${source}: not a regular file`);
      if ((st.mode & 0o077) !== 0) {
        throw new SealError(`${source}: readable or writable by group or others (mode ${(st.mode & 0o777).toString(8).padStart(3, '0')}); run chmod 600 ${opts.file}`);
      }
      if (st.size > MAX_MASTER_KEY_TEXT_CHARS) throw new SealError(`${source}: larger than ${MAX_MASTER_KEY_TEXT_CHARS} bytes; not a master key file`);
      const buf = Buffer.alloc(MAX_MASTER_KEY_TEXT_CHARS + 1);
      let n = 0;
      for (;;) {
        const r = readSync(fd, buf, n, buf.length - n, null);
        if (r === 0) break;
        n += r;
        if (n > MAX_MASTER_KEY_TEXT_CHARS) throw new SealError(`${source}: larger than ${MAX_MASTER_KEY_TEXT_CHARS} bytes; not a master key file`);
      }
      const text = buf.toString('utf8', 0, n);
      buf.fill(0);
      return MasterKeyRing.parse(text, source);
    } finally {
      closeSync(fd);
    }
  }

  /** A new key file's text: one fresh key and a newline. */
  static generateText(): string {
    return randomBytes(KEY_BYTES).toString('base64url') + '\n';
  }

  /** Ids of every key, the current one first. */
  kids(): string[] {
    return [...this.keys.keys()];
  }

  /** Wrap a data key with the current master key: IV || ciphertext || tag (60 bytes). */
  wrap(dataKey: Uint8Array, dataKeyId: string): { masterKid: string; wrapped: Uint8Array } {
    if (!isBytes(dataKey) || dataKey.length !== KEY_BYTES) throw new SealError(`a data key must be ${KEY_BYTES} bytes`);
    checkKeyId(dataKeyId, 'data key id');
    const kid = this.currentKid;
    const out = Buffer.alloc(WRAPPED_BYTES);
    gcmEncrypt(this.keys.get(kid)!, dataKey, wrapAad(dataKeyId, kid), out, 0);
    return { masterKid: kid, wrapped: out };
  }

  /** Unwrap a data key with the master key that wrapped it. */
  unwrap(w: { id: string; masterKid: string; wrapped: Uint8Array }): Uint8Array {
    const id = checkKeyId(w.id, 'data key id');
    if (typeof w.masterKid !== 'string') throw new SealError(`data key ${id}: bad format: masterKid is not a string`);
    const key = this.keys.get(w.masterKid);
    if (!key) throw new SealError(`data key ${id}: unknown master key id ${w.masterKid} (is the master key that wrapped it missing from the key file?)`);
    if (!isBytes(w.wrapped) || w.wrapped.length !== WRAPPED_BYTES) throw new SealError(`data key ${id}: bad format: a wrapped key is ${WRAPPED_BYTES} bytes`);
    return gcmDecrypt(key, w.wrapped, wrapAad(id, w.masterKid), `data key ${id}`);
  }
}

function wrapAad(dataKeyId: string, kid: string): Uint8Array {
  return enc.encode(`raftauth dk v1|${dataKeyId}|${kid}`);
}

/** A fresh data key and its id. */
export function newDataKey(): { id: string; key: Uint8Array } {
  return { id: randomId(12), key: randomBytes(KEY_BYTES) };
}

// ---------------------------------------------------------------------------------------------
// Sealer

/**
 * Seals with the active data key, opens with any key of the ring. Format:
 * 0x01 | n | n ASCII bytes of the data key id | 12-byte IV | ciphertext | 16-byte tag.
 */
export class Sealer {
  private readonly keys = new Map<string, { key: KeyObject; idBytes: Buffer }>();
  private readonly active: { key: KeyObject; idBytes: Buffer };

  constructor(keys: ReadonlyMap<string, Uint8Array>, activeId: string) {
    for (const [id, key] of keys) {
      checkKeyId(id, 'data key id');
      if (!isBytes(key) || key.length !== KEY_BYTES) throw new SealError(`data key ${id} must be ${KEY_BYTES} bytes`);
      this.keys.set(id, { key: createSecretKey(key), idBytes: Buffer.from(id, 'latin1') });
    }
    const active = this.keys.get(activeId);
    if (!active) throw new SealError(`the active data key ${String(activeId)} is not in the ring`);
    this.active = active;
  }

  seal(plaintext: Uint8Array, aad: string): Uint8Array {
    if (!isBytes(plaintext)) throw new SealError('seal: plaintext must be bytes');
    if (plaintext.length > MAX_SEAL_PLAINTEXT_BYTES) throw new SealError(`seal: plaintext of ${plaintext.length} bytes exceeds ${MAX_SEAL_PLAINTEXT_BYTES}`);
    const { key, idBytes } = this.active;
    const head = 2 + idBytes.length;
    const out = Buffer.alloc(head + IV_BYTES + plaintext.length + TAG_BYTES);
    out[0] = SEAL_VERSION;
    out[1] = idBytes.length;
    idBytes.copy(out, 2);
    gcmEncrypt(key, plaintext, sealAad(aad), out, head);
    return out;
  }

  open(sealed: Uint8Array, aad: string): Uint8Array {
    if (!isBytes(sealed)) throw new SealError('open: bad format: not bytes');
    if (sealed.length < 2) throw new SealError('open: bad format: truncated');
    if (sealed[0] !== SEAL_VERSION) throw new SealError(`open: bad format: unknown version ${sealed[0]}`);
    const n = sealed[1]!;
    const head = 2 + n;
    if (n === 0 || sealed.length < head + IV_BYTES + TAG_BYTES) throw new SealError('open: bad format: truncated');
    if (sealed.length - head - IV_BYTES - TAG_BYTES > MAX_SEAL_PLAINTEXT_BYTES) throw new SealError(`open: bad format: longer than ${MAX_SEAL_PLAINTEXT_BYTES} bytes of plaintext`);
    const id = Buffer.from(sealed.buffer, sealed.byteOffset + 2, n).toString('latin1');
    const k = this.keys.get(id);
    if (!k) throw new SealError(`open: unknown data key id ${JSON.stringify(id)}`);
    return gcmDecrypt(k.key, sealed.subarray(head), sealAad(aad), 'open');
  }

  /** msgpack (packValue) then seal. */
  sealValue(value: unknown, aad: string): Uint8Array {
    return this.seal(packValue(value), aad);
  }

  openValue<T>(sealed: Uint8Array, aad: string): T {
    const plain = this.open(sealed, aad);
    try {
      return unpackValue<T>(plain);
    } catch (e) {
      // Authenticated but not msgpack: sealed by a bug, not by an attacker.
      throw new SealError(`open: bad format: sealed value is not msgpack: ${(e as Error).message}`);
    }
  }
}

function sealAad(aad: string): Uint8Array {
  if (typeof aad !== 'string') throw new SealError('aad must be a string');
  return enc.encode(`raftauth seal v1|${aad}`);
}

/** A Sealer over every data key of the ring, unwrapped with the master keys. */
export function unwrapRing(ring: DataKeyRing, master: MasterKeyRing): Sealer {
  if (typeof ring !== 'object' || ring === null || !Array.isArray(ring.keys)) throw new SealError('data key ring: bad format');
  const keys = new Map<string, Uint8Array>();
  for (const w of ring.keys) {
    if (typeof w !== 'object' || w === null) throw new SealError('data key ring: bad format: a key is not a map');
    if (keys.has(w.id)) throw new SealError(`data key ring: key ${String(w.id)} appears twice`);
    keys.set(w.id, master.unwrap(w));
  }
  try {
    return new Sealer(keys, ring.activeId);
  } finally {
    for (const k of keys.values()) k.fill(0);
  }
}
