import { test } from 'node:test';
import assert from 'node:assert/strict';
import { packValue, unpackValue } from '../../../src/state/command.ts';
import { T0, domainHarness } from './helpers.ts';
import { CLIENTS_KEYSPACE } from '../../../src/state/clients.ts';
import { validateClientRecord } from '../../../src/state/validate.ts';
import { DomainError } from '../../../src/state/machine.ts';
import type { ClientRecord } from '../../../src/state/oauth-ops.ts';

function harness() {
  const h = domainHarness('clients');
  return { st: h.st, sm: h.sm, run: h.run, refused: h.refused };
}

const SECRET_HASH = 'n4bQgYhMfWWaL-qgxVrQFaO_TxsrC4Is0V1sFbDwCgg';

function client(over: Partial<ClientRecord> = {}): ClientRecord {
  return {
    client_id: 'web-app',
    client_name: 'Web app',
    client_secret_hash: SECRET_HASH,
    token_endpoint_auth_method: 'client_secret_basic',
    redirect_uris: ['https://app.example.com/cb'],
    grant_types: ['authorization_code', 'refresh_token'],
    scopes: ['openid', 'profile', 'offline_access'],
    jwks: null,
    first_party: false,
    audience: null,
    created_at: T0,
    updated_at: T0,
    ...over,
  };
}

test('create stores exactly packValue(ClientRecord) under the client_id; get reads it back', () => {
  const h = harness();
  const c = client();
  assert.deepEqual(h.run('create', { client: c }), { ok: true, value: {} });
  assert.deepEqual(h.st.get(CLIENTS_KEYSPACE, 'web-app'), packValue(c));
  assert.deepEqual(h.sm.read('clients', 'get', { client_id: 'web-app' }), { ok: true, value: c });
  assert.deepEqual(h.sm.read('clients', 'get', { client_id: 'other' }), { ok: true, value: null });
  h.refused('create', { client: { ...c, client_name: 'again' } }, 'ALREADY_EXISTS');
});

test('update replaces the record but keeps created_at; unknown clients are NOT_FOUND', () => {
  const h = harness();
  h.run('create', { client: client() });
  const changed = client({ client_name: 'Renamed', created_at: T0 + 5, updated_at: T0 + 10, scopes: ['openid'] });
  assert.deepEqual(h.run('update', { client: changed }), { ok: true, value: {} });
  assert.deepEqual(unpackValue(h.st.get(CLIENTS_KEYSPACE, 'web-app')!), { ...changed, created_at: T0 });
  h.refused('update', { client: client({ client_id: 'ghost' }) }, 'NOT_FOUND');
  h.refused('update', { client: client({ redirect_uris: ['http://app.example.com/cb'] }) }, 'INVALID_ARGUMENT', /redirect_uris\[0\]/);
});

test('delete reports whether the client existed', () => {
  const h = harness();
  h.run('create', { client: client() });
  assert.deepEqual(h.run('delete', { client_id: 'web-app' }), { ok: true, value: { existed: true } });
  assert.equal(h.st.get(CLIENTS_KEYSPACE, 'web-app'), undefined);
  assert.deepEqual(h.run('delete', { client_id: 'web-app' }), { ok: true, value: { existed: false } });
  h.refused('delete', { client_id: 'a b' }, 'INVALID_ARGUMENT', /client_id/);
});

test('accepted client shapes: public, private_key_jwt, loopback and private-use redirect URIs', () => {
  const h = harness();
  const ok = (c: ClientRecord): void => assert.deepEqual(h.run('create', { client: c }), { ok: true, value: {} }, c.client_id);
  ok(
    client({
      client_id: 'native',
      client_secret_hash: null,
      token_endpoint_auth_method: 'none',
      grant_types: ['authorization_code', 'urn:ietf:params:oauth:grant-type:device_code'],
      redirect_uris: ['http://127.0.0.1/cb', 'http://[::1]:8080/cb', 'http://localhost:3000/cb', 'com.example.app:/oauth2redirect'],
    }),
  );
  ok(
    client({
      client_id: 'svc.1_~-',
      client_secret_hash: null,
      token_endpoint_auth_method: 'private_key_jwt',
      jwks: { keys: [{ kty: 'EC', crv: 'P-256', x: 'x', y: 'y', kid: 'k1' }] },
      grant_types: ['client_credentials'],
      redirect_uris: [],
      audience: 'https://api.example.com',
    }),
  );
  ok(client({ client_id: 'x'.repeat(128), client_name: '', grant_types: ['client_credentials'], redirect_uris: [], scopes: [], token_endpoint_auth_method: 'client_secret_post' }));
});

