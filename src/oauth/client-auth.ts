// Client authentication at the token, introspection, revocation and device-authorization
// endpoints (RFC 6749 §2.3, OIDC Core §9, RFC 7523 §2.2/§3). node-oidc-provider
// lib/shared/token_auth.js is the model.
//
// One method per request (§2.3: "The client MUST NOT use more than one authentication method in
// each request"): a request carrying two is invalid_request, before any client is looked up. The
// method used must be the client's registered token_endpoint_auth_method (OIDC Core §9: the
// registered method is the one the server accepts), so a secret-holding client cannot fall back to
// `none`, and a private_key_jwt client cannot be authenticated by a guessed secret. Every failure
// that concerns the credentials themselves is invalid_client (401 + WWW-Authenticate, §5.2).
import type { FastifyRequest } from 'fastify';
import { createLocalJWKSet, decodeJwt, jwtVerify } from 'jose';
import type { JSONWebKeySet, JWTPayload } from 'jose';
import { safeEqual, tokenHash } from '../crypto/tokens.ts';
import type { ClientRecord, TokenEndpointAuthMethod } from '../state/oauth-ops.ts';
import { lookupClient } from './clients.ts';
import { tokens } from '../state/tokens.ts';
import { must } from '../state/contract.ts';
import type { OAuthContext } from './context.ts';
import { InvalidClient, InvalidRequest } from './errors.ts';
import type { Params } from './form.ts';

/** RFC 7523 §2.2. */
export const JWT_BEARER_ASSERTION_TYPE = 'urn:ietf:params:oauth:client-assertion-type:jwt-bearer';

/** Asymmetric algorithms accepted in client assertions (no HMAC: we keep no client secret in clear to verify one). */
export const ASSERTION_ALGORITHMS = ['ES256', 'ES384', 'ES512', 'PS256', 'PS384', 'PS512', 'RS256', 'RS384', 'RS512', 'EdDSA'] as const;

/** An assertion may not live longer than this (limits the replay-cache window, RFC 7523 §3 item 4 "MAY reject JWTs with an exp claim value that is unreasonably far in the future"). */
export const MAX_ASSERTION_LIFETIME_S = 300;

/** Longest client_id / client_secret we read from a Basic header (longer is refused before any work). */
const MAX_CREDENTIAL_CHARS = 512;

export const TOKEN_ENDPOINT_AUTH_METHODS: readonly TokenEndpointAuthMethod[] = ['client_secret_basic', 'client_secret_post', 'private_key_jwt', 'none'];

export interface ClientAuthOptions {
  /** Public clients (method `none`) are accepted (token, device authorization, revocation) or refused (introspection). */
  readonly allowPublic: boolean;
  /** The URL of the endpoint being called: a valid audience for a client assertion besides the token endpoint and the issuer. */
  readonly endpointUrl: string;
}

interface Presented {
  readonly method: TokenEndpointAuthMethod;
  readonly clientId: string;
  readonly secret: string | null;
  readonly assertion: string | null;
}

/** Authenticate the client of a request; returns its record or throws InvalidClient / InvalidRequest. */
export async function authenticateClient(ctx: OAuthContext, req: FastifyRequest, params: Params, opts: ClientAuthOptions): Promise<ClientRecord> {
  const presented = presentedCredentials(req, params);
  const client = await lookupClient(ctx, presented.clientId);
  if (!client) throw new InvalidClient('client authentication failed: unknown client');
  if (client.token_endpoint_auth_method !== presented.method) {
    throw new InvalidClient(`client authentication failed: this client must authenticate with ${client.token_endpoint_auth_method}, not ${presented.method}`);
  }
  switch (presented.method) {
    case 'client_secret_basic':
    case 'client_secret_post':
      if (client.client_secret_hash === null || !safeEqual(tokenHash(presented.secret!), client.client_secret_hash)) {
        throw new InvalidClient('client authentication failed: wrong client secret');
      }
      return client;
    case 'private_key_jwt':
      await verifyAssertion(ctx, client, presented.assertion!, opts.endpointUrl);
      return client;
    case 'none':
      if (!opts.allowPublic) throw new InvalidClient('client authentication failed: this endpoint requires a confidential client');
      return client;
  }
}

/** Which method the request uses and the client it names; refuses zero or several methods. */
function presentedCredentials(req: FastifyRequest, params: Params): Presented {
  const authorization = req.headers.authorization;
  const bodyId = params.client_id;
  const found: Presented[] = [];
  if (authorization !== undefined) {
    const basic = parseBasic(authorization);
    // §2.3.1 "including the client credentials in the request-body … SHOULD only be used by clients unable to directly utilize the HTTP Basic"; a body client_id naming another client is a conflict.
    if (bodyId !== undefined && bodyId !== basic.clientId) throw new InvalidRequest('client_id in the body does not match the Authorization header');
    found.push({ method: 'client_secret_basic', clientId: basic.clientId, secret: basic.secret, assertion: null });
  }
  if (params.client_secret !== undefined) {
    if (bodyId === undefined) throw new InvalidRequest('client_secret_post requires client_id in the body');
    found.push({ method: 'client_secret_post', clientId: bodyId, secret: params.client_secret, assertion: null });
  }
  if (params.client_assertion !== undefined || params.client_assertion_type !== undefined) {
    found.push(assertionCredentials(params));
  }
  if (found.length > 1) throw new InvalidRequest('the client used more than one authentication method (RFC 6749 §2.3)');
  if (found.length === 1) return found[0]!;
  if (bodyId === undefined) throw new InvalidClient('client authentication failed: no client authentication included');
  return { method: 'none', clientId: bodyId, secret: null, assertion: null };
}

