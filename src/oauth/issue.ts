// Everything a grant prepares before it proposes: the signed access token (RFC 9068), the ID token
// (OIDC Core §2, §3.1.3.6), a new refresh-token family and its tokens (opaque, hashed, payload
// sealed), and the token response (RFC 6749 §5.1). Nothing here writes: the grant proposes one
// command with what was prepared, and answers from apply's outcome.
import { createHash } from 'node:crypto';
import { signJwt } from '../crypto/jws.ts';
import { randomId, randomToken, tokenHash } from '../crypto/tokens.ts';
import type { ClientRecord, IssuedAccessToken, PreparedFamily, PreparedRefreshToken, SigningAlg } from '../state/oauth-ops.ts';
import type { OAuthContext } from './context.ts';
import type { Authentication, RefreshPayload } from './records.ts';

/** RFC 9068 §2.1: the JOSE header `typ` of a JWT access token. */
export const ACCESS_TOKEN_TYP = 'at+jwt';

/** Who the token is for and what it allows. `auth` is null for client_credentials (no end user). */
export interface TokenSubject {
  readonly sub: string;
  readonly clientId: string;
  readonly audience: string;
  readonly scope: readonly string[];
  readonly auth: Authentication | null;
}

export interface IssuedAccess {
  readonly token: string;
  readonly jti: string;
  /** Milliseconds since the epoch (what the tokens domain remembers for revocation). */
  readonly expMs: number;
  readonly expiresInS: number;
  /** What a family remembers, so revoking it revokes this token. */
  readonly record: IssuedAccessToken;
}

/**
 * RFC 9068 §2.2: iss, exp, aud, sub, client_id, iat, jti, and scope (§2.2.3); auth_time, acr and
 * amr (§2.2.1) when a user authenticated. Signed with the cluster's active key: every node signs
 * with the same one, so any node's tokens verify against the one JWKS.
 */
export function issueAccessToken(ctx: OAuthContext, s: TokenSubject): IssuedAccess {
  const iat = Math.floor(ctx.now() / 1000);
  const exp = iat + ctx.config.accessTokenTtlS;
  const jti = randomId();
  const claims: Record<string, unknown> = {
    iss: ctx.config.issuer,
    sub: s.sub,
    aud: s.audience,
    client_id: s.clientId,
    scope: s.scope.join(' '),
    jti,
    iat,
    exp,
  };
  if (s.auth) {
    claims.auth_time = s.auth.authTime;
    claims.acr = s.auth.acr;
    claims.amr = [...s.auth.amr];
  }
  const token = signJwt(ctx.crypto.signingKeys().active(), claims, ACCESS_TOKEN_TYP);
  return { token, jti, expMs: exp * 1000, expiresInS: ctx.config.accessTokenTtlS, record: { jti, exp: exp * 1000 } };
}

/**
 * OIDC Core §3.1.3.7 at_hash: the left half of the hash of the access token's ASCII octets, with
 * the hash of the ID token's alg. ES256 → SHA-256. EdDSA names no hash; with Ed25519 we use
 * SHA-512, the hash Ed25519 itself uses (the convention of node-oidc-provider and of the OpenID
 * Connect working group's errata discussion), so the half is 32 bytes.
 */
export function atHash(accessToken: string, alg: SigningAlg): string {
  const digest = createHash(alg === 'EdDSA' ? 'sha512' : 'sha256')
    .update(accessToken, 'ascii')
    .digest();
  return digest.subarray(0, digest.length / 2).toString('base64url');
}

/**
 * OIDC Core §2 ID token for `auth`, audience the client (azp too, §2: "Authorized party"). Profile
 * claims are not put here: a code-flow client gets them from /userinfo (§5.4).
 */
