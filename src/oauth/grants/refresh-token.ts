// RFC 6749 §6 refresh token grant with rotation (RFC 9700 §4.14.2): each use returns a new refresh
// token; a rotated token presented again revokes its whole family, except within a short grace
// window where the same response is returned (a client that lost the answer retries). Apply
// decides rotated / grace / reused (tokens op rt.rotate); the worker prepares the full response
// first so apply can keep it (sealed) for the grace window.
import { tokenHash } from '../../crypto/tokens.ts';
import { tokens } from '../../state/tokens.ts';
import { must } from '../../state/contract.ts';
import { requestMeta } from '../context.ts';
import { InvalidGrant, InvalidScope } from '../errors.ts';
import { required, scopeList } from '../form.ts';
import { issueAccessToken, issueIdToken, prepareRefreshToken, tokenResponse } from '../issue.ts';
import type { GraceResponse, RefreshPayload } from '../records.ts';
import type { GrantHandler } from './grant.ts';

export const refreshTokenGrant: GrantHandler = {
  grantType: 'refresh_token',
  async handler(ctx, req, client, params) {
    const token = required(params, 'refresh_token');
    const hash = tokenHash(token);
    // The payload is immutable, so this node's applied state is good enough to read it; a token
    // issued on another node a moment ago may not be here yet, hence the linearizable fallback.
    // Whether it is still usable is decided by rt.rotate, not by this read.
    const view =
      must(await tokens.read['rt.get'](ctx, { hash }, 'local'), 'tokens.rt.get') ?? must(await tokens.read['rt.get'](ctx, { hash }), 'tokens.rt.get');
    if (!view) throw new InvalidGrant('the refresh token is invalid');
    const p = ctx.crypto.sealer().openValue<RefreshPayload>(view.sealed, `rt:${hash}`);
    // §6: "ensure that the refresh token was issued to the authenticated client".
    if (p.clientId !== client.client_id || view.clientId !== client.client_id) throw new InvalidGrant('the refresh token was issued to another client');
    // Revocation and expiry never undo themselves, so a stale local view saying so is true.
    if (view.familyRevoked) throw new InvalidGrant('the refresh token has been revoked');
    if (view.exp <= ctx.now()) throw new InvalidGrant('the refresh token has expired');
    const requested = scopeList(params.scope);
    // §6: "The requested scope MUST NOT include any scope not originally granted by the resource owner, and if omitted is treated as equal to the scope originally granted".
    for (const s of requested) {
      if (!p.scope.includes(s)) throw new InvalidScope(`scope ${s} was not granted originally`);
    }
    const scope = requested.length > 0 ? requested : [...p.scope];
    const openid = p.openid && scope.includes('openid');
    const access = issueAccessToken(ctx, { sub: p.auth.sub, clientId: client.client_id, audience: p.audience, scope, auth: p.auth });
    // The successor carries the narrowed scope: a later refresh cannot widen it back (§6 "originally granted" is this grant's).
    const next = prepareRefreshToken(ctx, { ...p, scope, openid }, view.familyExp);
    // OIDC Core §12.2: an ID token may be returned on refresh; auth_time stays the original authentication's; no nonce.
    const idToken = openid ? issueIdToken(ctx, { auth: p.auth, clientId: client.client_id, nonce: null, accessToken: access.token }) : null;
    const body = tokenResponse({ access, scope, refreshToken: next.token, idToken });
    const graceAad = `grace:${hash}`;
    const response = ctx.crypto.sealer().sealValue({ body } satisfies GraceResponse, graceAad);
    const meta = { ...requestMeta(req), sub: p.auth.sub, clientId: client.client_id };
    // ALREADY_EXISTS (a successor hash that exists: 256 random bits) is left to must(): a server error.
    const r = must(await tokens['rt.rotate'](ctx, { hash, next: next.prepared, response, at: access.record, graceMs: ctx.config.refreshGraceMs, meta }), 'tokens.rt.rotate');
    if (r.ok) {
      if (r.outcome === 'rotated') return body;
      // Within the grace window: the very response of the first rotation, so the client ends up with one live pair.
      return ctx.crypto.sealer().openValue<GraceResponse>(r.response, graceAad).body;
    }
    switch (r.reason) {
      case 'reused':
        throw new InvalidGrant('the refresh token was already used; every token of this grant is revoked');
      case 'expired':
        throw new InvalidGrant('the refresh token has expired');
      case 'revoked':
        throw new InvalidGrant('the refresh token has been revoked');
      case 'unknown':
        throw new InvalidGrant('the refresh token is invalid');
    }
  },
};
