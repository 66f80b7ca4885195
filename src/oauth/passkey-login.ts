// POST /login/passkey: sign in with a passkey, without a username (issue 6, "discoverable
// credentials"). The sign-in page (login-page.ts) carries a discoverable-credential request (no
// allowCredentials, UV required) whose challenge is stored in the replicated `mfa` domain; its
// page script posts the authenticator's answer here with the sealed interaction.
//
// Like the password form: the interaction is bound to this browser (interaction.ts: a form
// posted from another browser, i.e. login CSRF, is refused), there is no CSRF value because
// there is no session yet, and every failure shows the sign-in page again (with a new challenge)
// and changes nothing but the failure counters.
//
// The MFA service does the ceremony (src/mfa/service.ts webauthnVerifyAuthentication with no sub):
// the challenge is consumed once on the whole cluster (W3C WebAuthn §13.4.3), the credential id
// names the user (webauthn.byCredentialId), the returned user handle must be that user's (§7.2
// step 6), the UV flag must be set (step 17), origin and RP ID hash must be ours (steps 13, 15),
// and apply refuses a signature counter that did not increase (step 22, audited
// mfa.counter_regression). Failures count against the client address, as an unknown username
// does on the password form: until the credential is known there is no user to count against;
// once it is (a bad signature, a regressed counter) the user's counter moves too, and a locked user
// is refused.
//
// A verified passkey is two factors (possession of the key, and the PIN or biometric the
// authenticator checked for UV) and phishing-resistant (bound to our RP ID): the session gets
// acr urn:raftauth:acr:phr and amr ["hwk", "user", "mfa"] (RFC 8176 §2; docs/mfa.md "Passkey
// sign-in"), so the MFA prompt is not shown after it. Audited like a password login (login.succeeded
// from session.create) plus the factor (mfa.verified from webauthn.accept).
import type { FastifyReply, FastifyRequest } from 'fastify';
import type { AuthenticationResponseJSON } from '@simplewebauthn/server';
import { recordFailure, webauthnVerifyAuthentication } from '../mfa/service.ts';
import type { WebAuthnAuthenticationResult } from '../mfa/service.ts';
import { responseCredentialId } from '../mfa/webauthn.ts';
import { mfa } from '../state/mfa.ts';
import { must } from '../state/contract.ts';
import { mfaConfigOf } from './config.ts';
import { requestMeta } from './context.ts';
import { users } from '../state/users.ts';
import type { OAuthContext } from './context.ts';
import { formParams } from './form.ts';
import { openInteraction, resume } from './interaction.ts';
import { LOGIN_THROTTLED, loginAgain } from './login.ts';
import { passkeysAvailable } from './login-page.ts';
import { toDevicePage } from './mfa.ts';
import { PageError } from './pages.ts';
import type { Authentication } from './records.ts';
import { ACR_PHR, createSession, loadSession } from './session.ts';

/** Longest WebAuthn JSON answer accepted (an assertion is well under 2 KiB; form.ts caps a parameter at 8 KiB). */
const MAX_ASSERTION_CHARS = 8 * 1024;

/** RFC 8176 §2 for a passkey with user verification: hardware-secured key, user verified, two factors. */
export const PASSKEY_AMR: readonly string[] = ['hwk', 'user', 'mfa'];

export const PASSKEY_MISSING = 'The passkey’s answer did not arrive. Try again.';
export const PASSKEY_CHALLENGE = 'This passkey request expired or was already used. Try again.';
export const PASSKEY_UNKNOWN = 'This passkey is not registered for an account here. Sign in with your username and password.';
export const PASSKEY_CLONED = 'This passkey reported a signature counter that went backwards, which suggests it was copied. It was refused.';
export const PASSKEY_INVALID = 'The passkey could not be verified. Try again, or sign in with your username and password.';
export const PASSKEY_REFUSED = 'This account cannot sign in.';

function assertion(raw: string | undefined): AuthenticationResponseJSON | null {
  if (raw === undefined || raw.length > MAX_ASSERTION_CHARS) return null;
  try {
    const x: unknown = JSON.parse(raw);
    return typeof x === 'object' && x !== null && !Array.isArray(x) ? (x as AuthenticationResponseJSON) : null;
  } catch {
    return null;
  }
}

