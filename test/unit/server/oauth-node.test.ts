// The primary's OAuth duties (src/server/oauth-node.ts) over an in-memory node: read-cache tables
// follow applied changes, the leader (and only the leader) creates the keys, rotates them when the
// period has passed, and sweeps expired records.
import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import pino from 'pino';
import { CACHE_TABLE_LIMIT, CACHE_TABLE_MAX_BYTES, OAuthPrimary } from '../../../src/server/oauth-node.ts';
import { MAX_IPC_MESSAGE_BYTES, encodeIpc } from '../../../src/server/ipc.ts';
import { packValue } from '../../../src/state/command.ts';
import { DEFAULT_READ_CACHE_LIMITS } from '../../../src/server/read-cache.ts';
import { defaultStorageConfig } from '../../../src/storage/config.ts';
import type { OAuthNodeHooks } from '../../../src/server/oauth-node.ts';
import { MasterKeyRing } from '../../../src/crypto/seal.ts';
import { oauthDomains } from '../../../src/state/oauth-domains.ts';
import type { SigningKeyRing } from '../../../src/state/oauth-ops.ts';
import { waitFor } from '../../../scripts/lib/wait.ts';
import { MemoryNode } from '../../support/memory-node.ts';

const enc = new TextEncoder();
const PERIOD_S = 3_600;

function setup(opts: { leader?: boolean; cacheTableLimit?: number; cacheTableMaxBytes?: number; log?: pino.Logger } = {}) {
  const clock = { now: Date.parse('2026-11-23T12:00:00Z') };
  const node = new MemoryNode(oauthDomains(), () => clock.now);
  const listeners = new Set<(ks: ReadonlySet<string> | null) => void>();
  node.onApplied = (changes) => {
    const ks = new Set<string>([...changes.puts.map(([k]) => k), ...changes.dels.map(([k]) => k)]);
    for (const l of listeners) l(ks);
  };
  const state = { leader: opts.leader ?? true };
  const hooks: OAuthNodeHooks = {
    onStateChange: (l) => {
      listeners.add(l);
      return () => listeners.delete(l);
    },
    scanState: async (keyspace, o) =>
      node
        .entries(keyspace)
        .filter(([k]) => (o.gte === undefined || k >= o.gte) && (o.lt === undefined || k < o.lt))
        .slice(0, o.limit)
        .map(([k, v]) => ({ key: enc.encode(k), value: v })),
    isLeader: () => state.leader,
    housekeeping: (domain, op, args, timeoutMs) => node.write({ domain, op, args, timeoutMs }),
    read: (req) => node.read(req),
  };
  const tables = new Map<string, [string, unknown][]>();
  const master = MasterKeyRing.parse(MasterKeyRing.generateText(), 'test');
  const primary = new OAuthPrimary({
    node: hooks,
    publish: (t, e) => void tables.set(t, e),
    master,
    config: { signingAlg: 'ES256', keyRotationPeriodS: PERIOD_S, accessTokenTtlS: 600, idTokenTtlS: 3600 },
    log: opts.log ?? pino({ level: 'silent' }),
    ...(opts.cacheTableLimit !== undefined ? { cacheTableLimit: opts.cacheTableLimit } : {}),
    ...(opts.cacheTableMaxBytes !== undefined ? { cacheTableMaxBytes: opts.cacheTableMaxBytes } : {}),
    now: () => clock.now,
    // Rounds are run by the tests (leaderRound), never by the timer.
    tickMs: 3_600_000,
    sweepEveryMs: 1_000,
  });
  const ring = (): SigningKeyRing | undefined => tables.get('signing_keys')?.find(([k]) => k === 'ring')?.[1] as SigningKeyRing | undefined;
  return { clock, node, state, tables, primary, ring };
}

function testClient(client_id: string, now: number) {
  return {
    client_id,
    client_name: client_id,
    client_secret_hash: 'a'.repeat(43),
    token_endpoint_auth_method: 'client_secret_basic',
    redirect_uris: [],
    grant_types: ['client_credentials'],
    scopes: ['api'],
    jwks: null,
    first_party: true,
    audience: null,
    created_at: now,
    updated_at: now,
  };
}

