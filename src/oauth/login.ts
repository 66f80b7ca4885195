// The login prompt's form: POST /login with the sealed interaction, username and password.
//
// One generic message for every failure ("Invalid username or password"): unknown user, wrong
// password and disabled account look the same, and take the same time (an unknown username runs
// verifyDummy, one scrypt like a real check), so the page does not tell which usernames exist.
// On success a login session starts (session.ts) and the interaction continues: the next prompt's
// page, or the code; a device-page sign-in returns to /device.
//
// Password guessing is throttled by the MFA service (src/mfa/service.ts, decided in the replicated
// `mfa` domain so spreading guesses over nodes gains nothing): failures count per account and per
// client address, with exponential backoff and a lockout (THROTTLE in src/state/mfa-ops.ts). The
// check comes before the password is verified; a throttled attempt verifies nothing. An unknown
// username counts against the address only. The throttled page says the same for a throttled
// account, a locked one and a throttled address. A success resets the account's counter.
//
// Not here yet: the brute-force limit on device user codes.
import type { FastifyReply, FastifyRequest } from 'fastify';
import { verifyDummy, verifyStoredPassword, MAX_PASSWORD_CHARS } from '../crypto/password.ts';
import type { UserRecord } from '../state/oauth-ops.ts';
import { MAX_USERNAME_CHARS } from '../state/validate.ts';
import { checkThrottle, recordFailure, recordSuccess } from '../mfa/service.ts';
import type { RequestMeta } from '../mfa/service.ts';
import { requestMeta } from './context.ts';
import { users } from '../state/users.ts';
import { must } from '../state/contract.ts';
import type { OAuthContext } from './context.ts';
import { formParams } from './form.ts';
import type { Authentication } from './records.ts';
import { cspSource } from './pages.ts';
import { signInPage } from './login-page.ts';
import { endpointPath, interactionClient, openInteraction, resume, sealInteraction } from './interaction.ts';
import { loadMfaStatus, mfaStep, requiredLevel } from './mfa-policy.ts';
import { toDevicePage } from './mfa.ts';
import type { Interaction } from './interaction.ts';
import { ACR_PASSWORD, createSession, loadSession } from './session.ts';

export const LOGIN_FAILED = 'Invalid username or password';
export const LOGIN_THROTTLED = 'Too many failed sign-in attempts.';

// eslint-disable-next-line no-control-regex
const CONTROL_RE = /[\u0000-\u001f\u007f-\u009f]/;

export async function handleLogin(ctx: OAuthContext, req: FastifyRequest, reply: FastifyReply): Promise<FastifyReply> {
  const p = formParams(req);
  const i = openInteraction(ctx, req, p.interaction);
  const username = (p.username ?? '').normalize('NFKC');
  const r = await authenticate(ctx, username, p.password ?? '', requestMeta(req));
  if (!r.ok) {
    if (r.retryAt === null) return loginAgain(ctx, reply, i, p.interaction!, username, LOGIN_FAILED, 400);
    return loginAgain(ctx, reply, i, p.interaction!, username, `${LOGIN_THROTTLED} Try again after ${new Date(r.retryAt).toISOString().slice(11, 19)} UTC.`, 429);
  }
  const user = r.user;

  const auth: Authentication = { sub: user.sub, authTime: Math.floor(ctx.now() / 1000), acr: ACR_PASSWORD, amr: ['pwd'] };
  const session = await createSession(ctx, reply, auth, await loadSession(ctx, req));
  if (i.kind === 'device') {
    // The MFA prompt of a device sign-in: the user's own policy and factors (the client's comes on the device page).
    const status = await loadMfaStatus(ctx, user.sub);
    const need = requiredLevel(ctx, null, [], [], status);
    if (need.level > 0) return mfaStep(ctx, reply, { interaction: sealInteraction(ctx, { ...i, loginSession: session.hash }), session, user, status, requirement: need, formActions: [] });
    return toDevicePage(ctx, reply, i.userCode);
  }
  return resume(ctx, reply, { ...i, loginSession: session.hash }, { session, user }, true);
}

export type AuthenticateResult = { readonly ok: true; readonly user: UserRecord } | { readonly ok: false; /** Set when throttled: when to try again. */ readonly retryAt: number | null };

/**
 * The user whose password this is, or why not. Usernames are NFKC-normalised like at creation and
 * compared case-insensitively by the users domain.
 */
export async function authenticate(ctx: OAuthContext, username: string, password: string, meta: RequestMeta): Promise<AuthenticateResult> {
  const wellFormed = username.length > 0 && username.length <= MAX_USERNAME_CHARS && !CONTROL_RE.test(username) && password.length <= MAX_PASSWORD_CHARS;
  // Linearizable: a user created or disabled a moment ago on another node counts at once.
  const user = wellFormed ? must(await users.read.byUsername(ctx, { username }), 'users.byUsername') : null;
  const sub = user?.sub ?? null;
  const t = await checkThrottle(ctx, sub, 'password', meta);
  if (!t.ok) return { ok: false, retryAt: t.retryAt };
  const ok = user === null ? await verifyDummy(ctx.config.passwordScrypt).then(() => false) : await verifyStoredPassword(ctx.crypto.sealer(), user.sub, password, user.password_hash);
  if (ok && user !== null && !user.disabled) {
    await recordSuccess(ctx, user.sub, 'password', meta);
    return { ok: true, user };
  }
  const f = await recordFailure(ctx, sub, 'password', meta);
  // This failure may be the one that starts the backoff: say so now rather than at the next try.
  return { ok: false, retryAt: f.ok ? null : f.retryAt };
}

/** The sign-in page again with an error (a failed password or passkey attempt): a new passkey challenge too. */
export async function loginAgain(ctx: OAuthContext, reply: FastifyReply, i: Interaction, sealed: string, username: string, error: string, status: number): Promise<FastifyReply> {
  const client = i.kind === 'authorize' ? await interactionClient(ctx, i) : null;
  const formAction = i.kind === 'authorize' ? cspSource(i.authz.redirectUri) : null;
  return signInPage(ctx, reply, {
    action: endpointPath(ctx, '/login'),
    interaction: sealed,
    client,
    username,
    error,
    formActions: formAction === null ? [] : [formAction],
    status,
  });
}
