// The admin API's MFA routes (src/ops/admin-oauth.ts: factors, reset, unlock, mfa-required) and a
// client's require_mfa, over a real one-node RaftNode with the real domains; requests through
// fastify's inject. The state they change is read back from the `mfa` domain.
import assert from 'node:assert/strict';
import { after, before, describe, it } from 'node:test';
import type { FastifyInstance } from 'fastify';
import type { RaftNode } from '../../../src/node/node.ts';
import { oauthDomains } from '../../../src/state/oauth-domains.ts';
import { stateApplier } from '../../../src/state/applier.ts';
import { MasterKeyRing } from '../../../src/crypto/seal.ts';
import { DEFAULT_OAUTH_CONFIG } from '../../../src/oauth/config.ts';
import type { OAuthConfig } from '../../../src/oauth/config.ts';
import { THROTTLE } from '../../../src/state/mfa-ops.ts';
import { LocalCluster } from '../node/helpers.ts';
import { oauthAdminNode } from './helpers.ts';

const TOKEN = 'b'.repeat(43);
const auth = { authorization: `Bearer ${TOKEN}` };
const config: OAuthConfig = { ...DEFAULT_OAUTH_CONFIG, issuer: 'http://localhost:8080', passwordScrypt: { ln: 10, r: 8, p: 1 } };

describe('admin API: MFA factors and policy (one-node RaftNode)', () => {
  const cluster = new LocalCluster({ applier: stateApplier(oauthDomains()) });
  let node: RaftNode;
  let app: FastifyInstance;
  const master = MasterKeyRing.parse(MasterKeyRing.generateText(), 'test master key');
  let sub = '';

  const call = async (method: 'GET' | 'POST' | 'PATCH', url: string, payload?: unknown) => {
    const r = await app.inject({ method, url, headers: auth, ...(payload !== undefined ? { payload: payload as Record<string, unknown> } : {}) });
    return { status: r.statusCode, body: r.body.length > 0 ? (JSON.parse(r.body) as Record<string, unknown>) : null };
  };
  const write = async (op: string, args: unknown): Promise<unknown> => {
    const r = await node.write({ domain: 'mfa', op, args, timeoutMs: 5_000 });
    assert.ok(r.ok, JSON.stringify(r));
    return r.value;
  };

  before(async () => {
    ({ node, app } = await oauthAdminNode(cluster, master, config, TOKEN));
    const u = await call('POST', '/admin/v1/users', { username: 'dave', password: 'correct horse battery' });
    assert.equal(u.status, 201);
    sub = u.body!.sub as string;
  });
  after(async () => {
    await app?.close();
    await cluster.close();
  });

  it('lists factors without secrets, resets them, and refuses unknown users', async () => {
    await write('totp.enroll', { sub, sealed: new Uint8Array([1, 2, 3]), meta: { ip: null } });
    await write('recovery.set', { sub, hashes: Array.from({ length: 10 }, (_, i) => `h${i}`.padEnd(43, 'x')), meta: { ip: null } });
    const f = await call('GET', '/admin/v1/users/dave/factors');
    assert.equal(f.status, 200, JSON.stringify(f.body));
    assert.deepEqual(f.body!.totp, { confirmed: false, createdAt: (f.body!.totp as { createdAt: number }).createdAt });
    assert.deepEqual(f.body!.recovery, { remaining: 10 });
    assert.deepEqual(f.body!.webauthn, []);
    assert.equal(f.body!.required, false);
    assert.doesNotMatch(JSON.stringify(f.body), /sealed|publicKey/);

    const r = await call('POST', '/admin/v1/users/dave/factors/reset');
    assert.equal(r.status, 200);
    const after = await call('GET', '/admin/v1/users/dave/factors');
    assert.equal(after.body!.totp, null);
    assert.deepEqual(after.body!.recovery, { remaining: 0 });

    for (const url of ['/admin/v1/users/nobody/factors']) assert.equal((await call('GET', url)).status, 404);
    for (const url of ['/admin/v1/users/nobody/factors/reset', '/admin/v1/users/nobody/unlock']) assert.equal((await call('POST', url)).status, 404);
  });

  it('unlocks a locked user', async () => {
    for (let i = 0; i < THROTTLE.lockAfterFailures; i++) await write('throttle.fail', { sub, kind: 'totp', meta: { ip: null } });
    const locked = await call('GET', '/admin/v1/users/dave/factors');
    assert.notEqual((locked.body!.lock as { lockedUntil: number | null }).lockedUntil, null, JSON.stringify(locked.body));
    assert.equal((await call('POST', '/admin/v1/users/dave/unlock')).status, 200);
    const lock = (await call('GET', '/admin/v1/users/dave/factors')).body!.lock as { failures: number; lockedUntil: number | null };
    assert.equal(lock.lockedUntil, null);
    assert.equal(lock.failures, 0);
  });

  it('sets the per-user policy; a bad body changes nothing', async () => {
    assert.equal((await call('POST', '/admin/v1/users/dave/mfa-required', { required: 'yes' })).status, 400);
    assert.equal((await call('POST', '/admin/v1/users/dave/mfa-required', { required: true, extra: 1 })).status, 400);
    assert.equal((await call('GET', '/admin/v1/users/dave/factors')).body!.required, false);
    const r = await call('POST', '/admin/v1/users/dave/mfa-required', { required: true });
    assert.equal(r.status, 200);
    assert.equal((await call('GET', '/admin/v1/users/dave/factors')).body!.required, true);
    await call('POST', '/admin/v1/users/dave/mfa-required', { required: false });
    assert.equal((await call('GET', '/admin/v1/users/dave/factors')).body!.required, false);
  });

  it('a client has require_mfa: false by default, settable on create and update, refused when not a boolean', async () => {
    const c = await call('POST', '/admin/v1/clients', { client_id: 'm1', client_name: 'M', redirect_uris: ['https://m.example/cb'] });
    assert.equal(c.status, 201);
    assert.equal((c.body!.client as { require_mfa: boolean }).require_mfa, false);
    const u = await call('PATCH', '/admin/v1/clients/m1', { require_mfa: true });
    assert.equal(u.status, 200);
    assert.equal((u.body!.client as { require_mfa: boolean }).require_mfa, true);
    assert.equal(((await call('GET', '/admin/v1/clients/m1')).body!.client as { require_mfa: boolean }).require_mfa, true);
    const bad = await call('PATCH', '/admin/v1/clients/m1', { require_mfa: 'yes' });
    assert.equal(bad.status, 400);
    assert.match(String(bad.body!.message), /require_mfa/);
  });
});