function retryText(retryAt: number | undefined): string {
  return retryAt === undefined ? LOGIN_THROTTLED : `${LOGIN_THROTTLED} Try again after ${new Date(retryAt).toISOString().slice(11, 19)} UTC.`;
}

/** The page text and HTTP status of a failed ceremony. */
function failureText(r: Exclude<WebAuthnAuthenticationResult, { ok: true }>): { error: string; status: number } {
  switch (r.reason) {
    case 'throttled':
    case 'locked':
      // The same words as the password form's throttle: a locked account and a throttled address look alike.
      return { error: retryText(r.retryAt), status: 429 };
    case 'challenge':
      return { error: PASSKEY_CHALLENGE, status: 400 };
    case 'unknown_credential':
      return { error: PASSKEY_UNKNOWN, status: 400 };
    case 'counter_regression':
      return { error: PASSKEY_CLONED, status: 400 };
    case 'invalid':
      // This failure may have started the backoff: say so now rather than at the next try.
      return r.retryAt !== undefined ? { error: retryText(r.retryAt), status: 429 } : { error: PASSKEY_INVALID, status: 400 };
  }
}

export async function handlePasskeyLogin(ctx: OAuthContext, req: FastifyRequest, reply: FastifyReply): Promise<FastifyReply> {
  const p = formParams(req);
  const i = openInteraction(ctx, req, p.interaction);
  const sealed = p.interaction!;
  const cfg = mfaConfigOf(ctx.config);
  if (!passkeysAvailable(cfg)) throw new PageError(404, 'Not found', 'Passkey sign-in is not available on this server.');
  const again = (error: string, status: number): Promise<FastifyReply> => loginAgain(ctx, reply, i, sealed, '', error, status);
  const response = assertion(p.response);
  if (response === null) return again(PASSKEY_MISSING, 400);
  const meta = requestMeta(req);

  // A disabled (or deleted) account is refused before the ceremony touches its credential: its
  // counter and audit trail stay as they are. The attempt still counts, like a password sign-in
  // to a disabled account.
  const id = responseCredentialId(response);
  if (id !== null) {
    const found = must(await mfa.read['webauthn.byCredentialId'](ctx, { credentialId: id }), 'mfa.webauthn.byCredentialId');
    if (found !== null) {
      const owner = must(await users.read.get(ctx, { sub: found.sub }), 'users.get');
      if (owner === null || owner.disabled) {
        const f = await recordFailure(ctx, owner === null ? null : found.sub, 'webauthn', meta);
        return f.ok ? again(PASSKEY_REFUSED, 403) : again(retryText(f.retryAt), 429);
      }
    }
  }

  const r = await webauthnVerifyAuthentication(ctx, cfg, null, response, meta);
  if (!r.ok) {
    const { error, status } = failureText(r);
    return again(error, status);
  }
  // Linearizable: the owner as of now (disabled between the check above and the ceremony: refused).
  const user = must(await users.read.get(ctx, { sub: r.sub }), 'users.get');
  if (user === null || user.disabled) return again(PASSKEY_REFUSED, 403);
  // verifyAuthentication enforces UV for a request without a user (W3C §7.2 step 17); a session is
  // never made from possession alone.
  if (!r.userVerified) return again(PASSKEY_INVALID, 400);

  const auth: Authentication = { sub: user.sub, authTime: Math.floor(ctx.now() / 1000), acr: ACR_PHR, amr: PASSKEY_AMR };
  const session = await createSession(ctx, reply, auth, await loadSession(ctx, req));
  // The sign-in made here satisfies prompt=login and max_age (loginSession) and the MFA prompt's max_age (mfaSession).
  const next = { ...i, loginSession: session.hash, mfaSession: session.hash };
  // A device sign-in returns to the device page, which checks the client's MFA needs (met: level phr).
  if (next.kind === 'device') return toDevicePage(ctx, reply, next.userCode);
  return resume(ctx, reply, next, { session, user }, true);
}