describe('OAuthPrimary', () => {
  it('the leader creates the data key and the signing keys once; the tables reach the cache', async () => {
    const t = setup();
    await t.primary.start();
    try {
      await t.primary.leaderRound();
      const ring = await waitFor('the signing key ring in the cache', () => t.ring(), 5_000);
      assert.deepEqual(ring.keys.map((k) => k.state).sort(), ['active', 'next']);
      assert.ok(t.tables.get('data_keys')?.some(([k]) => k === 'ring'));
      assert.deepEqual(t.node.log.map((e) => `${e.domain}.${e.op}`), ['crypto.init', 'keys.init']);
      // Later rounds propose nothing more (the keys exist; the sweep finds nothing).
      await t.primary.leaderRound();
      await t.primary.leaderRound();
      assert.deepEqual(t.node.log.map((e) => `${e.domain}.${e.op}`), ['crypto.init', 'keys.init']);
      assert.equal(t.ring()!.version, ring.version);
    } finally {
      t.primary.stop();
    }
  });

  it('a follower proposes nothing', async () => {
    const t = setup({ leader: false });
    await t.primary.start();
    try {
      // Tables are published (empty state), but no key is created.
      assert.ok(t.tables.has('clients'));
      await t.primary.leaderRound();
      await t.primary.leaderRound();
      assert.equal(t.node.log.length, 0);
      assert.equal(t.ring(), undefined);
    } finally {
      t.primary.stop();
    }
  });

  it('rotates when the active key is older than the period: next becomes active, active is retired until its tokens expire', async () => {
    const t = setup();
    await t.primary.start();
    try {
      await t.primary.leaderRound();
      const first = await waitFor('the first ring', () => t.ring(), 5_000);
      const active = first.keys.find((k) => k.state === 'active')!;
      const next = first.keys.find((k) => k.state === 'next')!;
      t.clock.now += PERIOD_S * 1000 - 1;
      await t.primary.leaderRound();
      assert.equal(t.ring()!.version, first.version, 'not rotated before the period');
      t.clock.now += 1;
      await t.primary.leaderRound();
      const second = await waitFor('a rotation', () => (t.ring()?.version ?? 0) > first.version && t.ring(), 5_000);
      assert.equal(second.keys.find((k) => k.state === 'active')!.kid, next.kid);
      const retired = second.keys.find((k) => k.kid === active.kid)!;
      assert.equal(retired.state, 'retired');
      // Retained for the longest token lifetime (ID tokens, 3600 s) plus a minute of skew.
      assert.equal(retired.publishUntil, t.clock.now + 3_600_000 + 60_000);
      assert.equal(second.keys.filter((k) => k.state === 'next').length, 1);
    } finally {
      t.primary.stop();
    }
  });

  it('the clients table follows applied changes', async () => {
    const t = setup();
    await t.primary.start();
    try {
      const client = testClient('c1', t.clock.now);
      const r = await t.node.write({ domain: 'clients', op: 'create', args: { client }, timeoutMs: 1000 });
      assert.ok(r.ok, JSON.stringify(r));
      await waitFor('the client in the table', () => t.tables.get('clients')?.some(([k]) => k === 'c1'), 5_000);
      await t.node.write({ domain: 'clients', op: 'delete', args: { client_id: 'c1' }, timeoutMs: 1000 });
      await waitFor('the client gone from the table', () => t.tables.get('clients')?.length === 0, 5_000);
    } finally {
      t.primary.stop();
    }
  });

  it('a cache table holds at most its bound (the first records in key order) and says so when the keyspace holds more', async () => {
    const lines: { msg: string; table?: string; limit?: number; lastCached?: string }[] = [];
    const log = pino({ level: 'error' }, { write: (l: string) => void lines.push(JSON.parse(l) as (typeof lines)[number]) });
    const t = setup({ cacheTableLimit: 3, log });
    await t.primary.start();
    try {
      for (const id of ['c1', 'c2', 'c3']) assert.ok((await t.node.write({ domain: 'clients', op: 'create', args: { client: testClient(id, t.clock.now) }, timeoutMs: 1000 })).ok);
      await waitFor('three clients in the table', () => t.tables.get('clients')?.length === 3, 5_000);
      assert.equal(lines.length, 0, 'at the bound: no overflow');
      assert.ok((await t.node.write({ domain: 'clients', op: 'create', args: { client: testClient('c4', t.clock.now) }, timeoutMs: 1000 })).ok);
      await waitFor('the overflow reported', () => lines.some((l) => l.msg.includes('over its bound')), 5_000);
      assert.deepEqual(t.tables.get('clients')!.map(([k]) => k), ['c1', 'c2', 'c3']);
      assert.deepEqual(lines.map((l) => [l.table, l.limit, l.lastCached]), [['clients', 3, 'c3']]);
    } finally {
      t.primary.stop();
    }
  });

  it('a cache table holds no more bytes than its byte bound: the clients that fit, in key order', async () => {
    const lines: { msg: string; entries?: number; lastCached?: string }[] = [];
    const log = pino({ level: 'error' }, { write: (l: string) => void lines.push(JSON.parse(l) as (typeof lines)[number]) });
    const one = packValue(testClient('c1', 0)).length + 2 + 8;
    const t = setup({ cacheTableMaxBytes: Math.floor(2.5 * one), log });
    await t.primary.start();
    try {
      for (const id of ['c1', 'c2', 'c3']) assert.ok((await t.node.write({ domain: 'clients', op: 'create', args: { client: testClient(id, 0) }, timeoutMs: 1000 })).ok);
      await waitFor('the overflow reported', () => lines.some((l) => l.msg.includes('over its bound') && l.entries === 2), 5_000);
      assert.deepEqual(t.tables.get('clients')!.map(([k]) => k), ['c1', 'c2']);
      assert.equal(lines.at(-1)!.lastCached, 'c2');
    } finally {
      t.primary.stop();
    }
  });

  it('the cache bounds: the read cache\'s entries, one storage page, and a table at its byte bound fits one IPC message', () => {
    assert.equal(CACHE_TABLE_LIMIT, DEFAULT_READ_CACHE_LIMITS.maxEntriesPerTable);
    assert.ok(CACHE_TABLE_LIMIT <= defaultStorageConfig.maxIterateLimit);
    // As many realistic clients as the byte bound admits (counted as the rebuild counts them), sent
    // the way the primary sends a table to a worker.
    const entries: [string, unknown][] = [];
    let bytes = 0;
    for (let i = 0; ; i++) {
      const c = { ...testClient(`client-${String(i).padStart(6, '0')}`, Date.now()), redirect_uris: [`https://app-${i}.example.com/callback`], client_name: `Application number ${i}` };
      const size = c.client_id.length + packValue(c).length + 8;
      if (bytes + size > CACHE_TABLE_MAX_BYTES) break;
      bytes += size;
      entries.push([c.client_id, c]);
    }
    const msg = encodeIpc({ t: 'cache.update', table: 'clients', entries, version: 1 });
    assert.ok(msg.length <= MAX_IPC_MESSAGE_BYTES, `${entries.length} clients: ${msg.length} bytes`);
  });

  it('sweep deletes expired records and their index entries, and keeps the others', async () => {
    const t = setup({ leader: false });
    const sealed = new Uint8Array([1, 2, 3]);
    const mk = async (hash: string, exp: number) => {
      const r = await t.node.write({ domain: 'tokens', op: 'session.create', args: { hash, exp, sealed }, timeoutMs: 1000 });
      assert.ok(r.ok, JSON.stringify(r));
    };
    const now = t.clock.now;
    for (let i = 0; i < 5; i++) await mk(`old${i}`.padEnd(43, 'x'), now + 1_000 + i);
    await mk('new'.padEnd(43, 'x'), now + 60_000);
    t.clock.now = now + 10_000;
    assert.equal(await t.primary.sweep(), 5);
    assert.deepEqual(t.node.entries('tok.sess').map(([k]) => k), ['new'.padEnd(43, 'x')]);
    assert.equal(t.node.entries('tok.exp').length, 1);
    assert.equal(await t.primary.sweep(), 0);
  });
});
