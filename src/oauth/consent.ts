// The consent prompt's form: POST /consent with the sealed interaction, the session's CSRF value
// and the decision. Allow continues the interaction (the code, or a later prompt); Deny sends the
// client access_denied (RFC 6749 §4.1.2.1: "The resource owner or authorization server denied the
// request").
//
// CSRF: the form carries the session's csrf secret, compared in constant time with the one
// sealed in the session record (a cross-site page cannot read it); the interaction is also bound
// to this browser by its cookie (interaction.ts).
import type { FastifyReply, FastifyRequest } from 'fastify';
import { safeEqual } from '../crypto/tokens.ts';
import type { OAuthContext } from './context.ts';
import { AccessDenied } from './errors.ts';
import { formParams } from './form.ts';
import { PageError } from './pages.ts';
import { openInteraction, resume, sendAuthorizationError } from './interaction.ts';
import { loadActiveSession } from './session.ts';

export async function handleConsent(ctx: OAuthContext, req: FastifyRequest, reply: FastifyReply): Promise<FastifyReply> {
  const p = formParams(req);
  const i = openInteraction(ctx, req, p.interaction);
  if (i.kind !== 'authorize') throw new PageError(400, 'Invalid request', 'This form does not belong to an authorization request.');
  const active = await loadActiveSession(ctx, req);
  // The session ended (expired, signed out in another tab) since the page was shown: sign in again.
  if (active === null) return resume(ctx, reply, i, null, true);
  if (!safeEqual(p.csrf ?? '', active.session.payload.csrf)) {
    throw new PageError(403, 'Request refused', 'This form was not sent from a page of this server, or your sign-in changed since it was shown. Go back to the application and start again.');
  }
  if (p.decision === 'deny') return sendAuthorizationError(ctx, reply, i.authz, new AccessDenied('the user denied the request'), true);
  if (p.decision !== 'allow') throw new PageError(400, 'Invalid request', 'The form carries no decision.');
  return resume(ctx, reply, { ...i, consented: true }, active, true);
}
