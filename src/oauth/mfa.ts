// The MFA prompt's forms (pages in mfa-pages.ts, the policy in mfa-policy.ts):
//
//   POST /mfa/choose                 switch method (totp | webauthn | recovery)
//   POST /mfa/totp                   RFC 6238 code
//   POST /mfa/recovery               a recovery code (single use)
//   POST /mfa/webauthn               WebAuthn assertion (the page script posts the JSON)
//   POST /mfa/enroll/totp            start TOTP enrollment: secret, otpauth URI, QR code
//   POST /mfa/enroll/totp/confirm    first code from the app: confirms the factor
//   POST /mfa/enroll/webauthn        WebAuthn registration page
//   POST /mfa/enroll/webauthn/finish the attestation (the page script posts the JSON)
//   POST /mfa/continue               after the recovery codes were shown: continue the interaction
//   GET  /mfa/assets/…               the @simplewebauthn/browser bundle and our page script
//
// Every form carries the sealed interaction (bound to this browser, interaction.ts) and the
// session's CSRF value. The cryptography and the replicated decisions (replay, single use,
// counters, throttling) are the MFA service's (src/mfa/service.ts); a success upgrades the
// session (session.ts upgradeSession: acr, amr, a new cookie) and the interaction continues.
//
// Adding a factor needs the second factor first, except for the user's first factor: a user who
// must use MFA and has none enrolls right after the password (the usual first-enrollment trust,
// docs/mfa.md), and that enrollment counts as the second factor of this sign-in.
import { readFileSync } from 'node:fs';
import { createRequire } from 'node:module';
import { getAsset, isSea } from 'node:sea';
import { SIMPLEWEBAUTHN_BROWSER_ASSET } from '../sea/assets.ts';
import { dirname, join } from 'node:path';
import type { FastifyReply, FastifyRequest } from 'fastify';
import type { AuthenticationResponseJSON, RegistrationResponseJSON } from '@simplewebauthn/server';
import { SealError } from '../crypto/seal.ts';
import { safeEqual } from '../crypto/tokens.ts';
import {
  mfaFactors,
  regenerateRecoveryCodes,
  removeTotp,
  startTotpEnrollment,
  statusOf,
  totpVerifyArgs,
  useRecoveryCode,
  verifyTotp,
  webauthnRegistrationOptions,
  webauthnVerifyAuthentication,
  webauthnVerifyRegistration,
} from '../mfa/service.ts';
import type { MfaStatus, RequestMeta } from '../mfa/service.ts';
import type { TotpFactorView } from '../state/mfa-ops.ts';
import { totpQrSvg } from '../mfa/totp.ts';
import type { UserRecord } from '../state/oauth-ops.ts';
import { mfaConfigOf } from './config.ts';
import { requestMeta } from './context.ts';
import type { OAuthContext } from './context.ts';
import { formParams } from './form.ts';
import type { Params } from './form.ts';
import { PageError, cspSource } from './pages.ts';
import { endpointPath, interactionClient, openInteraction, resume, sealInteraction } from './interaction.ts';
import type { Interaction } from './interaction.ts';
import { MFA_PATHS, WEBAUTHN_PAGE_SCRIPT, enrollChoicePage, recoveryCodesPage, totpEnrollPage, webauthnPage } from './mfa-pages.ts';
import type { MfaMethod, MfaPageCommon } from './mfa-pages.ts';
import { acrLevel, hasFactor, mfaPath, mfaStep, planMfa, requiredLevel, webauthnUnavailableHere } from './mfa-policy.ts';
import type { AcrLevel, Requirement } from './mfa-policy.ts';
import { ACR_MFA, ACR_PHR, FactorChanged, FactorRefused, commitSession, loadActiveSession, prepareUpgrade, upgradeSession, userLabel } from './session.ts';
import type { PendingSession, Session } from './session.ts';

/** Longest WebAuthn JSON answer accepted (attestation 'none' answers are ~1–2 KiB; form.ts caps a parameter at 8 KiB). */
const MAX_WEBAUTHN_RESPONSE_CHARS = 8 * 1024;
/** Longest credential name. */
const MAX_CREDENTIAL_NAME_CHARS = 64;
/** Longest code input looked at (a recovery code is 11 characters; users add spaces). */
const MAX_CODE_INPUT_CHARS = 64;
const ENROLLMENT_AAD = 'totp-enroll:';

