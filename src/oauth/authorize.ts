// The authorization endpoint (RFC 6749 §4.1.1, OIDC Core §3.1.2): GET and POST /authorize
// (OIDC Core §3.1.2.1: "MUST support the use of the HTTP GET and POST methods").
//
// Order of checks (RFC 6749 §4.1.2.1): first the client and its redirect URI; while either is
// missing or wrong, the user sees an error page and is NEVER redirected (the redirect could go to
// an attacker: an open redirector). Every later error is redirected to the redirect URI with
// error, error_description, state and iss (RFC 9207), in the response mode asked for.
//
// The validated request becomes an interaction (interaction.ts) that the prompts (login, consent)
// carry through their pages until the code is issued.
import type { FastifyReply, FastifyRequest } from 'fastify';
import { JwtVerifyError, verifyJwt } from '../crypto/jws.ts';
import type { ClientRecord } from '../state/oauth-ops.ts';
import { checkGrantType, lookupClient, resolveScope } from './clients.ts';
import type { OAuthContext } from './context.ts';
import { InvalidRequest, RequestNotSupported, RequestUriNotSupported, UnsupportedResponseType } from './errors.ts';
import { formParams, queryParams, scopeList } from './form.ts';
import type { Params } from './form.ts';
import { isValidCodeChallenge } from './pkce.ts';
import { PageError } from './pages.ts';
import { browserBinding, newInteraction, redirectableError, resume, sendAuthorizationError } from './interaction.ts';
import type { AuthorizationRequest, AuthorizationTarget, PromptValue, ResponseMode } from './interaction.ts';
import { loadActiveSession } from './session.ts';

/**
 * Most characters of the values an interaction carries for the client (state, nonce, login_hint,
 * acr_values, scope, redirect_uri, code_challenge) together: the sealed interaction must fit in
 * one form parameter (form.ts MAX_PARAM_CHARS, 8 KiB, after base64url's 4/3).
 */
export const MAX_KEPT_CHARS = 4096;
/** Most acr_values entries. */
export const MAX_ACR_VALUES = 16;
/** Largest max_age (ten years): a bigger one means "no limit" in practice and would only risk overflow. */
export const MAX_MAX_AGE_S = 10 * 365 * 24 * 3600;

const PROMPT_VALUES: readonly PromptValue[] = ['none', 'login', 'consent', 'select_account'];

export async function handleAuthorize(ctx: OAuthContext, req: FastifyRequest, reply: FastifyReply): Promise<FastifyReply> {
  const viaPost = req.method === 'POST';
  let params: Params;
  try {
    params = viaPost ? formParams(req) : queryParams(req);
  } catch (e) {
    if (!(e instanceof InvalidRequest)) throw e;
    // §4.1.2.1 redirects "a parameter included more than once" too, when client and redirect URI are themselves unambiguous.
    const target = await lenientTarget(ctx, req, viaPost);
    if (target === null) throw new PageError(400, 'Invalid request', e.description, e.error);
    return sendAuthorizationError(ctx, reply, target, e, viaPost);
  }
  const { client, target } = await resolveTarget(ctx, params);
  try {
    const authz = validateRequest(ctx, params, client, target);
    const active = await loadActiveSession(ctx, req);
    const interaction = newInteraction(ctx, browserBinding(ctx, req, reply), { kind: 'authorize', authz });
    return await resume(ctx, reply, interaction, active, viaPost);
  } catch (e) {
    if (e instanceof PageError) throw e;
    const oe = redirectableError(e);
    if (oe.status >= 500) req.log.error({ err: e }, 'authorization request failed');
    return sendAuthorizationError(ctx, reply, target, oe, viaPost);
  }
}

/**
 * The client and where its responses go, or an error page. RFC 9700 §4.1.3: redirect URIs are
 * compared by exact string match. When redirect_uri is omitted, RFC 6749 §3.1.2.3 allows it only
 * if the client registered exactly one; OIDC Core §3.1.2.1 makes it REQUIRED for OpenID requests.
 */
export async function resolveTarget(ctx: OAuthContext, p: Params): Promise<{ client: ClientRecord; target: AuthorizationTarget }> {
  const clientId = p.client_id;
  if (clientId === undefined) throw new PageError(400, 'Invalid request', 'The request has no client_id: the application that sent you here is misconfigured.', 'invalid_request');
  const client = await lookupClient(ctx, clientId);
  if (client === null) throw new PageError(400, 'Unknown application', `No application is registered with client_id ${clientId}.`, 'invalid_request');
  let redirectUri: string;
  if (p.redirect_uri !== undefined) {
    if (!client.redirect_uris.some((r) => redirectUriMatches(r, p.redirect_uri!))) {
      throw new PageError(400, 'Invalid redirect URI', `The redirect_uri is not registered for ${client.client_name}: it must match a registered one exactly (any port for a loopback IP address, RFC 8252 §7.3).`, 'invalid_request');
    }
    redirectUri = p.redirect_uri;
  } else {
    const openid = (p.scope ?? '').split(' ').includes('openid');
    if (openid) throw new PageError(400, 'Invalid request', 'An OpenID Connect request must carry redirect_uri (OpenID Connect Core §3.1.2.1).', 'invalid_request');
    if (client.redirect_uris.length !== 1) {
      throw new PageError(400, 'Invalid request', `The request must carry redirect_uri: ${client.client_name} does not have exactly one registered (RFC 6749 §3.1.2.3).`, 'invalid_request');
    }
    redirectUri = client.redirect_uris[0]!;
  }
  const responseMode: ResponseMode = p.response_mode === 'form_post' ? 'form_post' : 'query';
  return { client, target: { redirectUri, redirectUriInRequest: p.redirect_uri !== undefined, responseMode, state: p.state ?? null } };
}

