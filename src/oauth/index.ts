// The OAuth 2.0 / OpenID Connect server: every endpoint, registered on the node's HTTP app in an
// encapsulated fastify scope (its own body parser and its own error model, RFC 6749 §5.2).
//
// Token side (src/oauth/token-side.ts): /token and its grants, /introspect, /revoke,
// /device_authorization, /userinfo, metadata and /jwks.json.
// Browser side (src/oauth/browser-side.ts): /authorize, login and consent pages, the device
// verification page, logout.
import type { FastifyError, FastifyInstance, FastifyReply } from 'fastify';
import type { NodeApi } from '../node/api.ts';
import type { Logger } from 'pino';
import { CryptoNotReady, CryptoRuntime } from '../crypto/runtime.ts';
import type { MasterKeyRing } from '../crypto/seal.ts';
import type { OAuthConfig } from './config.ts';
import { stateFailure, type OAuthContext, type ReadTables } from './context.ts';
import { InvalidRequest, OAuthError, ServerError, TemporarilyUnavailable } from './errors.ts';
import { registerFormParser } from './form.ts';
import { registerTokenSide } from './token-side.ts';
import { registerBrowserSide } from './browser-side.ts';

export interface OAuthDeps {
  readonly node: NodeApi;
  readonly cache: ReadTables;
  readonly master: MasterKeyRing;
  readonly config: OAuthConfig;
  readonly logger: Logger;
  readonly requestTimeoutMs: number;
  readonly now?: () => number;
}

/** Register every OAuth endpoint on `app`; returns the context they share. */
export function registerOAuth(app: FastifyInstance, deps: OAuthDeps): OAuthContext {
  const ctx: OAuthContext = {
    node: deps.node,
    cache: deps.cache,
    crypto: new CryptoRuntime(deps.cache, deps.master),
    config: deps.config,
    log: deps.logger,
    now: deps.now ?? Date.now,
    requestTimeoutMs: deps.requestTimeoutMs,
  };
  void app.register(async (scope) => {
    registerFormParser(scope, deps.config.formBodyLimitBytes);
    scope.setErrorHandler((err: FastifyError | Error, req, reply) => {
      const e = toOAuthError(err);
      if (e.status >= 500) req.log.error({ err }, 'OAuth request failed');
      return sendOAuthError(reply, e);
    });
    registerTokenSide(scope, ctx);
    registerBrowserSide(scope, ctx);
  });
  return ctx;
}

/** Any error thrown by an OAuth handler, as the OAuthError to answer with. */
export function toOAuthError(err: unknown): OAuthError {
  if (err instanceof OAuthError) return err;
  const state = stateFailure(err);
  if (state) return state;
  if (err instanceof CryptoNotReady) return new TemporarilyUnavailable('the cluster has not finished creating its keys; retry');
  const fe = err as Partial<FastifyError>;
  if (fe.code === 'FST_ERR_CTP_BODY_TOO_LARGE') return new InvalidRequest('the request body is too large', 413);
  if (fe.code === 'FST_ERR_CTP_INVALID_MEDIA_TYPE') return new InvalidRequest('unsupported content type', 415);
  if (typeof fe.statusCode === 'number' && fe.statusCode >= 400 && fe.statusCode < 500) return new InvalidRequest(fe.message ?? 'invalid request', fe.statusCode);
  return new ServerError('internal error');
}

/**
 * RFC 6749 §5.2 error response: JSON body, the error's headers (WWW-Authenticate, Retry-After),
 * and §5.1's Cache-Control: no-store / Pragma: no-cache (token-endpoint responses carry secrets or
 * describe them; no cache may keep them).
 */
export function sendOAuthError(reply: FastifyReply, e: OAuthError): FastifyReply {
  for (const [k, v] of Object.entries(e.headers)) void reply.header(k, v);
  return reply.code(e.status).header('cache-control', 'no-store').header('pragma', 'no-cache').send(e.toJSON());
}
