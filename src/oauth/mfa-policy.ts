// The MFA prompt of the login flow (between 'login' and 'consent', interaction.ts PROMPTS): which
// authentication level a request needs, whether the session has it, and which page gets it.
//
// Levels (acr values, docs/mfa.md): 0 = ACR_PASSWORD, 1 = ACR_MFA (password + TOTP or a recovery
// code), 2 = ACR_PHR (password + WebAuthn: phishing-resistant, the credential is bound to our RP
// ID). A request needs the highest of:
//  - 1 when the client has require_mfa, a requested scope is in mfa.requiredScopes, the user's
//    policy requires MFA ('policy.set'), or the user has enrolled a factor (a factor nobody is
//    asked for protects nothing);
//  - what acr_values asks for (OIDC Core §3.1.2.1): the lowest of our levels it lists, since the
//    client accepts any of them ("in order of preference"); values we do not know are ignored.
// Step-up: a session below the needed level re-does only the second factor, never the password;
// max_age (OIDC Core §3.1.2.1 "actively re-authenticate") on a session that already has a second
// factor is also met by that factor alone (LOGIN_PROMPT's max_age check defers to this prompt).
//
// This module must not import interaction.ts at run time (interaction.ts builds PROMPTS from
// MFA_PROMPT when it loads): types only.
import type { FastifyReply } from 'fastify';
import { mfaStatus, webauthnAuthenticationOptions, webauthnRegistrationOptions } from '../mfa/service.ts';
import type { MfaStatus } from '../mfa/service.ts';
import { webauthnUnavailable } from '../mfa/config.ts';
import type { ClientRecord, UserRecord } from '../state/oauth-ops.ts';
import { mfaConfigOf } from './config.ts';
import type { OAuthContext } from './context.ts';
import { LoginRequired, ServerError } from './errors.ts';
import type { InteractionPrompt, PolicyState } from './interaction-types.ts';
import { cspSource } from './pages.ts';
import { enrollChoicePage, recoveryPage, totpPage, webauthnPage, webauthnUnavailablePage } from './mfa-pages.ts';
import type { MfaMethod, MfaPageCommon } from './mfa-pages.ts';
import { ACR_MFA, ACR_PASSWORD, ACR_PHR, userLabel } from './session.ts';
import type { Session } from './session.ts';

export type AcrLevel = 0 | 1 | 2;

/** Our acr values by level. */
export const ACR_BY_LEVEL: readonly [string, string, string] = [ACR_PASSWORD, ACR_MFA, ACR_PHR];
/** Every acr value we issue (discovery's acr_values_supported). */
export const ACR_VALUES_SUPPORTED: readonly string[] = ACR_BY_LEVEL;

/** The level of an acr value; anything else (not ours) counts as a password sign-in. */
export function acrLevel(acr: string): AcrLevel {
  const i = ACR_BY_LEVEL.indexOf(acr);
  return i < 0 ? 0 : (i as AcrLevel);
}

export function hasFactor(status: MfaStatus): boolean {
  return status.factors.totp || status.factors.webauthn > 0;
}

export interface Requirement {
  readonly level: AcrLevel;
  /** Why, in words, for the enrollment page (the first reason of the highest level). */
  readonly reason: string;
}

/** The level a request for `client` with `scope` and `acrValues` needs from this user. */
export function requiredLevel(ctx: OAuthContext, client: ClientRecord | null, scope: readonly string[], acrValues: readonly string[], status: MfaStatus): Requirement {
  let level: AcrLevel = 0;
  let reason = '';
  const raise = (l: AcrLevel, why: string): void => {
    if (l > level) {
      level = l;
      reason = why;
    }
  };
  const asked = acrValues.filter((v) => ACR_BY_LEVEL.includes(v)).map(acrLevel);
  if (asked.length > 0) {
    const l = Math.min(...asked) as AcrLevel;
    raise(l, l === 2 ? 'This application asks for a sign-in with a security key or passkey.' : 'This application asks for two-step verification.');
  }
  if (client?.require_mfa === true) raise(1, `${client.client_name} requires two-step verification.`);
  const required = mfaConfigOf(ctx.config).requiredScopes;
  const scoped = scope.find((s) => required.includes(s));
  if (scoped !== undefined) raise(1, `The access requested (${scoped}) requires two-step verification.`);
  if (status.required) raise(1, 'Your account requires two-step verification.');
  if (hasFactor(status)) raise(1, 'You have set up two-step verification.');
  return { level, reason };
}

