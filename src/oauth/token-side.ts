// The token side of the OAuth server: every endpoint a client (not a browser) calls, and the
// issuer's root URL (a page for a browser, links as JSON for a client). Registered in
// the OAuth scope by src/oauth/index.ts, which provides the form parser and the error model.
import type { FastifyInstance } from 'fastify';
import type { OAuthContext } from './context.ts';
import { registerDeviceAuthorization } from './device-authorization.ts';
import { registerDiscovery } from './discovery.ts';
import { registerIntrospect } from './introspect.ts';
import { registerJwks } from './jwks.ts';
import { registerRoot } from './root.ts';
import { registerRevoke } from './revoke.ts';
import { registerToken } from './token.ts';
import { registerUserinfo } from './userinfo.ts';

export function registerTokenSide(app: FastifyInstance, ctx: OAuthContext): void {
  registerToken(app, ctx);
  registerIntrospect(app, ctx);
  registerRevoke(app, ctx);
  registerDeviceAuthorization(app, ctx);
  registerUserinfo(app, ctx);
  registerDiscovery(app, ctx);
  registerJwks(app, ctx);
  registerRoot(app, ctx);
}
