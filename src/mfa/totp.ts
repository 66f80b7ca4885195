// TOTP (RFC 6238) with the parameters every authenticator app supports: HMAC-SHA-1, 6 digits,
// 30-second steps, T0 = 0. The code check lives here (the worker has the unsealed secret); the
// replay rule (a step is accepted at most once per user) lives in apply, src/state/mfa.ts.
import { timingSafeEqual } from 'node:crypto';
import { generateSecret, generateSync } from 'otplib';
import QRCode from 'qrcode';
import { registerFactor } from './factor.ts';

/** RFC 6238 §4.1 X: the time step in seconds ("We RECOMMEND a default time-step size of 30 seconds"). */
export const TOTP_PERIOD_S = 30;
export const TOTP_DIGITS = 6;
/** RFC 4226 §4 R6: "at least 128 bits … This document RECOMMENDs a shared secret length of 160 bits": 20 bytes. */
export const TOTP_SECRET_BYTES = 20;
/**
 * RFC 6238 §5.2 / §6: "We RECOMMEND that at most one time step is allowed as the network delay"
 * — one step back and one ahead (for clients slightly ahead of us).
 */
export const TOTP_WINDOW = 1;
/** The largest window a caller may ask for (more would let a guess hit more codes). */
export const MAX_TOTP_WINDOW = 2;

const CODE_RE = /^[0-9]{6}$/;

/** A new random secret, base32 (RFC 4648 §6, no padding: 20 bytes = 32 characters). */
export function generateTotpSecret(): string {
  return generateSecret({ length: TOTP_SECRET_BYTES });
}

/**
 * The Key Uri Format URI: otpauth://totp/ISSUER:ACCOUNT?secret=…&issuer=ISSUER&algorithm=SHA1&
 * digits=6&period=30. The issuer is in the label *and* the parameter, as the format asks (older
 * apps read only the label prefix, newer ones the parameter). The format says neither part "may
 * themselves contain a colon"; a colon in one (a username may have one) is percent-encoded like
 * every other reserved character, so the one literal ':' is the separator. Algorithm, digits and
 * period are the defaults apps assume, written out anyway so no app has to guess.
 */
export function totpUri(opts: { secret: string; issuer: string; account: string }): string {
  if (opts.issuer.length === 0 || opts.account.length === 0) throw new RangeError('totpUri: issuer and account must not be empty');
  if (!/^[A-Z2-7]+=*$/.test(opts.secret)) throw new RangeError('totpUri: the secret must be base32');
  const label = `${encodeURIComponent(opts.issuer)}:${encodeURIComponent(opts.account)}`;
  const q = new URLSearchParams({ secret: opts.secret.replace(/=+$/, ''), issuer: opts.issuer, algorithm: 'SHA1', digits: String(TOTP_DIGITS), period: String(TOTP_PERIOD_S) });
  // URLSearchParams encodes a space as '+', which some apps show literally: use %20.
  return `otpauth://totp/${label}?${q.toString().replace(/\+/g, '%20')}`;
}

/** The URI as an SVG QR code (error correction M: survives a slightly blurred phone photo). */
export function totpQrSvg(uri: string): Promise<string> {
  return QRCode.toString(uri, { type: 'svg', errorCorrectionLevel: 'M', margin: 2 });
}

/** RFC 6238 §4.2: T = floor((unix time - T0) / X). */
export function totpStep(nowMs: number): number {
  return Math.floor(nowMs / 1000 / TOTP_PERIOD_S);
}

/** The code of time step `step` (used by tests and by matchTotpStep). */
export function totpCodeAt(secret: string, step: number): string {
  return generateSync({ secret, epoch: step * TOTP_PERIOD_S, algorithm: 'sha1', digits: TOTP_DIGITS, period: TOTP_PERIOD_S });
}

/**
 * The time step whose code is `code`, searching the current step and `window` steps either side,
 * or null. Only exactly six ASCII digits are considered (no trimming, no other Unicode digits):
 * anything else is a wrong code. Every candidate is computed and compared in constant time, so the
 * answer's timing says nothing about which step (if any) matched.
 */
export function matchTotpStep(secret: string, code: string, nowMs: number, window: number = TOTP_WINDOW): number | null {
  if (!Number.isSafeInteger(window) || window < 0 || window > MAX_TOTP_WINDOW) throw new RangeError(`TOTP window must be 0..${MAX_TOTP_WINDOW}`);
  const ok = CODE_RE.test(code);
  const given = Buffer.from(ok ? code : '000000', 'latin1');
  const now = totpStep(nowMs);
  let found: number | null = null;
  // The current step first, then the past, then the future: with two matches (a 1-in-10^6
  // collision) the one nearest the present wins.
  const order = [now];
  for (let d = 1; d <= window; d++) order.push(now - d, now + d);
  for (const step of order) {
    if (step < 0) continue;
    const hit = timingSafeEqual(Buffer.from(totpCodeAt(secret, step), 'latin1'), given);
    if (hit && found === null) found = step;
  }
  return ok ? found : null;
}

registerFactor({
  type: 'totp',
  // RFC 8176 §2: "otp" — one-time password (TOTP, RFC 6238).
  amr: ['otp'],
  phishingResistant: false,
  amrFor: () => ['otp'],
});
