// The sign-in page with its passkey option. Every place that shows the sign-in page (the login
// prompt of an authorization request, the device page's sign-in, a failed attempt shown again)
// goes through signInPage, so the page always carries a fresh passkey challenge when passkeys can
// work here.
//
// The passkey option is a discoverable-credential request (W3C WebAuthn L2 §5.1.4 / §6.4 "client-
// side discoverable"): options without allowCredentials, userVerification 'required' (a passkey
// sign-in is the whole authentication: possession plus user verification). Its challenge is made
// the way the second-factor page makes one (src/mfa/service.ts webauthnAuthenticationOptions: 256
// random bits, stored in the replicated `mfa` domain for WEBAUTHN_CHALLENGE_TTL_MS, single use,
// bound to no user) and consumed by POST /login/passkey (passkey-login.ts). The cost: one
// replicated write per sign-in page shown (the challenge record, swept after it expires).
//
// This module must not import interaction.ts (interaction.ts renders the login prompt with it).
import type { FastifyReply } from 'fastify';
import { webauthnAuthenticationOptions } from '../mfa/service.ts';
import { webauthnUnavailable } from '../mfa/config.ts';
import type { MfaConfig } from '../mfa/config.ts';
import { mfaConfigOf } from './config.ts';
import type { OAuthContext } from './context.ts';
import { passkeySignInSection } from './mfa-pages.ts';
import { loginPage } from './pages.ts';
import type { LoginPageArgs } from './pages.ts';

/** The passkey sign-in route, issuer-relative (registered by browser-side.ts, handled by passkey-login.ts). */
export const PASSKEY_LOGIN_PATH = '/login/passkey';

/**
 * Whether a browser can run a WebAuthn ceremony for our RP here (src/mfa/config.ts
 * webauthnUnavailable: a domain RP ID and a secure-context origin). Without that the button could
 * only fail, and showing it would cost a challenge write for nothing.
 */
export function passkeysAvailable(cfg: MfaConfig): boolean {
  return webauthnUnavailable(cfg) === null;
}

function issuerPath(ctx: OAuthContext, path: string): string {
  return new URL(ctx.config.issuer).pathname.replace(/\/$/, '') + path;
}

/** The sign-in page; with the passkey option (and its new challenge) when passkeys are available. */
export async function signInPage(ctx: OAuthContext, reply: FastifyReply, a: Omit<LoginPageArgs, 'passkey'>): Promise<FastifyReply> {
  const cfg = mfaConfigOf(ctx.config);
  if (!passkeysAvailable(cfg)) return loginPage(reply, a);
  const options = await webauthnAuthenticationOptions(ctx, cfg, null);
  const passkey = passkeySignInSection({ action: issuerPath(ctx, PASSKEY_LOGIN_PATH), interaction: a.interaction, options, path: (p) => issuerPath(ctx, p) });
  return loginPage(reply, { ...a, passkey });
}