/** Everything an MFA form needs once its interaction, session and CSRF value are checked. */
interface MfaRequest {
  readonly params: Params;
  readonly interaction: Interaction;
  readonly session: Session;
  readonly user: UserRecord;
  readonly status: MfaStatus;
  /** The TOTP factor from the same read as `status` (its sealed secret), for verifyTotp. */
  readonly totp: TotpFactorView | null;
  readonly requirement: Requirement;
  readonly current: AcrLevel;
  readonly formActions: readonly string[];
  readonly meta: RequestMeta;
}

type Opened = { readonly ok: true; readonly m: MfaRequest } | { readonly ok: false; readonly reply: FastifyReply };

async function openMfaRequest(ctx: OAuthContext, req: FastifyRequest, reply: FastifyReply): Promise<Opened> {
  const params = formParams(req);
  const i: Interaction = openInteraction(ctx, req, params.interaction);
  const active = await loadActiveSession(ctx, req);
  // The session ended (expired, signed out in another tab) since the page was shown: sign in again.
  if (active === null) {
    if (i.kind === 'device') throw new PageError(400, 'Signed out', 'Your sign-in has ended. Open the verification page again and enter the code.');
    return { ok: false, reply: await resume(ctx, reply, i, null, true) };
  }
  if (!safeEqual(params.csrf ?? '', active.session.payload.csrf)) {
    throw new PageError(403, 'Request refused', 'This form was not sent from a page of this server, or your sign-in changed since it was shown. Go back to the application and start again.');
  }
  // One linearizable read for both the status (the plan) and the TOTP secret (verifyTotp): a
  // second read of the same record in the same request would be another ReadIndex round trip.
  const factors = await mfaFactors(ctx, active.user.sub);
  const status = statusOf(factors);
  // A device sign-in has no client yet (the code is entered after it): level 1 whenever MFA is asked (device-verify.ts checks the client's policy).
  const req0 = i.kind === 'authorize' ? requiredLevel(ctx, await interactionClient(ctx, i), i.authz.scope, i.authz.acrValues, status) : requiredLevel(ctx, null, [], [], status);
  const formAction = i.kind === 'authorize' ? cspSource(i.authz.redirectUri) : null;
  return {
    ok: true,
    m: {
      params,
      interaction: i,
      session: active.session,
      user: active.user,
      status,
      totp: factors.totp,
      requirement: req0.level === 0 ? { level: 1, reason: req0.reason } : req0,
      current: acrLevel(active.session.payload.auth.acr),
      formActions: formAction === null ? [] : [formAction],
      meta: requestMeta(req),
    },
  };
}

/** The MFA page again (another method, or the same with an error). */
function again(ctx: OAuthContext, reply: FastifyReply, m: MfaRequest, o: { method?: MfaMethod; error?: string; httpStatus?: number } = {}): Promise<FastifyReply> {
  return mfaStep(ctx, reply, {
    interaction: sealInteraction(ctx, m.interaction),
    session: m.session,
    user: m.user,
    status: m.status,
    requirement: m.requirement,
    formActions: m.formActions,
    ...o,
  });
}

function pageCommon(ctx: OAuthContext, m: MfaRequest, session: Session, interaction: Interaction, error: string | null = null, status?: number): MfaPageCommon {
  return {
    path: (p) => mfaPath(ctx, p),
    interaction: sealInteraction(ctx, interaction),
    csrf: session.payload.csrf,
    userLabel: userLabel(m.user),
    formActions: m.formActions,
    error,
    ...(status !== undefined ? { status } : {}),
  };
}

/** A verified second factor: upgrade the session and continue the interaction. */
async function passed(ctx: OAuthContext, reply: FastifyReply, m: MfaRequest, method: { acr: string; amr: readonly string[] }): Promise<{ session: Session; interaction: Interaction }> {
  const session = await upgradeSession(ctx, reply, m.session, method);
  const i = m.interaction;
  const interaction: Interaction = {
    ...i,
    mfaSession: session.hash,
    // A password login made in this interaction stays "made here" under the upgraded session.
    loginSession: i.loginSession === m.session.hash ? session.hash : i.loginSession,
  };
  return { session, interaction };
}

