// The /token endpoint itself (RFC 6749 §3.2, §5): request format, grant dispatch, caching headers.
import { after, before, describe, test } from 'node:test';
import assert from 'node:assert/strict';
import type { TestOAuth } from '../../../support/oauth-app.ts';
import { app, assertError, codeWithPkce, confidential, post } from './helpers.ts';
import type { Confidential } from './helpers.ts';

describe('POST /token', () => {
  let t: TestOAuth;
  let svc: Confidential;

  before(async () => {
    t = await app();
    svc = await confidential(t, { client_id: 'svc' });
  });
  after(() => t.close());

  test('success and error responses carry Cache-Control: no-store and Pragma: no-cache (§5.1)', async () => {
    const ok = await post(t, '/token', { grant_type: 'client_credentials' }, svc.auth);
    assert.equal(ok.statusCode, 200);
    assert.equal(ok.headers['cache-control'], 'no-store');
    assert.equal(ok.headers.pragma, 'no-cache');
    assert.match(String(ok.headers['content-type']), /^application\/json/);
    const bad = await post(t, '/token', { grant_type: 'password' }, svc.auth);
    assert.equal(bad.headers['cache-control'], 'no-store');
    assert.equal(bad.headers.pragma, 'no-cache');
  });

  test('a missing grant_type is invalid_request', async () => {
    assertError(await post(t, '/token', {}, svc.auth), 400, 'invalid_request');
  });

  test('an unknown grant_type is unsupported_grant_type', async () => {
    assertError(await post(t, '/token', { grant_type: 'password', username: 'a', password: 'b' }, svc.auth), 400, 'unsupported_grant_type');
  });

  test('a grant the client is not registered for is unauthorized_client', async () => {
    assertError(await post(t, '/token', { grant_type: 'refresh_token', refresh_token: 'x' }, svc.auth), 400, 'unauthorized_client');
  });

  test('a duplicated parameter is invalid_request, even with equal values (§3.2)', async () => {
    assertError(await post(t, '/token', 'grant_type=client_credentials&grant_type=client_credentials', svc.auth), 400, 'invalid_request');
    assertError(await post(t, '/token', 'grant_type=client_credentials&scope=a&scope=b', svc.auth), 400, 'invalid_request');
  });

  test('unknown parameters are ignored (§3.1)', async () => {
    const r = await post(t, '/token', { grant_type: 'client_credentials', flavour: 'vanilla' }, svc.auth);
    assert.equal(r.statusCode, 200, r.body);
  });

  test('an empty parameter counts as omitted (§3.1)', async () => {
    assertError(await post(t, '/token', 'grant_type=', svc.auth), 400, 'invalid_request');
  });

  test('a body that is not form-encoded is refused', async () => {
    const json = await t.app.inject({ method: 'POST', url: '/token', payload: JSON.stringify({ grant_type: 'client_credentials' }), headers: { 'content-type': 'application/json', ...svc.auth } });
    assertError(json, 400, 'invalid_request');
    const none = await t.app.inject({ method: 'POST', url: '/token', headers: svc.auth });
    assertError(none, 400, 'invalid_request');
    const text = await t.app.inject({ method: 'POST', url: '/token', payload: 'grant_type=client_credentials', headers: { 'content-type': 'text/plain', ...svc.auth } });
    assert.ok(text.statusCode === 415 || text.statusCode === 400, text.body);
    assert.equal(text.json().error, 'invalid_request');
  });

  test('an oversized body is refused with 413 before it is parsed', async () => {
    const r = await post(t, '/token', { grant_type: 'client_credentials', pad: 'x'.repeat(t.config.formBodyLimitBytes) }, svc.auth);
    assertError(r, 413, 'invalid_request');
  });

  test('too many parameters or an over-long value are invalid_request', async () => {
    const many = Array.from({ length: 70 }, (_, i) => `p${i}=1`).join('&');
    assertError(await post(t, '/token', `grant_type=client_credentials&${many}`, svc.auth), 400, 'invalid_request');
    assertError(await post(t, '/token', { grant_type: 'client_credentials', scope: 'a'.repeat(9000) }, svc.auth), 400, 'invalid_request');
  });

  test('a cluster without a reachable leader answers 503 temporarily_unavailable with Retry-After, and nothing is half done', async () => {
    const web = await confidential(t, { client_id: 'web503', redirect_uris: ['https://rp.example/cb'], grant_types: ['authorization_code', 'refresh_token'] });
    const { params } = await codeWithPkce(t, web);
    t.node.failNext = { code: 'UNAVAILABLE', count: 1 };
    const r = await post(t, '/token', params, web.auth);
    assertError(r, 503, 'temporarily_unavailable');
    assert.equal(r.headers['retry-after'], '1');
    assert.equal(r.headers['cache-control'], 'no-store');
    // The code was not consumed: the retry succeeds.
    assert.equal((await post(t, '/token', params, web.auth)).statusCode, 200);
  });

  test('GET /token is not a route', async () => {
    const r = await t.app.inject({ method: 'GET', url: '/token?grant_type=client_credentials', headers: svc.auth });
    assert.equal(r.statusCode, 404);
  });
});
