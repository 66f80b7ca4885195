// Client authentication at /token (RFC 6749 §2.3, OIDC Core §9, RFC 7523): each method's happy
// path, and every refusal answering 401 invalid_client with WWW-Authenticate (§5.2), or 400
// invalid_request when the request itself is malformed (two methods at once, §2.3).
import { after, before, describe, test } from 'node:test';
import assert from 'node:assert/strict';
import type { TestOAuth } from '../../../support/oauth-app.ts';
import { TEST_ISSUER, app, assertError, assertion, basic, confidential, json, jwtClient, post } from './helpers.ts';
import type { Confidential } from './helpers.ts';

const CC = { grant_type: 'client_credentials' };

function assertInvalidClient(r: Awaited<ReturnType<typeof post>>): void {
  assertError(r, 401, 'invalid_client');
  assert.match(String(r.headers['www-authenticate']), /^Basic realm="raftauth", error="invalid_client"/);
  assert.equal(r.headers['cache-control'], 'no-store');
}

describe('client authentication', () => {
  let t: TestOAuth;
  let svc: Confidential;
  let postClient: Confidential;

  before(async () => {
    t = await app();
    svc = await confidential(t, { client_id: 'svc' });
    postClient = await confidential(t, { client_id: 'svc.post', token_endpoint_auth_method: 'client_secret_post' });
    await t.addClient({ client_id: 'spa', token_endpoint_auth_method: 'none', redirect_uris: ['https://spa.example/cb'], grant_types: ['authorization_code'] });
  });
  after(() => t.close());

  test('client_secret_basic authenticates', async () => {
    const r = await post(t, '/token', CC, svc.auth);
    assert.equal(r.statusCode, 200, r.body);
  });

  test('client_secret_basic form-decodes the id and secret (RFC 6749 §2.3.1)', async () => {
    // "svc.post" with its dot percent-encoded, as a client that encodes every character may send it; the basic method is refused for this client, which proves the id was decoded and found.
    const raw = 'Basic ' + Buffer.from(`svc%2Epost:${encodeURIComponent(postClient.secret)}`).toString('base64');
    const r = await post(t, '/token', CC, { authorization: raw });
    assertInvalidClient(r);
    assert.match(String(json(r).error_description), /must authenticate with client_secret_post/);
    const r2 = await post(t, '/token', CC, { authorization: 'Basic ' + Buffer.from(`sv%63:${svc.secret}`).toString('base64') });
    assert.equal(r2.statusCode, 200, r2.body);
  });

  test('client_secret_post authenticates', async () => {
    const r = await post(t, '/token', { ...CC, client_id: 'svc.post', client_secret: postClient.secret });
    assert.equal(r.statusCode, 200, r.body);
  });

  test('a wrong secret is invalid_client', async () => {
    assertInvalidClient(await post(t, '/token', CC, { authorization: basic('svc', svc.secret.slice(1) + 'x') }));
    assertInvalidClient(await post(t, '/token', { ...CC, client_id: 'svc.post', client_secret: 'nope' }));
  });

  test('an unknown client is invalid_client', async () => {
    assertInvalidClient(await post(t, '/token', CC, { authorization: basic('ghost', 'whatever') }));
    assertInvalidClient(await post(t, '/token', { ...CC, client_id: 'ghost' }));
  });

  test('no authentication at all is invalid_client', async () => {
    assertInvalidClient(await post(t, '/token', CC));
  });

  test('a method other than the registered one is invalid_client', async () => {
    // svc is registered for client_secret_basic; the right secret in the body is still refused.
    assertInvalidClient(await post(t, '/token', { ...CC, client_id: 'svc', client_secret: svc.secret }));
    // and a confidential client cannot drop to `none`.
    assertInvalidClient(await post(t, '/token', { ...CC, client_id: 'svc' }));
  });

  test('two methods in one request are invalid_request (RFC 6749 §2.3)', async () => {
    const r = await post(t, '/token', { ...CC, client_id: 'svc', client_secret: svc.secret }, svc.auth);
    assertError(r, 400, 'invalid_request');
    assert.match(String(json(r).error_description), /more than one authentication method/);
  });

  test('a body client_id contradicting the Basic header is invalid_request', async () => {
    assertError(await post(t, '/token', { ...CC, client_id: 'svc.post' }, svc.auth), 400, 'invalid_request');
  });

  test('malformed Basic credentials are invalid_client', async () => {
    assertInvalidClient(await post(t, '/token', CC, { authorization: 'Basic !!!' }));
    assertInvalidClient(await post(t, '/token', CC, { authorization: 'Basic ' + Buffer.from('no-colon').toString('base64') }));
    assertInvalidClient(await post(t, '/token', CC, { authorization: 'Bearer abc' }));
  });

  test('a public client is identified by client_id and may not use client_credentials', async () => {
    assertError(await post(t, '/token', { ...CC, client_id: 'spa' }), 400, 'unauthorized_client');
  });

  describe('private_key_jwt (RFC 7523)', () => {
    test('a signed assertion authenticates; its jti cannot be replayed', async () => {
      const c = await jwtClient(t, 'jwt-client');
      const a = await assertion(t, c);
      const params = { ...CC, client_assertion_type: 'urn:ietf:params:oauth:client-assertion-type:jwt-bearer', client_assertion: a };
      const r = await post(t, '/token', params);
      assert.equal(r.statusCode, 200, r.body);
      const again = await post(t, '/token', params);
      assertInvalidClient(again);
      assert.match(String(json(again).error_description), /already used/);
    });

    test('the issuer is an accepted audience; another audience is not', async () => {
      const c = await jwtClient(t, 'jwt-aud');
      const ok = await post(t, '/token', { ...CC, client_assertion_type: 'urn:ietf:params:oauth:client-assertion-type:jwt-bearer', client_assertion: await assertion(t, c, { aud: TEST_ISSUER }) });
      assert.equal(ok.statusCode, 200, ok.body);
      assertInvalidClient(await post(t, '/token', { ...CC, client_assertion_type: 'urn:ietf:params:oauth:client-assertion-type:jwt-bearer', client_assertion: await assertion(t, c, { aud: 'https://elsewhere.example/token' }) }));
    });

    test('an assertion expiring more than 5 minutes ahead, expired, or signed by another key is refused', async () => {
      const c = await jwtClient(t, 'jwt-exp');
      const other = await jwtClient(t, 'jwt-other');
      const type = { client_assertion_type: 'urn:ietf:params:oauth:client-assertion-type:jwt-bearer' };
      assertInvalidClient(await post(t, '/token', { ...CC, ...type, client_assertion: await assertion(t, c, { expInS: 301 }) }));
      assertInvalidClient(await post(t, '/token', { ...CC, ...type, client_assertion: await assertion(t, c, { expInS: -1 }) }));
      // signed with jwt-other's key under jwt-exp's name
      assertInvalidClient(await post(t, '/token', { ...CC, ...type, client_assertion: await assertion(t, { ...other, client: c.client }) }));
    });

    test('a wrong client_assertion_type is invalid_request; a secret for a private_key_jwt client is invalid_client', async () => {
      const c = await jwtClient(t, 'jwt-type');
      assertError(await post(t, '/token', { ...CC, client_assertion_type: 'urn:x', client_assertion: await assertion(t, c) }), 400, 'invalid_request');
      assertInvalidClient(await post(t, '/token', CC, { authorization: basic('jwt-type', 'guess') }));
    });
  });
});

