// OAuth interop on a real 3-node cluster (issue 5): a certified relying-party library
// (oauth4webapi, panva) drives every flow over HTTP through a front proxy whose URL is the issuer —
// discovery, JWKS, client credentials, code + PKCE with the login form, refresh rotation, the
// device flow, introspection, revocation, userinfo — and access tokens are verified with
// jose.createRemoteJWKSet and oauth4webapi's RFC 9068 validator. Then failover in the middle of
// flows: the leader is killed between authorize and token, and between two refreshes; the flows
// complete on the surviving nodes and no family is falsely revoked.
import assert from 'node:assert/strict';
import { after, before, describe, it } from 'node:test';
import * as oauth from 'oauth4webapi';
import { createRemoteJWKSet, jwtVerify } from 'jose';
import { Browser, ProcessCluster, fillLogin, freePort, httpJson, parseForm, waitFor } from './harness.ts';
import { FrontProxy } from '../../scripts/lib/front-proxy.ts';
import { readdir, readFile } from 'node:fs/promises';
import { join } from 'node:path';
import { DurableStorage } from '../../src/storage/durable-storage.ts';
import { MasterKeyRing, unwrapRing } from '../../src/crypto/seal.ts';
import { openPasswordHash } from '../../src/crypto/password.ts';
import { unpackValue } from '../../src/state/command.ts';
import type { DataKeyRing, SigningKeyRing } from '../../src/state/oauth-ops.ts';

const IDS = [1, 2, 3] as const;
const REDIRECT = 'http://127.0.0.1:8765/callback';
const PASSWORD = 'correct horse battery staple';
const insecure = { [oauth.allowInsecureRequests]: true } as const;

/** Fail with the status and body when a response is not 200 (oauth4webapi's own message does not say what came back). */
async function ok200(res: Response | Promise<Response>): Promise<Response> {
  const r = await res;
  if (r.status !== 200) assert.fail(`HTTP ${r.status} from ${r.url}: ${await r.clone().text()}`);
  return r;
}

