// Every change made through the admin API (src/ops/admin-oauth.ts) is audited with the admin's
// address (the socket peer, as requestMeta takes it for the OAuth endpoints; X-Forwarded-For is
// not trusted), over a real one-node RaftNode; requests through fastify's inject with a chosen
// remoteAddress.
import assert from 'node:assert/strict';
import { after, before, describe, it } from 'node:test';
import type { FastifyInstance } from 'fastify';
import type { RaftNode } from '../../../src/node/node.ts';
import { oauthDomains } from '../../../src/state/oauth-domains.ts';
import { stateApplier } from '../../../src/state/applier.ts';
import { unpackValue } from '../../../src/state/command.ts';
import { AUDIT_KEYSPACE } from '../../../src/state/audit.ts';
import type { AuditRecord } from '../../../src/state/audit-ops.ts';
import { MasterKeyRing } from '../../../src/crypto/seal.ts';
import { DEFAULT_OAUTH_CONFIG } from '../../../src/oauth/config.ts';
import type { OAuthConfig } from '../../../src/oauth/config.ts';
import { LocalCluster, waitFor } from '../node/helpers.ts';
import { oauthAdminNode } from './helpers.ts';

const TOKEN = 'c'.repeat(43);
const config: OAuthConfig = { ...DEFAULT_OAUTH_CONFIG, issuer: 'http://localhost:8080', passwordScrypt: { ln: 10, r: 8, p: 1 } };

