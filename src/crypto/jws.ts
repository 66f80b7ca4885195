// Compact JWS (RFC 7515 §7.1) signing and verification of JWTs (RFC 7519) on node:crypto.
//
// Why not jose here: jose signs through WebCrypto, which is async (a promise and a thread-pool
// round trip per signature). The token endpoint signs one JWT per request, so this is on the hot
// path. The design estimate was ~5k/s with jose against ~30k/s with the synchronous crypto.sign below, per
// core. Measured 2026-11 on a loaded 2-core machine: jose ~10k ES256 signs/s, this module
// ~18k–27k/s (scripts/bench-jws.ts). jose stays the reference: the tests check interop both ways.
//
// Algorithms: ES256 (RFC 7518 §3.4: the signature is R || S, 32 bytes each, not DER — hence
// dsaEncoding 'ieee-p1363') and EdDSA (RFC 8037 §3.1: Ed25519/Ed448, the signature is the raw
// EdDSA output; crypto.sign with a null digest). Nothing else is accepted, "none" least of all
// (RFC 8725 §3.1, §3.2).
import { sign as cryptoSign, verify as cryptoVerify } from 'node:crypto';
import type { KeyObject } from 'node:crypto';
import type { SigningAlg } from './records.ts';

export interface SigningKey {
  readonly kid: string;
  readonly alg: SigningAlg;
  readonly privateKey: KeyObject;
}

export type JwtVerifyErrorCode = 'malformed' | 'unknown_key' | 'bad_signature' | 'expired' | 'not_yet_valid' | 'claim';

export class JwtVerifyError extends Error {
  readonly code: JwtVerifyErrorCode;

  constructor(
    code: JwtVerifyErrorCode,
    message: string,
  ) {
    super(message);
    this.code = code;
    this.name = 'JwtVerifyError';
  }
}

/** Largest token verifyJwt looks at. */
export const MAX_JWT_CHARS = 16 * 1024;
const MAX_HEADER_CACHE = 64;

/** Does this key fit this algorithm? (RFC 8725 §3.1: never let the token choose how a key is used.) */
function keyFits(alg: SigningAlg, key: KeyObject): boolean {
  if (alg === 'ES256') return key.asymmetricKeyType === 'ec' && key.asymmetricKeyDetails?.namedCurve === 'prime256v1';
  return key.asymmetricKeyType === 'ed25519' || key.asymmetricKeyType === 'ed448';
}

// Encoded protected headers, per (kid, typ): the same few strings on every request.
const headerCache = new Map<string, string>();
// Private keys already checked against their algorithm (asymmetricKeyDetails is not free).
const checkedSigningKeys = new WeakMap<KeyObject, SigningAlg>();

function encodedHeader(key: SigningKey, typ: string): string {
  const cacheKey = `${key.alg}\n${key.kid}\n${typ}`;
  let h = headerCache.get(cacheKey);
  if (h === undefined) {
    // RFC 7515 §4.1: alg, kid, typ, in that order (stable output; the order has no meaning).
    h = Buffer.from(JSON.stringify({ alg: key.alg, kid: key.kid, typ }), 'utf8').toString('base64url');
    if (headerCache.size >= MAX_HEADER_CACHE) headerCache.clear();
    headerCache.set(cacheKey, h);
  }
  return h;
}

/** Sign `payload` as a compact JWS with protected header {alg, kid, typ}. */
export function signJwt(key: SigningKey, payload: Record<string, unknown>, typ: string): string {
  if (checkedSigningKeys.get(key.privateKey) !== key.alg) {
    if (key.privateKey.type !== 'private' || !keyFits(key.alg, key.privateKey)) throw new TypeError(`signing key ${key.kid} is not a private key for ${key.alg}`);
    checkedSigningKeys.set(key.privateKey, key.alg);
  }
  const input = `${encodedHeader(key, typ)}.${Buffer.from(JSON.stringify(payload), 'utf8').toString('base64url')}`;
  const data = Buffer.from(input, 'latin1'); // base64url and '.' only: latin1 is the cheapest exact encoding
  const sig = key.alg === 'ES256' ? cryptoSign('sha256', data, { key: key.privateKey, dsaEncoding: 'ieee-p1363' }) : cryptoSign(null, data, key.privateKey);
  return `${input}.${sig.toString('base64url')}`;
}

export interface VerifyOptions {
  /** Expected `typ` (e.g. "at+jwt"); compared as a media type, RFC 7515 §4.1.9. Not checked if absent. */
  readonly typ?: string;
  /** Required `iss` (exact match). */
  readonly issuer: string;
  /** If given, `aud` must be it or a list containing it (RFC 7519 §4.1.3). */
  readonly audience?: string;
  /** Now, in seconds since the epoch. */
  readonly nowS: number;
  /** Leeway on exp / nbf / iat, seconds (default 0). */
  readonly clockToleranceS?: number;
  /** Accepted `alg` values. */
  readonly algorithms: readonly SigningAlg[];
}

const B64URL = /^[A-Za-z0-9_-]+$/;
const strictUtf8 = new TextDecoder('utf-8', { fatal: true });

function decodeJson(part: string, what: string): Record<string, unknown> {
  if (!B64URL.test(part)) throw new JwtVerifyError('malformed', `${what} is not base64url`);
  let v: unknown;
  try {
    v = JSON.parse(strictUtf8.decode(Buffer.from(part, 'base64url')));
  } catch {
    throw new JwtVerifyError('malformed', `${what} is not UTF-8 JSON`);
  }
  // RFC 7515 §4 / RFC 7519 §7.2 step 10: both are JSON objects. (Duplicate member names: JSON.parse
  // keeps the last, which RFC 7515 §4 allows.)
  if (typeof v !== 'object' || v === null || Array.isArray(v)) throw new JwtVerifyError('malformed', `${what} is not a JSON object`);
  return v as Record<string, unknown>;
}

