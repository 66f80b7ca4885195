// The OAuth server's configuration (the `oauth` section of a node's config, src/server/config.ts
// validates it and documents every key). Resolved values only: durations in their unit, issuer
// without a trailing slash.
import type { SigningAlg } from '../state/oauth-ops.ts';
import type { MfaConfig } from '../mfa/config.ts';

/** The `mfa` section as the login flow uses it (docs/mfa.md). */
export interface OAuthMfaConfig extends MfaConfig {
  /** Scopes whose request requires a second factor. */
  readonly requiredScopes: readonly string[];
}

export interface OAuthConfig {
  /** RFC 8414 §2 issuer: https URL (http only for loopback), no query or fragment, no trailing slash. Every node uses the same one (the load balancer's URL). */
  readonly issuer: string;
  /** JWS algorithm for access and ID tokens. */
  readonly signingAlg: SigningAlg;
  readonly accessTokenTtlS: number;
  readonly idTokenTtlS: number;
  /** RFC 6749 §4.1.2: "A maximum authorization code lifetime of 10 minutes is RECOMMENDED"; we use 60 s. */
  readonly codeTtlS: number;
  /** Refresh tokens expire this long after their issue unless rotated (idle lifetime)… */
  readonly refreshTokenIdleTtlS: number;
  /** …and never later than this after the grant (absolute lifetime of the family). */
  readonly refreshTokenAbsoluteTtlS: number;
  /** A rotated refresh token presented again within this window gets the same successor back (no family revocation). */
  readonly refreshGraceMs: number;
  readonly deviceCodeTtlS: number;
  /** RFC 8628 §3.2 `interval`: minimum seconds between polls. */
  readonly devicePollIntervalS: number;
  /** Login session lifetime. */
  readonly sessionTtlS: number;
  /** Lifetime of a pending authorization request (login and consent pages). */
  readonly interactionTtlS: number;
  /** Automatic signing-key rotation period. */
  readonly keyRotationPeriodS: number;
  /** Scopes the server knows besides each client's own: openid, profile, email, offline_access. */
  readonly scopesSupported: readonly string[];
  /** RFC 7636 §4.2: `plain` is refused unless this is true. */
  readonly allowPlainPkce: boolean;
  /** RFC 9700 §2.1.1: PKCE for confidential clients too (always required for public clients). */
  readonly requirePkceForConfidential: boolean;
  /** Largest form body on OAuth endpoints. */
  readonly formBodyLimitBytes: number;
  /** scrypt cost for user passwords: N = 2^ln. */
  readonly passwordScrypt: { readonly ln: number; readonly r: number; readonly p: number };
  /** WebAuthn relying party and MFA policy (the node's `mfa` section). Absent: derived from the issuer (mfaConfigOf). */
  readonly mfa?: OAuthMfaConfig;
}

/** The MFA settings in force: the configured ones, or the defaults derived from the issuer (the `mfa` section's defaults). */
export function mfaConfigOf(config: Pick<OAuthConfig, 'issuer' | 'mfa'>): OAuthMfaConfig {
  if (config.mfa !== undefined) return config.mfa;
  const u = new URL(config.issuer);
  return { rpId: u.hostname.replace(/^\[|\]$/g, ''), rpName: 'raftauth', origins: [u.origin], requiredScopes: [] };
}

export const DEFAULT_OAUTH_CONFIG: Omit<OAuthConfig, 'issuer'> = {
  signingAlg: 'ES256',
  accessTokenTtlS: 600,
  idTokenTtlS: 3600,
  codeTtlS: 60,
  refreshTokenIdleTtlS: 14 * 24 * 3600,
  refreshTokenAbsoluteTtlS: 90 * 24 * 3600,
  refreshGraceMs: 2_000,
  deviceCodeTtlS: 600,
  devicePollIntervalS: 5,
  sessionTtlS: 8 * 3600,
  interactionTtlS: 600,
  keyRotationPeriodS: 30 * 24 * 3600,
  scopesSupported: ['openid', 'profile', 'email', 'offline_access'],
  allowPlainPkce: false,
  requirePkceForConfidential: true,
  formBodyLimitBytes: 16 * 1024,
  // OWASP Password Storage Cheat Sheet: scrypt N=2^17, r=8, p=1.
  passwordScrypt: { ln: 17, r: 8, p: 1 },
};
