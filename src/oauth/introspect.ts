// POST /introspect (RFC 7662). Client-authenticated (§2.1: "the endpoint MUST also require some
// form of authorization"; we require a confidential client). Access tokens are our JWTs, refresh
// tokens are looked up by hash. token_type_hint only orders the lookups (§2.1: "the authorization
// server … MAY ignore it"); since the two kinds are told apart by shape, we ignore it entirely.
// A client may introspect only tokens issued to itself (§4: the server may limit what it reveals
// to whom); any other token, and anything inactive, is `{"active": false}` and nothing else (§2.2).
import type { FastifyInstance } from 'fastify';
import { tokenHash } from '../crypto/tokens.ts';
import { verifyAccessToken, looksLikeJwt } from './access-token.ts';
import { authenticateClient } from './client-auth.ts';
import { tokens } from '../state/tokens.ts';
import { must } from '../state/contract.ts';
import type { OAuthContext } from './context.ts';
import { formParams, required } from './form.ts';
import type { RefreshPayload } from './records.ts';
import { noStore } from './token.ts';

export const INTROSPECT_PATH = '/introspect';

/** Opaque tokens we issue are 43 base64url characters; anything far longer is not ours (and is not hashed). */
const MAX_TOKEN_CHARS = 8 * 1024;

export function registerIntrospect(app: FastifyInstance, ctx: OAuthContext): void {
  app.post(INTROSPECT_PATH, async (req, reply) => {
    // The answer describes a live credential: no cache may keep it (§4 refers to RFC 6749 §5.1's rule).
    noStore(reply);
    const params = formParams(req);
    const client = await authenticateClient(ctx, req, params, { allowPublic: false, endpointUrl: ctx.config.issuer + INTROSPECT_PATH });
    const token = required(params, 'token');
    return reply.code(200).send(await introspect(ctx, client.client_id, token));
  });
}

export async function introspect(ctx: OAuthContext, clientId: string, token: string): Promise<Record<string, unknown>> {
  const inactive = { active: false };
  if (token.length > MAX_TOKEN_CHARS) return inactive;
  if (looksLikeJwt(token)) {
    const c = await verifyAccessToken(ctx, token);
    if (!c || c.client_id !== clientId) return inactive;
    return { active: true, scope: c.scope, client_id: c.client_id, sub: c.sub, aud: c.aud, iss: c.iss, exp: c.exp, iat: c.iat, jti: c.jti, token_type: 'Bearer' };
  }
  const hash = tokenHash(token);
  // Linearizable: a rotation or revocation acknowledged on another node must show here.
  const v = must(await tokens.read['rt.get'](ctx, { hash }), 'tokens.rt.get');
  if (!v || v.clientId !== clientId) return inactive;
  const now = ctx.now();
  if (v.state !== 'active' || v.familyRevoked || v.exp <= now || v.familyExp <= now) return inactive;
  const p = ctx.crypto.sealer().openValue<RefreshPayload>(v.sealed, `rt:${hash}`);
  return { active: true, scope: p.scope.join(' '), client_id: p.clientId, sub: p.auth.sub, iss: ctx.config.issuer, exp: Math.floor(v.exp / 1000), token_type: 'refresh_token' };
}
