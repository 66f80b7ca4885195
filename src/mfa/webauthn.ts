// WebAuthn ceremonies (W3C Web Authentication Level 3) with @simplewebauthn/server: options for
// the browser and verification of what it sends back. Pure functions of their inputs: the
// challenge's single use, the signature counter and the throttle are decided in apply
// (src/state/mfa.ts), called from src/mfa/service.ts.
import { createHash } from 'node:crypto';
import type * as WebAuthnServer from '@simplewebauthn/server';
import type {
  AuthenticationResponseJSON,
  PublicKeyCredentialCreationOptionsJSON,
  PublicKeyCredentialRequestOptionsJSON,
  RegistrationResponseJSON,
} from '@simplewebauthn/server';
import type { WebAuthnCredentialView } from '../state/mfa-ops.ts';
import type { MfaConfig } from './config.ts';
import { registerFactor } from './factor.ts';

/** Challenge lifetime, also the ceremony timeout given to the browser (W3C §15.4: "a reasonable timeout"). */
/**
 * @simplewebauthn/server, loaded at its first use: with @peculiar/x509 under it, it was the largest
 * part of an HTTP worker's module loading (about 200 ms of a worker's boot, before it could
 * listen), for routes that only the WebAuthn ceremonies use. A worker starts loading it once it
 * listens (preloadWebAuthn), so a ceremony seldom waits for it. A failed load is not retried: the
 * ceremony reports it like any other failure of the library.
 */
let webauthnServer: Promise<typeof WebAuthnServer> | null = null;
function lib(): Promise<typeof WebAuthnServer> {
  webauthnServer ??= import('@simplewebauthn/server');
  return webauthnServer;
}

/** Load the WebAuthn library now, off the boot path (src/server/worker.ts calls it once listening). */
export async function preloadWebAuthn(): Promise<void> {
  await lib();
}

export const WEBAUTHN_CHALLENGE_TTL_MS = 5 * 60_000;
/** The JSON the browser sends: bounded before anything parses it (a real clientDataJSON is < 1 KiB). */
export const MAX_CLIENT_DATA_JSON_CHARS = 8 * 1024;
/** Challenges we make: randomToken() = 43 base64url characters; anything else is not ours. */
const CHALLENGE_RE = /^[A-Za-z0-9_-]{16,128}$/;
const TRANSPORTS = new Set(['ble', 'cable', 'hybrid', 'internal', 'nfc', 'smart-card', 'usb']);

/**
 * The user handle (W3C §5.4.3 `user.id`): at most 64 bytes and "MUST NOT contain personally
 * identifying information", so not the sub itself (which may be long, and is shown to nobody but
 * is still an identifier): SHA-256 of it under a label. Deterministic, so a discoverable login can
 * check the handle the authenticator returns against the credential's owner (§7.2 step 6).
 */
export function webauthnUserHandle(sub: string): Uint8Array {
  return createHash('sha256').update(`raftauth webauthn user handle|${sub}`, 'utf8').digest();
}

export function webauthnUserHandleB64(sub: string): string {
  return Buffer.from(webauthnUserHandle(sub)).toString('base64url');
}

/** The challenge a response claims to answer (from clientDataJSON), or null if there is no well-formed one. */
export function responseChallenge(response: unknown): string | null {
  if (typeof response !== 'object' || response === null) return null;
  const inner = (response as { response?: unknown }).response;
  if (typeof inner !== 'object' || inner === null) return null;
  const cdj = (inner as { clientDataJSON?: unknown }).clientDataJSON;
  if (typeof cdj !== 'string' || cdj.length === 0 || cdj.length > MAX_CLIENT_DATA_JSON_CHARS) return null;
  let parsed: unknown;
  try {
    parsed = JSON.parse(Buffer.from(cdj, 'base64url').toString('utf8'));
  } catch {
    return null;
  }
  const ch = typeof parsed === 'object' && parsed !== null ? (parsed as { challenge?: unknown }).challenge : undefined;
  return typeof ch === 'string' && CHALLENGE_RE.test(ch) ? ch : null;
}

/** The credential id a response names (`id`, base64url), or null. */
export function responseCredentialId(response: unknown): string | null {
  if (typeof response !== 'object' || response === null) return null;
  const id = (response as { id?: unknown }).id;
  return typeof id === 'string' && id.length > 0 && id.length <= 1_364 && /^[A-Za-z0-9_-]+$/.test(id) ? id : null;
}

/** W3C §5.8.4 AuthenticatorTransport values; unknown ones (from a newer browser) are dropped. */
function transportsOf(list: readonly unknown[]): string[] {
  return list.filter((t): t is string => typeof t === 'string' && TRANSPORTS.has(t));
}

/** W3C §5.4: creation options. `challenge` is ours (randomToken()), passed as its bytes so options.challenge is the same string. */
export async function registrationOptions(
  cfg: MfaConfig,
  user: { readonly sub: string; readonly name: string; readonly displayName: string },
  challenge: string,
  existing: readonly Pick<WebAuthnCredentialView, 'id' | 'transports'>[],
): Promise<PublicKeyCredentialCreationOptionsJSON> {
  const { generateRegistrationOptions } = await lib();
  return generateRegistrationOptions({
    rpName: cfg.rpName,
    rpID: cfg.rpId,
    userName: user.name,
    userDisplayName: user.displayName,
    userID: Uint8Array.from(webauthnUserHandle(user.sub)),
    challenge: Buffer.from(challenge, 'base64url'),
    timeout: WEBAUTHN_CHALLENGE_TTL_MS,
    // §5.4.7: no attestation: we trust the user's choice of authenticator, not a vendor list.
    attestationType: 'none',
    // §5.4.3 excludeCredentials: the same authenticator is not registered twice for one user.
    excludeCredentials: existing.map((c) => ({ id: c.id, transports: transportsOf(c.transports) })),
    // Passkeys when the authenticator can (resident key 'preferred'), UV when it can.
    authenticatorSelection: { residentKey: 'preferred', userVerification: 'preferred' },
  });
}