/** The user's factors and policy (the service's view; a linearizable read there). */
export async function loadMfaStatus(ctx: OAuthContext, sub: string): Promise<MfaStatus> {
  return mfaStatus(ctx, sub);
}

/**
 * max_age is met by the second factor alone: the session already has one and the user still has a
 * factor to re-do. (Without a factor left, e.g. after an admin reset, the password is re-done.)
 */
export function stepUpCoversMaxAge(s: PolicyState): boolean {
  return s.active !== null && s.mfa !== null && hasFactor(s.mfa) && acrLevel(s.active.session.payload.auth.acr) >= 1;
}

function mfaHere(s: PolicyState): boolean {
  return s.active !== null && (s.interaction.mfaSession ?? null) === s.active.session.hash;
}

function sessionLevel(session: Session): AcrLevel {
  return acrLevel(session.payload.auth.acr);
}

/** The issuer-relative path of an MFA route (interaction.ts endpointPath, not imported: see the header). */
export function mfaPath(ctx: OAuthContext, path: string): string {
  return new URL(ctx.config.issuer).pathname.replace(/\/$/, '') + path;
}

export const MFA_PROMPT: InteractionPrompt = {
  name: 'mfa',
  checks: [
    {
      reason: 'acr',
      description: 'the request needs a second factor the session does not have',
      needed: (s) => s.active !== null && s.mfa !== null && sessionLevel(s.active.session) < requiredLevel(s.ctx, s.client, s.interaction.authz.scope, s.interaction.authz.acrValues, s.mfa).level,
    },
    {
      reason: 'max_age',
      description: 'the sign-in is older than max_age',
      needed: (s) =>
        s.interaction.authz.maxAge !== null && s.active !== null && s.nowS - s.active.session.payload.auth.authTime > s.interaction.authz.maxAge && !mfaHere(s) && stepUpCoversMaxAge(s),
    },
  ],
  // OIDC Core §3.1.2.6: login_required "cannot be completed without displaying a user interface for End-User authentication".
  noneError: (d) => new LoginRequired(d),
  async render(s, reply, sealed) {
    if (s.active === null || s.mfa === null) throw new ServerError('MFA prompt without a session');
    const req = requiredLevel(s.ctx, s.client, s.interaction.authz.scope, s.interaction.authz.acrValues, s.mfa);
    const formAction = cspSource(s.interaction.authz.redirectUri);
    return mfaStep(s.ctx, reply, {
      interaction: sealed,
      session: s.active.session,
      user: s.active.user,
      status: s.mfa,
      // max_age step-up on a session that meets the level: re-do a factor of at least level 1.
      requirement: req.level === 0 ? { level: 1, reason: req.reason } : req,
      formActions: formAction === null ? [] : [formAction],
    });
  },
};

// ---------------------------------------------------------------------------------------------
// Which page

export interface MfaStepArgs {
  /** The sealed interaction. */
  readonly interaction: string;
  readonly session: Session;
  readonly user: UserRecord;
  readonly status: MfaStatus;
  /** The level to reach (1 or 2). */
  readonly requirement: Requirement;
  readonly formActions: readonly string[];
  /** The method the user picked on the choice form. */
  readonly method?: MfaMethod;
  readonly error?: string | null;
  readonly httpStatus?: number;
}

export type MfaPlan =
  /** Verify with one of `methods` (the first is shown unless the user picked another). */
  | { readonly kind: 'verify'; readonly methods: readonly MfaMethod[] }
  /** No factor yet: set one up (TOTP or WebAuthn, or WebAuthn only when level 2 is needed). */
  | { readonly kind: 'enroll'; readonly webauthnOnly: boolean }
  /** Level 2 needed, the session has level 1 and the user has no WebAuthn credential: register one, then use it. */
  | { readonly kind: 'register_webauthn' }
  /** Only a security key or passkey could go on, and WebAuthn cannot work on this issuer. */
  | { readonly kind: 'webauthn_unavailable' };

/**
 * What the user can do to reach `level` from the session's level with these factors. `webauthn`:
 * whether browsers can run WebAuthn on this issuer (src/mfa/config.ts webauthnUnavailable); where
 * they cannot, no security-key step is planned: a ceremony there can only fail with a SecurityError.
 */