export function issueIdToken(ctx: OAuthContext, o: { auth: Authentication; clientId: string; nonce: string | null; accessToken: string }): string {
  const key = ctx.crypto.signingKeys().active();
  const iat = Math.floor(ctx.now() / 1000);
  const claims: Record<string, unknown> = {
    iss: ctx.config.issuer,
    sub: o.auth.sub,
    aud: o.clientId,
    exp: iat + ctx.config.idTokenTtlS,
    iat,
    auth_time: o.auth.authTime,
  };
  if (o.nonce !== null) claims.nonce = o.nonce;
  claims.acr = o.auth.acr;
  claims.amr = [...o.auth.amr];
  claims.azp = o.clientId;
  claims.at_hash = atHash(o.accessToken, key.alg);
  return signJwt(key, claims, 'JWT');
}

/** A new refresh-token family for one grant; its absolute expiry caps every token in it. */
export function newFamily(ctx: OAuthContext, clientId: string): PreparedFamily {
  return { id: randomId(), clientId, exp: ctx.now() + ctx.config.refreshTokenAbsoluteTtlS * 1000 };
}

/** An opaque 256-bit refresh token, stored only as its hash, its payload sealed to its record (aad rt:<hash>). */
export function prepareRefreshToken(ctx: OAuthContext, payload: RefreshPayload, familyExp: number): { token: string; prepared: PreparedRefreshToken } {
  const token = randomToken();
  const hash = tokenHash(token);
  const exp = Math.min(ctx.now() + ctx.config.refreshTokenIdleTtlS * 1000, familyExp);
  const sealed = ctx.crypto.sealer().sealValue(payload, `rt:${hash}`);
  return { token, prepared: { hash, exp, sealed } };
}

/**
 * Whether a user grant gets a refresh token: the client must hold the refresh_token grant, and an
 * OpenID request must have been granted offline_access (OIDC Core §11: "the use of Refresh Tokens
 * is not exclusive to the offline_access use case", but an OpenID grant without it is an online
 * session, which we do not extend past the access token).
 */
export function wantsRefreshToken(client: ClientRecord, scope: readonly string[]): boolean {
  return client.grant_types.includes('refresh_token') && (!scope.includes('openid') || scope.includes('offline_access'));
}

/** RFC 6749 §5.1 successful response. `scope` is always sent (§5.1 allows omitting it when unchanged; clients then need not guess). */
export function tokenResponse(o: { access: IssuedAccess; scope: readonly string[]; refreshToken: string | null; idToken: string | null }): Record<string, unknown> {
  const body: Record<string, unknown> = {
    access_token: o.access.token,
    token_type: 'Bearer',
    expires_in: o.access.expiresInS,
    scope: o.scope.join(' '),
  };
  if (o.refreshToken !== null) body.refresh_token = o.refreshToken;
  if (o.idToken !== null) body.id_token = o.idToken;
  return body;
}

/** What a user grant (code or device) proposes and answers. */
export interface PreparedUserGrant {
  readonly body: Record<string, unknown>;
  readonly family: PreparedFamily | null;
  readonly rt: PreparedRefreshToken | null;
  readonly at: IssuedAccessToken;
}

/** Tokens for a user's grant (authorization code, device code): access token, maybe a new family with its first refresh token, an ID token for `openid`. */
export function prepareUserGrant(ctx: OAuthContext, client: ClientRecord, g: { auth: Authentication; scope: readonly string[]; audience: string; nonce: string | null }): PreparedUserGrant {
  const access = issueAccessToken(ctx, { sub: g.auth.sub, clientId: client.client_id, audience: g.audience, scope: g.scope, auth: g.auth });
  const openid = g.scope.includes('openid');
  let family: PreparedFamily | null = null;
  let rt: { token: string; prepared: PreparedRefreshToken } | null = null;
  if (wantsRefreshToken(client, g.scope)) {
    family = newFamily(ctx, client.client_id);
    rt = prepareRefreshToken(ctx, { clientId: client.client_id, scope: [...g.scope], auth: g.auth, audience: g.audience, openid }, family.exp);
  }
  const idToken = openid ? issueIdToken(ctx, { auth: g.auth, clientId: client.client_id, nonce: g.nonce, accessToken: access.token }) : null;
  return {
    body: tokenResponse({ access, scope: g.scope, refreshToken: rt?.token ?? null, idToken }),
    family,
    rt: rt?.prepared ?? null,
    at: access.record,
  };
}
