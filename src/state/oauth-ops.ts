// The replicated operations of the OAuth server: the contract between the HTTP workers that
// propose them (src/oauth/) and the apply modules that decide them (clients.ts, users.ts,
// tokens.ts, keys.ts, crypto-keys.ts). See docs/oauth-internals.md.
//
// Conventions:
// - `domain` and `op` are the names given here; args and results are plain msgpack data.
// - Binary fields (sealed blobs) are Uint8Array.
// - Times are milliseconds since the epoch. Apply compares them with ctx.ts (leader time) only.
// - A refusal that changes nothing is a DomainError (code in OAUTH_ERROR_CODES below); an outcome
//   that must change state *and* report a failure (a reused code revokes its family) is a normal
//   result with `ok: false`.

import type { SigningKeyRecord, WrappedDataKey } from '../crypto/records.ts';

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

export type ClientsOp =
  /** Fails ALREADY_EXISTS. Returns {}. */
  | { op: 'create'; args: { client: ClientRecord } }
  /** Replaces the record (client_id must exist, created_at kept). Returns {}. */
  | { op: 'update'; args: { client: ClientRecord } }
  /** Returns { existed: boolean }. */
  | { op: 'delete'; args: { client_id: string } };
// reads: 'get' { client_id } → ClientRecord | null

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

export type UsersOp =
  /** Fails ALREADY_EXISTS when the sub or the username is taken. Returns {}. */
  | { op: 'create'; args: { user: UserRecord } }
  /** Replaces the record; a changed username moves the index (ALREADY_EXISTS if taken). */
  | { op: 'update'; args: { user: UserRecord } }
  | { op: 'delete'; args: { sub: string } };
// reads: 'get' { sub } → UserRecord | null; 'byUsername' { username } → UserRecord | null

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

export type TokensOp =
  // --- authorization codes (RFC 6749 §4.1) ---
  /** Store a new code. Returns {}. ALREADY_EXISTS on a hash collision. */
  | { op: 'code.create'; args: { hash: string; exp: number; sealed: Uint8Array } }
  /**
   * Redeem a code once. The worker has already checked client, redirect URI and PKCE against
   * the unsealed record. Outcomes:
   *  - { ok: true }: marked used; the family (if any) and its first refresh token are stored,
   *    `at` is remembered in the family.
   *  - { ok: false, reason: 'unknown' | 'expired' }: nothing changed.
   *  - { ok: false, reason: 'reused' }: the code was already redeemed; the family made by the
   *    first redemption is revoked (RFC 6749 §4.1.2, RFC 9700 §4.14) — this is written.
   */
  | { op: 'code.redeem'; args: { hash: string; family: PreparedFamily | null; rt: PreparedRefreshToken | null; at: IssuedAccessToken } }
  // --- refresh tokens (RFC 6749 §6, RFC 9700 §4.14) ---
  /**
   * Rotate a refresh token. Outcomes:
   *  - { ok: true, outcome: 'rotated' }: old marked rotated (successor, rotatedAt = ts, grace =
   *    `response` sealed by the worker), next stored active in the same family, `at` remembered.
   *  - { ok: true, outcome: 'grace', response }: the old token was rotated less than graceMs ago
   *    (ts - rotatedAt <= graceMs) and its successor has not been used: the stored sealed response
   *    is returned, nothing is written.
   *  - { ok: false, reason: 'reused' }: rotated outside the grace window (or its successor already
   *    used): the whole family is revoked (written).
   *  - { ok: false, reason: 'unknown' | 'expired' | 'revoked' }: nothing changed.
   */
  | { op: 'rt.rotate'; args: { hash: string; next: PreparedRefreshToken; response: Uint8Array; at: IssuedAccessToken; graceMs: number } }
  /** RFC 7009: revoke the refresh token's family. Returns { revoked: boolean } (false if unknown). */
  | { op: 'rt.revoke'; args: { hash: string; clientId: string } }
  /** RFC 7009 for a JWT access token: remember jti until exp. Returns {}. */
  | { op: 'at.revoke'; args: { jti: string; exp: number } }
  // --- device authorization grant (RFC 8628) ---
  /** Returns {}; ALREADY_EXISTS if either hash is taken. */
  | { op: 'device.create'; args: { hash: string; userCodeHash: string; exp: number; intervalMs: number; sealed: Uint8Array } }
  /** The user approved or denied on the verification page. Returns { ok: true } or { ok: false, reason: 'unknown' | 'expired' | 'decided' }. */
  | { op: 'device.decide'; args: { userCodeHash: string; approve: boolean; approval: Uint8Array | null } }
  /**
   * A poll while pending: { status: 'authorization_pending' } (lastPoll = ts), or 'slow_down'
   * (polled sooner than intervalMs after the last poll; the interval grows by 5 s, RFC 8628 §3.5,
   * and lastPoll = ts), 'expired_token', 'access_denied', 'approved' (the worker then redeems),
   * 'consumed'.
   */
  | { op: 'device.poll'; args: { hash: string } }
  /** Single use, like code.redeem: { ok: true } | { ok: false, reason: 'unknown' | 'expired' | 'not_approved' | 'consumed' }. */
  | { op: 'device.redeem'; args: { hash: string; family: PreparedFamily | null; rt: PreparedRefreshToken | null; at: IssuedAccessToken } }
  // --- login sessions ---
  | { op: 'session.create'; args: { hash: string; exp: number; sealed: Uint8Array } }
  | { op: 'session.delete'; args: { hash: string } }
  /**
   * session.create of { hash, exp, sealed, meta } and session.delete of previous.hash (reason
   * 'replaced', audited with previous.meta) in one command: the session upgrade after a second
   * factor. Returns { existed } (whether the previous record was still there).
   */
  | { op: 'session.replace'; args: { hash: string; exp: number; sealed: Uint8Array; previous: { hash: string } } }
  // --- private_key_jwt replay (RFC 7523 §3, RFC 7521 §5.2) ---
  /** Returns { fresh: boolean }: false if (clientId, jti) was seen and has not expired. */
  | { op: 'assertion.use'; args: { clientId: string; jti: string; exp: number } }
  // --- leader sweep ---
  /** Delete the listed expiry-index entries and their records if expired at ts (re-checked). Returns { deleted }. At most 1000 keys. */
  | { op: 'sweep'; args: { keys: readonly string[] } };