/**
 * A verified second factor on the common path (TOTP, security key): the upgraded session is
 * written together with what follows it — with the authorization code when the request is done
 * (interaction.ts issueCode: one replicated write for both), before the next prompt's page
 * otherwise — and the MFA status the form was opened with is reused (it did not change).
 */
async function passedAndContinue(ctx: OAuthContext, reply: FastifyReply, m: MfaRequest, method: { acr: string; amr: readonly string[] }, totp?: PendingSession['totp']): Promise<FastifyReply> {
  const upgrade = prepareUpgrade(ctx, reply, m.session, method);
  // With `totp`, the code is verified by the same command that writes the session (FactorRefused if not).
  const pending = totp === undefined ? upgrade : { ...upgrade, totp };
  const i = m.interaction;
  const interaction: Interaction = {
    ...i,
    mfaSession: pending.session.hash,
    loginSession: i.loginSession === m.session.hash ? pending.session.hash : i.loginSession,
  };
  if (interaction.kind === 'device') {
    await commitSession(ctx, reply, pending);
    return toDevicePage(ctx, reply, interaction.userCode);
  }
  return resume(ctx, reply, interaction, { session: pending.session, user: m.user }, true, { pending, mfa: m.status });
}

/** The next prompt (or the code) of an authorization request; back to the device page for a device sign-in. */
async function continueWith(ctx: OAuthContext, reply: FastifyReply, i: Interaction, session: Session, user: UserRecord): Promise<FastifyReply> {
  if (i.kind === 'device') return toDevicePage(ctx, reply, i.userCode);
  return resume(ctx, reply, i, { session, user }, true);
}

/** 303 to the device verification page (with the user code the device sign-in started from). */
export function toDevicePage(ctx: OAuthContext, reply: FastifyReply, userCode: string | null): FastifyReply {
  const q = userCode === null ? '' : `?user_code=${encodeURIComponent(userCode)}`;
  return reply.code(303).header('location', endpointPath(ctx, '/device') + q).header('cache-control', 'no-store').send();
}

function retryText(retryAt: number | undefined, locked: boolean): string {
  const when = retryAt === undefined ? '' : ` after ${new Date(retryAt).toISOString().slice(11, 19)} UTC`;
  return locked ? `Too many failed attempts: this account is locked. Try again${when}, or ask an administrator to unlock it.` : `Too many failed attempts. Try again${when}.`;
}

/** The user's first factor, just enrolled, counts as this sign-in's second factor; new recovery codes are shown once. */
async function afterEnrollment(ctx: OAuthContext, reply: FastifyReply, m: MfaRequest, method: { acr: string; amr: readonly string[] }): Promise<FastifyReply> {
  let session = m.session;
  let interaction = m.interaction;
  if (!hasFactor(m.status)) ({ session, interaction } = await passed(ctx, reply, m, method));
  if (m.status.factors.recovery === 0) {
    const codes = await regenerateRecoveryCodes(ctx, m.user.sub, m.meta);
    return recoveryCodesPage(reply, { ...pageCommon(ctx, m, session, interaction), codes });
  }
  return continueWith(ctx, reply, interaction, session, m.user);
}

function code(p: Params): string {
  const c = p.code ?? '';
  return c.length > MAX_CODE_INPUT_CHARS ? '' : c;
}

function jsonParam<T>(p: Params, name: string): T | null {
  const v = p[name];
  if (v === undefined || v.length > MAX_WEBAUTHN_RESPONSE_CHARS) return null;
  try {
    const x: unknown = JSON.parse(v);
    return typeof x === 'object' && x !== null && !Array.isArray(x) ? (x as T) : null;
  } catch {
    return null;
  }
}

// ---------------------------------------------------------------------------------------------
// Handlers

