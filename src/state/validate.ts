// The checking functions the domains' argument schemas are built from (src/state/contract.ts:
// `check(tokenId)`, `check((v, n) => str(v, n, 1, MAX_ID_CHARS))`, `check(validateClientRecord)`),
// and the record checks the admin API runs with the same rules before proposing a record. Apply
// no longer calls them by hand: each op's schema in its domain's table does, before apply.
//
// Apply refuses malformed input with DomainError('INVALID_ARGUMENT', …) naming the field, so every
// node refuses the same commands and a refusal changes nothing. Every limit is a constant here:
// the limits are part of the replicated state machine's definition, like SESSION_LIMITS.
import { DomainError } from './machine.ts';
import type { ClientRecord, GrantType, SigningKeyRecord, TokenEndpointAuthMethod, UserRecord, WrappedDataKey } from './oauth-ops.ts';
import { packValue } from './command.ts';

/** Ids, token hashes and jtis. */
export const MAX_ID_CHARS = 128;
/** Sealed blobs (payloads, grace responses, approvals). */
export const MAX_SEALED_BYTES = 64 * 1024;
export const MAX_REDIRECT_URIS = 20;
export const MAX_REDIRECT_URI_CHARS = 2_000;
export const MAX_SCOPES = 100;
export const MAX_SCOPE_CHARS = 128;
export const MAX_JWKS_KEYS = 10;
/** Packed size of one JWK (a public RSA-4096 key is under 1 KiB). */
export const MAX_JWK_BYTES = 8 * 1024;
export const MAX_USERNAME_CHARS = 128;
export const MAX_NAME_CHARS = 256;
export const MAX_PASSWORD_HASH_CHARS = 1_024;
export const MAX_AUDIENCE_CHARS = 2_000;
/** Sealed private signing key. */
export const MAX_SEALED_PRIVATE_BYTES = 16 * 1024;
/** A wrapped 256-bit data key is well under this. */
export const MAX_WRAPPED_KEY_BYTES = 4 * 1024;
/** Times are milliseconds since the epoch and must fit the 15-digit expiry index (year 33658). */
export const MAX_TIME = 999_999_999_999_999;

const CLIENT_ID_RE = /^[A-Za-z0-9._~-]{1,128}$/;
/** Our own ids and hashes: base64url (randomId, tokenHash) or any other unreserved characters. */
const TOKEN_ID_RE = /^[A-Za-z0-9._~-]{1,128}$/;
/** base64url(SHA-256(secret)) without padding: 43 characters. */
const SECRET_HASH_RE = /^[A-Za-z0-9_-]{43}$/;
/** RFC 6749 §3.3: scope-token = 1*( %x21 / %x23-5B / %x5D-7E ). */
const SCOPE_TOKEN_RE = /^[\x21\x23-\x5b\x5d-\x7e]+$/;
/** Printable ASCII without space (OIDC Core §2 `sub`: ASCII, case-sensitive; JOSE kid). */
const PRINTABLE_RE = /^[\x21-\x7e]+$/;
// eslint-disable-next-line no-control-regex
const CONTROL_RE = /[\u0000-\u001f\u007f-\u009f]/;

export const GRANT_TYPES: readonly GrantType[] = ['authorization_code', 'client_credentials', 'refresh_token', 'urn:ietf:params:oauth:grant-type:device_code'];
export const AUTH_METHODS: readonly TokenEndpointAuthMethod[] = ['client_secret_basic', 'client_secret_post', 'private_key_jwt', 'none'];
/** RFC 7517 §4 / RFC 7518 §6: members that only a private (or symmetric) JWK carries. */
const PRIVATE_JWK_MEMBERS = ['d', 'p', 'q', 'dp', 'dq', 'qi', 'oth', 'k'];
/** RFC 8252 §7.3, §8.3: the loopback hosts for which plain http redirect URIs are allowed. */
const LOOPBACK_HOSTS = new Set(['127.0.0.1', '[::1]', 'localhost']);

