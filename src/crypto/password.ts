// User password hashing: scrypt (RFC 7914) from node:crypto, async (libuv thread pool), so a
// worker keeps serving while a hash runs. Stored as a PHC string
// (https://github.com/P-H-C/phc-string-format): $scrypt$ln=17,r=8,p=1$<salt>$<hash>, salt and hash
// in unpadded standard base64 as the PHC format says. The parameters travel in the string, so a
// cost raise (needsRehash) upgrades hashes at the next successful login.
import { randomBytes, scrypt, timingSafeEqual } from 'node:crypto';

export interface ScryptParams {
  /** log2 of the CPU/memory cost N. */
  readonly ln: number;
  readonly r: number;
  readonly p: number;
}

const SALT_BYTES = 16;
const HASH_BYTES = 32;
/** NIST SP 800-63B §5.1.1.2 asks for at least 64; more than this is not a password but a payload. */
export const MAX_PASSWORD_CHARS = 1024;
/** Bounds on what we make and what we accept from a stored string (a hostile or corrupt record must not cost unbounded memory). */
const LIMITS = { ln: [10, 20], r: [1, 32], p: [1, 16] } as const;
/** Longest PHC string we parse. */
const MAX_PHC_CHARS = 256;
/** Salt and hash sizes accepted from a stored string (we make 16 and 32). */
const SALT_RANGE = [8, 64] as const;
const HASH_RANGE = [16, 64] as const;

/**
 * scrypt's memory is 128·N·r bytes: each bound alone allows ln=20 with r=32, 4 GiB per hash. One
 * hash may use at most 1 GiB (ln=20 with r=8, or ln=17 with r=32), so a stored string cannot make a
 * login exhaust the worker's memory.
 */
const MAX_SCRYPT_MEMORY_BYTES = 1 << 30;

function paramsOk(x: ScryptParams): boolean {
  const each = (Object.keys(LIMITS) as (keyof typeof LIMITS)[]).every((k) => Number.isSafeInteger(x[k]) && x[k] >= LIMITS[k][0] && x[k] <= LIMITS[k][1]);
  return each && 128 * 2 ** x.ln * x.r <= MAX_SCRYPT_MEMORY_BYTES;
}

function checkParams(x: ScryptParams): void {
  if (!paramsOk(x)) {
    throw new RangeError(
      `scrypt parameters out of range: ln ${LIMITS.ln.join('..')}, r ${LIMITS.r.join('..')}, p ${LIMITS.p.join('..')}, 128·2^ln·r at most 1 GiB (got ln=${x.ln}, r=${x.r}, p=${x.p})`,
    );
  }
}

function derive(password: string, salt: Uint8Array, x: ScryptParams, keylen: number): Promise<Buffer> {
  const N = 2 ** x.ln;
  return new Promise((resolve, reject) => {
    // scrypt needs 128·N·r bytes of V plus 128·r·p of B; Node refuses more than maxmem, whose
    // default (32 MiB) is below ln=17, r=8. 256·N·r + 1 MiB leaves room without being unbounded.
    scrypt(password, salt, keylen, { N, r: x.r, p: x.p, maxmem: 256 * N * x.r + (1 << 20) }, (err, key) => (err ? reject(err) : resolve(key)));
  });
}

/**
 * NIST SP 800-63B §5.1.1.2: "the verifier SHOULD apply the Normalization Process for Stabilized
 * Strings using either the NFKC or NFKD normalization", so the same password typed on two
 * keyboards hashes the same. The length bound is checked before normalizing (it bounds the work).
 */
function normalize(password: string): string | null {
  if (typeof password !== 'string' || password.length > MAX_PASSWORD_CHARS) return null;
  return password.normalize('NFKC');
}

const b64 = (b: Uint8Array): string => Buffer.from(b).toString('base64').replace(/=+$/, '');

/** Unpadded standard base64 → bytes, canonical encodings only; null otherwise. */
function unb64(s: string): Buffer | null {
  if (!/^[A-Za-z0-9+/]+$/.test(s) || s.length % 4 === 1) return null;
  const b = Buffer.from(s, 'base64');
  return b64(b) === s ? b : null;
}

export async function hashPassword(password: string, params: ScryptParams): Promise<string> {
  checkParams(params);
  const pw = normalize(password);
  if (pw === null) throw new Error(`a password must be a string of at most ${MAX_PASSWORD_CHARS} characters`);
  const salt = randomBytes(SALT_BYTES);
  const hash = await derive(pw, salt, params, HASH_BYTES);
  return `$scrypt$ln=${params.ln},r=${params.r},p=${params.p}$${b64(salt)}$${b64(hash)}`;
}