test('validateClientRecord refuses each invalid shape, naming the field, and apply changes nothing', () => {
  const h = harness();
  const cases: [string, unknown, RegExp][] = [
    ['client_id chars', client({ client_id: 'a/b' }), /client_id/],
    ['client_id empty', client({ client_id: '' }), /client_id/],
    ['client_id too long', client({ client_id: 'x'.repeat(129) }), /client_id/],
    ['name too long', client({ client_name: 'n'.repeat(257) }), /client_name/],
    ['unknown method', client({ token_endpoint_auth_method: 'tls_client_auth' as never }), /token_endpoint_auth_method/],
    ['none with a secret', client({ token_endpoint_auth_method: 'none' }), /client_secret_hash/],
    ['secret method without hash', client({ client_secret_hash: null }), /client_secret_hash/],
    ['hash of the wrong length', client({ client_secret_hash: SECRET_HASH.slice(1) }), /client_secret_hash/],
    ['hash not base64url', client({ client_secret_hash: SECRET_HASH.slice(1) + '+' }), /client_secret_hash/],
    ['private_key_jwt with a secret', client({ token_endpoint_auth_method: 'private_key_jwt', jwks: { keys: [{ kty: 'EC' }] } }), /client_secret_hash/],
    ['private_key_jwt without jwks', client({ token_endpoint_auth_method: 'private_key_jwt', client_secret_hash: null }), /jwks/],
    ['jwks with no keys', client({ token_endpoint_auth_method: 'private_key_jwt', client_secret_hash: null, jwks: { keys: [] } }), /jwks/],
    ['jwks with 11 keys', client({ token_endpoint_auth_method: 'private_key_jwt', client_secret_hash: null, jwks: { keys: new Array(11).fill({ kty: 'EC' }) } }), /jwks/],
    ['jwks with a private key', client({ token_endpoint_auth_method: 'private_key_jwt', client_secret_hash: null, jwks: { keys: [{ kty: 'EC', d: 'secret' }] } }), /jwks\.keys\[0\].*'d'/],
    ['jwks key without kty', client({ token_endpoint_auth_method: 'private_key_jwt', client_secret_hash: null, jwks: { keys: [{ kid: 'k' }] } }), /kty/],
    ['jwks on a secret client', client({ jwks: { keys: [{ kty: 'EC' }] } }), /jwks/],
    ['redirect with a fragment', client({ redirect_uris: ['https://app.example.com/cb#x'] }), /fragment/],
    ['redirect relative', client({ redirect_uris: ['/cb'] }), /absolute/],
    ['redirect http not loopback', client({ redirect_uris: ['http://app.example.com/cb'] }), /loopback/],
    ['redirect http lookalike', client({ redirect_uris: ['http://localhost.example.com/cb'] }), /loopback/],
    ['redirect javascript', client({ redirect_uris: ['javascript:alert(1)'] }), /private-use/],
    ['redirect custom without dot', client({ redirect_uris: ['myapp:/cb'] }), /private-use/],
    ['redirect with whitespace', client({ redirect_uris: ['https://app.example.com/c b'] }), /whitespace/],
    ['redirect too long', client({ redirect_uris: ['https://app.example.com/' + 'x'.repeat(2_000)] }), /redirect_uris\[0\]/],
    ['21 redirects', client({ redirect_uris: Array.from({ length: 21 }, (_, i) => `https://app.example.com/${i}`) }), /redirect_uris/],
    ['duplicate redirects', client({ redirect_uris: ['https://a.example/cb', 'https://a.example/cb'] }), /duplicate/],
    ['code grant without redirect', client({ redirect_uris: [] }), /redirect_uris/],
    ['no grants', client({ grant_types: [] }), /grant_types/],
    ['unknown grant', client({ grant_types: ['password' as never] }), /grant_types\[0\]/],
    ['duplicate grants', client({ grant_types: ['refresh_token', 'refresh_token'] }), /grant_types/],
    ['client_credentials for a public client', client({ token_endpoint_auth_method: 'none', client_secret_hash: null, grant_types: ['client_credentials'], redirect_uris: [] }), /client_credentials/],
    ['101 scopes', client({ scopes: Array.from({ length: 101 }, (_, i) => `s${i}`) }), /scopes/],
    ['scope too long', client({ scopes: ['s'.repeat(129)] }), /scopes\[0\]/],
    ['scope with a space', client({ scopes: ['a b'] }), /scope token/],
    ['scope with a quote', client({ scopes: ['a"b'] }), /scope token/],
    ['first_party not boolean', client({ first_party: 'yes' as never }), /first_party/],
    ['audience empty', client({ audience: '' }), /audience/],
    ['negative time', client({ created_at: -1 }), /created_at/],
    ['unknown field', { ...client(), extra: 1 }, /unknown field extra/],
    ['missing field', (({ audience: _a, ...rest }) => rest)(client()), /audience is missing/],
    ['not an object', 'client', /client must be an object/],
  ];
  for (const [what, c, field] of cases) {
    assert.throws(() => validateClientRecord(c), (e: unknown) => e instanceof DomainError && e.code === 'INVALID_ARGUMENT' && field.test(e.message), what);
    h.refused('create', { client: c }, 'INVALID_ARGUMENT', field);
  }
  assert.equal(h.st.get(CLIENTS_KEYSPACE, 'web-app'), undefined);
});

test('unknown operations and reads are refused', () => {
  const h = harness();
  h.refused('nope', {}, 'UNKNOWN_OPERATION');
  h.refused('create', null, 'INVALID_ARGUMENT', /args/);
  const r = h.sm.read('clients', 'list', {});
  assert.equal(r.ok ? 'ok' : r.code, 'UNKNOWN_OPERATION');
});
