// `raftauth status` against real nodes' admin APIs (issue 13, defect 6): three RaftNodes in this
// process, each with its admin API on a loopback port. Given one admin URL (or one node's config),
// the CLI finds the others through the member table, which carries their admin addresses; a member
// whose record has none (written before admin addresses existed) is reported as unknown, not as
// unreachable.
import assert from 'node:assert/strict';
import { mkdtemp, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { test } from 'node:test';
import type { TestContext } from 'node:test';
import type { FastifyInstance } from 'fastify';
import { buildAdminApp } from '../../../src/ops/admin.ts';
import { runRaftauth } from '../../../src/cli/main.ts';
import { LocalCluster, freePort } from '../node/helpers.ts';
import { captureIo } from './io.ts';

const TOKEN = 'a'.repeat(43);

interface Report {
  leader: number;
  members: { id: number; role: string; voter: boolean; term: number | null }[];
  unreachable: { url: string; error: string }[];
}

/** Nodes 1-3 with admin APIs; `recordAdmin`: whether their member records carry the admin addresses. */
async function clusterWithAdmin(t: TestContext, recordAdmin: boolean): Promise<{ c: LocalCluster; admin: Map<number, string>; dir: string; tokenFile: string }> {
  const dir = await mkdtemp(join(tmpdir(), 'raftauth-status-'));
  const c = new LocalCluster();
  const apps: FastifyInstance[] = [];
  t.after(async () => {
    for (const a of apps) await a.close();
    await c.close();
    await rm(dir, { recursive: true, force: true });
  });
  await c.init([1, 2, 3]);
  const admin = new Map<number, string>();
  for (const id of [1, 2, 3]) {
    const a = `127.0.0.1:${await freePort()}`;
    admin.set(id, a);
    if (recordAdmin) c.addresses.set(id, { ...c.addresses.get(id)!, adminAddress: a });
  }
  for (const id of [1, 2, 3]) {
    const node = await c.start(id);
    const app = buildAdminApp({ node, token: TOKEN });
    apps.push(app);
    const [host, port] = admin.get(id)!.split(':');
    await app.listen({ host: host!, port: Number(port) });
  }
  await c.leader();
  const tokenFile = join(dir, 'admin.token');
  await writeFile(tokenFile, `${TOKEN}\n`, { mode: 0o600 });
  return { c, admin, dir, tokenFile };
}

async function status(args: string[]): Promise<{ code: number | null; report: Report; stderr: string }> {
  const io = captureIo();
  const code = await runRaftauth(['status', '--json', ...args], io);
  return { code, report: JSON.parse(io.stdout()) as Report, stderr: io.stderr() };
}

test('given one admin URL, status reaches every member through the admin addresses in the member table', async (t) => {
  const { admin, tokenFile } = await clusterWithAdmin(t, true);
  const { code, report, stderr } = await status(['--admin', `http://${admin.get(2)}`, '--token-file', tokenFile]);
  assert.equal(code, 0, stderr);
  assert.deepEqual(report.unreachable, []);
  assert.deepEqual(report.members.map((m) => m.id), [1, 2, 3]);
  for (const m of report.members) assert.ok(m.role === 'leader' || m.role === 'follower', `node ${m.id} answered: ${m.role}`);
  assert.equal(report.members.filter((m) => m.role === 'leader').length, 1);

  // A learner added with its admin address (members add --admin-address) is asked too: nothing
  // listens there, so it is reported unreachable, by its URL.
  const a4 = `127.0.0.1:${await freePort()}`;
  const io = captureIo();
  const add = ['members', 'add', '--id', '4', '--raft-address', `127.0.0.1:${await freePort()}`, '--http-address', `127.0.0.1:${await freePort()}`, '--admin-address', a4];
  assert.equal(await runRaftauth([...add, '--admin', `http://${admin.get(1)}`, '--token-file', tokenFile], io), 0, io.stderr());
  const after = await status(['--admin', `http://${admin.get(1)}`, '--token-file', tokenFile]);
  assert.equal(after.code, 0, after.stderr);
  assert.deepEqual(after.report.members.map((m) => [m.id, m.role === 'unreachable']), [[1, false], [2, false], [3, false], [4, true]]);
  assert.deepEqual(after.report.unreachable.map((u) => u.url), [`http://${a4}`]);
});

test('members whose records carry no admin address are unknown, not unreachable; a node config (--config) names them', async (t) => {
  const { admin, dir, tokenFile } = await clusterWithAdmin(t, false);
  const one = await status(['--admin', `http://${admin.get(1)}`, '--token-file', tokenFile]);
  assert.equal(one.code, 0, one.stderr);
  assert.deepEqual(one.report.members.map((m) => [m.id, m.role]), [[1, one.report.members[0]!.role], [2, 'unknown'], [3, 'unknown']]);
  assert.notEqual(one.report.members[0]!.role, 'unknown');
  assert.deepEqual(one.report.unreachable, []);
  const text = captureIo();
  assert.equal(await runRaftauth(['status', '--admin', `http://${admin.get(1)}`, '--token-file', tokenFile], text), 0);
  assert.match(text.stdout(), /no admin URL known for nodes 2, 3: pass --admin URL, or --config with a node config that lists their adminAddress/);

  // Node 1's config: its own admin API (admin.listen), its token file, and the others' admin
  // addresses in cluster.initialMembers. That alone is enough.
  for (const f of ['ca.pem', 'node.pem', 'node.key']) await writeFile(join(dir, f), '-----placeholder-----\n');
  const cfg = join(dir, 'node1.yaml');
  const member = (id: number): string => `    - { id: ${id}, raftAddress: "127.0.0.1:${17100 + id}", httpAddress: "127.0.0.1:${18100 + id}", adminAddress: "${admin.get(id)}" }`;
  await writeFile(
    cfg,
    ['node: { id: 1, dataDir: data }', 'cluster:', '  initialMembers:', member(1), member(2), member(3), 'tls: { ca: ca.pem, cert: node.pem, key: node.key }', `admin: { listen: "${admin.get(1)}", tokenFile: admin.token }`, ''].join('\n'),
  );
  const all = await status(['--config', cfg]);
  assert.equal(all.code, 0, all.stderr);
  assert.deepEqual(all.report.unreachable, []);
  for (const m of all.report.members) assert.ok(m.role === 'leader' || m.role === 'follower', `node ${m.id} answered: ${m.role}`);
});