export async function handleMfaChoose(ctx: OAuthContext, req: FastifyRequest, reply: FastifyReply): Promise<FastifyReply> {
  const o = await openMfaRequest(ctx, req, reply);
  if (!o.ok) return o.reply;
  const method = o.m.params.method;
  if (method !== 'totp' && method !== 'webauthn' && method !== 'recovery') throw new PageError(400, 'Invalid request', 'The form names no verification method.');
  return again(ctx, reply, o.m, { method });
}

/** Whether `method` may be used now (offered by the plan): a form for another is refused. */
function offered(ctx: OAuthContext, m: MfaRequest, method: MfaMethod): boolean {
  const plan = planMfa(m.status, m.requirement.level, m.current, webauthnUnavailableHere(ctx) === null);
  return plan.kind === 'verify' && plan.methods.includes(method);
}

export async function handleMfaTotp(ctx: OAuthContext, req: FastifyRequest, reply: FastifyReply): Promise<FastifyReply> {
  const o = await openMfaRequest(ctx, req, reply);
  if (!o.ok) return o.reply;
  const m = o.m;
  if (!offered(ctx, m, 'totp')) return again(ctx, reply, m, { error: 'An authenticator-app code cannot be used for this sign-in.', httpStatus: 400 });
  const refused = (r: FactorRefused['result']): Promise<FastifyReply> => {
    const error =
      r.reason === 'throttled' || r.reason === 'locked'
        ? retryText(r.retryAt, r.reason === 'locked')
        : r.reason === 'replay'
          ? 'That code was already used. Wait for the next code from your app.'
          : r.reason === 'no_factor'
            ? 'No authenticator app is set up for this account.'
            : 'That code is not valid. Check your app and try again.';
    return again(ctx, reply, m, { method: 'totp', error, httpStatus: r.reason === 'throttled' || r.reason === 'locked' ? 429 : 400 });
  };
  const method = { acr: ACR_MFA, amr: ['otp'] };
  if (m.totp === null) return refused({ ok: false, reason: 'no_factor' });
  // The common path: the code is verified and the upgraded session (with the authorization code
  // when the flow ends in one) written by ONE command, mfa totp.signIn: one replicated write.
  try {
    return await passedAndContinue(ctx, reply, m, method, totpVerifyArgs(ctx, m.user.sub, code(m.params), m.meta, m.totp));
  } catch (e) {
    if (e instanceof FactorRefused) return refused(e.result);
    // The factor was removed or re-enrolled since the form's read (apply refused the whole
    // command, nothing written): verify on its own against a fresh read, then continue.
    if (!(e instanceof FactorChanged)) throw e;
  }
  const r = await verifyTotp(ctx, m.user.sub, code(m.params), m.meta);
  if (!r.ok) return refused(r);
  return passedAndContinue(ctx, reply, m, method);
}

export async function handleMfaRecovery(ctx: OAuthContext, req: FastifyRequest, reply: FastifyReply): Promise<FastifyReply> {
  const o = await openMfaRequest(ctx, req, reply);
  if (!o.ok) return o.reply;
  const m = o.m;
  if (!offered(ctx, m, 'recovery')) return again(ctx, reply, m, { error: 'A recovery code cannot be used for this sign-in.', httpStatus: 400 });
  const r = await useRecoveryCode(ctx, m.user.sub, code(m.params), m.meta);
  if (!r.ok) {
    const error = r.reason === 'invalid' ? 'That recovery code is not valid or was already used.' : retryText(r.retryAt, r.reason === 'locked');
    return again(ctx, reply, m, { method: 'recovery', error, httpStatus: r.reason === 'invalid' ? 400 : 429 });
  }
  // RFC 8176 has no value for a recovery code: 'mfa' (with 'pwd') says two factors without naming a method (docs/mfa.md).
  const { session, interaction } = await passed(ctx, reply, m, { acr: ACR_MFA, amr: [] });
  if (r.remaining === 0) {
    // The last code is gone: show a fresh set now, once.
    const codes = await regenerateRecoveryCodes(ctx, m.user.sub, m.meta);
    return recoveryCodesPage(reply, { ...pageCommon(ctx, m, session, interaction), codes, note: 'You used your last recovery code, so here is a new set.' });
  }
  if (r.forceReenroll) {
    // The user's policy (reenrollAfterRecovery, the default): a recovery code usually means a lost
    // authenticator, so a new one is set up now, while the session has its second factor.
    const unavailable = webauthnUnavailableHere(ctx);
    return enrollChoicePage(reply, {
      ...pageCommon(ctx, m, session, interaction),
      reason: `You used a recovery code (${r.remaining} left). ${unavailable === null ? 'Set up your authenticator app again or register a security key.' : 'Set up your authenticator app again.'}`,
      webauthnUnavailable: unavailable,
    });
  }
  return continueWith(ctx, reply, interaction, session, m.user);
}

