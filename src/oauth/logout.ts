// Logout (OpenID Connect RP-Initiated Logout 1.0, minimal): GET /logout asks the user to confirm
// (§2: the OP SHOULD ask whether the user wants to log out; a GET must not log out by itself, or
// any page could sign the user out with an <img>), POST /logout with the session's CSRF value
// deletes the session record everywhere and clears the cookie.
//
// Not supported yet: post_logout_redirect_uri and state (the user stays on our "signed out" page),
// id_token_hint (ignored), front- and back-channel logout notifications to clients.
import type { FastifyReply, FastifyRequest } from 'fastify';
import { safeEqual } from '../crypto/tokens.ts';
import { users } from '../state/users.ts';
import { must } from '../state/contract.ts';
import type { OAuthContext } from './context.ts';
import { formParams } from './form.ts';
import { PageError, logoutConfirmPage, messagePage } from './pages.ts';
import { endpointPath } from './interaction.ts';
import { SESSION_COOKIE, clearCookie, endSession, loadSession, userLabel } from './session.ts';

export async function handleLogoutGet(ctx: OAuthContext, req: FastifyRequest, reply: FastifyReply): Promise<FastifyReply> {
  const session = await loadSession(ctx, req);
  if (session === null) {
    clearCookie(ctx, reply, SESSION_COOKIE);
    return messagePage(reply, 'Signed out', 'You are not signed in.');
  }
  const user = must(await users.read.get(ctx, { sub: session.payload.auth.sub }, 'local'), 'users.get');
  return logoutConfirmPage(reply, endpointPath(ctx, '/logout'), session.payload.csrf, user === null ? session.payload.auth.sub : userLabel(user));
}

export async function handleLogoutPost(ctx: OAuthContext, req: FastifyRequest, reply: FastifyReply): Promise<FastifyReply> {
  const p = formParams(req);
  const session = await loadSession(ctx, req);
  if (session !== null && !safeEqual(p.csrf ?? '', session.payload.csrf)) {
    throw new PageError(403, 'Request refused', 'This form was not sent from a page of this server. Open the sign-out page again.');
  }
  await endSession(ctx, reply, session);
  return messagePage(reply, 'Signed out', 'You are signed out. You can close this page.');
}