export function invalid(message: string): DomainError {
  return new DomainError('INVALID_ARGUMENT', message);
}

export function isPlainObject(v: unknown): v is Record<string, unknown> {
  return typeof v === 'object' && v !== null && !Array.isArray(v) && !(v instanceof Uint8Array);
}

export function obj(v: unknown, name: string): Record<string, unknown> {
  if (!isPlainObject(v)) throw invalid(`${name} must be an object`);
  return v;
}

/** A string of min..max characters (UTF-16 code units), without control characters. */
export function str(v: unknown, name: string, min: number, max: number): string {
  if (typeof v !== 'string') throw invalid(`${name} must be a string`);
  if (v.length < min || v.length > max) throw invalid(`${name} must be ${min}..${max} characters`);
  if (CONTROL_RE.test(v)) throw invalid(`${name} must not contain control characters`);
  return v;
}

export function nullableStr(v: unknown, name: string, min: number, max: number): string | null {
  return v === null ? null : str(v, name, min, max);
}

export function int(v: unknown, name: string, min: number, max: number): number {
  if (typeof v !== 'number' || !Number.isSafeInteger(v) || v < min || v > max) throw invalid(`${name} must be an integer in [${min}, ${max}]`);
  return v;
}

/** A time in milliseconds since the epoch. */
export function time(v: unknown, name: string): number {
  return int(v, name, 0, MAX_TIME);
}

export function nullableTime(v: unknown, name: string): number | null {
  return v === null ? null : time(v, name);
}

export function bool(v: unknown, name: string): boolean {
  if (typeof v !== 'boolean') throw invalid(`${name} must be a boolean`);
  return v;
}

export function bytes(v: unknown, name: string, max: number): Uint8Array {
  if (!(v instanceof Uint8Array)) throw invalid(`${name} must be bytes`);
  if (v.length === 0 || v.length > max) throw invalid(`${name} must be 1..${max} bytes`);
  return v;
}

/** A token hash, family id or access-token jti made by the server. */
export function tokenId(v: unknown, name: string): string {
  if (typeof v !== 'string' || !TOKEN_ID_RE.test(v)) throw invalid(`${name} must be 1..${MAX_ID_CHARS} characters of [A-Za-z0-9._~-]`);
  return v;
}

export function clientId(v: unknown, name = 'client_id'): string {
  if (typeof v !== 'string' || !CLIENT_ID_RE.test(v)) throw invalid(`${name} must be 1..${MAX_ID_CHARS} characters of [A-Za-z0-9._~-]`);
  return v;
}

function noExtraKeys(o: Record<string, unknown>, allowed: readonly string[], name: string): void {
  for (const k of Object.keys(o)) if (!allowed.includes(k)) throw invalid(`${name} has an unknown field ${k}`);
}

function field<K extends string>(o: Record<string, unknown>, k: K, name: string): unknown {
  if (!(k in o)) throw invalid(`${name}.${k} is missing`);
  return o[k];
}

function uniqueList<T>(v: unknown, name: string, max: number, item: (x: unknown, n: string) => T): T[] {
  if (!Array.isArray(v)) throw invalid(`${name} must be an array`);
  if (v.length > max) throw invalid(`${name} has more than ${max} entries`);
  const out = v.map((x, i) => item(x, `${name}[${i}]`));
  if (new Set(out).size !== out.length) throw invalid(`${name} has duplicate entries`);
  return out;
}

/**
 * RFC 6749 §3.1.2: an absolute URI without a fragment. RFC 8252 (native apps): https anywhere,
 * http only on the loopback interface (§7.3, and `localhost` which §8.3 discourages but allows),
 * or a private-use scheme in reverse-domain form, i.e. containing a dot (§7.1).
 */
