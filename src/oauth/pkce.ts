// Proof Key for Code Exchange (RFC 7636).
import { createHash } from 'node:crypto';
import { safeEqual } from '../crypto/tokens.ts';

/** RFC 7636 §4.1: code_verifier = 43*128unreserved; §4.2: an S256 challenge is base64url of 32 bytes (43 chars). */
const VERIFIER_RE = /^[A-Za-z0-9\-._~]{43,128}$/;
const CHALLENGE_RE = /^[A-Za-z0-9\-._~]{43,128}$/;

export function isValidCodeVerifier(v: string): boolean {
  return VERIFIER_RE.test(v);
}

export function isValidCodeChallenge(c: string, method: 'S256' | 'plain'): boolean {
  if (method === 'S256') return /^[A-Za-z0-9_-]{43}$/.test(c);
  return CHALLENGE_RE.test(c);
}

/** RFC 7636 §4.6: BASE64URL-ENCODE(SHA256(ASCII(code_verifier))) == code_challenge (or plain equality). */
export function verifyPkce(verifier: string, challenge: string, method: 'S256' | 'plain'): boolean {
  if (!isValidCodeVerifier(verifier)) return false;
  const computed = method === 'S256' ? createHash('sha256').update(verifier, 'ascii').digest('base64url') : verifier;
  return safeEqual(computed, challenge);
}
