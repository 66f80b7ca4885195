// The OAuth server's replicated domains, registered together on every node (src/server/oauth-node.ts
// and the test MemoryNode). The contract of their operations is src/state/oauth-ops.ts.
import type { Domain } from './machine.ts';
import { clientsDomain } from './clients.ts';
import { usersDomain } from './users.ts';
import { tokensDomain } from './tokens.ts';
import { keysDomain } from './keys.ts';
import { cryptoDomain } from './crypto-keys.ts';
import { auditDomain } from './audit.ts';
import { mfaDomain } from './mfa.ts';

export { CLIENTS_KEYSPACE, clientsDomain } from './clients.ts';
export { USERS_KEYSPACE, USERNAMES_KEYSPACE, usersDomain } from './users.ts';
export {
  CODES_KEYSPACE,
  REFRESH_TOKENS_KEYSPACE,
  FAMILIES_KEYSPACE,
  REVOKED_JTIS_KEYSPACE,
  DEVICE_CODES_KEYSPACE,
  USER_CODES_KEYSPACE,
  LOGIN_SESSIONS_KEYSPACE,
  ASSERTION_JTIS_KEYSPACE,
  EXPIRY_KEYSPACE,
  expiryIndexKey,
  parseExpiryIndexKey,
  tokensDomain,
} from './tokens.ts';
export { SIGNING_KEYS_KEYSPACE, RING_KEY, keysDomain } from './keys.ts';
export { DATA_KEYS_KEYSPACE, cryptoDomain } from './crypto-keys.ts';
export { AUDIT_KEYSPACE, AUDIT_SYS_KEYSPACE, auditDomain } from './audit.ts';
export { MFA_DOMAIN, mfaDomain } from './mfa.ts';

/** The OAuth domains: clients, users, tokens, keys, crypto, mfa (second factors), and the audit log they append to. */
export function oauthDomains(): Domain[] {
  return [clientsDomain, usersDomain, tokensDomain, keysDomain, cryptoDomain, mfaDomain, auditDomain];
}
