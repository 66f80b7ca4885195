// The record types of the OAuth server's replicated domains. Their operations are the tables in
// clients.ts, users.ts, tokens.ts, keys.ts and crypto-keys.ts (src/state/contract.ts, docs/
// write-path.md "The contract"). See docs/oauth-internals.md.
//
// Conventions:
// - `domain` and `op` are the names given here; args and results are plain msgpack data.
// - Binary fields (sealed blobs) are Uint8Array.
// - Times are milliseconds since the epoch. Apply compares them with ctx.ts (leader time) only.
// - A refusal that changes nothing is a DomainError (code in OAUTH_ERROR_CODES below); an outcome
//   that must change state *and* report a failure (a reused code revokes its family) is a normal
//   result with `ok: false`.


export type { DataKeyRing, SigningAlg, SigningKeyRecord, SigningKeyRing, WrappedDataKey } from '../crypto/records.ts';

/** DomainError codes used by the OAuth domains. */
export const OAUTH_ERROR_CODES = [
  'INVALID_ARGUMENT', // malformed args (a bug in the proposer, or a bad admin request)
  'NOT_FOUND',
  'ALREADY_EXISTS',
  'CONFLICT', // an expected version did not match
] as const;
export type OAuthErrorCode = (typeof OAUTH_ERROR_CODES)[number];

// ---------------------------------------------------------------------------------------------
// clients domain (keyspace `clients`)

export type TokenEndpointAuthMethod = 'client_secret_basic' | 'client_secret_post' | 'private_key_jwt' | 'none';
export type GrantType = 'authorization_code' | 'client_credentials' | 'refresh_token' | 'urn:ietf:params:oauth:grant-type:device_code';

export interface ClientRecord {
  readonly client_id: string;
  readonly client_name: string;
  /** base64url(SHA-256(secret)); null for public clients and private_key_jwt clients. Secrets are 256-bit random, made by the server. */
  readonly client_secret_hash: string | null;
  readonly token_endpoint_auth_method: TokenEndpointAuthMethod;
  /** Exact-match redirect URIs (RFC 9700 §4.1.3); empty when the client has no code grant. */
  readonly redirect_uris: readonly string[];
  readonly grant_types: readonly GrantType[];
  /** Scopes the client may ask for (space-separated in requests; a list here). */
  readonly scopes: readonly string[];
  /** Public keys for private_key_jwt (RFC 7523), a JWKS; null otherwise. */
  readonly jwks: { readonly keys: readonly Record<string, unknown>[] } | null;
  /** First-party clients skip the consent page. */
  readonly first_party: boolean;
  /** Audience of client_credentials access tokens (default: the issuer). */
  readonly audience: string | null;
  /**
   * Every sign-in for this client needs a second factor (docs/mfa.md). Absent means false: client
   * records written before issue 6 do not have it.
   */
  readonly require_mfa?: boolean;
  readonly created_at: number;
  readonly updated_at: number;
}

// The clients domain's operations are the table CLIENTS_WRITES / CLIENTS_READS in src/state/clients.ts.

// ---------------------------------------------------------------------------------------------
// users domain (keyspaces `users`, `users.name`)

export interface UserRecord {
  /** Stable subject identifier (random, made by the proposer). */
  readonly sub: string;
  /** Unique, compared lower-cased (NFKC-normalised by the proposer). */
  readonly username: string;
  /** PHC string from src/crypto/password.ts. */
  readonly password_hash: string;
  readonly name: string | null;
  readonly email: string | null;
  readonly email_verified: boolean;
  readonly disabled: boolean;
  readonly created_at: number;
  readonly updated_at: number;
}

// The users domain's operations are the table USERS_WRITES / USERS_READS in src/state/users.ts.

// ---------------------------------------------------------------------------------------------
// tokens domain (src/state/tokens.ts)

/** A refresh token prepared by the worker: its hash, its expiry (idle, capped by the family's), its sealed payload. */
export interface PreparedRefreshToken {
  readonly hash: string;
  readonly exp: number;
  readonly sealed: Uint8Array;
}

/** A new refresh-token family (one per grant: a code redemption or a device approval). */
export interface PreparedFamily {
  readonly id: string;
  readonly clientId: string;
  /** Absolute expiry of every token in the family. */
  readonly exp: number;
}

/** An access token issued in a family, remembered so revoking the family revokes it. */
export interface IssuedAccessToken {
  readonly jti: string;
  readonly exp: number;
}

export type CodeRecordView = { readonly exp: number; readonly sealed: Uint8Array; readonly used: null | { readonly at: number; readonly family: string | null } };
export type RefreshRecordView = {
  readonly family: string;
  readonly exp: number;
  readonly sealed: Uint8Array;
  readonly state: 'active' | 'rotated';
  readonly rotatedAt: number | null;
  readonly familyRevoked: boolean;
  readonly familyExp: number;
  readonly clientId: string;
};

// The tokens domain's operations are the table TOKENS_WRITES / TOKENS_READS in src/state/tokens.ts
// (src/state/contract.ts): their arguments, results and refusals come from there.

// ---------------------------------------------------------------------------------------------
// keys domain (keyspace `sys.keys`, key `ring`): the JWS signing keys

// The key and ring records are crypto's (src/crypto/records.ts): the keys domain stores them as they are.

// The keys domain's operations are the table KEYS_WRITES / KEYS_READS in src/state/keys.ts.

// ---------------------------------------------------------------------------------------------
// crypto domain (keyspace `sys.dk`, key `ring`): data keys, wrapped by the master key

// The record types are crypto's (src/crypto/records.ts). The crypto domain's operations are the
// table CRYPTO_WRITES / CRYPTO_READS in src/state/crypto-keys.ts.