describe('admin API: audit records carry the admin address (one-node RaftNode)', () => {
  const cluster = new LocalCluster({ applier: stateApplier(oauthDomains()) });
  let node: RaftNode;
  let app: FastifyInstance;
  const master = MasterKeyRing.parse(MasterKeyRing.generateText(), 'test master key');
  let n = 0;

  /** A call from a fresh address; returns the answer and that address. */
  const call = async (method: 'GET' | 'POST' | 'PATCH' | 'DELETE', url: string, payload?: unknown) => {
    const ip = `192.0.2.${++n}`;
    const r = await app.inject({
      method,
      url,
      remoteAddress: ip,
      // A forged forwarding header must not be what the record names.
      headers: { authorization: `Bearer ${TOKEN}`, 'x-forwarded-for': '198.51.100.66' },
      ...(payload !== undefined ? { payload: payload as Record<string, unknown> } : {}),
    });
    assert.ok(r.statusCode < 300, `${method} ${url}: ${r.statusCode} ${r.body}`);
    return { body: r.body.length > 0 ? (JSON.parse(r.body) as Record<string, unknown>) : null, ip };
  };
  const records = async (): Promise<AuditRecord[]> => (await node.scanState(AUDIT_KEYSPACE, { limit: 10_000 })).map((r) => unpackValue<AuditRecord>(r.value));
  /** The audit records appended since `seq`, of this type. */
  const since = async (seq: number, type: string): Promise<AuditRecord[]> => (await records()).filter((r) => r.seq > seq && r.type === type);
  const head = async (): Promise<number> => Math.max(0, ...(await records()).map((r) => r.seq));

  before(async () => {
    ({ node, app } = await oauthAdminNode(cluster, master, config, TOKEN));
  });
  after(async () => {
    await app?.close();
    await cluster.close();
  });

  it('client create, change, secret rotation and delete', async () => {
    const cases: [string, () => Promise<{ ip: string }>][] = [
      ['client.created', () => call('POST', '/admin/v1/clients', { client_id: 'audited', client_name: 'Audited', grant_types: ['client_credentials'], scopes: ['api'] })],
      ['client.updated', () => call('PATCH', '/admin/v1/clients/audited', { client_name: 'Renamed' })],
      ['client.updated', () => call('POST', '/admin/v1/clients/audited/secret')],
      ['client.deleted', () => call('DELETE', '/admin/v1/clients/audited')],
    ];
    for (const [type, f] of cases) {
      const from = await head();
      const { ip } = await f();
      const rs = await since(from, type);
      assert.equal(rs.length, 1, type);
      assert.equal(rs[0]!.ip, ip, type);
      assert.equal(rs[0]!.clientId, 'audited');
    }
  });

  it('user create, password reset, disable, enable, factor reset, unlock, MFA policy, delete', async () => {
    let from = await head();
    const created = await call('POST', '/admin/v1/users', { username: 'erin', password: 'correct horse battery' });
    const sub = created.body!.sub as string;
    const c = await since(from, 'user.created');
    assert.deepEqual([c.length, c[0]!.ip, c[0]!.sub], [1, created.ip, sub]);

    const cases: [string, () => Promise<{ ip: string }>][] = [
      ['user.updated', () => call('POST', '/admin/v1/users/erin/password', { password: 'another horse battery' })],
      ['user.updated', () => call('POST', '/admin/v1/users/erin/disable')],
      ['user.updated', () => call('POST', '/admin/v1/users/erin/enable')],
      ['mfa.reset', () => call('POST', '/admin/v1/users/erin/factors/reset')],
      ['user.unlocked', () => call('POST', '/admin/v1/users/erin/unlock')],
      ['user.updated', () => call('POST', '/admin/v1/users/erin/mfa-required', { required: true })],
      ['user.deleted', () => call('DELETE', '/admin/v1/users/erin')],
    ];
    for (const [type, f] of cases) {
      from = await head();
      const { ip } = await f();
      const rs = await since(from, type);
      assert.equal(rs.length, 1, type);
      assert.equal(rs[0]!.ip, ip, type);
      assert.equal(rs[0]!.sub, sub, type);
    }
  });

  it('signing-key rotation', async () => {
    const from = await head();
    const { ip, body } = await call('POST', '/admin/v1/keys/rotate');
    const rs = await since(from, 'keys.rotated');
    assert.equal(rs.length, 1);
    assert.equal(rs[0]!.ip, ip);
    assert.equal(rs[0]!.details.active, body!.active);
  });

  it('membership changes: add a learner, promote it, remove it — each change carries its member.changed record (audited:true), on every node', async () => {
    const a2 = await cluster.reserve(2);
    const n2 = await cluster.start(2, { join: true, initial: [1, 2] });
    try {
      const steps: [string, () => Promise<{ body: Record<string, unknown> | null; ip: string }>][] = [
        ['add_learner', () => call('POST', '/admin/v1/members', { id: 2, ...a2 })],
        ['promote', () => call('POST', '/admin/v1/members/2/promote')],
        ['remove', () => call('DELETE', '/admin/v1/members/2')],
      ];
      for (const [action, f] of steps) {
        const from = await head();
        const t0 = Date.now();
        const { body, ip } = await f();
        const t1 = Date.now();
        assert.equal(body!.audited, true, action);
        // The record was applied with the change: it is there when the change is acknowledged.
        const rs = await since(from, 'member.changed');
        assert.equal(rs.length, 1, action);
        assert.deepEqual({ ip: rs[0]!.ip, details: rs[0]!.details, sub: rs[0]!.sub }, { ip, details: { action, node: 2 }, sub: null }, action);
        assert.ok(rs[0]!.ts >= t0 && rs[0]!.ts <= t1, `${action}: leader time ${rs[0]!.ts} within the request`);
        if (action === 'add_learner') {
          // The same record, at the same seq, on the new member: the change replicated with it.
          const seq = rs[0]!.seq;
          const mine = await waitFor(`node 2 holds record ${seq}`, async () => (await n2.scanState(AUDIT_KEYSPACE, { limit: 10_000 })).map((r) => unpackValue<AuditRecord>(r.value)).find((r) => r.seq === seq));
          assert.deepEqual(mine, rs[0]);
        }
      }
      assert.deepEqual((await node.status()).voters, [1]);
    } finally {
      await cluster.stop(2);
    }
  });

  it('every record this suite caused names an admin address, never the forwarded one', async () => {
    const admin = (await records()).filter((r) => /^(client|user|mfa|keys|member)\./.test(r.type));
    assert.ok(admin.length >= 15, `${admin.length} admin records`);
    for (const r of admin) assert.match(String(r.ip), /^192\.0\.2\.\d+$/, `record ${r.seq} ${r.type}`);
  });
});