export function redirectUri(v: unknown, name: string): string {
  const s = str(v, name, 1, MAX_REDIRECT_URI_CHARS);
  if (/\s/.test(s)) throw invalid(`${name} must not contain whitespace`);
  if (s.includes('#')) throw invalid(`${name} must not contain a fragment (RFC 6749 §3.1.2)`);
  const scheme = /^([A-Za-z][A-Za-z0-9+.-]*):/.exec(s)?.[1]?.toLowerCase();
  let url: URL;
  try {
    url = new URL(s);
  } catch {
    throw invalid(`${name} must be an absolute URI (RFC 6749 §3.1.2)`);
  }
  if (scheme === undefined) throw invalid(`${name} must be an absolute URI (RFC 6749 §3.1.2)`);
  if (scheme === 'https') {
    if (!s.toLowerCase().startsWith('https://') || url.hostname === '') throw invalid(`${name} must name a host`);
    return s;
  }
  if (scheme === 'http') {
    if (!s.toLowerCase().startsWith('http://') || !LOOPBACK_HOSTS.has(url.hostname)) {
      throw invalid(`${name}: http is allowed only for loopback hosts 127.0.0.1, [::1], localhost (RFC 8252 §7.3)`);
    }
    return s;
  }
  if (!scheme.includes('.')) throw invalid(`${name}: scheme ${scheme} must be https, http on loopback, or a private-use scheme with a dot (RFC 8252 §7.1)`);
  return s;
}

/** A public JWK (RFC 7517 §4): an object with `kty` and no private members. */
export function publicJwk(v: unknown, name: string): Record<string, unknown> {
  const k = obj(v, name);
  if (typeof k.kty !== 'string' || k.kty.length === 0) throw invalid(`${name}.kty must be a non-empty string`);
  for (const m of PRIVATE_JWK_MEMBERS) if (m in k) throw invalid(`${name} must be a public key (it has '${m}')`);
  if (packValue(k).length > MAX_JWK_BYTES) throw invalid(`${name} is larger than ${MAX_JWK_BYTES} bytes`);
  return k;
}

function jwks(v: unknown, name: string): ClientRecord['jwks'] {
  if (v === null) return null;
  const o = obj(v, name);
  noExtraKeys(o, ['keys'], name);
  if (!Array.isArray(o.keys)) throw invalid(`${name}.keys must be an array`);
  if (o.keys.length === 0 || o.keys.length > MAX_JWKS_KEYS) throw invalid(`${name}.keys must have 1..${MAX_JWKS_KEYS} keys`);
  return { keys: o.keys.map((k: unknown, i: number) => publicJwk(k, `${name}.keys[${i}]`)) };
}

const CLIENT_FIELDS = [
  'client_id',
  'client_name',
  'client_secret_hash',
  'token_endpoint_auth_method',
  'redirect_uris',
  'grant_types',
  'scopes',
  'jwks',
  'first_party',
  'audience',
  'require_mfa',
  'created_at',
  'updated_at',
] as const;