/**
 * RFC 9700 §4.1.3: exact string match — except RFC 8252 §7.3: "The authorization server MUST
 * allow any port to be specified at the time of the request for loopback IP redirect URIs" (a
 * native app listens on whatever port it got). Only http and the IP literals 127.0.0.1 and [::1]
 * count as loopback (§8.3: `localhost` is not one); everything but the port must still match.
 */
export function redirectUriMatches(registered: string, requested: string): boolean {
  if (registered === requested) return true;
  let r: URL;
  let q: URL;
  try {
    r = new URL(registered);
    q = new URL(requested);
  } catch {
    return false;
  }
  const loopback = (u: URL) => u.protocol === 'http:' && (u.hostname === '127.0.0.1' || u.hostname === '[::1]');
  if (!loopback(r) || !loopback(q)) return false;
  // Compare the strings with the port removed, so nothing else is normalised into a match.
  const withoutPort = (s: string, u: URL) => (u.port === '' ? s : s.replace(`${u.hostname}:${u.port}`, u.hostname));
  return r.hostname === q.hostname && withoutPort(registered, r) === withoutPort(requested, q);
}

/** The redirect target of a request whose parameters did not parse, when client_id and redirect_uri each appear once and are valid. */
async function lenientTarget(ctx: OAuthContext, req: FastifyRequest, viaPost: boolean): Promise<AuthorizationTarget | null> {
  let text: string;
  if (viaPost) {
    if (typeof req.body !== 'string') return null;
    text = req.body;
  } else {
    const i = req.url.indexOf('?');
    text = i < 0 ? '' : req.url.slice(i + 1);
  }
  let search: URLSearchParams;
  try {
    search = new URLSearchParams(text);
  } catch {
    return null;
  }
  const once: Record<string, string> = {};
  for (const name of ['client_id', 'redirect_uri', 'response_mode', 'state', 'scope']) {
    const all = search.getAll(name);
    if (all.length === 1 && all[0] !== '') once[name] = all[0]!;
    else if (all.length > 1 && (name === 'client_id' || name === 'redirect_uri')) return null;
  }
  try {
    return (await resolveTarget(ctx, once)).target;
  } catch (e) {
    if (e instanceof PageError) return null;
    throw e;
  }
}

