// WebAuthn relying-party settings (the `mfa` section of a node's config; src/server/config.ts
// validates it). Every node of a cluster must use the same values: a credential is bound to the RP
// ID (W3C WebAuthn Level 3 §5.1.3 / §7.1 step 15), so changing it orphans every registered key.

export interface MfaConfig {
  /** W3C WebAuthn §4 "RP ID": a registrable domain suffix of the origins' host (no scheme, no port). */
  readonly rpId: string;
  /** Human-palatable RP name shown by the authenticator (§5.4.1 `rp.name`). */
  readonly rpName: string;
  /** Exact origins (scheme://host[:port]) allowed in clientDataJSON.origin (§7.1 step 9, §7.2 step 13). */
  readonly origins: readonly string[];
}
