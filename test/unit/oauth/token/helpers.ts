// Shared pieces of the token-side endpoint tests: requests through app.inject, client credentials,
// and codes / approvals made the way the browser side makes them (sealed with the app's data key
// and proposed through the node), so the token side is tested without the login pages.
import assert from 'node:assert/strict';
import { createHash, generateKeyPairSync } from 'node:crypto';
import type { KeyObject } from 'node:crypto';
import type { LightMyRequestResponse } from 'fastify';
import { SignJWT, createLocalJWKSet } from 'jose';
import type { JSONWebKeySet, JWTVerifyGetKey } from 'jose';
import { CryptoRuntime } from '../../../../src/crypto/runtime.ts';
import { normalizeUserCode, randomId, randomToken, tokenHash } from '../../../../src/crypto/tokens.ts';
import type { Authentication, CodePayload, DeviceApproval } from '../../../../src/oauth/records.ts';
import type { ClientRecord } from '../../../../src/state/oauth-ops.ts';
import { TEST_ISSUER, oauthTestApp } from '../../../support/oauth-app.ts';
import type { TestOAuth } from '../../../support/oauth-app.ts';

export { TEST_ISSUER };
export const REDIRECT = 'https://rp.example/cb';
export const FORM = 'application/x-www-form-urlencoded';

export type Res = LightMyRequestResponse;

/** RFC 6749 §2.3.1: id and secret are form-urlencoded, then joined and base64-encoded. */
export function basic(id: string, secret: string): string {
  const enc = (s: string): string => new URLSearchParams({ s }).toString().slice(2);
  return 'Basic ' + Buffer.from(`${enc(id)}:${enc(secret)}`).toString('base64');
}

export async function post(t: TestOAuth, url: string, params: Record<string, string> | string, headers: Record<string, string> = {}): Promise<Res> {
  const payload = typeof params === 'string' ? params : new URLSearchParams(params).toString();
  return t.app.inject({ method: 'POST', url, payload, headers: { 'content-type': FORM, ...headers } });
}

/** A confidential client (client_secret_basic) and its credentials header. */
export interface Confidential {
  readonly client: ClientRecord;
  readonly secret: string;
  readonly auth: { authorization: string };
}

export async function confidential(t: TestOAuth, c: Partial<ClientRecord> & Pick<ClientRecord, 'client_id'>): Promise<Confidential> {
  const { client, secret } = await t.addClient({ token_endpoint_auth_method: 'client_secret_basic', ...c });
  assert.ok(secret);
  return { client, secret, auth: { authorization: basic(client.client_id, secret) } };
}

/** A confidential client with the code and refresh grants and one redirect URI. */
export async function codeClient(t: TestOAuth, clientId = 'webapp', extra: Partial<ClientRecord> = {}): Promise<Confidential> {
  return confidential(t, { client_id: clientId, redirect_uris: [REDIRECT], grant_types: ['authorization_code', 'refresh_token'], ...extra });
}

export function cryptoOf(t: TestOAuth): CryptoRuntime {
  return new CryptoRuntime(t.cache.local, t.master);
}

/** RFC 7636 §4.1/§4.2: a random verifier and its S256 challenge. */
export function pkce(): { verifier: string; challenge: string } {
  const verifier = randomToken(48);
  return { verifier, challenge: createHash('sha256').update(verifier, 'ascii').digest('base64url') };
}

export function authOf(sub: string, nowMs: number): Authentication {
  return { sub, authTime: Math.floor(nowMs / 1000) - 30, acr: 'urn:raftauth:acr:pwd', amr: ['pwd'] };
}

/** Store a code the way /authorize does (tokens op code.create, payload sealed with aad code:<hash>); returns the code. */
export async function makeCode(t: TestOAuth, p: Partial<CodePayload> & Pick<CodePayload, 'clientId'>): Promise<string> {
  const code = randomToken();
  const hash = tokenHash(code);
  const payload: CodePayload = {
    redirectUri: REDIRECT,
    codeChallenge: null,
    codeChallengeMethod: null,
    scope: ['openid', 'offline_access', 'profile'],
    nonce: null,
    auth: authOf('user-1', t.clock.now),
    sessionHash: null,
    audience: TEST_ISSUER,
    ...p,
  };
  const sealed = cryptoOf(t).sealer().sealValue(payload, `code:${hash}`);
  const r = await t.node.write({ domain: 'tokens', op: 'code.create', args: { hash, exp: t.clock.now + t.config.codeTtlS * 1000, sealed }, timeoutMs: 1000 });
  assert.ok(r.ok, 'code.create');
  return code;
}

