// RFC 6749 §4.1.3 authorization code grant, with PKCE (RFC 7636 §4.5, §4.6). The worker checks
// what only it can see (the sealed payload: client, redirect URI, PKCE); apply decides single use
// (tokens op code.redeem), so two nodes redeeming one code at once cannot both succeed.
import { tokenHash } from '../../crypto/tokens.ts';
import { tokens } from '../../state/tokens.ts';
import { must } from '../../state/contract.ts';
import { requestMeta } from '../context.ts';
import { InvalidGrant, InvalidRequest } from '../errors.ts';
import { required } from '../form.ts';
import { prepareUserGrant } from '../issue.ts';
import { verifyPkce } from '../pkce.ts';
import type { CodePayload } from '../records.ts';
import type { GrantHandler } from './grant.ts';

export const authorizationCodeGrant: GrantHandler = {
  grantType: 'authorization_code',
  async handler(ctx, req, client, params) {
    const code = required(params, 'code');
    const redirectUri = params.redirect_uri;
    const verifier = params.code_verifier;
    const hash = tokenHash(code);
    // Linearizable: the code may have been created on another node a moment ago.
    const rec = must(await tokens.read['code.get'](ctx, { hash }), 'tokens.code.get');
    if (!rec) throw new InvalidGrant('the authorization code is invalid');
    const p = ctx.crypto.sealer().openValue<CodePayload>(rec.sealed, `code:${hash}`);
    // §4.1.3: "ensure that the authorization code was issued to the authenticated confidential client, or if the client is public, ensure that the code was issued to client_id in the request".
    if (p.clientId !== client.client_id) throw new InvalidGrant('the authorization code was issued to another client');
    // §4.1.3: redirect_uri is REQUIRED if it was in the authorization request, "and their values MUST be identical".
    if (p.redirectUriInRequest !== false) {
      if (redirectUri === undefined) throw new InvalidRequest('missing required parameter redirect_uri (it was in the authorization request)');
      if (p.redirectUri !== redirectUri) throw new InvalidGrant('redirect_uri does not match the one of the authorization request');
    } else if (redirectUri !== undefined && redirectUri !== p.redirectUri) {
      throw new InvalidGrant('redirect_uri does not match the one the authorization response was sent to');
    }
    if (p.codeChallenge !== null) {
      // RFC 7636 §4.6; §4.4.1 (as amended by RFC 9700 §2.1.1): a code bound to a challenge is useless without the verifier.
      if (verifier === undefined) throw new InvalidGrant('code_verifier is required: the authorization request used PKCE');
      if (!verifyPkce(verifier, p.codeChallenge, p.codeChallengeMethod ?? 'plain')) throw new InvalidGrant('code_verifier does not match the code_challenge');
    } else if (verifier !== undefined) {
      // RFC 9700 §4.8.2: a verifier for a code issued without a challenge is a PKCE downgrade attempt.
      throw new InvalidGrant('code_verifier sent but the authorization request had no code_challenge');
    }
    // Apply re-checks expiry with leader time; this spares a write for the common stale case.
    if (rec.exp <= ctx.now() && rec.used === null) throw new InvalidGrant('the authorization code has expired');
    const g = prepareUserGrant(ctx, client, { auth: p.auth, scope: p.scope, audience: p.audience, nonce: p.nonce });
    const meta = { ...requestMeta(req), sub: p.auth.sub, clientId: client.client_id };
    const r = must(await tokens['code.redeem'](ctx, { hash, family: g.family, rt: g.rt, at: g.at, meta }), 'tokens.code.redeem');
    if (r.ok) return g.body;
    switch (r.reason) {
      case 'reused':
        // §4.1.2: "If an authorization code is used more than once, the authorization server MUST deny the request and SHOULD revoke … all tokens previously issued based on that authorization code" — apply has revoked them.
        throw new InvalidGrant('the authorization code was already used; the tokens issued from it are revoked');
      case 'expired':
        throw new InvalidGrant('the authorization code has expired');
      default:
        throw new InvalidGrant('the authorization code is invalid');
    }
  },
};