export async function handleMfaWebAuthn(ctx: OAuthContext, req: FastifyRequest, reply: FastifyReply): Promise<FastifyReply> {
  const o = await openMfaRequest(ctx, req, reply);
  if (!o.ok) return o.reply;
  const m = o.m;
  if (!offered(ctx, m, 'webauthn')) return again(ctx, reply, m, { error: 'A security key cannot be used for this sign-in.', httpStatus: 400 });
  const response = jsonParam<AuthenticationResponseJSON>(m.params, 'response');
  if (response === null) return again(ctx, reply, m, { method: 'webauthn', error: 'The security key’s answer did not arrive. Try again.', httpStatus: 400 });
  const r = await webauthnVerifyAuthentication(ctx, mfaConfigOf(ctx.config), m.user.sub, response, m.meta);
  // The assertion must be by one of this user's credentials (the service binds the challenge to the user; checked again here).
  if (!r.ok || r.sub !== m.user.sub) {
    const reason = r.ok ? 'invalid' : r.reason;
    const error =
      reason === 'throttled' || reason === 'locked'
        ? retryText(r.ok ? undefined : r.retryAt, reason === 'locked')
        : reason === 'challenge'
          ? 'This verification request expired or was already used. Try again.'
          : reason === 'counter_regression'
            ? 'This security key reported a signature counter that went backwards, which suggests it was cloned. It was refused.'
            : 'The security key could not be verified. Try again or use another method.';
    return again(ctx, reply, m, { method: 'webauthn', error, httpStatus: reason === 'throttled' || reason === 'locked' ? 429 : 400 });
  }
  // RFC 8176 §2: 'hwk' proof of possession of a hardware-secured key; 'user' when the authenticator verified the user.
  return passedAndContinue(ctx, reply, m, { acr: ACR_PHR, amr: r.userVerified ? ['hwk', 'user'] : ['hwk'] });
}

/** Adding a factor: allowed for the first one, or once the session has a second factor. */
function mayEnroll(m: MfaRequest): boolean {
  return !hasFactor(m.status) || m.current >= 1;
}

export async function handleEnrollTotp(ctx: OAuthContext, req: FastifyRequest, reply: FastifyReply): Promise<FastifyReply> {
  const o = await openMfaRequest(ctx, req, reply);
  if (!o.ok) return o.reply;
  const m = o.m;
  if (!mayEnroll(m)) return again(ctx, reply, m, { error: 'An authenticator app cannot be set up now.', httpStatus: 400 });
  if (m.requirement.level === 2 && m.current < 1) return again(ctx, reply, m, { error: 'This application asks for a security key or passkey.', httpStatus: 400 });
  // Replacing the app (after a recovery code: the old phone is lost) needs this session's second factor (mayEnroll).
  if (m.status.factors.totp) await removeTotp(ctx, m.user.sub, m.meta);
  const e = await startTotpEnrollment(ctx, m.user.sub, m.user.username, m.meta);
  // The secret travels back sealed (bound to this session) so a mistyped code re-shows the same QR code.
  const enrollment = Buffer.from(ctx.crypto.sealer().sealValue({ secret: e.secret, uri: e.uri }, ENROLLMENT_AAD + m.session.hash)).toString('base64url');
  return totpEnrollPage(reply, { ...pageCommon(ctx, m, m.session, m.interaction), qrSvg: e.qrSvg, secret: e.secret, enrollment });
}

