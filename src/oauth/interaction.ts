// Interactions: an authorization request (or a device-page sign-in) on its way through the
// pages the user must see, and the end of the code flow (code issuance, authorization response).
//
// Stateless on the server: the validated request is sealed (AES-256-GCM under the cluster's data
// key, aad "interaction") with its own expiry and carried by the page in a hidden field. Any node
// can continue it, so no sticky load balancer is needed. It is bound to the browser: /authorize
// sets a random cookie and the interaction carries its hash; a form posted with a sealed
// interaction from another browser (a stolen interaction, or login CSRF: an attacker's
// interaction submitted from the victim's browser) does not match and is refused.
//
// The flow is a list of named prompts, each with checks that say whether it is needed and a page
// that satisfies it (node-oidc-provider lib/helpers/interaction_policy): 'login', then 'mfa' (the
// second factor, step-up and enrollment: src/oauth/mfa-policy.ts, mfa.ts), then 'consent', then the code is issued.
import type { FastifyReply, FastifyRequest } from 'fastify';
import { randomToken, safeEqual, tokenHash } from '../crypto/tokens.ts';
import { SealError } from '../crypto/seal.ts';
import { CryptoNotReady } from '../crypto/runtime.ts';
import type { ClientRecord } from '../state/oauth-ops.ts';
import { lookupClient } from './clients.ts';
import { stateFailure } from './context.ts';
import { tokens } from '../state/tokens.ts';
import { must } from '../state/contract.ts';
import type { OAuthContext } from './context.ts';
import { ConsentRequired, LoginRequired, OAuthError, ServerError, TemporarilyUnavailable } from './errors.ts';
import { MFA_PROMPT, loadMfaStatus, stepUpCoversMaxAge } from './mfa-policy.ts';
import type { MfaStatus } from '../mfa/service.ts';
import type { CodePayload } from './records.ts';
import { PageError, consentPage, cspSource, formPostPage } from './pages.ts';
import { signInPage } from './login-page.ts';
import { INTERACTION_COOKIE, commitSession, readCookie, setCookie, userLabel } from './session.ts';
import type { PendingSession, Session } from './session.ts';

// The interaction and prompt-policy types live in interaction-types.ts, so the MFA prompt
// (mfa-policy.ts) can use them without importing this file (no import cycles: docs/architecture.md).
import type { ActiveSession, AuthorizationRequest, AuthorizationTarget, AuthorizeInteraction, Interaction, InteractionCommon, InteractionPrompt, PolicyState, PromptCheck } from './interaction-types.ts';
export type { ResponseMode, PromptValue, AuthorizationTarget, AuthorizationRequest, AuthorizeInteraction, DeviceInteraction, Interaction, ActiveSession, PolicyState, PromptCheck, InteractionPrompt } from './interaction-types.ts';

const INTERACTION_AAD = 'interaction';
const SEALED_RE = /^[A-Za-z0-9_-]+$/;

/** The issuer-relative path of one of our endpoints (the issuer may have a path, RFC 8414 §2). */
export function endpointPath(ctx: OAuthContext, path: string): string {
  return new URL(ctx.config.issuer).pathname.replace(/\/$/, '') + path;
}

/**
 * The hash of this browser's binding cookie, set now when absent. An existing cookie is kept (and
 * its lifetime renewed) so two tabs with two authorization requests do not invalidate each other.
 */
export function browserBinding(ctx: OAuthContext, req: FastifyRequest, reply: FastifyReply): string {
  const value = readCookie(ctx, req, INTERACTION_COOKIE) ?? randomToken();
  setCookie(ctx, reply, INTERACTION_COOKIE, value, ctx.config.interactionTtlS);
  return tokenHash(value);
}

export function newInteraction<B extends { kind: 'authorize'; authz: AuthorizationRequest } | { kind: 'device'; userCode: string | null }>(ctx: OAuthContext, bind: string, body: B): InteractionCommon & B {
  const common: InteractionCommon = { v: 1, exp: ctx.now() + ctx.config.interactionTtlS * 1000, bind, loginSession: null, consented: false, mfaSession: null };
  return { ...common, ...body };
}

export function sealInteraction(ctx: OAuthContext, i: Interaction): string {
  return Buffer.from(ctx.crypto.sealer().sealValue(i, INTERACTION_AAD)).toString('base64url');
}

/** Open the interaction a form carried; refuses (as a page) a forged, expired or other browser's one. */
export function openInteraction(ctx: OAuthContext, req: FastifyRequest, sealed: string | undefined): Interaction {
  if (sealed === undefined || !SEALED_RE.test(sealed)) throw new PageError(400, 'Sign-in request not found', 'This form does not carry a sign-in request. Go back to the application and start again.');
  let i: Interaction;
  try {
    i = ctx.crypto.sealer().openValue<Interaction>(Buffer.from(sealed, 'base64url'), INTERACTION_AAD);
  } catch (e) {
    if (e instanceof SealError) throw new PageError(400, 'Sign-in request not valid', 'This sign-in request is not valid. Go back to the application and start again.');
    throw e;
  }
  if (i.v !== 1) throw new PageError(400, 'Sign-in request not valid', 'This sign-in request is not valid. Go back to the application and start again.');
  if (i.exp <= ctx.now()) throw new PageError(400, 'Sign-in request expired', 'This sign-in request has expired. Go back to the application and start again.');
  const cookie = readCookie(ctx, req, INTERACTION_COOKIE);
  if (cookie === null || !safeEqual(tokenHash(cookie), i.bind)) {
    throw new PageError(403, 'Sign-in request refused', 'This sign-in request was started in another browser, or its cookie was lost. Go back to the application and start again.');
  }
  return i;
}

