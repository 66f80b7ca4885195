// Helpers for the browser-side tests: a cookie jar carried between app.inject calls by hand, PKCE
// pairs, reading hidden fields out of pages, opening sealed records with the cluster's data key.
import assert from 'node:assert/strict';
import { createHash, randomBytes } from 'node:crypto';
import type { LightMyRequestResponse } from 'fastify';
import { parseSetCookie } from 'cookie';
import { oauthTestApp } from '../../../support/oauth-app.ts';
import type { TestOAuth } from '../../../support/oauth-app.ts';
import type { OAuthConfig } from '../../../../src/oauth/config.ts';
import { unpackValue } from '../../../../src/state/command.ts';
import type { ClientRecord, DataKeyRing } from '../../../../src/state/oauth-ops.ts';
import { unwrapRing } from '../../../../src/crypto/seal.ts';
import type { Sealer } from '../../../../src/crypto/seal.ts';
import { normalizeUserCode, randomToken, randomUserCode, tokenHash } from '../../../../src/crypto/tokens.ts';
import type { DevicePayload } from '../../../../src/oauth/records.ts';

export const SPA_REDIRECT = 'https://spa.example/cb';
export const PARTNER_REDIRECT = 'https://partner.example/cb?tenant=a%20b';
export const PASSWORD = 'correct horse battery staple';

/** A browser's cookies: Set-Cookie headers applied in order, sent back as a Cookie header. */
export class CookieJar {
  readonly cookies = new Map<string, string>();

  take(res: LightMyRequestResponse): void {
    const raw = res.headers['set-cookie'];
    const list = raw === undefined ? [] : Array.isArray(raw) ? raw : [raw];
    for (const line of list) {
      const c = parseSetCookie(String(line));
      if (c.maxAge === 0 || !c.value) this.cookies.delete(c.name);
      else this.cookies.set(c.name, c.value);
    }
  }

  header(): Record<string, string> {
    if (this.cookies.size === 0) return {};
    return { cookie: [...this.cookies].map(([k, v]) => `${k}=${v}`).join('; ') };
  }
}

export interface Pkce {
  readonly verifier: string;
  readonly challenge: string;
}

export function pkce(): Pkce {
  const verifier = randomBytes(32).toString('base64url');
  return { verifier, challenge: createHash('sha256').update(verifier).digest('base64url') };
}

export interface BrowserTest {
  readonly t: TestOAuth;
  /** Public, first-party, redirect SPA_REDIRECT. */
  readonly spa: ClientRecord;
  /** Confidential, third-party (consent), redirect PARTNER_REDIRECT (with a query to keep). */
  readonly partner: ClientRecord;
  readonly partnerSecret: string;
  readonly aliceSub: string;
  readonly sealer: Sealer;
}

export async function browserTest(config: Partial<OAuthConfig> = {}): Promise<BrowserTest> {
  const t = await oauthTestApp({ config });
  const { client: spa } = await t.addClient({
    client_id: 'spa',
    client_name: 'Single Page App',
    token_endpoint_auth_method: 'none',
    redirect_uris: [SPA_REDIRECT],
    grant_types: ['authorization_code', 'refresh_token'],
    first_party: true,
  });
  const { client: partner, secret } = await t.addClient({
    client_id: 'partner',
    client_name: 'Partner App',
    token_endpoint_auth_method: 'client_secret_basic',
    redirect_uris: [PARTNER_REDIRECT, 'https://partner.example/other'],
    grant_types: ['authorization_code', 'refresh_token'],
    first_party: false,
  });
  const alice = await t.addUser('alice', PASSWORD, { name: 'Alice Liddell', email: 'alice@example.com', email_verified: true });
  const ringBytes = t.node.state.get('sys.dk')?.get('ring');
  assert.ok(ringBytes, 'the data key ring exists');
  const sealer = unwrapRing(unpackValue<DataKeyRing>(ringBytes), t.master);
  return { t, spa, partner, partnerSecret: secret!, aliceSub: alice.sub, sealer };
}

/** /authorize?… with these parameters (undefined ones left out). */
export function authorizeUrl(params: Record<string, string | undefined>): string {
  const q = new URLSearchParams();
  for (const [k, v] of Object.entries(params)) if (v !== undefined) q.append(k, v);
  return `/authorize?${q.toString()}`;
}