/** A code bound to a fresh PKCE challenge, and the token request that redeems it. */
export async function codeWithPkce(t: TestOAuth, c: Confidential, p: Partial<CodePayload> = {}): Promise<{ code: string; verifier: string; params: Record<string, string> }> {
  const { verifier, challenge } = pkce();
  const code = await makeCode(t, { clientId: c.client.client_id, codeChallenge: challenge, codeChallengeMethod: 'S256', ...p });
  return { code, verifier, params: { grant_type: 'authorization_code', code, redirect_uri: REDIRECT, code_verifier: verifier } };
}

/** Approve a pending device request the way the verification page does (tokens op device.decide). */
export async function decideDevice(t: TestOAuth, userCode: string, approve: boolean, a: DeviceApproval | null): Promise<void> {
  const userCodeHash = tokenHash(normalizeUserCode(userCode)!);
  const view = await t.node.read({ domain: 'tokens', op: 'device.byUserCode', args: { userCodeHash }, timeoutMs: 1000 });
  assert.ok(view.ok && view.value, 'device.byUserCode');
  const deviceHash = (view.value as { hash: string }).hash;
  const approval = approve && a ? cryptoOf(t).sealer().sealValue(a, `approval:${deviceHash}`) : null;
  const r = await t.node.write({ domain: 'tokens', op: 'device.decide', args: { userCodeHash, approve, approval }, timeoutMs: 1000 });
  assert.ok(r.ok, 'device.decide');
  assert.deepEqual(r.value, { ok: true });
}

/** The JWKS the server publishes, as jose's key resolver. */
export async function jwksOf(t: TestOAuth): Promise<JWTVerifyGetKey> {
  const r = await t.app.inject({ method: 'GET', url: '/jwks.json' });
  assert.equal(r.statusCode, 200);
  return createLocalJWKSet(r.json() as JSONWebKeySet);
}

export function json(r: Res): Record<string, unknown> {
  return r.json() as Record<string, unknown>;
}

/** Assert an RFC 6749 §5.2 error with its code and status. */
export function assertError(r: Res, status: number, error: string): void {
  assert.equal(r.statusCode, status, `status of ${r.body}`);
  assert.equal(json(r).error, error, r.body);
  assert.equal(typeof json(r).error_description, 'string');
}

/** The claims of a JWT, unverified (tests verify separately where it matters). */
export function claimsOf(jwt: string): Record<string, unknown> {
  return JSON.parse(Buffer.from(jwt.split('.')[1]!, 'base64url').toString('utf8')) as Record<string, unknown>;
}
export function headerOf(jwt: string): Record<string, unknown> {
  return JSON.parse(Buffer.from(jwt.split('.')[0]!, 'base64url').toString('utf8')) as Record<string, unknown>;
}

/** A private_key_jwt client: an EC key pair, the public JWK registered. */
export async function jwtClient(t: TestOAuth, clientId: string, extra: Partial<ClientRecord> = {}): Promise<{ client: ClientRecord; privateKey: KeyObject; kid: string }> {
  const { privateKey, publicKey } = generateKeyPairSync('ec', { namedCurve: 'P-256' });
  const kid = randomId(12);
  const jwk = { ...publicKey.export({ format: 'jwk' }), kid, alg: 'ES256', use: 'sig' };
  const { client } = await t.addClient({ client_id: clientId, token_endpoint_auth_method: 'private_key_jwt', jwks: { keys: [jwk] }, ...extra });
  return { client, privateKey, kid };
}

/** An RFC 7523 client assertion. */
export async function assertion(t: TestOAuth, c: { client: ClientRecord; privateKey: KeyObject; kid: string }, o: { jti?: string; aud?: string; expInS?: number } = {}): Promise<string> {
  const nowS = Math.floor(t.clock.now / 1000);
  return new SignJWT({ jti: o.jti ?? randomId() })
    .setProtectedHeader({ alg: 'ES256', kid: c.kid })
    .setIssuer(c.client.client_id)
    .setSubject(c.client.client_id)
    .setAudience(o.aud ?? `${TEST_ISSUER}/token`)
    .setIssuedAt(nowS)
    .setExpirationTime(nowS + (o.expInS ?? 60))
    .sign(c.privateKey);
}

export async function app(): Promise<TestOAuth> {
  return oauthTestApp();
}