/** Check a client record; returns a copy with exactly the record's fields (what is stored). */
export function validateClientRecord(c: unknown): ClientRecord {
  const o = obj(c, 'client');
  noExtraKeys(o, CLIENT_FIELDS, 'client');
  const f = (k: (typeof CLIENT_FIELDS)[number]): unknown => field(o, k, 'client');
  const client_id = clientId(f('client_id'), 'client.client_id');
  const client_name = str(f('client_name'), 'client.client_name', 0, MAX_NAME_CHARS);
  const method = f('token_endpoint_auth_method');
  if (!AUTH_METHODS.includes(method as TokenEndpointAuthMethod)) throw invalid(`client.token_endpoint_auth_method must be one of ${AUTH_METHODS.join(', ')}`);
  const token_endpoint_auth_method = method as TokenEndpointAuthMethod;
  const secretHash = f('client_secret_hash');
  let client_secret_hash: string | null;
  if (token_endpoint_auth_method === 'client_secret_basic' || token_endpoint_auth_method === 'client_secret_post') {
    if (typeof secretHash !== 'string' || !SECRET_HASH_RE.test(secretHash)) throw invalid('client.client_secret_hash must be a 43-character base64url SHA-256 hash for client_secret_* clients');
    client_secret_hash = secretHash;
  } else {
    if (secretHash !== null) throw invalid(`client.client_secret_hash must be null for ${token_endpoint_auth_method} clients`);
    client_secret_hash = null;
  }
  const keys = jwks(f('jwks'), 'client.jwks');
  if (token_endpoint_auth_method === 'private_key_jwt' && keys === null) throw invalid('client.jwks must hold at least one key for private_key_jwt clients (RFC 7523 §2.2)');
  if (token_endpoint_auth_method !== 'private_key_jwt' && keys !== null) throw invalid('client.jwks must be null unless the client uses private_key_jwt');
  const grant_types = uniqueList(f('grant_types'), 'client.grant_types', GRANT_TYPES.length, (x, n) => {
    if (!GRANT_TYPES.includes(x as GrantType)) throw invalid(`${n} must be one of ${GRANT_TYPES.join(', ')}`);
    return x as GrantType;
  });
  if (grant_types.length === 0) throw invalid('client.grant_types must not be empty');
  // RFC 6749 §4.4: the client credentials grant is for confidential clients only.
  if (token_endpoint_auth_method === 'none' && grant_types.includes('client_credentials')) throw invalid('client.grant_types: client_credentials needs client authentication (RFC 6749 §4.4), not method none');
  const redirect_uris = uniqueList(f('redirect_uris'), 'client.redirect_uris', MAX_REDIRECT_URIS, redirectUri);
  // RFC 6749 §3.1.2.2: clients using the code grant must register their redirect URIs.
  if (grant_types.includes('authorization_code') && redirect_uris.length === 0) throw invalid('client.redirect_uris must not be empty for the authorization_code grant (RFC 6749 §3.1.2.2)');
  const scopes = uniqueList(f('scopes'), 'client.scopes', MAX_SCOPES, (x, n) => {
    const s = str(x, n, 1, MAX_SCOPE_CHARS);
    if (!SCOPE_TOKEN_RE.test(s)) throw invalid(`${n} is not a scope token (RFC 6749 §3.3)`);
    return s;
  });
  const first_party = bool(f('first_party'), 'client.first_party');
  const audience = nullableStr(f('audience'), 'client.audience', 1, MAX_AUDIENCE_CHARS);
  // Kept absent when absent, so a record written before the field existed reads back unchanged.
  const require_mfa = o.require_mfa === undefined ? undefined : bool(o.require_mfa, 'client.require_mfa');
  const created_at = time(f('created_at'), 'client.created_at');
  const updated_at = time(f('updated_at'), 'client.updated_at');
  return {
    client_id,
    client_name,
    client_secret_hash,
    token_endpoint_auth_method,
    redirect_uris,
    grant_types,
    scopes,
    jwks: keys,
    first_party,
    audience,
    ...(require_mfa !== undefined ? { require_mfa } : {}),
    created_at,
    updated_at,
  };
}

const USER_FIELDS = ['sub', 'username', 'password_hash', 'name', 'email', 'email_verified', 'disabled', 'created_at', 'updated_at'] as const;

/** Check a user record; returns a copy with exactly the record's fields. */
export function validateUserRecord(u: unknown): UserRecord {
  const o = obj(u, 'user');
  noExtraKeys(o, USER_FIELDS, 'user');
  const f = (k: (typeof USER_FIELDS)[number]): unknown => field(o, k, 'user');
  const sub = str(f('sub'), 'user.sub', 1, MAX_ID_CHARS);
  if (!PRINTABLE_RE.test(sub)) throw invalid('user.sub must be printable ASCII without spaces (OIDC Core §2)');
  const username = str(f('username'), 'user.username', 1, MAX_USERNAME_CHARS);
  const password_hash = str(f('password_hash'), 'user.password_hash', 1, MAX_PASSWORD_HASH_CHARS);
  if (!password_hash.startsWith('$')) throw invalid('user.password_hash must be a PHC string');
  const name = nullableStr(f('name'), 'user.name', 0, MAX_NAME_CHARS);
  const email = nullableStr(f('email'), 'user.email', 1, MAX_NAME_CHARS);
  if (email !== null && !email.includes('@')) throw invalid('user.email must contain @');
  const email_verified = bool(f('email_verified'), 'user.email_verified');
  const disabled = bool(f('disabled'), 'user.disabled');
  const created_at = time(f('created_at'), 'user.created_at');
  const updated_at = time(f('updated_at'), 'user.updated_at');
  return { sub, username, password_hash, name, email, email_verified, disabled, created_at, updated_at };
}

