// The device verification page (RFC 8628 §3.3): the user signs in (the same interaction mechanism
// as /authorize, returning here), enters or confirms the user code, sees which client asks for
// what, and approves or denies. The decision is one replicated command ('device.decide'); the
// device learns it at its next poll of /token.
//
//   GET  /device[?user_code=…]  sign in if needed; then the code form, or the confirmation page
//   POST /device                user_code, csrf, decision=approve|deny
//
// MFA: a sign-in made here goes through the MFA prompt when the user's policy or factors ask for
// it (login.ts), and the confirmation page asks for it when the client or the scopes do.
//
// RFC 8628 §5.4 (remote phishing): the confirmation page shows the code and asks the user to
// compare it with the device even when it came in verification_uri_complete.
// RFC 8628 §5.1 (brute force): user codes have 20^8 values and live deviceCodeTtlS, and every
// code a signed-in user types is looked up by the `mfa` domain's device.lookup, which counts a
// code that names no pending request as a failure of kind device_code, per user and per client
// address, with the backoff and lockout of the other credentials (THROTTLE in
// src/state/mfa-ops.ts); the check, the lookup and the count are one replicated command, so
// spreading guesses over nodes or sending them in parallel gains nothing. A throttled user gets a
// 429 page saying when to try again, and nothing is looked up.
import type { FastifyReply, FastifyRequest } from 'fastify';
import { normalizeUserCode, safeEqual, tokenHash } from '../crypto/tokens.ts';
import { lookupClient } from './clients.ts';
import { requestMeta } from './context.ts';
import type { OAuthContext } from './context.ts';
import { formParams, queryParams } from './form.ts';
import type { DeviceApproval, DevicePayload } from './records.ts';
import { PageError, deviceConfirmPage, deviceEnterPage, messagePage } from './pages.ts';
import { signInPage } from './login-page.ts';
import { browserBinding, endpointPath, newInteraction, sealInteraction } from './interaction.ts';
import { loadActiveSession, userLabel } from './session.ts';
import type { ActiveSession } from './interaction.ts';
import { acrLevel, loadMfaStatus, mfaStep, requiredLevel } from './mfa-policy.ts';
import type { MfaStatus } from '../mfa/service.ts';
import type { Requirement } from './mfa-policy.ts';
import type { ClientRecord } from '../state/oauth-ops.ts';
import type { RequestMeta } from '../state/mfa-ops.ts';
import { mfa } from '../state/mfa.ts';
import { tokens } from '../state/tokens.ts';
import { must } from '../state/contract.ts';

/** What 'device.byUserCode' answers. */
interface DeviceView {
  readonly hash: string;
  readonly status: 'pending' | 'approved' | 'denied' | 'consumed';
  readonly exp: number;
  readonly sealed: Uint8Array;
  readonly approval: Uint8Array | null;
}

/** Longest user_code input we look at (8 characters plus separators and spaces a user may type). */
const MAX_USER_CODE_INPUT = 32;

/** XXXX-XXXX, as the device shows it. */
function display(code: string): string {
  return `${code.slice(0, 4)}-${code.slice(4)}`;
}

/**
 * The second factor this approval needs and the session lacks (the user's factors and policy, the
 * client's require_mfa, mfa.requiredScopes: src/oauth/mfa-policy.ts), or null when the session has it.
 */
async function missingMfa(ctx: OAuthContext, active: ActiveSession, client: ClientRecord, scope: readonly string[]): Promise<{ status: MfaStatus; need: Requirement } | null> {
  const status = await loadMfaStatus(ctx, active.user.sub);
  const need = requiredLevel(ctx, client, scope, [], status);
  return acrLevel(active.session.payload.auth.acr) < need.level ? { status, need } : null;
}

type Lookup =
  | { ok: true; view: DeviceView; payload: DevicePayload; client: ClientRecord; code: string }
  | { ok: false; message: string }
  /** Too many failed codes: nothing was looked up. */
  | { ok: false; throttled: true; retryAt: number };

const NOT_WAITING = 'No device is waiting for that code. Check the code on your device.';
const USED = 'That code has already been used. Start again on your device.';
const EXPIRED = 'That code has expired. Start again on your device.';

/**
 * The pending device request a user code names, or why there is none. A well-formed code is
 * looked up by a replicated command that also counts a miss against the user and the address
 * (RFC 8628 §5.1); a malformed one cannot name a request and is refused without counting.
 */
async function lookup(ctx: OAuthContext, input: string, sub: string, meta: RequestMeta): Promise<Lookup> {
  const code = input.length <= MAX_USER_CODE_INPUT ? normalizeUserCode(input) : null;
  if (code === null) return { ok: false, message: 'That is not a valid code: it has 8 letters, like BCDF-GHJK.' };
  // A command, not a read: apply sees the device's request even if it was made a moment ago on another node.
  const r = must(await mfa['device.lookup'](ctx, { sub, userCodeHash: tokenHash(code), meta: { ip: meta.ip } }), 'mfa.device.lookup');
  if (!r.ok) {
    if (r.reason === 'throttled' || r.reason === 'locked') return { ok: false, throttled: true, retryAt: r.retryAt };
    // This miss started a backoff: say so now rather than at the next try (as the login page does).
    if (r.retryAt !== undefined) return { ok: false, throttled: true, retryAt: r.retryAt };
    return { ok: false, message: r.reason === 'used' ? USED : r.reason === 'expired' ? EXPIRED : NOT_WAITING };
  }
  const view = r.device;
  const payload = ctx.crypto.sealer().openValue<DevicePayload>(view.sealed, 'device:' + view.hash);
  // Through the node on a cache miss: a client past the cache's bound is still found.
  const client = await lookupClient(ctx, payload.clientId);
  if (client === null) return { ok: false, message: 'The application that asked for this code is no longer registered.' };
  return { ok: true, view, payload, client, code };
}

