// Issue 13, defect 2: a node without a master key serves no OAuth, and its admin API used to answer
// the OAuth, MFA and audit routes with fastify's bare `Route POST:/admin/v1/clients not found`
// (404), which reads like a typo in the URL. Every one of those routes must instead say that this
// node has no master key and name the setting that gives it one.
import assert from 'node:assert/strict';
import { test } from 'node:test';
import Fastify from 'fastify';
import type { RouteOptions } from 'fastify';
import { pino } from 'pino';
import { NO_MASTER_KEY_STATUS, buildAdminApp } from '../../../src/ops/admin.ts';
import { registerOAuthAdminRoutes } from '../../../src/ops/admin-oauth.ts';
import type { AdminOAuthNode } from '../../../src/ops/admin-oauth.ts';
import { registerAuditAdminRoutes } from '../../../src/ops/admin-audit.ts';
import type { AdminAuditNode } from '../../../src/ops/admin-audit.ts';
import type { RaftNode } from '../../../src/node/node.ts';
import type { NodeStatus } from '../../../src/node/api.ts';
import { MasterKeyRing } from '../../../src/crypto/seal.ts';
import { DEFAULT_OAUTH_CONFIG } from '../../../src/oauth/config.ts';

const TOKEN = 'n'.repeat(40);
const auth = { authorization: `Bearer ${TOKEN}` };

const unused = (): never => {
  throw new Error('a route without a master key must not reach the node');
};

/** Enough of a node for the routes that do not need OAuth (status), and a trap for any other call. */
const fakeNode = {
  id: 1,
  status: async (): Promise<NodeStatus> => ({ id: 1, role: 'leader', leader: 1, term: 3, commit: 9, applied: 9, lastIndex: 9, voters: [1], learners: [], members: null }),
  write: unused,
  read: unused,
  scanState: unused,
  isLeader: unused,
  housekeeping: unused,
  memberAddresses: () => new Map(),
} as unknown as RaftNode & AdminOAuthNode & AdminAuditNode;

/** Every (method, url) the OAuth and audit admin modules register when the node has a master key. */
function oauthRoutes(): { method: string; url: string }[] {
  const probe = Fastify();
  const routes: { method: string; url: string }[] = [];
  probe.addHook('onRoute', (r: RouteOptions) => {
    for (const m of [r.method].flat()) if (m !== 'HEAD') routes.push({ method: m, url: r.url! });
  });
  const log = pino({ level: 'silent' });
  const master = MasterKeyRing.parse(MasterKeyRing.generateText(), 'test');
  registerOAuthAdminRoutes(probe, { node: fakeNode, master, config: { ...DEFAULT_OAUTH_CONFIG, issuer: 'http://localhost:8080' }, log, rotateSigningKeys: unused, notLeader: unused });
  registerAuditAdminRoutes(probe, { node: fakeNode, log });
  return routes;
}

test('without a master key, every OAuth, MFA and audit admin route answers NO_MASTER_KEY naming crypto.masterKeyFile and RAFTAUTH_MASTER_KEY, not a 404', async () => {
  const routes = oauthRoutes();
  // The clients, users (with their MFA factors and policy), keys and audit routes: enough that a
  // route missed by the fallback would show up here.
  assert.ok(routes.length >= 20, `found ${routes.length} routes`);
  for (const part of ['/admin/v1/clients', '/admin/v1/users/:username/factors/reset', '/admin/v1/keys/rewrap', '/admin/v1/audit/verify']) {
    assert.ok(routes.some((r) => r.url === part), `${part} is among the routes`);
  }
  const app = buildAdminApp({ node: fakeNode, token: TOKEN });
  try {
    for (const r of routes) {
      const url = r.url.replace(':username', 'alice').replace(':id', 'app1');
      const res = await app.inject({ method: r.method as 'GET', url, headers: auth, ...(r.method === 'POST' || r.method === 'PATCH' ? { payload: {} } : {}) });
      assert.equal(res.statusCode, NO_MASTER_KEY_STATUS, `${r.method} ${url}: ${res.body}`);
      const body = res.json() as { error: string; message: string };
      assert.equal(body.error, 'NO_MASTER_KEY', `${r.method} ${url}`);
      assert.match(body.message, /no master key on this node/);
      assert.match(body.message, /crypto\.masterKeyFile/);
      assert.match(body.message, /RAFTAUTH_MASTER_KEY/);
    }
    // The token is still checked first: without it, 401 as for any admin route.
    assert.equal((await app.inject({ method: 'POST', url: '/admin/v1/clients', payload: {} })).statusCode, 401);
    // The routes that need no master key still work, and an unknown route is still a plain 404.
    const st = await app.inject({ method: 'GET', url: '/admin/v1/status', headers: auth });
    assert.equal(st.statusCode, 200, st.body);
    assert.equal((await app.inject({ method: 'GET', url: '/admin/v1/nope', headers: auth })).statusCode, 404);
  } finally {
    await app.close();
  }
});