/** RFC 7515 §4.1.9: media types compare case-insensitively, and "application/" is implied when there is no '/'. */
function mediaType(t: string): string {
  const l = t.toLowerCase();
  return l.includes('/') ? l : `application/${l}`;
}

function numericDate(payload: Record<string, unknown>, name: string): number | undefined {
  const v = payload[name];
  if (v === undefined) return undefined;
  // RFC 7519 §2: NumericDate is a JSON number of seconds.
  if (typeof v !== 'number' || !Number.isFinite(v)) throw new JwtVerifyError('claim', `${name} is not a NumericDate`);
  return v;
}

/**
 * Verify a compact JWS JWT synchronously and return its claims. Checks, in order: shape and size,
 * header (alg allowed, no crit, kid, typ), key (known, fitting the alg), signature, then claims
 * (iss, aud, exp required, nbf, iat). Every failure is a JwtVerifyError.
 */
export function verifyJwt(token: string, keyFor: (kid: string) => KeyObject | undefined, opts: VerifyOptions): Record<string, unknown> {
  if (typeof token !== 'string' || token.length === 0) throw new JwtVerifyError('malformed', 'the token is empty');
  if (token.length > MAX_JWT_CHARS) throw new JwtVerifyError('malformed', `the token is longer than ${MAX_JWT_CHARS} characters`);
  const tol = opts.clockToleranceS ?? 0;
  if (!Number.isFinite(tol) || tol < 0) throw new RangeError('clockToleranceS must be a non-negative number');
  const parts = token.split('.');
  // RFC 7515 §7.1: three parts (a JWE has five; an unsecured JWT has an empty signature).
  if (parts.length !== 3) throw new JwtVerifyError('malformed', 'a JWS in compact serialization has three parts');
  const [h, p, s] = parts as [string, string, string];
  // A JWT has a payload (RFC 7519 §7.2 step 10); an empty one (detached content, RFC 7515 App. F) is not a JWT.
  if (!B64URL.test(p)) throw new JwtVerifyError('malformed', 'the payload is empty or not base64url');
  const header = decodeJson(h, 'the header');

  const alg = header.alg;
  if (typeof alg !== 'string' || !(opts.algorithms as readonly string[]).includes(alg)) {
    throw new JwtVerifyError('malformed', `alg ${JSON.stringify(alg)} is not accepted (accepted: ${opts.algorithms.join(', ')})`);
  }
  // RFC 7515 §4.1.11: a recipient that does not understand a listed extension MUST reject the JWS;
  // we understand none (this also refuses RFC 7797 unencoded payloads, which need crit).
  if (header.crit !== undefined) throw new JwtVerifyError('malformed', 'crit header extensions are not supported');
  if (opts.typ !== undefined) {
    if (typeof header.typ !== 'string' || mediaType(header.typ) !== mediaType(opts.typ)) {
      throw new JwtVerifyError('malformed', `typ must be ${opts.typ}, got ${JSON.stringify(header.typ)}`);
    }
  }
  const kid = header.kid;
  if (typeof kid !== 'string' || kid.length === 0) throw new JwtVerifyError('malformed', 'the header has no kid');
  const key = keyFor(kid);
  if (key === undefined) throw new JwtVerifyError('unknown_key', `no key with kid ${JSON.stringify(kid)}`);
  if (!keyFits(alg as SigningAlg, key)) throw new JwtVerifyError('bad_signature', `key ${JSON.stringify(kid)} cannot verify ${alg}`);

  if (!B64URL.test(s)) throw new JwtVerifyError('malformed', 'the signature is not base64url');
  const sig = Buffer.from(s, 'base64url');
  // Buffer.from ignores stray trailing bits: re-encode so one signature has exactly one spelling.
  if (sig.toString('base64url') !== s) throw new JwtVerifyError('malformed', 'the signature is not canonical base64url');
  const data = Buffer.from(`${h}.${p}`, 'latin1');
  let ok: boolean;
  try {
    ok =
      alg === 'ES256'
        ? sig.length === 64 && cryptoVerify('sha256', data, { key, dsaEncoding: 'ieee-p1363' }, sig) // RFC 7518 §3.4: exactly 64 bytes
        : cryptoVerify(null, data, key, sig);
  } catch {
    ok = false;
  }
  if (!ok) throw new JwtVerifyError('bad_signature', 'the signature does not verify');

  const payload = decodeJson(p, 'the payload');
  if (payload.iss !== opts.issuer) throw new JwtVerifyError('claim', `iss must be ${opts.issuer}`);
  if (opts.audience !== undefined) {
    const aud = payload.aud;
    const has = typeof aud === 'string' ? aud === opts.audience : Array.isArray(aud) && aud.includes(opts.audience);
    if (!has) throw new JwtVerifyError('claim', `aud does not include ${opts.audience}`);
  }
  const exp = numericDate(payload, 'exp');
  if (exp === undefined) throw new JwtVerifyError('claim', 'exp is required');
  // RFC 7519 §4.1.4: "the current date/time MUST be before the expiration date/time".
  if (opts.nowS - tol >= exp) throw new JwtVerifyError('expired', 'the token has expired');
  const nbf = numericDate(payload, 'nbf');
  // §4.1.5: "MUST NOT be accepted for processing" before nbf.
  if (nbf !== undefined && opts.nowS + tol < nbf) throw new JwtVerifyError('not_yet_valid', 'the token is not valid yet (nbf)');
  const iat = numericDate(payload, 'iat');
  if (iat !== undefined && iat > opts.nowS + tol) throw new JwtVerifyError('not_yet_valid', 'the token was issued in the future (iat)');
  return payload;
}