export function planMfa(status: MfaStatus, level: AcrLevel, current: AcrLevel, webauthn: boolean): MfaPlan {
  if (!hasFactor(status)) return level === 2 && !webauthn ? { kind: 'webauthn_unavailable' } : { kind: 'enroll', webauthnOnly: level === 2 };
  if (level === 2) {
    if (!webauthn) return { kind: 'webauthn_unavailable' };
    if (status.factors.webauthn > 0) return { kind: 'verify', methods: ['webauthn'] };
    // Adding a factor needs the second factor first (someone with only the password must not add theirs).
    if (current >= 1) return { kind: 'register_webauthn' };
  }
  const methods: MfaMethod[] = [];
  if (webauthn && status.factors.webauthn > 0) methods.push('webauthn');
  if (status.factors.totp) methods.push('totp');
  // A recovery code is a level-1 factor: not offered when it cannot reach the level.
  if (status.factors.recovery > 0 && (level < 2 || current < 1)) methods.push('recovery');
  if (methods.length === 0 && !webauthn) return { kind: 'webauthn_unavailable' };
  return { kind: 'verify', methods };
}

/** Why WebAuthn cannot work on this issuer, or null when it can (the MFA config in force). */
export function webauthnUnavailableHere(ctx: OAuthContext): string | null {
  return webauthnUnavailable(mfaConfigOf(ctx.config));
}

/** Render the MFA page the plan calls for. */
export async function mfaStep(ctx: OAuthContext, reply: FastifyReply, a: MfaStepArgs): Promise<FastifyReply> {
  const mfaConfig = mfaConfigOf(ctx.config);
  const unavailable = webauthnUnavailable(mfaConfig);
  const plan = planMfa(a.status, a.requirement.level, sessionLevel(a.session), unavailable === null);
  const page: MfaPageCommon = {
    path: (p) => mfaPath(ctx, p),
    interaction: a.interaction,
    csrf: a.session.payload.csrf,
    userLabel: userLabel(a.user),
    formActions: a.formActions,
    error: a.error ?? null,
    ...(a.httpStatus !== undefined ? { status: a.httpStatus } : {}),
    // Explained where a security key would have been offered: enrolment, or a user who has one.
    // (Not twice: a refused security-key form already shows it as the error.)
    webauthnUnavailable: unavailable !== null && a.error !== unavailable && (plan.kind === 'enroll' || a.status.factors.webauthn > 0) ? unavailable : null,
  };
  const webauthnUser = { sub: a.user.sub, name: a.user.username, displayName: a.user.name ?? a.user.username };
  switch (plan.kind) {
    case 'enroll':
      if (plan.webauthnOnly) {
        const options = await webauthnRegistrationOptions(ctx, mfaConfig, webauthnUser);
        return webauthnPage(reply, { ...page, mode: 'register', options, alternatives: [], note: a.requirement.reason });
      }
      return enrollChoicePage(reply, { ...page, reason: a.requirement.reason });
    case 'webauthn_unavailable':
      return webauthnUnavailablePage(reply, {
        ...page,
        reason: a.requirement.level === 2 ? 'This application asks for a sign-in with a security key or passkey.' : 'Your account can only complete two-step verification with a security key or passkey.',
        webauthnUnavailable: unavailable ?? 'Security keys and passkeys cannot be used here.',
      });
    case 'register_webauthn': {
      const options = await webauthnRegistrationOptions(ctx, mfaConfig, webauthnUser);
      return webauthnPage(reply, { ...page, mode: 'register', options, alternatives: [], note: 'This application asks for a sign-in with a security key or passkey: register one now.' });
    }
    case 'verify': {
      const method = a.method !== undefined && plan.methods.includes(a.method) ? a.method : plan.methods[0];
      if (method === undefined) throw new ServerError('no MFA method to offer');
      const others = plan.methods.filter((m) => m !== method);
      if (method === 'totp') return totpPage(reply, { ...page, alternatives: others });
      if (method === 'recovery') return recoveryPage(reply, { ...page, alternatives: others });
      const options = await webauthnAuthenticationOptions(ctx, mfaConfig, a.user.sub);
      return webauthnPage(reply, {
        ...page,
        mode: 'authenticate',
        options,
        alternatives: others,
        note: a.requirement.level === 2 ? 'This application asks for a sign-in with a security key or passkey.' : null,
      });
    }
  }
}
