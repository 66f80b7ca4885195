// Verifying our own access tokens (RFC 9068 §4) where the server itself is the resource:
// introspection, revocation, userinfo. Signature against the cluster's keys (next, active and
// still-published retired ones), typ at+jwt (§4: "Resource servers MUST verify that the typ
// header value is at+jwt"), our issuer, expiry; then the revocation list (tokens read
// at.revoked), which a self-contained token cannot carry.
import { JwtVerifyError, verifyJwt } from '../crypto/jws.ts';
import { tokens } from '../state/tokens.ts';
import { must } from '../state/contract.ts';
import type { OAuthContext } from './context.ts';
import { ACCESS_TOKEN_TYP } from './issue.ts';

/** The claims we put in an access token (src/oauth/issue.ts). */
export interface AccessTokenClaims {
  readonly iss: string;
  readonly sub: string;
  readonly aud: string | string[];
  readonly client_id: string;
  readonly scope: string;
  readonly jti: string;
  readonly iat: number;
  readonly exp: number;
  readonly auth_time?: number;
  readonly acr?: string;
  readonly amr?: string[];
}

/** A compact JWS has exactly two dots; our opaque tokens (refresh, codes) are base64url and have none. */
export function looksLikeJwt(token: string): boolean {
  return token.split('.').length === 3;
}

/** The token's claims if it is one of our access tokens, unexpired and its signature valid; null otherwise (revocation not checked). */
export function decodeAccessToken(ctx: OAuthContext, token: string): AccessTokenClaims | null {
  if (!looksLikeJwt(token)) return null;
  const keys = ctx.crypto.signingKeys();
  let claims: Record<string, unknown>;
  try {
    claims = verifyJwt(token, (kid) => keys.publicKey(kid), {
      typ: ACCESS_TOKEN_TYP,
      issuer: ctx.config.issuer,
      nowS: Math.floor(ctx.now() / 1000),
      // The key named by kid fixes the curve; both algorithms are ours (a ring may hold keys of either after an operator changed signingAlg).
      algorithms: ['ES256', 'EdDSA'],
    });
  } catch (e) {
    if (e instanceof JwtVerifyError) return null;
    throw e;
  }
  if (typeof claims.sub !== 'string' || typeof claims.client_id !== 'string' || typeof claims.jti !== 'string' || typeof claims.scope !== 'string') return null;
  if (typeof claims.exp !== 'number' || typeof claims.iat !== 'number') return null;
  return claims as unknown as AccessTokenClaims;
}

/** decodeAccessToken plus the revocation list (linearizable: a revocation acknowledged on any node is seen here). */
export async function verifyAccessToken(ctx: OAuthContext, token: string): Promise<AccessTokenClaims | null> {
  const claims = decodeAccessToken(ctx, token);
  if (!claims) return null;
  const { revoked } = must(await tokens.read['at.revoked'](ctx, { jti: claims.jti }), 'tokens.at.revoked');
  return revoked ? null : claims;
}

/** Space-delimited scope claim as a list. */
export function claimScopes(claims: AccessTokenClaims): string[] {
  return claims.scope === '' ? [] : claims.scope.split(' ');
}