/**
 * RFC 7617 Basic credentials, decoded as RFC 6749 §2.3.1 requires: client_id and secret are each
 * application/x-www-form-urlencoded before being joined with ':' and base64-encoded, so both are
 * form-decoded here ('+' is a space, %XX escapes).
 */
function parseBasic(header: string): { clientId: string; secret: string } {
  const m = /^Basic +([A-Za-z0-9+/]+={0,2}) *$/i.exec(header);
  if (!m) throw new InvalidClient('client authentication failed: the Authorization header is not Basic credentials');
  const decoded = Buffer.from(m[1]!, 'base64').toString('utf8');
  const colon = decoded.indexOf(':');
  if (colon < 0) throw new InvalidClient('client authentication failed: malformed Basic credentials');
  const clientId = formDecode(decoded.slice(0, colon));
  const secret = formDecode(decoded.slice(colon + 1));
  if (clientId === null || secret === null || clientId === '' || secret === '') throw new InvalidClient('client authentication failed: malformed Basic credentials');
  if (clientId.length > MAX_CREDENTIAL_CHARS || secret.length > MAX_CREDENTIAL_CHARS) throw new InvalidClient('client authentication failed: credentials too long');
  return { clientId, secret };
}

function formDecode(s: string): string | null {
  try {
    return decodeURIComponent(s.replace(/\+/g, ' '));
  } catch {
    return null;
  }
}

/** RFC 7523 §2.2 parameters; the client is named by the assertion's `sub` (= `iss`), or client_id when sent (must agree). */
function assertionCredentials(params: Params): Presented {
  if (params.client_assertion_type !== JWT_BEARER_ASSERTION_TYPE) {
    throw new InvalidRequest(`client_assertion_type must be ${JWT_BEARER_ASSERTION_TYPE}`);
  }
  const assertion = params.client_assertion;
  if (assertion === undefined) throw new InvalidRequest('missing required parameter client_assertion');
  let claims: JWTPayload;
  try {
    claims = decodeJwt(assertion);
  } catch {
    throw new InvalidClient('client authentication failed: client_assertion is not a JWT');
  }
  // RFC 7523 §3 items 1 and 2: iss and sub are both the client_id.
  if (typeof claims.sub !== 'string' || claims.sub === '' || claims.iss !== claims.sub) {
    throw new InvalidClient('client authentication failed: client_assertion iss and sub must both be the client_id');
  }
  if (params.client_id !== undefined && params.client_id !== claims.sub) throw new InvalidRequest('client_id does not match the client_assertion subject');
  return { method: 'private_key_jwt', clientId: claims.sub, secret: null, assertion };
}

/**
 * RFC 7523 §3: signature against the client's registered keys, iss = sub = client_id, aud names
 * us (the token endpoint URL, the issuer, or the endpoint called), exp required and not too far
 * ahead, jti required and used once (replay cache in the tokens domain, decided in apply so two
 * nodes cannot both accept one assertion).
 */
async function verifyAssertion(ctx: OAuthContext, client: ClientRecord, assertion: string, endpointUrl: string): Promise<void> {
  if (client.jwks === null || client.jwks.keys.length === 0) throw new InvalidClient('client authentication failed: the client has no registered keys');
  const nowS = Math.floor(ctx.now() / 1000);
  let payload: JWTPayload;
  try {
    const keys = createLocalJWKSet(client.jwks as unknown as JSONWebKeySet);
    ({ payload } = await jwtVerify(assertion, keys, {
      issuer: client.client_id,
      subject: client.client_id,
      audience: [...new Set([`${ctx.config.issuer}/token`, ctx.config.issuer, endpointUrl])],
      algorithms: [...ASSERTION_ALGORITHMS],
      requiredClaims: ['exp', 'jti'],
      currentDate: new Date(nowS * 1000),
    }));
  } catch (e) {
    const why = e instanceof Error && 'code' in e ? String((e as { code: unknown }).code) : 'invalid';
    throw new InvalidClient(`client authentication failed: client_assertion refused (${why})`);
  }
  const exp = payload.exp!;
  if (exp - nowS > MAX_ASSERTION_LIFETIME_S) throw new InvalidClient(`client authentication failed: client_assertion exp is more than ${MAX_ASSERTION_LIFETIME_S} s ahead`);
  const jti = payload.jti!;
  if (typeof jti !== 'string' || jti === '' || jti.length > 128) throw new InvalidClient('client authentication failed: client_assertion jti must be a string of 1 to 128 characters');
  const { fresh } = must(await tokens['assertion.use'](ctx, { clientId: client.client_id, jti, exp: exp * 1000 }), 'tokens.assertion.use');
  if (!fresh) throw new InvalidClient('client authentication failed: client_assertion was already used (jti replay)');
}