const SIGNING_KEY_FIELDS = ['kid', 'alg', 'publicJwk', 'sealedPrivate', 'state', 'createdAt', 'activatedAt', 'publishUntil'] as const;

/** Check a signing key record; returns a copy with exactly the record's fields. */
export function validateSigningKeyRecord(k: unknown, name = 'key'): SigningKeyRecord {
  const o = obj(k, name);
  noExtraKeys(o, SIGNING_KEY_FIELDS, name);
  const f = (x: (typeof SIGNING_KEY_FIELDS)[number]): unknown => field(o, x, name);
  const kid = str(f('kid'), `${name}.kid`, 1, MAX_ID_CHARS);
  if (!PRINTABLE_RE.test(kid)) throw invalid(`${name}.kid must be printable ASCII without spaces`);
  const alg = f('alg');
  if (alg !== 'ES256' && alg !== 'EdDSA') throw invalid(`${name}.alg must be ES256 or EdDSA`);
  const jwk = publicJwk(f('publicJwk'), `${name}.publicJwk`);
  if ('kid' in jwk && jwk.kid !== kid) throw invalid(`${name}.publicJwk.kid must equal ${name}.kid`);
  const sealedPrivate = bytes(f('sealedPrivate'), `${name}.sealedPrivate`, MAX_SEALED_PRIVATE_BYTES);
  const state = f('state');
  if (state !== 'next' && state !== 'active' && state !== 'retired') throw invalid(`${name}.state must be next, active or retired`);
  const createdAt = time(f('createdAt'), `${name}.createdAt`);
  const activatedAt = nullableTime(f('activatedAt'), `${name}.activatedAt`);
  const publishUntil = nullableTime(f('publishUntil'), `${name}.publishUntil`);
  if (state === 'next' && activatedAt !== null) throw invalid(`${name}.activatedAt must be null for a next key`);
  if (state !== 'next' && activatedAt === null) throw invalid(`${name}.activatedAt must be set for an ${state} key`);
  if (state === 'retired' && publishUntil === null) throw invalid(`${name}.publishUntil must be set for a retired key`);
  if (state !== 'retired' && publishUntil !== null) throw invalid(`${name}.publishUntil must be null for a ${state} key`);
  return { kid, alg, publicJwk: jwk, sealedPrivate, state, createdAt, activatedAt, publishUntil };
}

const DATA_KEY_FIELDS = ['id', 'masterKid', 'wrapped', 'createdAt'] as const;

export function validateWrappedDataKey(k: unknown, name = 'key'): WrappedDataKey {
  const o = obj(k, name);
  noExtraKeys(o, DATA_KEY_FIELDS, name);
  const f = (x: (typeof DATA_KEY_FIELDS)[number]): unknown => field(o, x, name);
  const id = str(f('id'), `${name}.id`, 1, MAX_ID_CHARS);
  if (!PRINTABLE_RE.test(id)) throw invalid(`${name}.id must be printable ASCII without spaces`);
  const masterKid = str(f('masterKid'), `${name}.masterKid`, 1, MAX_ID_CHARS);
  const wrapped = bytes(f('wrapped'), `${name}.wrapped`, MAX_WRAPPED_KEY_BYTES);
  const createdAt = time(f('createdAt'), `${name}.createdAt`);
  return { id, masterKid, wrapped, createdAt };
}
