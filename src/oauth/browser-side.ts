// The browser side of the OAuth server: the endpoints a user's browser visits.
//
//   GET  /authorize, POST /authorize   authorization request (authorize.ts)
//   GET  /login                        only explains that a sign-in starts at the application
//   POST /login                        login form (login.ts)
//   POST /login/passkey                passkey sign-in without a username (passkey-login.ts)
//   POST /consent                      consent form (consent.ts)
//   GET  /device, POST /device         device verification page, RFC 8628 §3.3 (device-verify.ts)
//   GET  /logout, POST /logout         sign out (logout.ts)
//   POST /mfa/…, GET /mfa/assets/…     the MFA prompt's forms and scripts (mfa.ts)
//
// Errors here end on an HTML page (pages.ts), never the JSON of the token side: a browser shows
// it to a person. Errors of an authorization request whose client and redirect URI are valid are
// redirected to the client instead (authorize.ts, RFC 6749 §4.1.2.1).
import type { FastifyError, FastifyInstance, FastifyReply, FastifyRequest } from 'fastify';
import { CryptoNotReady } from '../crypto/runtime.ts';
import { stateFailure } from './context.ts';
import type { OAuthContext } from './context.ts';
import { OAuthError } from './errors.ts';
import { PageError, errorPage, messagePage } from './pages.ts';
import { handleAuthorize } from './authorize.ts';
import { handleLogin } from './login.ts';
import { PASSKEY_LOGIN_PATH } from './login-page.ts';
import { handlePasskeyLogin } from './passkey-login.ts';
import { handleConsent } from './consent.ts';
import { handleDeviceGet, handleDevicePost } from './device-verify.ts';
import { handleLogoutGet, handleLogoutPost } from './logout.ts';
import { MFA_ROUTES } from './mfa.ts';

type Handler = (ctx: OAuthContext, req: FastifyRequest, reply: FastifyReply) => Promise<FastifyReply>;

export function registerBrowserSide(app: FastifyInstance, ctx: OAuthContext): void {
  const errorHandler = (thrown: FastifyError | Error, req: FastifyRequest, reply: FastifyReply): FastifyReply => {
    const err = stateFailure(thrown) ?? thrown;
    if (err instanceof PageError) return errorPage(reply, err.status, err.title, err.message, err.code);
    if (err instanceof OAuthError) {
      for (const [k, v] of Object.entries(err.headers)) void reply.header(k, v);
      if (err.status >= 500) req.log.error({ err }, 'browser request failed');
      return errorPage(reply, err.status, err.status >= 500 ? 'Service unavailable' : 'Invalid request', err.description, err.error);
    }
    if (err instanceof CryptoNotReady) {
      void reply.header('retry-after', '1');
      return errorPage(reply, 503, 'Service unavailable', 'The server is starting up. Try again in a moment.');
    }
    const fe = err as Partial<FastifyError>;
    if (fe.code === 'FST_ERR_CTP_BODY_TOO_LARGE') return errorPage(reply, 413, 'Invalid request', 'The form is too large.');
    if (fe.code === 'FST_ERR_CTP_INVALID_MEDIA_TYPE') return errorPage(reply, 415, 'Invalid request', 'The form has an unsupported content type.');
    if (typeof fe.statusCode === 'number' && fe.statusCode >= 400 && fe.statusCode < 500) return errorPage(reply, fe.statusCode, 'Invalid request', 'The request is malformed.');
    req.log.error({ err }, 'browser request failed');
    return errorPage(reply, 500, 'Something went wrong', 'The server could not complete the request. Try again.');
  };
  const route = (method: 'GET' | 'POST', url: string, h: Handler): void => {
    // No automatic HEAD: a HEAD /authorize with a session would issue (and write) a code nobody receives.
    app.route({ method, url, errorHandler, exposeHeadRoute: false, handler: (req, reply) => h(ctx, req, reply) });
  };
  route('GET', '/authorize', handleAuthorize);
  route('POST', '/authorize', handleAuthorize);
  route('GET', '/login', async (_ctx, _req, reply) => messagePage(reply, 'Sign in', 'A sign-in starts at the application you want to use: go back to it and start again.', 400));
  route('POST', '/login', handleLogin);
  route('POST', PASSKEY_LOGIN_PATH, handlePasskeyLogin);
  route('POST', '/consent', handleConsent);
  route('GET', '/device', handleDeviceGet);
  route('POST', '/device', handleDevicePost);
  route('GET', '/logout', handleLogoutGet);
  route('POST', '/logout', handleLogoutPost);
  for (const [method, url, h] of MFA_ROUTES) route(method, url, h);
}
