// RFC 6749 §4.4 client credentials grant; the access token is an RFC 9068 JWT that a resource
// server verifies with jose against /jwks.json alone.
import { after, before, describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { jwtVerify } from 'jose';
import type { TestOAuth } from '../../../support/oauth-app.ts';
import { TEST_ISSUER, app, assertError, confidential, json, jwksOf, post } from './helpers.ts';
import type { Confidential } from './helpers.ts';

describe('client_credentials grant', () => {
  let t: TestOAuth;
  let svc: Confidential;
  let api: Confidential;

  before(async () => {
    t = await app();
    svc = await confidential(t, { client_id: 'svc', scopes: ['openid', 'profile', 'email', 'offline_access', 'read', 'write'] });
    api = await confidential(t, { client_id: 'svc-api', scopes: ['read'], audience: 'https://api.example' });
  });
  after(() => t.close());

  test('issues an RFC 9068 access token that verifies with jose over /jwks.json', async () => {
    const r = await post(t, '/token', { grant_type: 'client_credentials', scope: 'read write' }, svc.auth);
    assert.equal(r.statusCode, 200, r.body);
    const body = json(r);
    assert.deepEqual(Object.keys(body).sort(), ['access_token', 'expires_in', 'scope', 'token_type']);
    assert.equal(body.token_type, 'Bearer');
    assert.equal(body.expires_in, t.config.accessTokenTtlS);
    assert.equal(body.scope, 'read write');
    const { payload, protectedHeader } = await jwtVerify(String(body.access_token), await jwksOf(t), {
      issuer: TEST_ISSUER,
      audience: TEST_ISSUER,
      typ: 'at+jwt',
      currentDate: new Date(t.clock.now),
    });
    assert.equal(protectedHeader.alg, 'ES256');
    assert.equal(protectedHeader.typ, 'at+jwt');
    assert.equal(typeof protectedHeader.kid, 'string');
    // RFC 9068 §2.2: iss, exp, aud, sub, client_id, iat, jti; §2.2.3 scope.
    assert.equal(payload.sub, 'svc');
    assert.equal(payload.client_id, 'svc');
    assert.equal(payload.scope, 'read write');
    assert.equal(payload.iat, Math.floor(t.clock.now / 1000));
    assert.equal(payload.exp, payload.iat! + t.config.accessTokenTtlS);
    assert.equal(typeof payload.jti, 'string');
    // No end user: no auth_time / acr / amr.
    assert.equal(payload.auth_time, undefined);
    assert.equal(payload.acr, undefined);
  });

  test('makes no replicated write of its own, only its audit record (the fast path; issue 6)', async () => {
    const before = t.node.log.length;
    const r = await post(t, '/token', { grant_type: 'client_credentials' }, svc.auth);
    assert.equal(r.statusCode, 200);
    assert.deepEqual(t.node.log.slice(before), [{ domain: 'audit', op: 'append' }]);
  });

  test('the answer waits for the audit record: when it cannot commit (no majority: the write times out) /token is 503 with Retry-After and hands out no token (docs/oauth.md "Client credentials")', async () => {
    const before = t.node.log.length;
    t.node.failNext = { code: 'TIMEOUT', count: 1 };
    const r = await post(t, '/token', { grant_type: 'client_credentials', scope: 'read' }, svc.auth);
    assertError(r, 503, 'temporarily_unavailable');
    assert.equal(r.headers['retry-after'], '1');
    assert.equal(json(r).access_token, undefined);
    assert.equal(t.node.log.length, before, 'nothing applied');
    // The next request, with the cluster back, is answered once its record is applied.
    const ok = await post(t, '/token', { grant_type: 'client_credentials', scope: 'read' }, svc.auth);
    assert.equal(ok.statusCode, 200, ok.body);
    assert.deepEqual(t.node.log.slice(before), [{ domain: 'audit', op: 'append' }]);
  });

  test("the audience is the client's when it has one", async () => {
    const r = await post(t, '/token', { grant_type: 'client_credentials' }, api.auth);
    assert.equal(r.statusCode, 200, r.body);
    const { payload } = await jwtVerify(String(json(r).access_token), await jwksOf(t), { issuer: TEST_ISSUER, audience: 'https://api.example', currentDate: new Date(t.clock.now) });
    assert.equal(payload.aud, 'https://api.example');
  });

  test('without scope, the client gets its default scopes minus every end-user scope (openid, profile, email, offline_access); the scope is always in the response', async () => {
    const r = await post(t, '/token', { grant_type: 'client_credentials' }, svc.auth);
    assert.equal(json(r).scope, 'read write');
  });

  test('a scope the client may not ask for is invalid_scope', async () => {
    assertError(await post(t, '/token', { grant_type: 'client_credentials', scope: 'read admin' }, svc.auth), 400, 'invalid_scope');
  });

  test('openid is invalid_scope (no end user)', async () => {
    assertError(await post(t, '/token', { grant_type: 'client_credentials', scope: 'openid read' }, svc.auth), 400, 'invalid_scope');
  });

  test('a malformed scope is invalid_request', async () => {
    assertError(await post(t, '/token', { grant_type: 'client_credentials', scope: 'read  write' }, svc.auth), 400, 'invalid_request');
  });

  test('the token is inactive at /introspect once it expires', async () => {
    const r = await post(t, '/token', { grant_type: 'client_credentials' }, svc.auth);
    const token = String(json(r).access_token);
    const active = await post(t, '/introspect', { token }, svc.auth);
    assert.equal(json(active).active, true);
    t.clock.now += t.config.accessTokenTtlS * 1000;
    try {
      const expired = await post(t, '/introspect', { token }, svc.auth);
      assert.deepEqual(json(expired), { active: false });
    } finally {
      t.clock.now -= t.config.accessTokenTtlS * 1000;
    }
  });
});