/** A valid code request for the SPA client. */
export function spaParams(p: Pkce, extra: Record<string, string | undefined> = {}): Record<string, string | undefined> {
  return { response_type: 'code', client_id: 'spa', redirect_uri: SPA_REDIRECT, scope: 'openid profile', state: 'st-1', code_challenge: p.challenge, code_challenge_method: 'S256', ...extra };
}

/** The value of a hidden input in a page. */
export function hiddenField(html: string, name: string): string {
  const m = new RegExp(`<input type="hidden" name="${name}" value="([^"]*)">`).exec(html);
  assert.ok(m, `the page has a hidden ${name} field:\n${html}`);
  return m[1]!.replace(/&#(\d+);/g, (_, n: string) => String.fromCharCode(Number(n)));
}

/** The query parameters of a redirect response, after checking it goes to `base`. */
export function redirectParams(res: LightMyRequestResponse, base: string): URLSearchParams {
  assert.ok(res.statusCode === 302 || res.statusCode === 303, `expected a redirect, got ${res.statusCode}: ${res.body}`);
  const loc = String(res.headers.location);
  assert.ok(loc.startsWith(base + (base.includes('?') ? '&' : '?')), `redirect ${loc} goes to ${base}`);
  return new URLSearchParams(loc.slice(base.length + 1));
}

export function form(fields: Record<string, string>): { headers: Record<string, string>; payload: string } {
  return { headers: { 'content-type': 'application/x-www-form-urlencoded' }, payload: new URLSearchParams(fields).toString() };
}

/** A full browser: GET /authorize with the jar, then submit the login page as alice. Returns the login response. */
export async function authorizeAndLogin(bt: BrowserTest, jar: CookieJar, params: Record<string, string | undefined>, password = PASSWORD): Promise<LightMyRequestResponse> {
  const page = await bt.t.app.inject({ method: 'GET', url: authorizeUrl(params), headers: jar.header() });
  jar.take(page);
  assert.equal(page.statusCode, 200, page.body);
  assert.match(page.body, /<h1>Sign in<\/h1>/);
  return login(bt, jar, hiddenField(page.body, 'interaction'), 'alice', password);
}

export async function login(bt: BrowserTest, jar: CookieJar, interaction: string, username: string, password: string): Promise<LightMyRequestResponse> {
  const f = form({ interaction, username, password });
  const res = await bt.t.app.inject({ method: 'POST', url: '/login', headers: { ...f.headers, ...jar.header() }, payload: f.payload });
  jar.take(res);
  return res;
}

/** The stored code record for a code value, and its payload opened with the cluster's sealer. */
export function codeRecord(bt: BrowserTest, code: string): { exp: number; payload: Record<string, unknown> } | null {
  const hash = tokenHash(code);
  const raw = bt.t.node.state.get('tok.code')?.get(hash);
  if (raw === undefined) return null;
  const rec = unpackValue<{ exp: number; sealed: Uint8Array }>(raw);
  return { exp: rec.exp, payload: bt.sealer.openValue<Record<string, unknown>>(rec.sealed, 'code:' + hash) };
}

/** Number of login sessions in state. */
export function sessionCount(bt: BrowserTest): number {
  return bt.t.node.state.get('tok.sess')?.size ?? 0;
}

/** A pending device authorization request for client spa, stored as device-authorization.ts stores it: its user code and device-code hash. */
export async function deviceRequest(bt: BrowserTest, scope: string[] = ['openid', 'profile']): Promise<{ userCode: string; hash: string }> {
  const userCode = randomUserCode();
  const hash = tokenHash(randomToken());
  const payload: DevicePayload = { clientId: 'spa', scope, audience: bt.t.config.issuer };
  const r = await bt.t.node.write({
    domain: 'tokens',
    op: 'device.create',
    args: { hash, userCodeHash: tokenHash(normalizeUserCode(userCode)!), exp: bt.t.clock.now + 600_000, intervalMs: 5000, sealed: bt.sealer.sealValue(payload, 'device:' + hash) },
    timeoutMs: 1000,
  });
  assert.ok(r.ok, JSON.stringify(r));
  return { userCode, hash };
}
