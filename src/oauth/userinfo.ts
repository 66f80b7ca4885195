// GET and POST /userinfo (OIDC Core §5.3), a protected resource in RFC 6750's sense: the access
// token comes in the Authorization header (§2.1) or, with POST, in the form body (§2.2) — never in
// the query (§2.3 is discouraged: URLs end up in logs and Referer headers; we refuse it). Exactly
// one of those (§2: "Clients MUST NOT use more than one method"). Errors per §3.1 with
// WWW-Authenticate. Claims by scope (OIDC Core §5.4): profile → name, email → email and
// email_verified; `sub` always. A claim the user has no value for is left out (§5.3.2).
import type { FastifyInstance, FastifyReply, FastifyRequest } from 'fastify';
import { claimScopes, verifyAccessToken } from './access-token.ts';
import { users } from '../state/users.ts';
import { must } from '../state/contract.ts';
import type { OAuthContext } from './context.ts';
import { InsufficientScope, InvalidRequest, InvalidToken, bearerChallenge } from './errors.ts';
import { FORM_CONTENT_TYPE, formParams, queryParams } from './form.ts';

export const USERINFO_PATH = '/userinfo';

/** RFC 6750 §2.1 b64token. */
const BEARER_RE = /^Bearer +([A-Za-z0-9\-._~+/]+=*) *$/i;

export function registerUserinfo(app: FastifyInstance, ctx: OAuthContext): void {
  const handler = async (req: FastifyRequest, reply: FastifyReply): Promise<FastifyReply> => {
    reply.header('cache-control', 'no-store').header('pragma', 'no-cache');
    const token = bearerToken(req);
    // §3.1: "If the request lacks any authentication information …, the resource server SHOULD NOT include an error code".
    if (token === null) return reply.code(401).header('www-authenticate', bearerChallenge()).send();
    const claims = await verifyAccessToken(ctx, token);
    if (!claims) throw new InvalidToken('the access token is invalid, expired or revoked');
    const scopes = claimScopes(claims);
    if (!scopes.includes('openid')) throw new InsufficientScope('the access token was not granted the openid scope', 'openid');
    // The user record changes rarely; this node's applied state is fresh enough for profile claims.
    const user = must(await users.read.get(ctx, { sub: claims.sub }, 'local'), 'users.get');
    if (!user || user.disabled) throw new InvalidToken('the access token is invalid, expired or revoked');
    const out: Record<string, unknown> = { sub: user.sub };
    if (scopes.includes('profile') && user.name !== null) out.name = user.name;
    if (scopes.includes('email') && user.email !== null) {
      out.email = user.email;
      out.email_verified = user.email_verified;
    }
    return reply.code(200).send(out);
  };
  app.get(USERINFO_PATH, handler);
  app.post(USERINFO_PATH, handler);
}

/** The token from the header or (POST form) body; null when none was sent. */
function bearerToken(req: FastifyRequest): string | null {
  if (queryParams(req).access_token !== undefined) throw bearerInvalidRequest('the access token must not be sent in the URL query (RFC 6750 §2.3); use the Authorization header');
  const found: string[] = [];
  const header = req.headers.authorization;
  if (header !== undefined) {
    const m = BEARER_RE.exec(header);
    if (!m) throw bearerInvalidRequest('the Authorization header must be "Bearer <token>"');
    found.push(m[1]!);
  }
  const ct = (req.headers['content-type'] ?? '').split(';')[0]!.trim().toLowerCase();
  // §2.2: the body method only with a form-encoded POST body.
  if (req.method === 'POST' && ct === FORM_CONTENT_TYPE) {
    const body = formParams(req).access_token;
    if (body !== undefined) found.push(body);
  }
  if (found.length > 1) throw bearerInvalidRequest('the access token was sent by more than one method (RFC 6750 §2)');
  return found[0] ?? null;
}

/** RFC 6750 §3.1 invalid_request: 400, with the Bearer challenge naming the error like every other resource-server error. */
function bearerInvalidRequest(description: string): InvalidRequest {
  const e = new InvalidRequest(description);
  e.headers['www-authenticate'] = `${bearerChallenge()}, error="invalid_request", error_description="${description.replace(/["\\\r\n]/g, ' ')}"`;
  return e;
}
