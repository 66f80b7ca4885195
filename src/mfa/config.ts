// WebAuthn relying-party settings (the `mfa` section of a node's config; src/server/config.ts
// validates it). Every node of a cluster must use the same values: a credential is bound to the RP
// ID (W3C WebAuthn Level 3 §5.1.3 / §7.1 step 15), so changing it orphans every registered key.
import { isIP } from 'node:net';

export interface MfaConfig {
  /** W3C WebAuthn §4 "RP ID": a registrable domain suffix of the origins' host (no scheme, no port). */
  readonly rpId: string;
  /** Human-palatable RP name shown by the authenticator (§5.4.1 `rp.name`). */
  readonly rpName: string;
  /** Exact origins (scheme://host[:port]) allowed in clientDataJSON.origin (§7.1 step 9, §7.2 step 13). */
  readonly origins: readonly string[];
}

/**
 * Why a browser cannot run a WebAuthn ceremony for this relying party, or null when it can. The RP
 * ID must be a domain (W3C WebAuthn §5.1.3 "valid domain": browsers refuse IP addresses), and an
 * origin must be a secure context (W3C WebAuthn §5.1.3 step 1, W3C Secure Contexts §3.1): https, or
 * http on localhost or a *.localhost name, which browsers treat as potentially trustworthy. Anywhere
 * else `navigator.credentials` fails with a SecurityError, so the MFA pages do not offer security
 * keys and show this text instead (it is written for the user at the browser).
 */
export function webauthnUnavailable(cfg: Pick<MfaConfig, 'rpId' | 'origins'>): string | null {
  if (cfg.rpId.length === 0 || isIP(cfg.rpId) !== 0) {
    return `Security keys and passkeys cannot be used here: browsers do not allow them on a site addressed by an IP address (${cfg.rpId || 'none'}).`;
  }
  const secure = cfg.origins.some((o) => {
    try {
      const u = new URL(o);
      return u.protocol === 'https:' || (u.protocol === 'http:' && (u.hostname === 'localhost' || u.hostname.endsWith('.localhost')));
    } catch {
      return false;
    }
  });
  if (secure) return null;
  return `Security keys and passkeys cannot be used here: browsers allow them only on https sites or http://localhost, and this site is ${cfg.origins.join(', ') || 'unknown'}.`;
}