// ---------------------------------------------------------------------------------------------
// The prompt policy

/** A login inside this interaction satisfies the checks that ask for a fresh one. */
export function loggedInHere(s: PolicyState): boolean {
  return s.active !== null && s.interaction.loginSession === s.active.session.hash;
}

export const LOGIN_PROMPT: InteractionPrompt = {
  name: 'login',
  checks: [
    { reason: 'no_session', description: 'the user is not signed in', needed: (s) => s.active === null },
    {
      reason: 'login_prompt',
      description: 'prompt=login asks for a new sign-in',
      needed: (s) => (s.interaction.authz.prompt.includes('login') || s.interaction.authz.prompt.includes('select_account')) && !loggedInHere(s),
    },
    {
      // OIDC Core §3.1.2.1 max_age: "If the elapsed time is greater than this value, the OP MUST attempt to actively re-authenticate".
      reason: 'max_age',
      description: 'the sign-in is older than max_age',
      // A session with a second factor re-does only that factor (the MFA prompt's own max_age check).
      needed: (s) => s.interaction.authz.maxAge !== null && s.active !== null && s.nowS - s.active.session.payload.auth.authTime > s.interaction.authz.maxAge && !loggedInHere(s) && !stepUpCoversMaxAge(s),
    },
    {
      // OIDC Core §3.1.2.1 id_token_hint: the signed-in user must be the one the hint names.
      reason: 'id_token_hint',
      description: 'the signed-in user is not the one id_token_hint names',
      needed: (s) => s.interaction.authz.idTokenHintSub !== null && s.active !== null && s.active.session.payload.auth.sub !== s.interaction.authz.idTokenHintSub && !loggedInHere(s),
    },
  ],
  noneError: (d) => new LoginRequired(d),
  render(s, reply, sealed) {
    const formAction = cspSource(s.interaction.authz.redirectUri);
    return signInPage(s.ctx, reply, {
      action: endpointPath(s.ctx, '/login'),
      interaction: sealed,
      client: s.client,
      username: s.interaction.authz.loginHint ?? '',
      error: null,
      formActions: formAction === null ? [] : [formAction],
    });
  },
};

export const CONSENT_PROMPT: InteractionPrompt = {
  name: 'consent',
  checks: [
    // Consent is not remembered between requests: a third-party client asks every time.
    { reason: 'third_party', description: 'the user has not allowed this client', needed: (s) => !s.client.first_party && !s.interaction.consented },
    { reason: 'consent_prompt', description: 'prompt=consent asks for consent', needed: (s) => s.interaction.authz.prompt.includes('consent') && !s.interaction.consented },
  ],
  noneError: (d) => new ConsentRequired(d),
  render(s, reply, sealed) {
    if (s.active === null) throw new ServerError('consent prompt without a session');
    const formAction = cspSource(s.interaction.authz.redirectUri);
    return consentPage(reply, {
      action: endpointPath(s.ctx, '/consent'),
      interaction: sealed,
      csrf: s.active.session.payload.csrf,
      client: s.client,
      scope: s.interaction.authz.scope,
      userLabel: userLabel(s.active.user),
      formActions: formAction === null ? [] : [formAction],
    });
  },
};

/** In order: the first prompt with a needed check is shown. */
export const PROMPTS: readonly InteractionPrompt[] = [LOGIN_PROMPT, MFA_PROMPT, CONSENT_PROMPT];

/** The first needed prompt and the check that asks for it, or null when the code can be issued. */
export function neededPrompt(s: PolicyState): { prompt: InteractionPrompt; check: PromptCheck } | null {
  for (const prompt of PROMPTS) {
    const check = prompt.checks.find((c) => c.needed(s));
    if (check !== undefined) return { prompt, check };
  }
  return null;
}

/**
 * The interaction's client, which may have been deleted while the user was on a page. From the read
 * cache, and on a miss through the node (lookupClient): a client the cache does not hold (past its
 * bound of CACHE_TABLE_LIMIT clients, docs/operations.md "State size") is still found.
 */
export async function interactionClient(ctx: OAuthContext, i: AuthorizeInteraction): Promise<ClientRecord> {
  const client = await lookupClient(ctx, i.authz.clientId);
  if (client === null) throw new PageError(400, 'Application not found', 'The application that sent you here is no longer registered.');
  return client;
}

/**
 * Continue an authorization request: show the next needed prompt's page, refuse with
 * login_required / consent_required under prompt=none, or issue the code.
 * `viaPost`: the request being answered is a POST (redirects are then 303, RFC 9700 §4.12).
 */
