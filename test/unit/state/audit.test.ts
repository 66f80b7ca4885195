// The audit domain (src/state/audit.ts): the hash chain, its limits, the appends of the audited
// ops in the same command as their change, and compaction with a checkpoint.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { unpackValue } from '../../../src/state/command.ts';
import { GENESIS_HASH, MAX_APPEND_EVENTS, MAX_COMPACT_RECORDS, MAX_DETAIL_CHARS, MAX_RECORD_BYTES, canonicalRecordBytes, readAuditCheckpoint, readAuditHead, validateAuditEvent } from '../../../src/state/audit.ts';
import type { AuditRecord } from '../../../src/state/audit-ops.ts';
import type { ClientRecord, UserRecord } from '../../../src/state/oauth-ops.ts';
import { T0, append, auditNode, ev, outsideHash, records } from '../audit/helpers.ts';

const reader = (node: ReturnType<typeof auditNode>) => ({ get: (ks: string, k: string) => node.state.get(ks)?.get(k) });

test('append: seq from 1, prev links, hash = SHA-256 of the RFC 8785 form without hash (checked by an independent JCS)', async () => {
  const node = auditNode();
  assert.deepEqual(await append(node, [ev(), ev({ type: 'mfa.failed', details: { factor: 'totp', n: 3, b: true, z: null } })]), [1, 2]);
  assert.deepEqual(await append(node, [ev({ sub: null, clientId: null, ip: null, details: {} })]), [3]);
  const rs = records(node);
  assert.deepEqual(rs.map((r) => r.seq), [1, 2, 3]);
  assert.equal(rs[0]!.prev, GENESIS_HASH);
  assert.equal(rs[1]!.prev, rs[0]!.hash);
  assert.equal(rs[2]!.prev, rs[1]!.hash);
  for (const r of rs) {
    assert.equal(r.ts, T0);
    assert.equal(outsideHash({ ...r }), r.hash);
  }
  assert.deepEqual({ ...readAuditHead(reader(node))! }, { seq: 3, hash: rs[2]!.hash });
  // Stored keys are the seq as 16 digits: key order is seq order past 9, 99, …
  assert.deepEqual(node.entries('audit').map(([k]) => k), ['0000000000000001', '0000000000000002', '0000000000000003']);
});

test('append refuses malformed events and batches and writes nothing', async () => {
  const node = auditNode();
  await append(node, [ev()]);
  const before = JSON.stringify(node.entries('audit')) + JSON.stringify(node.entries('sys.audit'));
  const bad: [unknown, RegExp][] = [
    [[], /events/],
    [Array.from({ length: MAX_APPEND_EVENTS + 1 }, () => ev()), /events/],
    [[ev(), { ...ev(), type: 'nope' }], /events\[1\]\.type/],
    [[ev({ type: 'audit.compacted' })], /compact only/],
    [[{ ...ev(), extra: 1 }], /unknown field extra/],
    [[ev({ details: { 'bad key': 1 } })], /key/],
    [[ev({ details: { x: 1.5 } })], /safe integer/],
    [[ev({ details: Object.fromEntries(Array.from({ length: 17 }, (_, i) => [`k${i}`, i])) })], /more than 16/],
    [[ev({ sub: 'x'.repeat(129) })], /sub/],
    [[ev({ ip: 'a b' })], /ip/],
    [[ev({ details: { x: {} as unknown as string } })], /must be a string/],
  ];
  for (const [events, why] of bad) {
    const r = await node.write({ domain: 'audit', op: 'append', args: { events }, timeoutMs: 1000 });
    assert.equal(r.ok, false, `refused: ${why}`);
    if (!r.ok) {
      assert.equal(r.code, 'INVALID_ARGUMENT');
      assert.match(r.message, why);
    }
  }
  assert.equal(JSON.stringify(node.entries('audit')) + JSON.stringify(node.entries('sys.audit')), before);
  // A lone surrogate has no canonical form. (Through the command codec it arrives as U+FFFD; an
  // apply module calling appendAudit directly is checked here.)
  assert.throws(() => validateAuditEvent(ev({ details: { x: 'a\uD800' } })), /well-formed/);
  assert.throws(() => validateAuditEvent(ev({ sub: '\uDC00x' })), /well-formed/);
});

