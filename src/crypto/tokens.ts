// Random token strings, their storage hashes, and RFC 8628 user codes.
//
// A token string (code, refresh token, device code, user code, session cookie) is never stored:
// records are keyed by tokenHash(s) (DESIGN principle 5, docs/oauth-internals.md). The tokens are
// 256-bit random values, so a plain SHA-256 is enough: there is nothing to brute-force that a
// slow hash would protect (RFC 6819 §5.1.4.1.3 asks for hashing; a salt buys nothing here).
import { createHash, randomBytes, randomInt, timingSafeEqual } from 'node:crypto';

/** Fewest random bytes a token may have (128 bits, RFC 6749 §10.10 "probability … ≤ 2^(-128)"). */
const MIN_TOKEN_BYTES = 16;
/** Largest token we make; more is a bug in the caller. */
const MAX_TOKEN_BYTES = 1024;

function checkBytes(bytes: number, min: number): number {
  if (!Number.isSafeInteger(bytes) || bytes < min || bytes > MAX_TOKEN_BYTES) throw new RangeError(`random token size must be ${min}..${MAX_TOKEN_BYTES} bytes, got ${bytes}`);
  return bytes;
}

/** base64url of `bytes` random bytes (256 bits by default). */
export function randomToken(bytes = 32): string {
  return randomBytes(checkBytes(bytes, MIN_TOKEN_BYTES)).toString('base64url');
}

/** A random identifier (not a secret: record ids, subjects, jtis), base64url. */
export function randomId(bytes = 16): string {
  // Ids need uniqueness, not secrecy; 9 bytes (72 bits) is the least anything here uses.
  return randomBytes(checkBytes(bytes, 9)).toString('base64url');
}

/** The storage key of a token: base64url(SHA-256(utf8 s)). */
export function tokenHash(s: string): string {
  return createHash('sha256').update(s, 'utf8').digest('base64url');
}

/**
 * Compare two secrets without leaking where they differ. Different lengths return false at once:
 * the length of our tokens is public (fixed by the format), only their content is secret.
 */
export function safeEqual(a: string, b: string): boolean {
  const x = Buffer.from(a, 'utf8');
  const y = Buffer.from(b, 'utf8');
  if (x.length !== y.length) return false;
  return timingSafeEqual(x, y);
}

// ---------------------------------------------------------------------------------------------
// RFC 8628 §6.1 user codes: "BCDFGHJKLMNPQRSTVWXZ" (base-20, no vowels so no words, no look-alike
// digits), 8 characters = 20^8 ≈ 2^34.5, shown as XXXX-XXXX. The low entropy is acceptable only
// because the code lives minutes and its verification page is rate-limited (§5.1).

export const USER_CODE_ALPHABET = 'BCDFGHJKLMNPQRSTVWXZ';
const USER_CODE_CHARS = 8;
/** Longest input normalizeUserCode looks at (a code with generous punctuation and spaces). */
const MAX_USER_CODE_INPUT_CHARS = 64;

/** A fresh user code, `XXXX-XXXX`; randomInt draws each character uniformly (no modulo bias). */
export function randomUserCode(): string {
  let s = '';
  for (let i = 0; i < USER_CODE_CHARS; i++) {
    if (i === USER_CODE_CHARS / 2) s += '-';
    s += USER_CODE_ALPHABET[randomInt(USER_CODE_ALPHABET.length)];
  }
  return s;
}

/**
 * What the user typed, in the form that is hashed and looked up: §6.1 asks servers to be lenient
 * with case and with the separator. ASCII-upper-cased, '-' and whitespace dropped; null unless the result
 * is exactly 8 characters of the alphabet.
 */
export function normalizeUserCode(input: string): string | null {
  if (typeof input !== 'string' || input.length > MAX_USER_CODE_INPUT_CHARS) return null;
  // ASCII-only upper-casing: String#toUpperCase would turn 'ſ' into 'S' and 'ß' into 'SS'.
  const s = input.replace(/[-\s]/g, '').replace(/[a-z]/g, (c) => c.toUpperCase());
  if (s.length !== USER_CODE_CHARS) return null;
  for (const c of s) if (!USER_CODE_ALPHABET.includes(c)) return null;
  return s;
}
