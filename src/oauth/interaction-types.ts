// The types of a sign-in interaction and of the prompt policy (src/oauth/interaction.ts runs it;
// the MFA prompt is src/oauth/mfa-policy.ts). Apart from the code, so both can use them without
// importing each other (docs/architecture.md "Layers": no import cycles).
import type { FastifyReply } from 'fastify';
import type { ClientRecord, UserRecord } from '../state/oauth-ops.ts';
import type { MfaStatus } from '../mfa/service.ts';
import type { OAuthContext } from './context.ts';
import type { OAuthError } from './errors.ts';
import type { Session } from './session.ts';

export type ResponseMode = 'query' | 'form_post';
/** OIDC Core §3.1.2.1 prompt values (select_account is treated as login: there is one account per session). */
export type PromptValue = 'none' | 'login' | 'consent' | 'select_account';

/** Where an authorization response (success or error) goes. */
export interface AuthorizationTarget {
  readonly redirectUri: string;
  /** Whether the request carried redirect_uri (RFC 6749 §4.1.3: then the token request must carry the same). Absent = true. */
  readonly redirectUriInRequest?: boolean;
  readonly responseMode: ResponseMode;
  /** RFC 6749 §4.1.2: echoed verbatim when the client sent it. */
  readonly state: string | null;
}

/** A validated authorization request (src/oauth/authorize.ts makes it). */
export interface AuthorizationRequest extends AuthorizationTarget {
  readonly clientId: string;
  readonly scope: readonly string[];
  readonly codeChallenge: string | null;
  readonly codeChallengeMethod: 'S256' | 'plain' | null;
  readonly nonce: string | null;
  readonly prompt: readonly PromptValue[];
  /** OIDC Core §3.1.2.1 max_age, seconds. */
  readonly maxAge: number | null;
  /** Requested acr values (OIDC Core §3.1.2.1); the MFA prompt raises the required level for ours (src/oauth/mfa.ts). */
  readonly acrValues: readonly string[];
  readonly loginHint: string | null;
  /** `sub` of a valid id_token_hint. */
  readonly idTokenHintSub: string | null;
}

export interface InteractionCommon {
  readonly v: 1;
  /** Milliseconds since the epoch. */
  readonly exp: number;
  /** tokenHash of the browser-binding cookie. */
  readonly bind: string;
  /** Hash of the session created by a login inside this interaction (satisfies prompt=login and max_age). */
  readonly loginSession: string | null;
  /** The user allowed the client on the consent page of this interaction. */
  readonly consented: boolean;
  /**
   * Hash of the session a second factor upgraded inside this interaction (satisfies the MFA
   * prompt's max_age step-up). Absent in interactions sealed before the MFA prompt existed.
   */
  readonly mfaSession?: string | null;
}
export type AuthorizeInteraction = InteractionCommon & { readonly kind: 'authorize'; readonly authz: AuthorizationRequest };
/** A sign-in for the device verification page; it returns to /device with the user code. */
export type DeviceInteraction = InteractionCommon & { readonly kind: 'device'; readonly userCode: string | null };
export type Interaction = AuthorizeInteraction | DeviceInteraction;

export interface ActiveSession {
  readonly session: Session;
  readonly user: UserRecord;
}

export interface PolicyState {
  readonly ctx: OAuthContext;
  readonly client: ClientRecord;
  readonly interaction: AuthorizeInteraction;
  readonly active: ActiveSession | null;
  readonly nowS: number;
  /** The signed-in user's factors and MFA policy (null without a session). */
  readonly mfa: MfaStatus | null;
}

export interface PromptCheck {
  readonly reason: string;
  /** Shown as error_description when prompt=none forbids the page. */
  readonly description: string;
  needed(s: PolicyState): boolean;
}

export interface InteractionPrompt {
  readonly name: string;
  readonly checks: readonly PromptCheck[];
  /** OIDC Core §3.1.2.6: the error for prompt=none when this prompt is needed. */
  noneError(description: string): OAuthError;
  /** The page that satisfies this prompt. */
  render(s: PolicyState, reply: FastifyReply, sealed: string): FastifyReply | Promise<FastifyReply>;
}