test('records are bounded: long strings are cut at code points, a record over 4 KiB keeps its fields but not its details', async () => {
  const node = auditNode();
  const long = '😀'.repeat(MAX_DETAIL_CHARS + 10);
  await append(node, [ev({ details: { note: long } })]);
  const cut = records(node)[0]!.details.note as string;
  assert.equal(Array.from(cut).length, MAX_DETAIL_CHARS);
  assert.ok(cut.endsWith('…'));
  assert.ok(!/[\uD800-\uDBFF]$/.test(cut.slice(0, -1)), 'never a lone surrogate');
  const big = Object.fromEntries(Array.from({ length: 16 }, (_, i) => [`k${i}`, 'x'.repeat(MAX_DETAIL_CHARS)]));
  await append(node, [ev({ details: big })]);
  const r = records(node)[1]!;
  assert.deepEqual({ ...r.details }, { truncated: true });
  assert.equal(r.sub, 'user-1');
  assert.ok(canonicalRecordBytes(r).length <= MAX_RECORD_BYTES);
  assert.equal(outsideHash({ ...r }), r.hash);
});

const client = (over: Partial<ClientRecord> = {}): ClientRecord => ({
  client_id: 'app',
  client_name: 'App',
  client_secret_hash: 'a'.repeat(43),
  token_endpoint_auth_method: 'client_secret_basic',
  redirect_uris: [],
  grant_types: ['client_credentials'],
  scopes: [],
  jwks: null,
  first_party: false,
  audience: null,
  created_at: T0,
  updated_at: T0,
  ...over,
});

const user = (over: Partial<UserRecord> = {}): UserRecord => ({
  sub: 'u1',
  username: 'alice',
  password_hash: '$scrypt$secret-hash',
  name: null,
  email: null,
  email_verified: false,
  disabled: false,
  created_at: T0,
  updated_at: T0,
  ...over,
});

test('audited ops append their event in the same command; a refused op appends nothing; details hold no secret', async () => {
  const node = auditNode();
  const w = async (domain: string, op: string, args: unknown) => node.write({ domain, op, args, timeoutMs: 1000 });
  const meta = { ip: '10.0.0.7' };
  assert.ok((await w('clients', 'create', { client: client(), meta })).ok);
  assert.ok((await w('clients', 'update', { client: client({ client_secret_hash: 'b'.repeat(43) }), meta })).ok);
  // Refused (exists): no record.
  assert.equal((await w('clients', 'create', { client: client(), meta })).ok, false);
  // Bad meta refuses the op itself.
  const badMeta = await w('clients', 'delete', { client_id: 'app', meta: { ip: 'x', password: 'p' } });
  assert.equal(badMeta.ok, false);
  assert.ok((await w('clients', 'delete', { client_id: 'app', meta })).ok);
  assert.ok((await w('clients', 'delete', { client_id: 'app', meta })).ok, 'deleting a missing client is not an event');
  assert.ok((await w('users', 'create', { user: user() })).ok);
  assert.ok((await w('users', 'update', { user: user({ username: 'alice2', disabled: true, password_hash: '$scrypt$other' }) })).ok);
  assert.ok((await w('users', 'delete', { sub: 'u1' })).ok);
  assert.ok((await w('tokens', 'session.create', { hash: 'sess1', exp: T0 + 60_000, sealed: new Uint8Array([1]), meta: { ip: '::1', sub: 'u9' } })).ok);
  assert.ok((await w('tokens', 'session.delete', { hash: 'sess1', meta: { ip: '::1', sub: 'u9' } })).ok);
  assert.ok((await w('tokens', 'at.revoke', { jti: 'j1', exp: T0 + 1000, meta: { ip: '::1', sub: null, clientId: 'app' } })).ok);
  const rs = records(node);
  assert.deepEqual(
    rs.map((r) => [r.type, r.sub, r.clientId, r.ip]),
    [
      ['client.created', null, 'app', '10.0.0.7'],
      ['client.updated', null, 'app', '10.0.0.7'],
      ['client.deleted', null, 'app', '10.0.0.7'],
      ['user.created', 'u1', null, null],
      ['user.updated', 'u1', null, null],
      ['user.deleted', 'u1', null, null],
      ['login.succeeded', 'u9', null, '::1'],
      ['logout', 'u9', null, '::1'],
      ['token.revoked', null, 'app', '::1'],
    ],
  );
  assert.deepEqual({ ...rs[1]!.details }, { authMethod: 'client_secret_basic', grantTypes: 'client_credentials', secretChanged: true });
  assert.deepEqual({ ...rs[4]!.details }, { username: 'alice2', previousUsername: 'alice', disabled: true, passwordChanged: true });
  const text = JSON.stringify(rs);
  for (const secret of ['a'.repeat(43), 'b'.repeat(43), '$scrypt$', 'sess1']) assert.ok(!text.includes(secret), `no ${secret} in the audit log`);
  // Every record links to the one before.
  for (let i = 1; i < rs.length; i++) assert.equal(rs[i]!.prev, rs[i - 1]!.hash);
});