export async function handleEnrollTotpConfirm(ctx: OAuthContext, req: FastifyRequest, reply: FastifyReply): Promise<FastifyReply> {
  const o = await openMfaRequest(ctx, req, reply);
  if (!o.ok) return o.reply;
  const m = o.m;
  if (!mayEnroll(m)) return again(ctx, reply, m, { error: 'An authenticator app cannot be set up now.', httpStatus: 400 });
  let pending: { secret: string; uri: string };
  try {
    const raw = m.params.enrollment ?? '';
    if (!/^[A-Za-z0-9_-]{1,4096}$/.test(raw)) throw new SealError('malformed');
    pending = ctx.crypto.sealer().openValue<{ secret: string; uri: string }>(Buffer.from(raw, 'base64url'), ENROLLMENT_AAD + m.session.hash);
  } catch (e) {
    if (!(e instanceof SealError)) throw e;
    throw new PageError(400, 'Invalid request', 'This enrollment form is not valid. Start the setup again.');
  }
  const r = await verifyTotp(ctx, m.user.sub, code(m.params), m.meta, m.totp);
  if (!r.ok) {
    const error =
      r.reason === 'throttled' || r.reason === 'locked'
        ? retryText(r.retryAt, r.reason === 'locked')
        : r.reason === 'no_factor'
          ? 'This setup has been replaced. Start it again.'
          : 'That code is not valid. Check that the app shows this account and try the next code.';
    const status = r.reason === 'throttled' || r.reason === 'locked' ? 429 : 400;
    return totpEnrollPage(reply, { ...pageCommon(ctx, m, m.session, m.interaction, error, status), qrSvg: await totpQrSvg(pending.uri), secret: pending.secret, enrollment: m.params.enrollment! });
  }
  return afterEnrollment(ctx, reply, m, { acr: ACR_MFA, amr: ['otp'] });
}

export async function handleEnrollWebAuthn(ctx: OAuthContext, req: FastifyRequest, reply: FastifyReply): Promise<FastifyReply> {
  const o = await openMfaRequest(ctx, req, reply);
  if (!o.ok) return o.reply;
  const m = o.m;
  if (!mayEnroll(m)) return again(ctx, reply, m, { error: 'A security key cannot be registered now: verify with your current method first.', httpStatus: 400 });
  // Not offered where browsers cannot run WebAuthn (mfa-policy.ts planMfa); a form posted anyway gets the reason, and no challenge is written.
  const unavailable = webauthnUnavailableHere(ctx);
  if (unavailable !== null) return again(ctx, reply, m, { error: unavailable, httpStatus: 400 });
  return registrationPage(ctx, reply, m, null);
}

async function registrationPage(ctx: OAuthContext, reply: FastifyReply, m: MfaRequest, error: string | null, status?: number): Promise<FastifyReply> {
  const options = await webauthnRegistrationOptions(ctx, mfaConfigOf(ctx.config), { sub: m.user.sub, name: m.user.username, displayName: m.user.name ?? m.user.username });
  return webauthnPage(reply, { ...pageCommon(ctx, m, m.session, m.interaction, error, status), mode: 'register', options, alternatives: [] });
}

export async function handleEnrollWebAuthnFinish(ctx: OAuthContext, req: FastifyRequest, reply: FastifyReply): Promise<FastifyReply> {
  const o = await openMfaRequest(ctx, req, reply);
  if (!o.ok) return o.reply;
  const m = o.m;
  if (!mayEnroll(m)) return again(ctx, reply, m, { error: 'A security key cannot be registered now: verify with your current method first.', httpStatus: 400 });
  const unavailable = webauthnUnavailableHere(ctx);
  if (unavailable !== null) return again(ctx, reply, m, { error: unavailable, httpStatus: 400 });
  const response = jsonParam<RegistrationResponseJSON>(m.params, 'response');
  if (response === null) return registrationPage(ctx, reply, m, 'The security key’s answer did not arrive. Try again.', 400);
  const rawName = (m.params.name ?? '').trim();
  const name = rawName.length === 0 ? 'Security key' : [...rawName].slice(0, MAX_CREDENTIAL_NAME_CHARS).join('');
  const r = await webauthnVerifyRegistration(ctx, mfaConfigOf(ctx.config), m.user.sub, response, name, m.meta);
  if (!r.ok) return registrationPage(ctx, reply, m, r.message, 400);
  // Registration proves possession of a new key, not of a known one: it is a second factor only as the user's first factor.
  return afterEnrollment(ctx, reply, m, { acr: ACR_PHR, amr: ['hwk'] });
}

