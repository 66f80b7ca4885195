// Recovery codes: ten single-use codes shown once, stored only as hashes (src/state/mfa.ts
// `mfa.recovery`). Each is 10 characters of a 32-symbol alphabet = 50 bits, printed as
// `xxxxx-xxxxx`. 50 bits is far beyond online guessing under the replicated throttle (10 failures
// lock the user), and the codes are random, so a fast hash (tokenHash, SHA-256) is enough — the
// same argument as for tokens (src/crypto/tokens.ts).
import { randomInt } from 'node:crypto';
import { tokenHash } from '../crypto/tokens.ts';
import { registerFactor } from './factor.ts';

export const RECOVERY_CODE_COUNT = 10;
/** Lower-case letters and digits without the look-alikes 0/o and 1/l: 24 + 8 = 32 symbols. */
export const RECOVERY_ALPHABET = 'abcdefghijkmnpqrstuvwxyz23456789';
const GROUP = 5;
const CHARS = 10;

/** Bits of one code: CHARS × log2(32). */
export const RECOVERY_CODE_BITS = CHARS * Math.log2(RECOVERY_ALPHABET.length);

export function generateRecoveryCodes(): { codes: string[]; hashes: string[] } {
  const codes: string[] = [];
  const seen = new Set<string>();
  while (codes.length < RECOVERY_CODE_COUNT) {
    let raw = '';
    for (let i = 0; i < CHARS; i++) raw += RECOVERY_ALPHABET[randomInt(RECOVERY_ALPHABET.length)];
    // A duplicate (2^-50 per pair) would leave nine distinct codes; draw again.
    if (seen.has(raw)) continue;
    seen.add(raw);
    codes.push(`${raw.slice(0, GROUP)}-${raw.slice(GROUP)}`);
  }
  return { codes, hashes: codes.map(recoveryHash) };
}

/** What the user typed, as stored: lower-cased, without '-' and spaces. */
export function normalizeRecoveryCode(code: string): string {
  return code.toLowerCase().replace(/[-\s]/g, '');
}

/** The storage hash of a code as typed (normalised first, so `ABCDE-FGHJK`, `abcde fghjk` and `abcdefghjk` are one code). */
export function recoveryHash(code: string): string {
  return tokenHash(normalizeRecoveryCode(code));
}

registerFactor({
  type: 'recovery',
  // No RFC 8176 value fits a printed one-time code besides "otp", which would claim a TOTP device:
  // the flow reports "pwd" + "mfa" for a recovery login (see factor.ts).
  amr: [],
  phishingResistant: false,
  amrFor: () => [],
});
