// RFC 6749 §4.4 client credentials grant: the client acts on its own behalf. The fast path of the
// server: no read and no write of its own, only a signature (the token is a self-contained JWT,
// RFC 9068; nothing needs remembering until someone revokes it) — and its audit record, which the
// worker's group commit (src/audit/batcher.ts) shares with concurrent requests. The response is
// sent only once that record is committed.
import { InvalidScope, UnauthorizedClient } from '../errors.ts';
import { resolveScope } from '../clients.ts';
import { scopeList } from '../form.ts';
import { issueAccessToken, tokenResponse } from '../issue.ts';
import type { GrantHandler } from './grant.ts';
import { auditAppend } from '../../audit/batcher.ts';
import { requestMeta } from '../context.ts';

export const clientCredentialsGrant: GrantHandler = {
  grantType: 'client_credentials',
  async handler(ctx, req, client, params) {
    // §4.4: "The client credentials grant type MUST only be used by confidential clients."
    if (client.token_endpoint_auth_method === 'none') throw new UnauthorizedClient('the client_credentials grant is for confidential clients only');
    const scope = resolveScope(ctx, client, scopeList(params.scope), false);
    // There is no end user: an ID token (OIDC Core §2) or a refresh token (§4.4.3 "A refresh token SHOULD NOT be included") would have no one to describe.
    if (scope.includes('openid')) throw new InvalidScope('the openid scope needs an end user; it is not allowed with client_credentials');
    const access = issueAccessToken(ctx, {
      sub: client.client_id,
      clientId: client.client_id,
      audience: client.audience ?? ctx.config.issuer,
      scope,
      auth: null,
    });
    await auditAppend(ctx, {
      type: 'token.issued',
      sub: null,
      clientId: client.client_id,
      ip: requestMeta(req).ip,
      details: { grant: 'client_credentials', jti: access.record.jti, scope: scope.join(' ') },
    });
    return tokenResponse({ access, scope, refreshToken: null, idToken: null });
  },
};