export type RegistrationCheck =
  | {
      readonly ok: true;
      readonly credential: { readonly id: string; readonly publicKey: Uint8Array; readonly counter: number; readonly transports: string[]; readonly discoverable: boolean };
      readonly userVerified: boolean;
    }
  | { readonly ok: false; readonly message: string };

/** W3C §7.1: verify a registration response against our challenge, origins and RP ID. */
export async function verifyRegistration(cfg: MfaConfig, response: RegistrationResponseJSON, challenge: string): Promise<RegistrationCheck> {
  try {
    const { verifyRegistrationResponse } = await lib();
    const v = await verifyRegistrationResponse({
      response,
      expectedChallenge: challenge,
      expectedOrigin: [...cfg.origins],
      expectedRPID: cfg.rpId,
      // §7.1 step 14 (UP) always; UV is 'preferred', so step 15 is not enforced here.
      requireUserPresence: true,
      requireUserVerification: false,
    });
    if (!v.verified) return { ok: false, message: 'registration response did not verify' };
    const c = v.registrationInfo.credential;
    if (c.id !== response.id) return { ok: false, message: 'credential id does not match the authenticator data' };
    const transports = Array.isArray(response.response.transports) ? transportsOf(response.response.transports) : [];
    // §10.1.3 credProps: rk tells whether the client made a discoverable credential; absent = unknown = not counted on.
    const discoverable = response.clientExtensionResults?.credProps?.rk === true;
    return { ok: true, credential: { id: c.id, publicKey: Uint8Array.from(c.publicKey), counter: c.counter, transports, discoverable }, userVerified: v.registrationInfo.userVerified };
  } catch (e) {
    return { ok: false, message: e instanceof Error ? e.message : String(e) };
  }
}

/**
 * W3C §5.5: request options. With `allow` (the user is known: WebAuthn as a second factor) the
 * browser offers those credentials; without (passkey login, no username), allowCredentials is left
 * out so the authenticator offers its discoverable credentials for our RP ID.
 */
export async function authenticationOptions(cfg: MfaConfig, challenge: string, allow: readonly Pick<WebAuthnCredentialView, 'id' | 'transports'>[] | null): Promise<PublicKeyCredentialRequestOptionsJSON> {
  const { generateAuthenticationOptions } = await lib();
  return generateAuthenticationOptions({
    rpID: cfg.rpId,
    challenge: Buffer.from(challenge, 'base64url'),
    timeout: WEBAUTHN_CHALLENGE_TTL_MS,
    // A passkey login is the whole sign-in: possession alone would be one factor, so the
    // authenticator must verify the user (§5.8.6 'required'; checked in verifyAuthentication).
    // As a second factor after the password, UV is welcome but not needed.
    userVerification: allow === null ? 'required' : 'preferred',
    ...(allow !== null ? { allowCredentials: allow.map((c) => ({ id: c.id, transports: transportsOf(c.transports) })) } : {}),
  });
}

export type AuthenticationCheck = { readonly ok: true; readonly newCounter: number; readonly userVerified: boolean } | { readonly ok: false; readonly message: string };

/**
 * W3C §7.2: verify an assertion with the stored public key. The counter rule (step 22) is left to
 * apply, which has the latest counter on every node: the library gets counter 0, which disables
 * its own check. `owner` is the sub the credential belongs to: a returned user handle must be its
 * handle (step 6), and for a passkey login (no user identified first) one must be returned and
 * the UV flag must be set (step 17: user verification was required in the options).
 */
export async function verifyAuthentication(
  cfg: MfaConfig,
  response: AuthenticationResponseJSON,
  challenge: string,
  credential: Pick<WebAuthnCredentialView, 'id' | 'publicKey' | 'transports'>,
  owner: string,
  userIdentifiedFirst: boolean,
): Promise<AuthenticationCheck> {
  const handle = response.response?.userHandle;
  if (handle !== undefined && handle !== null && handle !== '' && handle !== webauthnUserHandleB64(owner)) return { ok: false, message: 'user handle does not match the credential owner' };
  if (!userIdentifiedFirst && (handle === undefined || handle === null || handle === '')) return { ok: false, message: 'a passkey login needs the user handle' };
  try {
    const { verifyAuthenticationResponse } = await lib();
    const v = await verifyAuthenticationResponse({
      response,
      expectedChallenge: challenge,
      expectedOrigin: [...cfg.origins],
      expectedRPID: cfg.rpId,
      credential: { id: credential.id, publicKey: Uint8Array.from(credential.publicKey), counter: 0, transports: transportsOf(credential.transports) },
      requireUserVerification: !userIdentifiedFirst,
    });
    if (!v.verified) return { ok: false, message: 'assertion signature did not verify' };
    return { ok: true, newCounter: v.authenticationInfo.newCounter, userVerified: v.authenticationInfo.userVerified };
  } catch (e) {
    return { ok: false, message: e instanceof Error ? e.message : String(e) };
  }
}

registerFactor({
  type: 'webauthn',
  // RFC 8176 §2 "hwk" (proof of possession of a hardware-secured key), plus "user" (§2: "user
  // presence test") when the authenticator reported user verification (UV flag, W3C §6.1), which
  // includes presence: the project's convention (docs/mfa.md) reserves "user" for UV.
  amr: ['hwk'],
  phishingResistant: true,
  amrFor: (use) => (use.userVerified === true ? ['hwk', 'user'] : ['hwk']),
});