describe('OAuth on a 3-node cluster, driven by oauth4webapi', { timeout: 240_000 }, () => {
  let c: ProcessCluster;
  let front: FrontProxy;
  let issuer: URL;
  let as: oauth.AuthorizationServer;
  let confidential: oauth.Client;
  let confidentialSecret: string;
  const publicClient: oauth.Client = { client_id: 'rp-public', token_endpoint_auth_method: 'none' };
  let username: string;
  /** Secrets handed out during the flows: none may be found in clear in a node's files. */
  const secrets = new Map<string, string>();
  const remember = (what: string, v: string | undefined) => {
    if (v) secrets.set(v, what);
  };

  const admin = async (method: string, path: string, body?: unknown) => {
    const r = await httpJson(c.member(1).adminAddress, method, path, { ...(body !== undefined ? { body } : {}), headers: { authorization: `Bearer ${c.adminToken}` }, timeoutMs: 15_000 });
    return r;
  };

  before(async () => {
    const frontPort = await freePort();
    issuer = new URL(`http://127.0.0.1:${frontPort}`);
    c = await ProcessCluster.create([...IDS], { name: 'oauth', workers: 1, oauth: { issuer: issuer.origin, settings: { passwordScryptLn: 12 } } });
    front = new FrontProxy({ backends: IDS.map((id) => ({ id, url: `http://${c.member(id).httpAddress}` })), port: frontPort, checkIntervalMs: 100 });
    await front.start();
    await Promise.all(IDS.map((id) => c.startServing(id)));
    await c.waitLeader([...IDS]);
    // Every node has the signing keys in its workers' read cache.
    for (const id of IDS) {
      await waitFor(`JWKS on node ${id}`, async () => {
        const r = await httpJson(c.member(id).httpAddress, 'GET', '/jwks.json');
        return r.status === 200 && Array.isArray(r.body.keys) && (r.body.keys as unknown[]).length >= 1;
      }, 30_000);
    }
    await front.waitUntilReady(IDS.length, 30_000);

    const cc = await admin('POST', '/admin/v1/clients', {
      client_id: 'rp-confidential',
      client_name: 'RP confidential',
      token_endpoint_auth_method: 'client_secret_basic',
      redirect_uris: [REDIRECT],
      grant_types: ['client_credentials', 'authorization_code', 'refresh_token', 'urn:ietf:params:oauth:grant-type:device_code'],
      scopes: ['openid', 'profile', 'email', 'offline_access', 'api:read'],
      first_party: true,
    });
    assert.equal(cc.status, 201, JSON.stringify(cc.body));
    confidentialSecret = String(cc.body.client_secret);
    remember('the client secret', confidentialSecret);
    remember('the user password', PASSWORD);
    confidential = { client_id: 'rp-confidential', token_endpoint_auth_method: 'client_secret_basic' };
    const pc = await admin('POST', '/admin/v1/clients', {
      client_id: 'rp-public',
      client_name: 'RP public',
      token_endpoint_auth_method: 'none',
      redirect_uris: [REDIRECT],
      grant_types: ['authorization_code', 'refresh_token', 'urn:ietf:params:oauth:grant-type:device_code'],
      scopes: ['openid', 'profile', 'email', 'offline_access', 'api:read'],
      first_party: true,
    });
    assert.equal(pc.status, 201, JSON.stringify(pc.body));
    username = 'alice';
    const u = await admin('POST', '/admin/v1/users', { username, password: PASSWORD, name: 'Alice', email: 'alice@example.com', email_verified: true });
    assert.equal(u.status, 201, JSON.stringify(u.body));
    // The clients table reaches every node's workers through the read cache.
    for (const id of IDS) {
      await waitFor(`clients on node ${id}`, async () => {
        const r = await fetch(`http://${c.member(id).httpAddress}/token`, { method: 'POST', headers: { authorization: `Basic ${Buffer.from(`rp-confidential:${confidentialSecret}`).toString('base64')}`, 'content-type': 'application/x-www-form-urlencoded' }, body: 'grant_type=client_credentials' });
        return r.status === 200;
      }, 30_000);
    }

    as = await oauth.processDiscoveryResponse(issuer, await oauth.discoveryRequest(issuer, { algorithm: 'oidc', ...insecure }));
  });

  after(async () => {
    await front?.close();
    await c?.close();
  });

  /** The code flow with the login form, through the front. Returns the token response. */
  async function codeFlow(client: oauth.Client, auth: oauth.ClientAuth, beforeToken?: () => Promise<void>): Promise<oauth.TokenEndpointResponse> {
    const verifier = oauth.generateRandomCodeVerifier();
    const state = oauth.generateRandomState();
    const nonce = oauth.generateRandomNonce();
    const url = new URL(as.authorization_endpoint!);
    url.search = new URLSearchParams({
      client_id: client.client_id,
      redirect_uri: REDIRECT,
      response_type: 'code',
      scope: 'openid profile email offline_access api:read',
      code_challenge: await oauth.calculatePKCECodeChallenge(verifier),
      code_challenge_method: 'S256',
      state,
      nonce,
    }).toString();
    const browser = new Browser();
    let res = await browser.fetch(url.toString());
    // Follow redirects until the login page.
    for (let hops = 0; res.status >= 300 && res.status < 400 && hops < 5; hops++) res = await browser.fetch(new URL(res.headers.get('location')!, url).toString());
    assert.equal(res.status, 200, 'the login page');
    const loginUrl = res.url || url.toString();
    const form = parseForm(await res.text(), loginUrl);
    res = await browser.fetch(form.action, { form: fillLogin(form, username, PASSWORD) });
    let location: URL | null = null;
    for (let hops = 0; hops < 6; hops++) {
      assert.ok(res.status >= 300 && res.status < 400, `expected a redirect after login, got ${res.status}: ${(await res.text()).slice(0, 300)}`);
      const next = new URL(res.headers.get('location')!, issuer);
      if (next.toString().startsWith(REDIRECT)) {
        location = next;
        break;
      }
      res = await browser.fetch(next.toString());
    }
    assert.ok(location, 'redirected back to the client');
    const params = oauth.validateAuthResponse(as, client, location, state);
    remember('an authorization code', params.get('code') ?? undefined);
    remember('a PKCE verifier', verifier);
    for (const v of browser.seen) remember('a cookie value', v);
    await beforeToken?.();
    const tokenRes = await oauth.authorizationCodeGrantRequest(as, client, auth, params, REDIRECT, verifier, insecure);
    const tokens = await oauth.processAuthorizationCodeResponse(as, client, tokenRes, { expectedNonce: nonce, requireIdToken: true });
    remember('a refresh token', tokens.refresh_token);
    remember('an access token', tokens.access_token);
    return tokens;
  }

  it('serves identical metadata and JWKS on every node', async () => {
    const docs = await Promise.all(IDS.map((id) => httpJson(c.member(id).httpAddress, 'GET', '/.well-known/openid-configuration')));
    for (const d of docs) assert.deepEqual(d.body, docs[0]!.body);
    assert.equal(docs[0]!.body.issuer, issuer.origin);
    const oas = await httpJson(c.member(2).httpAddress, 'GET', '/.well-known/oauth-authorization-server');
    assert.equal(oas.body.issuer, issuer.origin);
    const jwks = await Promise.all(IDS.map((id) => httpJson(c.member(id).httpAddress, 'GET', '/jwks.json')));
    for (const j of jwks) assert.deepEqual(j.body, jwks[0]!.body);
  });

  it('client credentials: a JWT access token that jose and oauth4webapi verify (RFC 9068)', async () => {
    const res = await oauth.clientCredentialsGrantRequest(as, confidential, oauth.ClientSecretBasic(confidentialSecret), { scope: 'api:read' }, insecure);
    const tokens = await oauth.processClientCredentialsResponse(as, confidential, res);
    assert.equal(tokens.token_type.toLowerCase(), 'bearer');
    const jwks = createRemoteJWKSet(new URL(as.jwks_uri!));
    const { payload, protectedHeader } = await jwtVerify(tokens.access_token, jwks, { issuer: issuer.origin, typ: 'at+jwt' });
    assert.equal(payload.client_id, 'rp-confidential');
    assert.equal(payload.sub, 'rp-confidential');
    assert.equal(payload.scope, 'api:read');
    assert.equal(protectedHeader.alg, 'ES256');
    const aud = typeof payload.aud === 'string' ? payload.aud : payload.aud![0]!;
    const claims = await oauth.validateJwtAccessToken(as, new Request('http://rs.example/api', { headers: { authorization: `Bearer ${tokens.access_token}` } }), aud, insecure);
    assert.equal(claims.client_id, 'rp-confidential');
  });

  it('code + PKCE with the login form, then userinfo, refresh rotation, introspection and revocation', async () => {
    const auth = oauth.ClientSecretBasic(confidentialSecret);
    const tokens = await codeFlow(confidential, auth);
    const idClaims = oauth.getValidatedIdTokenClaims(tokens)!;
    assert.ok(idClaims.sub);
    assert.ok(tokens.refresh_token, 'offline_access granted a refresh token');

    const ui = await oauth.processUserInfoResponse(as, confidential, idClaims.sub, await oauth.userInfoRequest(as, confidential, tokens.access_token, insecure));
    assert.equal(ui.name, 'Alice');
    assert.equal(ui.email, 'alice@example.com');

    // Rotation: the new refresh token works, the old one is now rotated.
    const r1 = await oauth.processRefreshTokenResponse(as, confidential, await oauth.refreshTokenGrantRequest(as, confidential, auth, tokens.refresh_token!, insecure));
    assert.ok(r1.refresh_token && r1.refresh_token !== tokens.refresh_token);
    // r1's grace response (sealed) holds both of these: they must not be readable at rest.
    remember('a rotated refresh token', r1.refresh_token);
    remember('an access token from a refresh', r1.access_token);
    const r2 = await oauth.processRefreshTokenResponse(as, confidential, await oauth.refreshTokenGrantRequest(as, confidential, auth, r1.refresh_token!, insecure));
    assert.ok(r2.refresh_token);

    const intro = await oauth.processIntrospectionResponse(as, confidential, await oauth.introspectionRequest(as, confidential, auth, r2.access_token, insecure));
    assert.equal(intro.active, true);
    assert.equal(intro.sub, idClaims.sub);
    const introRt = await oauth.processIntrospectionResponse(as, confidential, await oauth.introspectionRequest(as, confidential, auth, r2.refresh_token!, insecure));
    assert.equal(introRt.active, true);

    await oauth.processRevocationResponse(await oauth.revocationRequest(as, confidential, auth, r2.refresh_token!, insecure));
    const after = await oauth.processIntrospectionResponse(as, confidential, await oauth.introspectionRequest(as, confidential, auth, r2.refresh_token!, insecure));
    assert.equal(after.active, false);
    const atAfter = await oauth.processIntrospectionResponse(as, confidential, await oauth.introspectionRequest(as, confidential, auth, r2.access_token, insecure));
    assert.equal(atAfter.active, false, 'revoking the refresh token revokes the access tokens of its grant (RFC 7009 §2.1)');
  });

  it('a public client: code + PKCE, then refresh', async () => {
    const tokens = await codeFlow(publicClient, oauth.None());
    assert.ok(tokens.refresh_token);
    const r = await oauth.processRefreshTokenResponse(as, publicClient, await oauth.refreshTokenGrantRequest(as, publicClient, oauth.None(), tokens.refresh_token!, insecure));
    assert.ok(r.access_token);
  });

  it('device flow: authorization, approval on the verification page, token', async () => {
    const auth = oauth.ClientSecretBasic(confidentialSecret);
    const da = await oauth.processDeviceAuthorizationResponse(as, confidential, await oauth.deviceAuthorizationRequest(as, confidential, auth, { scope: 'openid api:read' }, insecure));
    assert.match(da.user_code, /^[BCDFGHJKLMNPQRSTVWXZ]{4}-[BCDFGHJKLMNPQRSTVWXZ]{4}$/);
    remember('a device code', da.device_code);
    remember('a user code', da.user_code.replace('-', ''));
    // Pending before approval.
    const pending = await oauth.deviceCodeGrantRequest(as, confidential, auth, da.device_code, insecure);
    await assert.rejects(oauth.processDeviceCodeResponse(as, confidential, pending), (e: unknown) => (e as { error?: string }).error === 'authorization_pending');

    // The user visits the verification page (the code prefilled), signs in and approves.
    const browser = new Browser();
    let page = da.verification_uri_complete!;
    let res = await browser.fetch(page);
    let approved = false;
    for (let hops = 0; hops < 8 && !approved; hops++) {
      if (res.status >= 300 && res.status < 400) {
        page = new URL(res.headers.get('location')!, page).toString();
        res = await browser.fetch(page);
        continue;
      }
      assert.equal(res.status, 200, `device page ${page}: HTTP ${res.status}`);
      const html = await res.text();
      const form = parseForm(html, page);
      if (form.inputs.some((i) => i.type === 'password')) {
        res = await browser.fetch(form.action, { form: fillLogin(form, username, PASSWORD) });
        continue;
      }
      // The confirmation page: Approve / Deny buttons named `decision`.
      assert.ok(form.inputs.some((i) => i.name === 'decision'), `expected the confirmation page, got: ${html.slice(0, 400)}`);
      res = await browser.fetch(form.action, { form: { ...form.fields, decision: 'approve' } });
      assert.equal(res.status, 200, 'the approval is confirmed');
      approved = true;
    }
    assert.ok(approved, 'the device request was approved through the page');
    for (const v of browser.seen) remember('a cookie value', v);
    const tokens = await waitFor(
      'the device-code grant after approval',
      async () => {
        const r = await oauth.deviceCodeGrantRequest(as, confidential, auth, da.device_code, insecure);
        try {
          return await oauth.processDeviceCodeResponse(as, confidential, r);
        } catch (e) {
          const err = (e as { error?: string }).error;
          if (err === 'authorization_pending' || err === 'slow_down') return null;
          throw e;
        }
      },
      (da.interval ?? 5) * 1000 * 4,
    );
    assert.ok(tokens.access_token);
    assert.ok(oauth.getValidatedIdTokenClaims(tokens)?.sub);
  });

  it('failover: the leader is killed between authorize and token, and between two refreshes; no family is falsely revoked', async () => {
    const auth = oauth.ClientSecretBasic(confidentialSecret);
    let killed = 0;
    const tokens = await codeFlow(confidential, auth, async () => {
      killed = await c.waitLeader([...IDS]);
      await c.kill(killed);
    });
    assert.ok(tokens.refresh_token);
    const r1 = await oauth.processRefreshTokenResponse(as, confidential, await oauth.refreshTokenGrantRequest(as, confidential, auth, tokens.refresh_token!, insecure));
    // Bring the first node back, then kill the new leader between two refreshes.
    await c.startServing(killed);
    await front.waitUntilReady(IDS.length, 30_000);
    const leader2 = await c.waitLeader([...IDS]);
    await c.kill(leader2);
    const r2 = await oauth.processRefreshTokenResponse(as, confidential, await ok200(oauth.refreshTokenGrantRequest(as, confidential, auth, r1.refresh_token!, insecure)));
    const intro = await oauth.processIntrospectionResponse(as, confidential, await ok200(oauth.introspectionRequest(as, confidential, auth, r2.refresh_token!, insecure)));
    assert.equal(intro.active, true, 'the family survived both leader kills');
    await c.startServing(leader2);
  });

  it('no secret is in clear in any node\'s files: LevelDB tables, the raft log, snapshots (DESIGN principle 5)', async () => {
    // Let every node catch up, then stop them all so their files are complete and closed.
    const leader = await c.waitLeader([...IDS]);
    await c.waitCaughtUp([...IDS], leader);
    for (const id of IDS) await c.stop(id);

    // The signing private key and the data key, recovered the way an operator with the master key
    // could: they must not appear in the files either.
    const master = MasterKeyRing.load({ file: join(c.dir, 'master.key'), env: undefined });
    const binarySecrets: [Buffer, string][] = [];
    const storage = await DurableStorage.open(c.dataDir(1));
    try {
      const dk = unpackValue<DataKeyRing>(storage.getSync('sys.dk', 'ring')!);
      const ring = unpackValue<SigningKeyRing>(storage.getSync('sys.keys', 'ring')!);
      const sealer = unwrapRing(dk, master);
      for (const k of ring.keys) {
        const jwk = sealer.openValue<{ d: string }>(k.sealedPrivate, `sk:${k.kid}`);
        remember(`the private key ${k.kid}`, jwk.d);
      }
      // The user's scrypt hash: sealed before it was proposed, so not even the hash is readable at rest.
      const sub = unpackValue<string>(storage.getSync('users.name', username)!);
      const user = unpackValue<{ sub: string; password_hash: string }>(storage.getSync('users', sub)!);
      const phc = openPasswordHash(sealer, user.sub, user.password_hash);
      assert.match(phc, /^\$scrypt\$/);
      remember('the password hash', phc.split('$').pop());
      for (const w of dk.keys) {
        const key = Buffer.from(master.unwrap(w));
        remember(`the data key ${w.id} (base64url)`, key.toString('base64url'));
        binarySecrets.push([key, `the data key ${w.id} (raw bytes)`]);
      }
    } finally {
      await storage.close();
    }
    assert.ok(secrets.size >= 10, `collected ${secrets.size} secrets`);

    const files: string[] = [];
    const walk = async (dir: string): Promise<void> => {
      for (const e of await readdir(dir, { withFileTypes: true })) {
        const p = join(dir, e.name);
        if (e.isDirectory()) await walk(p);
        else if (e.isFile()) files.push(p);
      }
    };
    for (const id of IDS) await walk(c.dataDir(id));
    const blobs = await Promise.all(files.map(async (f) => ({ f, b: await readFile(f) })));
    // Positive control: data stored in clear on purpose (a client id, a username) is found, so the
    // search really reads the records (LevelDB may compress blocks; these strings survive it).
    for (const clear of ['rp-confidential', 'alice']) {
      assert.ok(blobs.some(({ b }) => b.includes(clear)), `the control string ${clear} was not found in ${files.length} files`);
    }
    for (const [secret, what] of secrets) {
      for (const { f, b } of blobs) assert.ok(!b.includes(secret), `${what} is in clear in ${f}`);
    }
    for (const [secret, what] of binarySecrets) {
      for (const { f, b } of blobs) assert.ok(!b.includes(secret), `${what} is in ${f}`);
    }
  });
});