interface Parsed {
  readonly params: ScryptParams;
  readonly salt: Buffer;
  readonly hash: Buffer;
}

function parse(phc: string): Parsed | null {
  if (typeof phc !== 'string' || phc.length > MAX_PHC_CHARS) return null;
  // PHC: decimal parameter values without leading zeros, in the function's fixed order.
  const m = /^\$scrypt\$ln=([1-9][0-9]?),r=([1-9][0-9]?),p=([1-9][0-9]?)\$([A-Za-z0-9+/]+)\$([A-Za-z0-9+/]+)$/.exec(phc);
  if (!m) return null;
  const params = { ln: Number(m[1]), r: Number(m[2]), p: Number(m[3]) };
  if (!paramsOk(params)) return null;
  const salt = unb64(m[4]!);
  const hash = unb64(m[5]!);
  if (!salt || salt.length < SALT_RANGE[0] || salt.length > SALT_RANGE[1]) return null;
  if (!hash || hash.length < HASH_RANGE[0] || hash.length > HASH_RANGE[1]) return null;
  return { params, salt, hash };
}

/** False for a wrong password, a too-long one, or a malformed or out-of-bounds PHC string; never throws on them. */
export async function verifyPassword(password: string, phc: string): Promise<boolean> {
  const parsed = parse(phc);
  const pw = normalize(password);
  if (parsed === null || pw === null) return false;
  const got = await derive(pw, parsed.salt, parsed.params, parsed.hash.length);
  return timingSafeEqual(got, parsed.hash);
}

// A fixed target for verifyDummy: what a real verification compares against, minus a real user.
const DUMMY_SALT = Buffer.alloc(SALT_BYTES, 0x5a);
const DUMMY_HASH = Buffer.alloc(HASH_BYTES, 0xa5);

/**
 * Spend what a real verification spends (one scrypt with these params, one constant-time compare)
 * and return false: a login for an unknown username must take as long as a wrong password, or the
 * response time tells which usernames exist.
 */
export async function verifyDummy(params: ScryptParams): Promise<false> {
  checkParams(params);
  const got = await derive('raftauth dummy password', DUMMY_SALT, params, HASH_BYTES);
  timingSafeEqual(got, DUMMY_HASH);
  return false;
}

/** True when the stored hash was made with other parameters (or sizes) than those wanted now, or is unreadable. */
export function needsRehash(phc: string, params: ScryptParams): boolean {
  const parsed = parse(phc);
  if (parsed === null) return true;
  const x = parsed.params;
  return x.ln !== params.ln || x.r !== params.r || x.p !== params.p || parsed.salt.length !== SALT_BYTES || parsed.hash.length !== HASH_BYTES;
}

// ---------------------------------------------------------------------------------------------
// Sealed at rest (DESIGN principle 5): a user's PHC string is replicated sealed, so the raft log,
// snapshots and LevelDB files hold no password hash an attacker with the disk could attack
// offline without also having the master key. The stored string is
// `$sealed$v1$<base64url(Sealer.seal(utf8(PHC), "pw:" + sub))>` (still a `$`-string, bound to its user).

export const SEALED_PHC_PREFIX = '$sealed$v1$';

interface SealerLike {
  seal(plaintext: Uint8Array, aad: string): Uint8Array;
  open(sealed: Uint8Array, aad: string): Uint8Array;
}

/** Hash a password and seal the PHC string for user `sub`. */
export async function hashAndSealPassword(sealer: SealerLike, sub: string, password: string, params: ScryptParams): Promise<string> {
  const phc = await hashPassword(password, params);
  return SEALED_PHC_PREFIX + Buffer.from(sealer.seal(new TextEncoder().encode(phc), `pw:${sub}`)).toString('base64url');
}

/** The PHC string of a stored password (sealed, or a plain PHC string written before sealing existed). Throws SealError on a bad seal. */
export function openPasswordHash(sealer: SealerLike, sub: string, stored: string): string {
  if (!stored.startsWith(SEALED_PHC_PREFIX)) return stored;
  return new TextDecoder().decode(sealer.open(Buffer.from(stored.slice(SEALED_PHC_PREFIX.length), 'base64url'), `pw:${sub}`));
}

/** verifyPassword against a stored (sealed) hash. */
export async function verifyStoredPassword(sealer: SealerLike, sub: string, password: string, stored: string): Promise<boolean> {
  return verifyPassword(password, openPasswordHash(sealer, sub, stored));
}