export async function handleMfaContinue(ctx: OAuthContext, req: FastifyRequest, reply: FastifyReply): Promise<FastifyReply> {
  const o = await openMfaRequest(ctx, req, reply);
  if (!o.ok) return o.reply;
  return continueWith(ctx, reply, o.m.interaction, o.m.session, o.m.user);
}

// ---------------------------------------------------------------------------------------------
// Assets: the browser library and our page script, from our own origin (CSP script-src 'self').

/**
 * The UMD bundle of @simplewebauthn/browser (it defines window.SimpleWebAuthnBrowser), read once.
 * Its package exports only the module entry points, so the bundle is found next to them.
 */
let browserLib: Buffer | null | undefined;

function simpleWebAuthnBundle(log: OAuthContext['log']): Buffer | null {
  if (browserLib !== undefined) return browserLib;
  try {
    // The single binary carries the bundle as an SEA asset (scripts/build-binary.ts): no node_modules there.
    if (isSea()) browserLib = Buffer.from(getAsset(SIMPLEWEBAUTHN_BROWSER_ASSET));
    else {
      const entry = createRequire(import.meta.url).resolve('@simplewebauthn/browser');
      browserLib = readFileSync(join(dirname(entry), '..', 'dist', 'bundle', 'index.umd.min.js'));
    }
  } catch (e) {
    log.error({ err: e }, 'the @simplewebauthn/browser bundle is not installed: WebAuthn pages cannot run');
    browserLib = null;
  }
  return browserLib;
}

/** Scripts change with the package version; a day of caching, revalidated after. */
const ASSET_CACHE_CONTROL = 'public, max-age=86400';

export async function handleBrowserLib(ctx: OAuthContext, _req: FastifyRequest, reply: FastifyReply): Promise<FastifyReply> {
  const lib = simpleWebAuthnBundle(ctx.log);
  if (lib === null) throw new PageError(404, 'Not found', 'The WebAuthn library is not installed on this server.');
  return reply.code(200).header('content-type', 'text/javascript; charset=utf-8').header('cache-control', ASSET_CACHE_CONTROL).header('x-content-type-options', 'nosniff').send(lib);
}

export async function handlePageScript(_ctx: OAuthContext, _req: FastifyRequest, reply: FastifyReply): Promise<FastifyReply> {
  return reply.code(200).header('content-type', 'text/javascript; charset=utf-8').header('cache-control', ASSET_CACHE_CONTROL).header('x-content-type-options', 'nosniff').send(WEBAUTHN_PAGE_SCRIPT);
}

type Handler = (ctx: OAuthContext, req: FastifyRequest, reply: FastifyReply) => Promise<FastifyReply>;

/** The MFA routes, for browser-side.ts to register. */
export const MFA_ROUTES: readonly (readonly ['GET' | 'POST', string, Handler])[] = [
  ['POST', MFA_PATHS.choose, handleMfaChoose],
  ['POST', MFA_PATHS.totp, handleMfaTotp],
  ['POST', MFA_PATHS.recovery, handleMfaRecovery],
  ['POST', MFA_PATHS.webauthn, handleMfaWebAuthn],
  ['POST', MFA_PATHS.enrollTotp, handleEnrollTotp],
  ['POST', MFA_PATHS.enrollTotpConfirm, handleEnrollTotpConfirm],
  ['POST', MFA_PATHS.enrollWebauthn, handleEnrollWebAuthn],
  ['POST', MFA_PATHS.enrollWebauthnFinish, handleEnrollWebAuthnFinish],
  ['POST', MFA_PATHS.continue, handleMfaContinue],
  ['GET', MFA_PATHS.browserLib, handleBrowserLib],
  ['GET', MFA_PATHS.pageScript, handlePageScript],
];
