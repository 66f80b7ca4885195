// MFA in a real browser (Debian chromium driven by playwright-core, headless) against a real
// 3-node cluster behind a front proxy whose URL is the issuer: password login → TOTP enrollment
// (the secret read from the page, codes computed here) → sign out → password + TOTP; then step-up
// to the phishing-resistant level with acr_values: WebAuthn registration and authentication with a
// CDP virtual authenticator (CTAP2, internal, resident keys, user verification) → sign out →
// password + security key; then, signed out, a passkey sign-in without a username: the key
// registered above is a resident (discoverable) credential, and the sign-in page's "Sign in with a
// passkey" button alone gets a code (acr phr, amr hwk user mfa). Every code is redeemed and the ID
// token's acr/amr checked.
//
// WebAuthn needs a secure context and an RP ID that is a domain: the issuer is
// http://localhost:<port> (a potentially trustworthy origin) and mfa.rpId defaults to 'localhost'.
// The front proxy and the client's callback (a tiny HTTP server) listen on 127.0.0.1; the browser
// reaches nothing else.
//
// Screenshots of every page: test-artifacts/e2e/ (gitignored).
import assert from 'node:assert/strict';
import { existsSync, mkdirSync } from 'node:fs';
import { createServer } from 'node:http';
import type { Server } from 'node:http';
import type { AddressInfo } from 'node:net';
import { join } from 'node:path';
import { createHash, randomBytes } from 'node:crypto';
import { after, before, describe, it } from 'node:test';
import { chromium } from 'playwright-core';
import type { Browser, BrowserContext, Page } from 'playwright-core';
import { decodeJwt } from 'jose';
import { ProcessCluster, REPO_ROOT, freePort, httpJson, waitFor } from '../cluster/harness.ts';
import { FrontProxy } from '../../scripts/lib/front-proxy.ts';
import { totpCodeAt, totpStep } from '../../src/mfa/totp.ts';

const IDS = [1, 2, 3] as const;
const CHROMIUM = '/usr/bin/chromium';
const PASSWORD = 'correct horse battery staple';
const ARTIFACTS = join(REPO_ROOT, 'test-artifacts', 'e2e');
const ACR_MFA = 'urn:raftauth:acr:mfa';
const ACR_PHR = 'urn:raftauth:acr:phr';

