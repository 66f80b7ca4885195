// POST /revoke (RFC 7009). §2.1: "The authorization server first validates the client credentials
// (in case of a confidential client) and then verifies whether the token was issued to the client
// making the revocation request" — so public clients may revoke their own tokens too.
// A refresh token revokes its whole family (§2.1: "If the token passed to the request is a refresh
// token … the authorization server SHOULD also invalidate all access tokens based on the same
// authorization grant"); an access token is put on the revocation list until it expires.
// §2.2: unknown, invalid, already revoked tokens, and tokens of other clients, all answer 200 (the
// client cannot tell, and needs not). token_type_hint is only a hint and is ignored: we support
// revoking both kinds and tell them apart by shape, so unsupported_token_type (§2.2.1) never applies.
import type { FastifyInstance } from 'fastify';
import { tokenHash } from '../crypto/tokens.ts';
import { decodeAccessToken, looksLikeJwt } from './access-token.ts';
import { authenticateClient } from './client-auth.ts';
import { requestMeta } from './context.ts';
import { tokens } from '../state/tokens.ts';
import { must } from '../state/contract.ts';
import type { OAuthContext } from './context.ts';
import type { RequestMeta } from '../state/mfa-ops.ts';
import { formParams, required } from './form.ts';
import { noStore } from './token.ts';

export const REVOKE_PATH = '/revoke';

const MAX_TOKEN_CHARS = 8 * 1024;

export function registerRevoke(app: FastifyInstance, ctx: OAuthContext): void {
  app.post(REVOKE_PATH, async (req, reply) => {
    noStore(reply);
    const params = formParams(req);
    const client = await authenticateClient(ctx, req, params, { allowPublic: true, endpointUrl: ctx.config.issuer + REVOKE_PATH });
    const token = required(params, 'token');
    await revoke(ctx, client.client_id, token, requestMeta(req));
    return reply.code(200).send();
  });
}

export async function revoke(ctx: OAuthContext, clientId: string, token: string, request: RequestMeta = { ip: null }): Promise<void> {
  if (token.length > MAX_TOKEN_CHARS) return;
  if (looksLikeJwt(token)) {
    // An expired or foreign token is not worth a write: it already is inactive (or not ours to touch).
    const c = decodeAccessToken(ctx, token);
    if (c && c.client_id === clientId) must(await tokens['at.revoke'](ctx, { jti: c.jti, exp: c.exp * 1000, meta: { ...request, sub: c.sub === clientId ? null : c.sub, clientId } }), 'tokens.at.revoke');
    return;
  }
  // Apply checks the family belongs to clientId and changes nothing otherwise.
  must(await tokens['rt.revoke'](ctx, { hash: tokenHash(token), clientId, meta: { ...request, clientId } }), 'tokens.rt.revoke');
}
