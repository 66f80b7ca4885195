// Verification of a node's copy of the chain (src/audit/chain.ts), the export format checked by an
// outside verifier, retention (export, compaction, signed checkpoint), and the admin routes.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { generateKeyPairSync } from 'node:crypto';
import { mkdtempSync, readFileSync, readdirSync, rmSync, statSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import Fastify from 'fastify';
import { pino } from 'pino';
import type { JSONWebKeySet } from 'jose';
import type { SigningKey } from '../../../src/crypto/jws.ts';
import { checkCheckpoint, recordLine, scanAudit, signCheckpoint, verifyChain } from '../../../src/audit/chain.ts';
import type { VerifyResult } from '../../../src/audit/chain.ts';
import { auditRetentionRound, DAY_MS } from '../../../src/audit/retention.ts';
import { registerAuditAdminRoutes } from '../../../src/ops/admin-audit.ts';
import { readAuditCheckpoint, readAuditHead, recordHash } from '../../../src/state/audit.ts';
import type { MemoryNode } from '../../support/memory-node.ts';
import { T0, append, auditNode, ev, jcs, outsideHash, records, scanOf, tamper } from './helpers.ts';

const silent = pino({ level: 'silent' });

function key(kid: string): { key: SigningKey; jwks: JSONWebKeySet } {
  const { privateKey, publicKey } = generateKeyPairSync('ec', { namedCurve: 'P-256' });
  return { key: { kid, alg: 'ES256', privateKey }, jwks: { keys: [{ ...publicKey.export({ format: 'jwk' }), kid, alg: 'ES256' }] } };
}

const stateOf = (node: MemoryNode) => ({ get: (ks: string, k: string) => node.state.get(ks)?.get(k) });

async function verify(node: MemoryNode, jwks: JSONWebKeySet = { keys: [] }): Promise<VerifyResult> {
  const head = readAuditHead(stateOf(node));
  const checkpoint = readAuditCheckpoint(stateOf(node));
  return verifyChain({ head, checkpoint, records: scanAudit(scanOf(node), (checkpoint?.seq ?? 0) + 1, head?.seq ?? null), checkCheckpoint: (cp) => checkCheckpoint(cp, jwks) });
}

async function chainOf(n: number): Promise<MemoryNode> {
  const node = auditNode();
  await append(node, Array.from({ length: n }, (_, i) => ev({ details: { i } })));
  return node;
}

test('an intact chain verifies; an empty log verifies', async () => {
  assert.deepEqual(await verify(auditNode()), { ok: true, records: 0, head: null, checkpoint: null });
  const r = await verify(await chainOf(2500));
  assert.equal(r.ok, true);
  if (r.ok) assert.equal(r.records, 2500);
});

test('verify names the first broken record: altered content, altered and re-hashed, deleted, deleted head, renumbered', async () => {
  const cases: [string, (n: MemoryNode) => void, number, RegExp][] = [
    ['details changed', (n) => tamper(n, 7, (r) => ({ ...r, details: { i: 999 } })), 7, /hash does not match/],
    ['sub changed', (n) => tamper(n, 1, (r) => ({ ...r, sub: 'mallory' })), 1, /altered/],
    ['changed and re-hashed', (n) => tamper(n, 7, (r) => { const x = { ...r, type: 'login.succeeded' as const }; return { ...x, hash: recordHash(x) }; }), 8, /prev is not record 7's hash/],
    ['deleted', (n) => n.state.get('audit')!.delete('0000000000000005'), 5, /record 5 is missing/],
    ['two deleted', (n) => { n.state.get('audit')!.delete('0000000000000005'); n.state.get('audit')!.delete('0000000000000006'); }, 5, /records 5\.\.6 are missing/],
    ['the last deleted', (n) => n.state.get('audit')!.delete('0000000000000010'), 10, /\(the head\) is missing/],
    ['seq rewritten', (n) => tamper(n, 3, (r) => ({ ...r, seq: 4 })), 3, /says seq 4/],
  ];
  for (const [what, damage, seq, why] of cases) {
    const node = await chainOf(10);
    damage(node);
    const r = await verify(node);
    assert.equal(r.ok, false, what);
    if (!r.ok) {
      assert.equal(r.firstBroken, seq, `${what}: ${r.why}`);
      assert.match(r.why, why, what);
    }
  }
});

test('exported lines are canonical JSON an outside tool verifies: drop hash, RFC 8785, SHA-256, prev links', async () => {
  const node = await chainOf(20);
  await append(node, [ev({ details: { text: 'é "quoted" \\ \u2028 😀', n: -5, t: true } })]);
  const lines = records(node).map(recordLine);
  let prev = '0'.repeat(64);
  for (const line of lines) {
    assert.ok(line.endsWith('\n') && !line.slice(0, -1).includes('\n'));
    const r = JSON.parse(line) as Record<string, unknown>;
    assert.equal(line.slice(0, -1), jcs(r), 'RFC 8785: members sorted, no whitespace');
    assert.equal(outsideHash(r), r.hash);
    assert.equal(r.prev, prev);
    prev = r.hash as string;
  }
});

test('checkpoint signatures: verified with the JWKS, refused when forged or unknown', async () => {
  const { key: k, jwks } = key('k1');
  const cp = signCheckpoint(k, 5, 'ab'.repeat(32), T0);
  assert.equal(await checkCheckpoint(cp, jwks), null);
  assert.match((await checkCheckpoint({ ...cp, seq: 6 }, jwks))!, /does not match/);
  assert.match((await checkCheckpoint(cp, key('k1').jwks))!, /does not verify/);
  assert.match((await checkCheckpoint(cp, { keys: [] }))!, /does not verify/);
});

async function retentionFixture() {
  const clock = { now: T0 };
  const node = auditNode(clock);
  await append(node, Array.from({ length: 1200 }, (_, i) => ev({ details: { i } })));
  clock.now = T0 + 10 * DAY_MS;
  await append(node, [ev({ details: { recent: true } })]);
  clock.now = T0 + 40 * DAY_MS;
  const dir = mkdtempSync(join(tmpdir(), 'raftauth-audit-'));
  const rn = {
    scanState: scanOf(node),
    read: (req: { domain: string; op: string; args: unknown; timeoutMs: number }) => node.read(req),
    housekeeping: (domain: string, op: string, args: unknown, timeoutMs: number) => node.write({ domain, op, args, timeoutMs }),
  };
  return { clock, node, dir, rn };
}

test('retention exports expired records to fsynced JSONL files, compacts them, and the chain verifies from the signed checkpoint', async (t) => {
  const { node, dir, rn, clock } = await retentionFixture();
  t.after(() => rmSync(dir, { recursive: true, force: true }));
  const before = records(node);
  const { key: k, jwks } = key('k1');
  const out = await auditRetentionRound(rn, { retentionDays: 35, exportDir: join(dir, 'export'), now: clock.now, signingKey: k, log: silent });
  assert.equal(out.compacted, 1200);
  assert.deepEqual(readdirSync(join(dir, 'export')).sort(), ['audit-1-1000.jsonl', 'audit-1001-1200.jsonl']);
  assert.equal(statSync(join(dir, 'export', 'audit-1-1000.jsonl')).mode & 0o777, 0o600);
  const exported = ['audit-1-1000.jsonl', 'audit-1001-1200.jsonl'].flatMap((f) => readFileSync(join(dir, 'export', f), 'utf8').trim().split('\n'));
  assert.deepEqual(exported, before.slice(0, 1200).map((r) => recordLine(r).trim()));
  const left = records(node);
  assert.deepEqual(left.map((r) => r.seq), [1201, 1202, 1203]);
  assert.deepEqual(left.slice(1).map((r) => r.type), ['audit.compacted', 'audit.compacted']);
  const v = await verify(node, jwks);
  assert.equal(v.ok, true, JSON.stringify(v));
  if (v.ok) assert.deepEqual(v.checkpoint, { seq: 1200, signedAt: clock.now, kid: 'k1' });
  // Nothing more to do; a forged checkpoint is reported at its seq.
  assert.equal((await auditRetentionRound(rn, { retentionDays: 35, exportDir: join(dir, 'export'), now: clock.now, signingKey: k, log: silent })).compacted, 0);
  const forged = await verify(node, key('k1').jwks);
  assert.equal(forged.ok, false);
  if (!forged.ok) assert.equal(forged.firstBroken, 1200);
  // A new active key: the checkpoint is re-signed, and verifies with the new key.
  const k2 = key('k2');
  const r2 = await auditRetentionRound(rn, { retentionDays: 35, exportDir: join(dir, 'export'), now: clock.now, signingKey: k2.key, log: silent });
  assert.equal(r2.resigned, true);
  assert.equal((await verify(node, k2.jwks)).ok, true);
});

test('retention does not compact a segment whose chain is broken', async (t) => {
  const { node, dir, rn, clock } = await retentionFixture();
  t.after(() => rmSync(dir, { recursive: true, force: true }));
  tamper(node, 3, (r) => ({ ...r, details: { i: -1 } }));
  const out = await auditRetentionRound(rn, { retentionDays: 35, exportDir: join(dir, 'export'), now: clock.now, signingKey: key('k1').key, log: silent });
  assert.equal(out.compacted, 0);
  assert.equal(records(node).length, 1201);
});

test('admin routes: query with filters and paging, export as JSON Lines, verify this node, bad parameters are 400', async (t) => {
  const clock = { now: T0 };
  const node = auditNode(clock);
  for (let i = 0; i < 30; i++) {
    clock.now = T0 + i * 1000;
    await append(node, [ev({ sub: i % 2 ? 'odd' : 'even', clientId: i % 3 ? 'a' : 'b', type: i % 5 ? 'login.failed' : 'token.issued', details: { i } })]);
  }
  const app = Fastify();
  registerAuditAdminRoutes(app, { node: { id: 7, read: (r) => node.read(r), scanState: scanOf(node) }, log: silent });
  t.after(() => app.close());
  const get = async (url: string) => {
    const r = await app.inject({ method: 'GET', url });
    return { status: r.statusCode, body: String(r.headers['content-type'] ?? '').startsWith('application/json') ? (r.json() as Record<string, unknown>) : r.body };
  };
  const seqs = (b: unknown) => ((b as { records: { seq: number }[] }).records ?? []).map((r) => r.seq);
  let r = await get('/admin/v1/audit?limit=5');
  assert.deepEqual(seqs(r.body), [1, 2, 3, 4, 5]);
  assert.equal((r.body as { next: number }).next, 5);
  r = await get('/admin/v1/audit?limit=5&after=5');
  assert.deepEqual(seqs(r.body), [6, 7, 8, 9, 10]);
  r = await get(`/admin/v1/audit?from=${T0 + 10_000}&to=${new Date(T0 + 20_000).toISOString()}&sub=odd`);
  assert.deepEqual(seqs(r.body), [12, 14, 16, 18, 20]);
  assert.equal((r.body as { next: unknown }).next, null);
  r = await get('/admin/v1/audit?type=token.issued&client_id=b');
  assert.deepEqual(seqs(r.body), [1, 16]);
  for (const bad of ['limit=0', 'limit=1001', 'type=nope', 'from=yesterday', 'after=-1', 'colour=red']) {
    r = await get(`/admin/v1/audit?${bad}`);
    assert.equal(r.status, 400, bad);
  }
  const exp = await app.inject({ method: 'GET', url: '/admin/v1/audit/export?sub=even' });
  assert.equal(exp.statusCode, 200);
  assert.match(String(exp.headers['content-type']), /jsonl/);
  const lines = exp.body.trim().split('\n').map((l) => JSON.parse(l) as { seq: number; hash: string });
  assert.deepEqual(lines.map((l) => l.seq), Array.from({ length: 15 }, (_, i) => 2 * i + 1));
  for (const l of lines) assert.equal(outsideHash(l), l.hash);
  r = await get('/admin/v1/audit/verify');
  assert.deepEqual({ node: (r.body as { node: number }).node, ok: (r.body as { ok: boolean }).ok, records: (r.body as { records: number }).records }, { node: 7, ok: true, records: 30 });
  assert.equal((await get('/admin/v1/audit/verify?node=8')).status, 409);
  tamper(node, 12, (x) => ({ ...x, ip: '6.6.6.6' }));
  r = await get('/admin/v1/audit/verify?node=7');
  assert.equal((r.body as { ok: boolean }).ok, false);
  assert.equal((r.body as { firstBroken: number }).firstBroken, 12);
});
