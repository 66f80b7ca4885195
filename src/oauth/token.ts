// POST /token (RFC 6749 §3.2, §5): parse the form, pick the grant by grant_type, authenticate
// the client, check it may use the grant, and let the grant answer. Grants are looked up in a map,
// one file each (node-oidc-provider lib/actions/token.js and lib/actions/grants/).
import type { FastifyInstance, FastifyReply } from 'fastify';
import { authenticateClient } from './client-auth.ts';
import { checkGrantType } from './clients.ts';
import type { OAuthContext } from './context.ts';
import { InvalidRequest, UnsupportedGrantType } from './errors.ts';
import { formParams } from './form.ts';
import { authorizationCodeGrant } from './grants/authorization-code.ts';
import { clientCredentialsGrant } from './grants/client-credentials.ts';
import { deviceCodeGrant } from './grants/device-code.ts';
import { refreshTokenGrant } from './grants/refresh-token.ts';
import type { GrantHandler } from './grants/grant.ts';

export const TOKEN_PATH = '/token';

export type { GrantHandler } from './grants/grant.ts';

export const GRANTS: ReadonlyMap<string, GrantHandler> = new Map(
  [authorizationCodeGrant, clientCredentialsGrant, refreshTokenGrant, deviceCodeGrant].map((g) => [g.grantType, g]),
);

/** RFC 6749 §5.1: "The authorization server MUST include the HTTP Cache-Control response header field with a value of no-store … as well as the Pragma response header field with a value of no-cache." */
export function noStore(reply: FastifyReply): FastifyReply {
  return reply.header('cache-control', 'no-store').header('pragma', 'no-cache');
}

export function registerToken(app: FastifyInstance, ctx: OAuthContext): void {
  app.post(TOKEN_PATH, async (req, reply) => {
    noStore(reply);
    const params = formParams(req);
    const grantType = params.grant_type;
    if (grantType === undefined) throw new InvalidRequest('missing required parameter grant_type');
    const grant = GRANTS.get(grantType);
    if (!grant) throw new UnsupportedGrantType(`grant_type ${grantType} is not supported`);
    const client = await authenticateClient(ctx, req, params, { allowPublic: true, endpointUrl: ctx.config.issuer + TOKEN_PATH });
    checkGrantType(client, grant.grantType);
    const body = await grant.handler(ctx, req, client, params);
    return reply.code(200).send(body);
  });
}
