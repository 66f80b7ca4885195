// The login prompt's form: POST /login with the sealed interaction, username and password.
//
// One generic message for every failure ("Invalid username or password"): unknown user, wrong
// password and disabled account look the same, and take the same time (an unknown username runs
// verifyDummy, one scrypt like a real check), so the page does not tell which usernames exist.
// On success a login session starts (session.ts) and the interaction continues: the next prompt's
// page, or the code; a device-page sign-in returns to /device.
//
// Not here yet: throttling of password guesses (per account and per client address) comes with
// the MFA issue, as does the brute-force limit on device user codes.
import type { FastifyReply, FastifyRequest } from 'fastify';
import { verifyDummy, verifyPassword, MAX_PASSWORD_CHARS } from '../crypto/password.ts';
import type { UserRecord } from '../state/oauth-ops.ts';
import { MAX_USERNAME_CHARS } from '../state/validate.ts';
import { nodeRead } from './context.ts';
import type { OAuthContext } from './context.ts';
import { formParams } from './form.ts';
import type { Authentication } from './records.ts';
import { cspSource, loginPage } from './pages.ts';
import { endpointPath, interactionClient, openInteraction, resume } from './interaction.ts';
import type { Interaction } from './interaction.ts';
import { ACR_PASSWORD, createSession, loadSession } from './session.ts';

export const LOGIN_FAILED = 'Invalid username or password';

// eslint-disable-next-line no-control-regex
const CONTROL_RE = /[\u0000-\u001f\u007f-\u009f]/;

export async function handleLogin(ctx: OAuthContext, req: FastifyRequest, reply: FastifyReply): Promise<FastifyReply> {
  const p = formParams(req);
  const i = openInteraction(ctx, req, p.interaction);
  const username = (p.username ?? '').normalize('NFKC');
  const user = await authenticate(ctx, username, p.password ?? '');
  if (user === null) return loginAgain(ctx, reply, i, p.interaction!, username);

  const auth: Authentication = { sub: user.sub, authTime: Math.floor(ctx.now() / 1000), acr: ACR_PASSWORD, amr: ['pwd'] };
  const session = await createSession(ctx, reply, auth, await loadSession(ctx, req));
  if (i.kind === 'device') {
    const q = i.userCode === null ? '' : `?user_code=${encodeURIComponent(i.userCode)}`;
    return reply.code(303).header('location', endpointPath(ctx, '/device') + q).header('cache-control', 'no-store').send();
  }
  return resume(ctx, reply, { ...i, loginSession: session.hash }, { session, user }, true);
}

/**
 * The user whose password this is, or null. Usernames are NFKC-normalised like at creation and
 * compared case-insensitively by the users domain.
 */
export async function authenticate(ctx: OAuthContext, username: string, password: string): Promise<UserRecord | null> {
  const wellFormed = username.length > 0 && username.length <= MAX_USERNAME_CHARS && !CONTROL_RE.test(username) && password.length <= MAX_PASSWORD_CHARS;
  // Linearizable: a user created or disabled a moment ago on another node counts at once.
  const user = wellFormed ? await nodeRead<UserRecord | null>(ctx, 'users', 'byUsername', { username }) : null;
  if (user === null) return verifyDummy(ctx.config.passwordScrypt).then(() => null);
  const ok = await verifyPassword(password, user.password_hash);
  return ok && !user.disabled ? user : null;
}

function loginAgain(ctx: OAuthContext, reply: FastifyReply, i: Interaction, sealed: string, username: string): FastifyReply {
  const client = i.kind === 'authorize' ? interactionClient(ctx, i) : null;
  const formAction = i.kind === 'authorize' ? cspSource(i.authz.redirectUri) : null;
  return loginPage(reply, {
    action: endpointPath(ctx, '/login'),
    interaction: sealed,
    client,
    username,
    error: LOGIN_FAILED,
    formActions: formAction === null ? [] : [formAction],
    status: 400,
  });
}