/**
 * RFC 6585 §4: 429 Too Many Requests, with when to try again (Retry-After, RFC 9110 §10.2.3, and
 * in the page). The same page for a throttled user, a locked one and a throttled address.
 */
function throttledPage(ctx: OAuthContext, reply: FastifyReply, retryAt: number): FastifyReply {
  void reply.header('retry-after', String(Math.max(1, Math.ceil((retryAt - ctx.now()) / 1000))));
  const when = new Date(retryAt).toISOString().slice(11, 19);
  return messagePage(reply, 'Too many attempts', `Too many codes that did not match a waiting device were entered. Try again after ${when} UTC.`, 429);
}

export async function handleDeviceGet(ctx: OAuthContext, req: FastifyRequest, reply: FastifyReply): Promise<FastifyReply> {
  const q = queryParams(req);
  const input = q.user_code ?? null;
  const active = await loadActiveSession(ctx, req);
  if (active === null) {
    const userCode = input !== null && input.length <= MAX_USER_CODE_INPUT ? input : null;
    const i = newInteraction(ctx, browserBinding(ctx, req, reply), { kind: 'device', userCode });
    return signInPage(ctx, reply, { action: endpointPath(ctx, '/login'), interaction: sealInteraction(ctx, i), client: null, username: '', error: null, formActions: [] });
  }
  const action = endpointPath(ctx, '/device');
  if (input === null) return deviceEnterPage(reply, action, null, '');
  const found = await lookup(ctx, input, active.user.sub, requestMeta(req));
  if (!found.ok) {
    if ('throttled' in found) return throttledPage(ctx, reply, found.retryAt);
    return deviceEnterPage(reply, action, found.message, input.length <= MAX_USER_CODE_INPUT ? input : '');
  }
  const missing = await missingMfa(ctx, active, found.client, found.payload.scope);
  if (missing !== null) {
    // The MFA prompt first; it comes back here with the code (mfa.ts continueWith).
    const i = newInteraction(ctx, browserBinding(ctx, req, reply), { kind: 'device', userCode: input });
    return mfaStep(ctx, reply, { interaction: sealInteraction(ctx, i), session: active.session, user: active.user, status: missing.status, requirement: missing.need, formActions: [] });
  }
  return deviceConfirmPage(reply, {
    action,
    client: found.client,
    scope: found.payload.scope,
    userCode: display(found.code),
    csrf: active.session.payload.csrf,
    userLabel: userLabel(active.user),
  });
}

export async function handleDevicePost(ctx: OAuthContext, req: FastifyRequest, reply: FastifyReply): Promise<FastifyReply> {
  const p = formParams(req);
  const active = await loadActiveSession(ctx, req);
  if (active === null) throw new PageError(400, 'Signed out', 'Your sign-in has ended. Open the verification page again and enter the code.');
  if (!safeEqual(p.csrf ?? '', active.session.payload.csrf)) {
    throw new PageError(403, 'Request refused', 'This form was not sent from a page of this server, or your sign-in changed since it was shown. Open the verification page again.');
  }
  if (p.decision !== 'approve' && p.decision !== 'deny') throw new PageError(400, 'Invalid request', 'The form carries no decision.');
  const found = await lookup(ctx, p.user_code ?? '', active.user.sub, requestMeta(req));
  if (!found.ok) {
    if ('throttled' in found) return throttledPage(ctx, reply, found.retryAt);
    return messagePage(reply, 'Device not connected', found.message, 400);
  }
  if (p.decision === 'approve' && (await missingMfa(ctx, active, found.client, found.payload.scope)) !== null) {
    throw new PageError(403, 'Two-step verification needed', 'Approving this device needs two-step verification. Open the verification page again and enter the code.');
  }
  const userCodeHash = tokenHash(found.code);
  let approval: Uint8Array | null = null;
  if (p.decision === 'approve') {
    // The user approves exactly what the device asked for (no scope selection on the page).
    const a: DeviceApproval = { auth: active.session.payload.auth, scope: found.payload.scope };
    approval = ctx.crypto.sealer().sealValue(a, 'approval:' + found.view.hash);
  }
  const r = must(
    await tokens['device.decide'](ctx, {
      userCodeHash,
      approve: p.decision === 'approve',
      approval,
      meta: { ...requestMeta(req), sub: active.session.payload.auth.sub, clientId: found.client.client_id },
    }),
    'tokens.device.decide',
  );
  if (!r.ok) {
    const why = r.reason === 'expired' ? 'That code has expired. Start again on your device.' : r.reason === 'decided' ? 'That code has already been used. Start again on your device.' : 'No device is waiting for that code.';
    return messagePage(reply, 'Device not connected', why, 400);
  }
  if (p.decision === 'deny') return messagePage(reply, 'Request denied', `You denied ${found.client.client_name} access. You can close this page.`);
  return messagePage(reply, 'Device connected', `${found.client.client_name} is connected. Return to your device; you can close this page.`);
}