test('compact deletes up to throughSeq, stores the checkpoint, appends audit.compacted linked to the old head; refusals change nothing', async () => {
  const node = auditNode();
  await append(node, Array.from({ length: 5 }, (_, i) => ev({ details: { i } })));
  const rs: AuditRecord[] = records(node);
  const compact = (throughSeq: number, hash: string, jws = 'aGVhZA.cGF5bG9hZA.c2ln') =>
    node.write({ domain: 'audit', op: 'compact', args: { throughSeq, checkpoint: { seq: throughSeq, hash, signedAt: T0, jws } }, timeoutMs: 1000 });
  const snapshot = () => JSON.stringify(node.entries('audit')) + JSON.stringify(node.entries('sys.audit'));
  const before = snapshot();
  for (const [r, code] of [
    [await compact(3, rs[2]!.hash.replace(/^./, (c) => (c === '0' ? '1' : '0'))), 'CONFLICT'],
    [await compact(9, rs[2]!.hash), 'CONFLICT'],
    [await compact(3, 'xyz'), 'INVALID_ARGUMENT'],
    [await compact(3, rs[2]!.hash, 'not a jws'), 'INVALID_ARGUMENT'],
  ] as const) {
    assert.equal(r.ok, false);
    if (!r.ok) assert.equal(r.code, code, r.message);
  }
  assert.equal(snapshot(), before);
  const r = await compact(3, rs[2]!.hash);
  assert.ok(r.ok);
  assert.deepEqual(r.value, { compacted: 3 });
  const after = records(node);
  assert.deepEqual(after.map((x) => x.seq), [4, 5, 6]);
  assert.equal(after[0]!.prev, rs[2]!.hash, 'the first remaining record links to the checkpoint');
  assert.equal(after[2]!.type, 'audit.compacted');
  assert.equal(after[2]!.prev, rs[4]!.hash);
  assert.deepEqual({ ...after[2]!.details }, { fromSeq: 1, throughSeq: 3, records: 3 });
  assert.equal(readAuditCheckpoint(reader(node))!.seq, 3);
  // Already compacted.
  const again = await compact(2, rs[1]!.hash);
  assert.equal(again.ok, false);
  // Re-sign: same seq and hash, new signature; a retried identical command writes nothing.
  const resign = await compact(3, rs[2]!.hash, 'aGVhZA.cGF5bG9hZA.bmV3');
  assert.ok(resign.ok);
  assert.equal(readAuditCheckpoint(reader(node))!.jws, 'aGVhZA.cGF5bG9hZA.bmV3');
  const n = records(node).length;
  assert.ok((await compact(3, rs[2]!.hash, 'aGVhZA.cGF5bG9hZA.bmV3')).ok);
  assert.equal(records(node).length, n);
  assert.equal(unpackValue<{ seq: number }>(node.state.get('sys.audit')!.get('head')!).seq, records(node).at(-1)!.seq);
});

test(`compact deletes at most ${MAX_COMPACT_RECORDS} records per command`, async () => {
  const node = auditNode();
  for (let i = 0; i < 4; i++) await append(node, Array.from({ length: 256 }, () => ev()));
  const rs = records(node);
  const r = await node.write({ domain: 'audit', op: 'compact', args: { throughSeq: 1001, checkpoint: { seq: 1001, hash: rs[1000]!.hash, signedAt: T0, jws: 'a.b.c' } }, timeoutMs: 1000 });
  assert.equal(r.ok, false);
  if (!r.ok) assert.match(r.message, /at most 1000/);
});
