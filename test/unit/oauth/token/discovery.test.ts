// RFC 8414 / OIDC Discovery metadata and the JWKS (RFC 7517).
import { after, before, describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { DEFAULT_OAUTH_CONFIG } from '../../../../src/oauth/config.ts';
import { buildMetadata } from '../../../../src/oauth/discovery.ts';
import type { TestOAuth } from '../../../support/oauth-app.ts';
import { TEST_ISSUER, app } from './helpers.ts';

describe('metadata and JWKS', () => {
  let t: TestOAuth;

  before(async () => {
    t = await app();
  });
  after(() => t.close());

  test('both well-known documents are the same, name every endpoint, and can be cached briefly', async () => {
    const a = await t.app.inject({ method: 'GET', url: '/.well-known/oauth-authorization-server' });
    const b = await t.app.inject({ method: 'GET', url: '/.well-known/openid-configuration' });
    assert.equal(a.statusCode, 200);
    assert.equal(b.statusCode, 200);
    assert.equal(a.body, b.body);
    assert.match(String(a.headers['content-type']), /^application\/json/);
    assert.equal(a.headers['cache-control'], 'public, max-age=300');
    const m = a.json() as Record<string, unknown>;
    // RFC 8414 §3.3: the issuer in the document is exactly the one the client used.
    assert.equal(m.issuer, TEST_ISSUER);
    for (const [k, path] of Object.entries({
      authorization_endpoint: '/authorize',
      token_endpoint: '/token',
      jwks_uri: '/jwks.json',
      userinfo_endpoint: '/userinfo',
      device_authorization_endpoint: '/device_authorization',
      introspection_endpoint: '/introspect',
      revocation_endpoint: '/revoke',
      end_session_endpoint: '/logout',
    })) {
      assert.equal(m[k], TEST_ISSUER + path, k);
    }
    assert.deepEqual(m.response_types_supported, ['code']);
    assert.deepEqual(m.response_modes_supported, ['query', 'form_post']);
    assert.deepEqual(m.grant_types_supported, ['authorization_code', 'client_credentials', 'refresh_token', 'urn:ietf:params:oauth:grant-type:device_code']);
    assert.deepEqual(m.token_endpoint_auth_methods_supported, ['client_secret_basic', 'client_secret_post', 'private_key_jwt', 'none']);
    assert.deepEqual(m.introspection_endpoint_auth_methods_supported, ['client_secret_basic', 'client_secret_post', 'private_key_jwt']);
    assert.deepEqual(m.code_challenge_methods_supported, ['S256']);
    assert.deepEqual(m.subject_types_supported, ['public']);
    assert.deepEqual(m.id_token_signing_alg_values_supported, ['ES256']);
    assert.deepEqual(m.scopes_supported, t.config.scopesSupported);
    assert.equal(m.authorization_response_iss_parameter_supported, true);
    assert.ok(Array.isArray(m.claims_supported));
  });

  test('is built from configuration alone: plain PKCE and EdDSA show when configured', () => {
    const m = buildMetadata({ ...DEFAULT_OAUTH_CONFIG, issuer: 'https://auth.example', allowPlainPkce: true, signingAlg: 'EdDSA' });
    assert.deepEqual(m.code_challenge_methods_supported, ['S256', 'plain']);
    assert.deepEqual(m.id_token_signing_alg_values_supported, ['EdDSA']);
    assert.equal(m.token_endpoint, 'https://auth.example/token');
  });

  test('/jwks.json publishes the active and next keys, public members only', async () => {
    const r = await t.app.inject({ method: 'GET', url: '/jwks.json' });
    assert.equal(r.statusCode, 200);
    assert.match(String(r.headers['content-type']), /^application\/jwk-set\+json/);
    assert.equal(r.headers['cache-control'], 'public, max-age=300');
    const { keys } = r.json() as { keys: Record<string, unknown>[] };
    assert.equal(keys.length, 2);
    for (const k of keys) {
      assert.equal(k.kty, 'EC');
      assert.equal(k.alg, 'ES256');
      assert.equal(k.use, 'sig');
      assert.equal(typeof k.kid, 'string');
      assert.equal(k.d, undefined);
    }
    assert.notEqual(keys[0]!.kid, keys[1]!.kid);
  });
});