// reads: 'code.get' { hash } → CodeRecordView | null; 'rt.get' { hash } → RefreshRecordView | null;
// 'device.get' { hash } → { hash, status, exp, sealed, approval } | null; 'device.byUserCode' { userCodeHash } → same | null
// (status: 'pending' | 'approved' | 'denied' | 'consumed'; expiry is reported as status 'pending' with exp <= now: the reader compares);
// 'session.get' { hash } → { exp, sealed } | null; 'at.revoked' { jti } → { revoked: boolean };
// 'family.get' { id } → { revoked: boolean, exp } | null

// ---------------------------------------------------------------------------------------------
// keys domain (keyspace `sys.keys`, key `ring`): the JWS signing keys

// The key and ring records are crypto's (src/crypto/records.ts): the keys domain stores them as they are.

export type KeysOp =
  /** Create the ring with an active and a next key if there is none; otherwise change nothing. Returns { created: boolean, version }. */
  | { op: 'init'; args: { active: SigningKeyRecord; next: SigningKeyRecord } }
  /**
   * Rotate: next → active, active → retired (publishUntil = ts + retainMs), `next` added, retired
   * keys past publishUntil dropped. CONFLICT if the ring's version is not expectVersion.
   */
  | { op: 'rotate'; args: { expectVersion: number; next: SigningKeyRecord; retainMs: number } };
// reads: 'ring' {} → SigningKeyRing | null

// ---------------------------------------------------------------------------------------------
// crypto domain (keyspace `sys.dk`, key `ring`): data keys, wrapped by the master key

export type CryptoOp =
  /** Create the ring with one key if there is none; else nothing. Returns { created: boolean }. */
  | { op: 'init'; args: { key: WrappedDataKey } }
  /** Replace every key's wrapping (same ids, same count). CONFLICT on version mismatch. */
  | { op: 'rewrap'; args: { expectVersion: number; keys: readonly WrappedDataKey[] } };
// reads: 'ring' {} → DataKeyRing | null