/** Every check after the target is known; throws the OAuthError to redirect with. */
export function validateRequest(ctx: OAuthContext, p: Params, client: ClientRecord, target: AuthorizationTarget): AuthorizationRequest {
  const rm = p.response_mode;
  if (rm !== undefined && rm !== 'query' && rm !== 'form_post') {
    // The fragment mode is for implicit-style responses; codes go in the query (RFC 9700 §2.1.2 drops the implicit grant).
    throw new InvalidRequest(rm === 'fragment' ? 'response_mode fragment is not supported: use query or form_post' : `response_mode ${rm} is not supported: use query or form_post`);
  }
  // OIDC Core §6: request objects are optional; a server without them answers these errors.
  if (p.request !== undefined) throw new RequestNotSupported('request objects are not supported');
  if (p.request_uri !== undefined) throw new RequestUriNotSupported('request_uri is not supported');
  if (p.response_type === undefined) throw new InvalidRequest('missing required parameter response_type');
  if (p.response_type !== 'code') throw new UnsupportedResponseType('only response_type=code is supported');
  checkGrantType(client, 'authorization_code');
  const scope = resolveScope(ctx, client, scopeList(p.scope));

  // RFC 7636 §4.3: code_challenge_method defaults to plain.
  let codeChallenge: string | null = null;
  let codeChallengeMethod: 'S256' | 'plain' | null = null;
  if (p.code_challenge === undefined) {
    if (p.code_challenge_method !== undefined) throw new InvalidRequest('code_challenge_method was sent without code_challenge');
    // RFC 9700 §2.1.1: PKCE for public clients always; for confidential ones by configuration.
    if (client.token_endpoint_auth_method === 'none') throw new InvalidRequest('code_challenge is required for public clients (RFC 7636, RFC 9700 §2.1.1)');
    if (ctx.config.requirePkceForConfidential) throw new InvalidRequest('code_challenge is required (RFC 7636, RFC 9700 §2.1.1)');
  } else {
    const m = p.code_challenge_method ?? 'plain';
    if (m !== 'S256' && m !== 'plain') throw new InvalidRequest(`code_challenge_method ${m} is not supported: use S256`);
    if (m === 'plain' && !ctx.config.allowPlainPkce) {
      throw new InvalidRequest(
        p.code_challenge_method === undefined
          ? 'code_challenge_method is missing, which means plain (RFC 7636 §4.3), and plain is not allowed: send code_challenge_method=S256'
          : 'code_challenge_method plain is not allowed: use S256',
      );
    }
    if (!isValidCodeChallenge(p.code_challenge, m)) {
      throw new InvalidRequest(m === 'S256' ? 'code_challenge must be the 43-character base64url SHA-256 of the verifier (RFC 7636 §4.2)' : 'code_challenge must be 43 to 128 unreserved characters (RFC 7636 §4.2)');
    }
    codeChallenge = p.code_challenge;
    codeChallengeMethod = m;
  }

  // OIDC Core §3.1.2.1 parameters. They are honoured for plain OAuth requests too (harmless, and
  // clients rely on prompt=none for silent renewal); nonce only ends up in ID tokens.
  const prompt: PromptValue[] = [];
  if (p.prompt !== undefined) {
    for (const v of p.prompt.split(' ')) {
      if (!(PROMPT_VALUES as readonly string[]).includes(v)) throw new InvalidRequest(`prompt value ${JSON.stringify(v)} is not supported (none, login, consent, select_account)`);
      if (!prompt.includes(v as PromptValue)) prompt.push(v as PromptValue);
    }
    // "If this parameter contains none with any other value, an error is returned."
    if (prompt.includes('none') && prompt.length > 1) throw new InvalidRequest('prompt=none cannot be combined with other values');
  }
  let maxAge: number | null = null;
  if (p.max_age !== undefined) {
    if (!/^(0|[1-9][0-9]{0,9})$/.test(p.max_age) || Number(p.max_age) > MAX_MAX_AGE_S) throw new InvalidRequest(`max_age must be a non-negative integer number of seconds, at most ${MAX_MAX_AGE_S}`);
    maxAge = Number(p.max_age);
  }
  const acrValues = p.acr_values === undefined ? [] : p.acr_values.split(' ');
  if (acrValues.some((v) => v === '')) throw new InvalidRequest('acr_values must be space-separated values');
  if (acrValues.length > MAX_ACR_VALUES) throw new InvalidRequest(`acr_values has more than ${MAX_ACR_VALUES} values`);
  const idTokenHintSub = p.id_token_hint === undefined ? null : idTokenHint(ctx, p.id_token_hint);

  const authz: AuthorizationRequest = {
    ...target,
    clientId: client.client_id,
    scope,
    codeChallenge,
    codeChallengeMethod,
    nonce: p.nonce ?? null,
    prompt,
    maxAge,
    acrValues,
    loginHint: p.login_hint ?? null,
    idTokenHintSub,
  };
  const kept = [authz.state, authz.nonce, authz.loginHint, p.acr_values, p.scope, authz.redirectUri, authz.codeChallenge].reduce((n, v) => n + (v?.length ?? 0), 0);
  if (kept > MAX_KEPT_CHARS) throw new InvalidRequest(`state, nonce, login_hint, acr_values, scope, redirect_uri and code_challenge together exceed ${MAX_KEPT_CHARS} characters`);
  return authz;
}

/**
 * OIDC Core §3.1.2.1 id_token_hint: an ID token we issued (signature and issuer checked), expired
 * or not ("ID Token previously issued by the Authorization Server"); its `sub` must be the
 * signed-in user. typ JWT keeps our access tokens (at+jwt) out. Only our current keys verify it: a hint signed by a key no longer published is
 * refused as invalid.
 */
function idTokenHint(ctx: OAuthContext, hint: string): string {
  const keys = ctx.crypto.signingKeys();
  const nowS = Math.floor(ctx.now() / 1000);
  let exp: unknown;
  try {
    exp = (JSON.parse(Buffer.from(hint.split('.')[1] ?? '', 'base64url').toString('utf8')) as Record<string, unknown>).exp;
  } catch {
    throw new InvalidRequest('id_token_hint is not a JWT');
  }
  try {
    // Verify as of just before its expiry when it has expired: an old hint is still a valid hint.
    const asOf = typeof exp === 'number' && Number.isFinite(exp) ? Math.min(nowS, Math.floor(exp) - 1) : nowS;
    const claims = verifyJwt(hint, (kid) => keys.publicKey(kid), { typ: 'JWT', issuer: ctx.config.issuer, nowS: asOf, algorithms: ['ES256', 'EdDSA'] });
    if (typeof claims.sub !== 'string' || claims.sub === '') throw new InvalidRequest('id_token_hint has no sub');
    return claims.sub;
  } catch (e) {
    if (e instanceof JwtVerifyError) throw new InvalidRequest(`id_token_hint is not an ID token issued here (${e.message})`);
    throw e;
  }
}