describe('MFA in chromium on a 3-node cluster', { timeout: 90_000, skip: existsSync(CHROMIUM) ? false : `${CHROMIUM} is not installed (Debian package chromium)` }, () => {
  let c: ProcessCluster;
  let front: FrontProxy;
  let frontPort: number;
  let issuer: string;
  let browser: Browser;
  let context: BrowserContext;
  let page: Page;
  let shot = 0;
  let callback: Server | undefined;
  let REDIRECT = '';

  const admin = (method: string, path: string, body?: unknown) =>
    httpJson(c.member(1).adminAddress, method, path, { ...(body !== undefined ? { body } : {}), headers: { authorization: `Bearer ${c.adminToken}` }, timeoutMs: 15_000 });

  async function screenshot(name: string): Promise<void> {
    shot += 1;
    await page.screenshot({ path: join(ARTIFACTS, `${String(shot).padStart(2, '0')}-${name}.png`), fullPage: true });
  }

  before(async () => {
    mkdirSync(ARTIFACTS, { recursive: true });
    // The client's redirect URI: the browser lands here with the code (the test reads it from the URL).
    const cb = createServer((_req, res) => res.writeHead(200, { 'content-type': 'text/plain' }).end('client callback'));
    callback = cb;
    await new Promise<void>((r) => cb.listen(0, '127.0.0.1', () => r()));
    REDIRECT = `http://127.0.0.1:${(cb.address() as AddressInfo).port}/callback`;
    frontPort = await freePort();
    issuer = `http://localhost:${frontPort}`;
    c = await ProcessCluster.create([...IDS], { name: 'mfa-e2e', oauth: { issuer, settings: { passwordScryptLn: 12 } } });
    front = new FrontProxy({ backends: IDS.map((id) => ({ id, url: `http://${c.member(id).httpAddress}` })), port: frontPort, checkIntervalMs: 100 });
    await front.start();
    await Promise.all(IDS.map((id) => c.startServing(id)));
    await c.waitLeader([...IDS]);
    for (const id of IDS) {
      await waitFor(`JWKS on node ${id}`, async () => {
        const r = await httpJson(c.member(id).httpAddress, 'GET', '/jwks.json');
        return r.status === 200 && Array.isArray(r.body.keys) && (r.body.keys as unknown[]).length >= 1;
      }, 30_000);
    }
    await front.waitUntilReady(IDS.length, 30_000);
    const cl = await admin('POST', '/admin/v1/clients', {
      client_id: 'e2e',
      client_name: 'E2E App',
      token_endpoint_auth_method: 'none',
      redirect_uris: [REDIRECT],
      grant_types: ['authorization_code'],
      scopes: ['openid', 'profile'],
      first_party: true,
      require_mfa: true,
    });
    assert.equal(cl.status, 201, JSON.stringify(cl.body));
    const u = await admin('POST', '/admin/v1/users', { username: 'carol', password: PASSWORD, name: 'Carol' });
    assert.equal(u.status, 201, JSON.stringify(u.body));

    browser = await chromium.launch({ executablePath: CHROMIUM, headless: true, args: ['--no-sandbox'] });
    context = await browser.newContext();
    page = await context.newPage();
  });

  after(async () => {
    await browser?.close();
    await new Promise<void>((r) => (callback ? callback.close(() => r()) : r()));
    await front?.close();
    await c?.close();
  });

  /** Start a code flow in the browser; returns the PKCE verifier. */
  async function authorize(extra: Record<string, string> = {}): Promise<string> {
    const verifier = randomBytes(32).toString('base64url');
    const q = new URLSearchParams({
      response_type: 'code',
      client_id: 'e2e',
      redirect_uri: REDIRECT,
      scope: 'openid profile',
      state: randomBytes(8).toString('hex'),
      code_challenge: createHash('sha256').update(verifier).digest('base64url'),
      code_challenge_method: 'S256',
      ...extra,
    });
    await page.goto(`${issuer}/authorize?${q.toString()}`);
    return verifier;
  }

  async function heading(): Promise<string> {
    return (await page.locator('h1').textContent()) ?? '';
  }

  async function signIn(): Promise<void> {
    assert.equal(await heading(), 'Sign in');
    await screenshot('login');
    await page.fill('#username', 'carol');
    await page.fill('#password', PASSWORD);
    await page.click('button[type=submit]');
  }

  /** The code the browser landed on the client with, redeemed; returns the ID token's claims. */
  async function redeem(verifier: string): Promise<Record<string, unknown>> {
    await page.waitForURL(`${REDIRECT}**`, { timeout: 15_000 });
    const url = new URL(page.url());
    const code = url.searchParams.get('code');
    assert.ok(code, `the redirect carries a code: ${page.url()}`);
    assert.equal(url.searchParams.get('iss'), issuer);
    // From here (not the browser): the front on 127.0.0.1 (Node may resolve localhost to ::1 first).
    const res = await fetch(`http://127.0.0.1:${frontPort}/token`, {
      method: 'POST',
      headers: { 'content-type': 'application/x-www-form-urlencoded' },
      body: new URLSearchParams({ grant_type: 'authorization_code', code, redirect_uri: REDIRECT, client_id: 'e2e', code_verifier: verifier }).toString(),
    });
    const body = (await res.json()) as Record<string, unknown>;
    assert.equal(res.status, 200, JSON.stringify(body));
    const at = decodeJwt(body.access_token as string);
    const id = decodeJwt(body.id_token as string);
    assert.equal(at.acr, id.acr, 'the access token carries the same acr');
    assert.deepEqual(at.amr, id.amr);
    return id;
  }

  async function signOut(): Promise<void> {
    await page.goto(`${issuer}/logout`);
    assert.equal(await heading(), 'Sign out?');
    await page.click('button[type=submit]');
    await page.waitForSelector('h1:text("Signed out")');
  }

  let secret = '';
  let enrolledStep = 0;
  /** The CDP session and virtual authenticator the WebAuthn steps share. */
  let cdp: Awaited<ReturnType<BrowserContext['newCDPSession']>> | undefined;
  let authenticatorId = '';

  it('password, then TOTP enrollment from the QR page (required by the client), recovery codes, acr mfa', async () => {
    const verifier = await authorize();
    await signIn();
    await page.waitForSelector('h1:text("Set up two-step verification")');
    assert.match(await page.content(), /E2E App requires two-step verification/);
    await screenshot('enroll-choice');
    await page.click('button:text("Set up an authenticator app")');
    await page.waitForSelector('.qr svg');
    await screenshot('totp-enroll');
    secret = ((await page.locator('#totp-secret').textContent()) ?? '').replace(/\s/g, '');
    assert.match(secret, /^[A-Z2-7]{32}$/);
    enrolledStep = totpStep(Date.now());
    await page.fill('#code', totpCodeAt(secret, enrolledStep));
    await page.click('button:text("Confirm")');
    await page.waitForSelector('h1:text("Your recovery codes")');
    assert.equal(await page.locator('#recovery-codes li').count(), 10);
    await screenshot('recovery-codes');
    await page.click('button[type=submit]');
    const id = await redeem(verifier);
    assert.equal(id.acr, ACR_MFA);
    assert.deepEqual(id.amr, ['pwd', 'otp', 'mfa']);
  });

  it('after signing out: password, then the TOTP code', async () => {
    await signOut();
    const verifier = await authorize();
    await signIn();
    await page.waitForSelector('h1:text("Two-step verification")');
    await screenshot('totp-verify');
    // The enrollment's time step is spent (replay refused); the next one is within the ±1 window.
    await page.fill('#code', totpCodeAt(secret, Math.max(enrolledStep + 1, totpStep(Date.now()))));
    await page.click('button:text("Verify")');
    const id = await redeem(verifier);
    assert.equal(id.acr, ACR_MFA);
    assert.deepEqual(id.amr, ['pwd', 'otp', 'mfa']);
  });

  it('acr_values=phr steps up: register a security key (virtual authenticator), then authenticate with it; then password + key after signing out', async () => {
    cdp = await context.newCDPSession(page);
    await cdp.send('WebAuthn.enable');
    ({ authenticatorId } = await cdp.send('WebAuthn.addVirtualAuthenticator', {
      options: { protocol: 'ctap2', transport: 'internal', hasResidentKey: true, hasUserVerification: true, isUserVerified: true },
    }));
    // The session has acr mfa (TOTP): no password page, straight to registering a key.
    let verifier = await authorize({ acr_values: ACR_PHR });
    await page.waitForSelector('h1:text("Register a security key")');
    await screenshot('webauthn-register');
    await page.fill('#name', 'Virtual key');
    await page.click('#webauthn-start');
    // Registered; now the authentication ceremony with the new key.
    await page.waitForSelector('h1:text("Two-step verification")');
    assert.equal(await page.locator('#webauthn-form[data-mode=authenticate]').count(), 1, await page.content());
    await screenshot('webauthn-authenticate');
    await page.click('#webauthn-start');
    let id = await redeem(verifier);
    assert.equal(id.acr, ACR_PHR);
    assert.deepEqual(id.amr, ['pwd', 'hwk', 'user', 'mfa']);
    const { credentials } = await cdp.send('WebAuthn.getCredentials', { authenticatorId });
    assert.equal(credentials.length, 1);
    assert.equal(credentials[0]!.rpId, 'localhost');

    const factors = await admin('GET', '/admin/v1/users/carol/factors');
    assert.equal(factors.status, 200);
    assert.equal((factors.body.webauthn as unknown[]).length, 1);

    await signOut();
    verifier = await authorize();
    await signIn();
    // A user with a key is offered the key first. (The sign-in page has a #webauthn-form too, the
    // passkey option: wait for the second-factor page's heading before touching the form.)
    await page.waitForSelector('h1:text("Two-step verification")');
    await page.waitForSelector('#webauthn-form[data-mode=authenticate]');
    await screenshot('webauthn-login');
    await page.click('#webauthn-start');
    id = await redeem(verifier);
    assert.equal(id.acr, ACR_PHR);
    assert.deepEqual(id.amr, ['pwd', 'hwk', 'user', 'mfa']);
  });

  it('passkey sign-in without a username: the resident key registered above, one button, a code with acr phr and amr hwk user mfa', async () => {
    assert.ok(cdp, 'the virtual authenticator of the previous step');
    // Registration asked for a resident key (residentKey 'preferred') and this authenticator made one.
    const { credentials } = await cdp.send('WebAuthn.getCredentials', { authenticatorId });
    assert.equal(credentials.length, 1);
    assert.equal(credentials[0]!.isResidentCredential, true);
    const before = credentials[0]!.signCount;

    await signOut();
    const verifier = await authorize();
    assert.equal(await heading(), 'Sign in');
    await page.waitForSelector('#webauthn-start:text("Sign in with a passkey")');
    await screenshot('passkey-signin');
    // No username, no password: the authenticator offers its discoverable credential for localhost.
    assert.equal(await page.inputValue('#username'), '');
    await page.click('#webauthn-start');
    const id = await redeem(verifier);
    assert.equal(id.acr, ACR_PHR);
    assert.deepEqual(id.amr, ['hwk', 'user', 'mfa']);
    const sub = ((await admin('GET', '/admin/v1/users/carol')).body.user as { sub: string }).sub;
    assert.equal(id.sub, sub);
    const after = (await cdp.send('WebAuthn.getCredentials', { authenticatorId })).credentials[0]!.signCount;
    assert.ok(after > before, `the authenticator signed (counter ${before} → ${after})`);
  });
});