test('a client not yet in this node\'s cache (created a moment ago elsewhere, or a node catching up) is found through a linearizable read', async () => {
  const t = await app();
  try {
    const fresh = await confidential(t, { client_id: 'fresh' });
    // The cache as a lagging node has it: the clients table without the new client.
    t.cache.publish('clients', []);
    const reads: string[] = [];
    const read = t.node.read.bind(t.node);
    t.node.read = (q) => {
      reads.push(`${q.domain} ${q.op}`);
      return read(q);
    };
    const r = await post(t, '/token', CC, fresh.auth);
    assert.equal(r.statusCode, 200, r.body);
    assert.deepEqual(reads, ['clients get']);
    // Still unknown after the read: invalid_client, nothing written.
    const writes = t.node.log.length;
    assertInvalidClient(await post(t, '/token', CC, { authorization: basic('nobody', 'x') }));
    // A malformed id (the domain refuses it) is unknown too, not a server error.
    assertInvalidClient(await post(t, '/token', CC, { authorization: basic('x'.repeat(300), 'x') }));
    assert.equal(t.node.log.length, writes);
    // /authorize finds it the same way.
    const page = await t.app.inject({ method: 'GET', url: `/authorize?client_id=fresh&response_type=code&redirect_uri=${encodeURIComponent('https://rp.example/cb')}&scope=openid&code_challenge=${'a'.repeat(43)}&code_challenge_method=S256` });
    assert.doesNotMatch(page.body, /Unknown application/);
  } finally {
    await t.close();
  }
});