export async function resume(
  ctx: OAuthContext,
  reply: FastifyReply,
  i: AuthorizeInteraction,
  active: ActiveSession | null,
  viaPost: boolean,
  opts: {
    /** active.session made but not written yet (a second factor just passed): written here, with the code when the flow ends in one. */
    readonly pending?: PendingSession;
    /** The user's MFA status when the caller just read it (saves a linearizable read). */
    readonly mfa?: MfaStatus;
  } = {},
): Promise<FastifyReply> {
  const client = await interactionClient(ctx, i);
  const mfa = active === null ? null : (opts.mfa ?? (await loadMfaStatus(ctx, active.user.sub)));
  const s: PolicyState = { ctx, client, interaction: i, active, nowS: Math.floor(ctx.now() / 1000), mfa };
  const needed = neededPrompt(s);
  if (needed !== null) {
    if (opts.pending !== undefined) await commitSession(ctx, reply, opts.pending);
    // OIDC Core §3.1.2.1: prompt=none "MUST NOT display any authentication or consent user interface pages".
    if (i.authz.prompt.includes('none')) return sendAuthorizationError(ctx, reply, i.authz, needed.prompt.noneError(needed.check.description), viaPost);
    return await needed.prompt.render(s, reply, sealInteraction(ctx, i));
  }
  if (active === null) throw new ServerError('code issuance without a session');
  return issueCode(ctx, reply, i.authz, active.session, viaPost, opts.pending);
}

// ---------------------------------------------------------------------------------------------
// The end of the flow

/**
 * RFC 6749 §4.1.2: a single-use code, stored as its hash with the sealed grant (CodePayload); the
 * token side checks client, redirect URI and PKCE against it.
 */
export async function issueCode(ctx: OAuthContext, reply: FastifyReply, authz: AuthorizationRequest, session: Session, viaPost: boolean, pending?: PendingSession): Promise<FastifyReply> {
  const code = randomToken();
  const hash = tokenHash(code);
  const payload: CodePayload = {
    clientId: authz.clientId,
    redirectUri: authz.redirectUri,
    redirectUriInRequest: authz.redirectUriInRequest !== false,
    codeChallenge: authz.codeChallenge,
    codeChallengeMethod: authz.codeChallengeMethod,
    scope: authz.scope,
    nonce: authz.nonce,
    auth: session.payload.auth,
    sessionHash: session.hash,
    // Resource indicators (RFC 8707) are not supported: every code's tokens are for the issuer.
    audience: ctx.config.issuer,
  };
  const args = { hash, exp: ctx.now() + ctx.config.codeTtlS * 1000, sealed: ctx.crypto.sealer().sealValue(payload, 'code:' + hash) };
  // After a second factor the upgraded session and the code are one replicated write.
  if (pending !== undefined) await commitSession(ctx, reply, pending, args);
  else must(await tokens['code.create'](ctx, args), 'tokens.code.create');
  return sendAuthorizationResponse(ctx, reply, authz, { code }, viaPost);
}

/**
 * The authorization response, success or error: `state` when the client sent one (RFC 6749
 * §4.1.2) and `iss` always (RFC 9207 §2), in the response mode asked for.
 */
export function sendAuthorizationResponse(ctx: OAuthContext, reply: FastifyReply, target: AuthorizationTarget, params: Readonly<Record<string, string>>, viaPost: boolean): FastifyReply {
  const all: Record<string, string> = { ...params };
  if (target.state !== null) all.state = target.state;
  all.iss = ctx.config.issuer;
  if (target.responseMode === 'form_post') {
    const source = cspSource(target.redirectUri);
    if (source === null) throw new ServerError('the redirect URI has no origin');
    return formPostPage(reply, target.redirectUri, all, source);
  }
  // RFC 6749 §3.1.2: the redirect URI's query "MUST be retained": append to it as is, never re-encode it.
  const base = target.redirectUri;
  const sep = base.endsWith('?') || base.endsWith('&') ? '' : base.includes('?') ? '&' : '?';
  const location = base + sep + new URLSearchParams(all).toString();
  // A redirect answering a POST is 303, never 307 (RFC 9700 §4.12: the browser would re-post the password).
  return reply
    .code(viaPost ? 303 : 302)
    .header('location', location)
    .header('cache-control', 'no-store')
    .header('referrer-policy', 'no-referrer')
    .send();
}

/** RFC 6749 §4.1.2.1: an error redirected to the client. */
export function sendAuthorizationError(ctx: OAuthContext, reply: FastifyReply, target: AuthorizationTarget, e: OAuthError, viaPost: boolean): FastifyReply {
  return sendAuthorizationResponse(ctx, reply, target, { error: e.error, error_description: e.description }, viaPost);
}

/** Any error of a request whose redirect target is known, as the OAuthError to redirect with (§4.1.2.1 server_error, temporarily_unavailable). */
export function redirectableError(err: unknown): OAuthError {
  if (err instanceof OAuthError) return err;
  const state = stateFailure(err);
  if (state) return state;
  if (err instanceof CryptoNotReady) return new TemporarilyUnavailable('the cluster has not finished creating its keys; retry');
  return new ServerError('internal error');
}
