// RFC 8628 device authorization grant: /device_authorization, then polling /token through
// pending, slow_down, approval (made the way the verification page makes it), redemption once.
import { after, before, describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { jwtVerify } from 'jose';
import type { TestOAuth } from '../../../support/oauth-app.ts';
import { TEST_ISSUER, app, assertError, authOf, confidential, decideDevice, json, jwksOf, post } from './helpers.ts';
import type { Confidential } from './helpers.ts';

const GRANT = 'urn:ietf:params:oauth:grant-type:device_code';

describe('device authorization grant', () => {
  let t: TestOAuth;
  let tv: Confidential;
  let other: Confidential;

  before(async () => {
    t = await app();
    tv = await confidential(t, { client_id: 'tv', grant_types: [GRANT, 'refresh_token'] });
    other = await confidential(t, { client_id: 'other-tv', grant_types: [GRANT] });
    await t.addClient({ client_id: 'cli', token_endpoint_auth_method: 'none', grant_types: [GRANT] });
  });
  after(() => t.close());

  async function start(scope = 'openid offline_access profile', auth: Record<string, string> = tv.auth, extra: Record<string, string> = {}): Promise<{ device_code: string; user_code: string; interval: number }> {
    const r = await post(t, '/device_authorization', { scope, ...extra }, auth);
    assert.equal(r.statusCode, 200, r.body);
    return json(r) as { device_code: string; user_code: string; interval: number };
  }
  const poll = (deviceCode: string, auth: Record<string, string> = tv.auth, extra: Record<string, string> = {}) => post(t, '/token', { grant_type: GRANT, device_code: deviceCode, ...extra }, auth);

  test('/device_authorization answers the RFC 8628 §3.2 members and stores only hashes', async () => {
    const r = await post(t, '/device_authorization', { scope: 'openid profile' }, tv.auth);
    assert.equal(r.statusCode, 200, r.body);
    assert.equal(r.headers['cache-control'], 'no-store');
    const b = json(r);
    assert.match(String(b.device_code), /^[A-Za-z0-9_-]{43}$/);
    assert.match(String(b.user_code), /^[BCDFGHJKLMNPQRSTVWXZ]{4}-[BCDFGHJKLMNPQRSTVWXZ]{4}$/);
    assert.equal(b.verification_uri, `${TEST_ISSUER}/device`);
    assert.equal(b.verification_uri_complete, `${TEST_ISSUER}/device?user_code=${b.user_code}`);
    assert.equal(b.expires_in, t.config.deviceCodeTtlS);
    assert.equal(b.interval, t.config.devicePollIntervalS);
    const raw = JSON.stringify(t.node.entries('tok.device').map(([k, v]) => [k, Buffer.from(v).toString('latin1')]));
    assert.equal(raw.includes(String(b.device_code)), false);
  });

  test('pending → slow_down → approved → tokens → a second redemption fails', async () => {
    const d = await start();
    assertError(await poll(d.device_code), 400, 'authorization_pending');
    // RFC 8628 §3.5: polling again before the interval is slow_down (and the interval grows by 5 s).
    assertError(await poll(d.device_code), 400, 'slow_down');
    t.clock.now += (d.interval + 5) * 1000;
    assertError(await poll(d.device_code), 400, 'authorization_pending');

    const user = authOf('user-7', t.clock.now);
    await decideDevice(t, d.user_code, true, { auth: user, scope: ['openid', 'offline_access', 'profile'] });
    t.clock.now += (d.interval + 10) * 1000;
    const ok = await poll(d.device_code);
    assert.equal(ok.statusCode, 200, ok.body);
    const body = json(ok);
    assert.equal(body.scope, 'openid offline_access profile');
    assert.equal(typeof body.refresh_token, 'string');
    assert.equal(typeof body.id_token, 'string');
    const { payload } = await jwtVerify(String(body.access_token), await jwksOf(t), { issuer: TEST_ISSUER, typ: 'at+jwt', currentDate: new Date(t.clock.now) });
    assert.equal(payload.sub, 'user-7');
    assert.equal(payload.client_id, 'tv');

    t.clock.now += (d.interval + 10) * 1000;
    assertError(await poll(d.device_code), 400, 'invalid_grant');
    // The refresh token works like any other.
    const r = await post(t, '/token', { grant_type: 'refresh_token', refresh_token: String(body.refresh_token) }, tv.auth);
    assert.equal(r.statusCode, 200, r.body);
  });

  test('the user may approve fewer scopes than requested', async () => {
    const d = await start('openid profile');
    await decideDevice(t, d.user_code, true, { auth: authOf('user-8', t.clock.now), scope: ['openid'] });
    const ok = await poll(d.device_code);
    assert.equal(ok.statusCode, 200, ok.body);
    assert.equal(json(ok).scope, 'openid');
  });

  test('a denial is access_denied', async () => {
    const d = await start();
    await decideDevice(t, d.user_code, false, null);
    assertError(await poll(d.device_code), 400, 'access_denied');
  });

  test('an expired device code is expired_token', async () => {
    const d = await start();
    t.clock.now += t.config.deviceCodeTtlS * 1000;
    assertError(await poll(d.device_code), 400, 'expired_token');
  });

  test("another client's device code is invalid_grant; an unknown one too", async () => {
    const d = await start();
    assertError(await poll(d.device_code, other.auth), 400, 'invalid_grant');
    assertError(await poll('x'.repeat(43)), 400, 'invalid_grant');
    assertError(await post(t, '/token', { grant_type: GRANT }, tv.auth), 400, 'invalid_request');
  });

  test('a public client starts and polls with client_id', async () => {
    const d = await start('profile', {}, { client_id: 'cli' });
    assertError(await poll(d.device_code, {}, { client_id: 'cli' }), 400, 'authorization_pending');
  });

  test('client authentication and grant checks at /device_authorization', async () => {
    const wrong = await post(t, '/device_authorization', { scope: 'openid' }, { authorization: 'Basic ' + Buffer.from('tv:wrong').toString('base64') });
    assertError(wrong, 401, 'invalid_client');
    assert.ok(wrong.headers['www-authenticate']);
    const svc = await confidential(t, { client_id: 'svc-nodevice' });
    assertError(await post(t, '/device_authorization', {}, svc.auth), 400, 'unauthorized_client');
    assertError(await post(t, '/device_authorization', { scope: 'admin' }, tv.auth), 400, 'invalid_scope');
    assertError(await post(t, '/device_authorization', 'scope=a&scope=b', tv.auth), 400, 'invalid_request');
  });
});
