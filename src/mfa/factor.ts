// One interface for every second factor, and the registry the factor modules add themselves to
// when imported (the way grpc-js resolvers register): the login flow asks the registry what a
// factor contributes to `amr` and whether it is phishing-resistant, instead of a switch per page.
//
// amr values are RFC 8176 §2 registry values only, no custom ones: TOTP → "otp"; WebAuthn → "hwk"
// (proof of possession of a hardware-protected key; we cannot tell a platform authenticator's
// software key apart without attestation, and "hwk" is what the common servers use) plus "user"
// when the authenticator reported user verification (UV flag, WebAuthn §6.1); a recovery code →
// nothing of its own: the flow reports "pwd" + "mfa" (RFC 8176 "mfa": multiple-factor
// authentication) without "otp", since a printed code is neither a TOTP nor a key.

export type FactorType = 'totp' | 'webauthn' | 'recovery';

export interface Factor {
  readonly type: FactorType;
  /** The RFC 8176 amr values a successful use always contributes. */
  readonly amr: readonly string[];
  /** WebAuthn only: the origin is bound into the signature (acr urn:raftauth:acr:phr). */
  readonly phishingResistant: boolean;
  /** amr values of one successful use (WebAuthn adds "user" when the UV flag was set). */
  amrFor(use: { readonly userVerified?: boolean }): string[];
}

const registry = new Map<FactorType, Factor>();

export function registerFactor(f: Factor): void {
  if (registry.has(f.type)) throw new Error(`factor ${f.type} registered twice`);
  registry.set(f.type, f);
}

/** The registered factor of this type (import src/mfa/index.ts to register all of them). */
export function getFactor(type: FactorType): Factor {
  const f = registry.get(type);
  if (!f) throw new Error(`factor ${type} is not registered (import src/mfa/index.ts)`);
  return f;
}

export function registeredFactors(): Factor[] {
  return [...registry.values()];
}
