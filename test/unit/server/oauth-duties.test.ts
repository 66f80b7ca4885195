// The primary's OAuth duties as startServer starts them (src/server/oauth-duties.ts): the master key
// loaded (or refused) before the node opens; with a key and a node that offers the hooks, the
// OAuth tables reach the read cache and the leader creates the keys; without a key nothing runs and
// the node says it serves no OAuth; a stand-in node without hooks runs nothing either.
import assert from 'node:assert/strict';
import { test } from 'node:test';
import pino from 'pino';
import { MasterKeyRing } from '../../../src/crypto/seal.ts';
import type { Logger } from '../../../src/server/log.ts';
import { loadOAuthKeys, startOAuthDuties } from '../../../src/server/oauth-duties.ts';
import type { OAuthDutiesNode } from '../../../src/server/oauth-duties.ts';
import { MASTER_KEY_ENV } from '../../../src/server/oauth-node.ts';
import { CachePublisher } from '../../../src/server/read-cache.ts';
import type { CacheUpdate } from '../../../src/server/read-cache.ts';
import { oauthDomains } from '../../../src/state/oauth-domains.ts';
import type { SigningKeyRing } from '../../../src/state/oauth-ops.ts';
import { waitFor } from '../../../scripts/lib/wait.ts';
import { MemoryNode } from '../../support/memory-node.ts';
import { FakeNode, testConfig } from './helpers.ts';

const enc = new TextEncoder();

function capture(): { log: Logger; lines: { level: number; msg: string }[] } {
  const lines: { level: number; msg: string }[] = [];
  const log = pino({ level: 'debug' }, { write: (s: string) => void lines.push(JSON.parse(s) as { level: number; msg: string }) });
  return { log, lines };
}

/** A MemoryNode with the hooks RaftNode offers; `leader` decides isLeader(). */
function hookedNode(leader: boolean): { node: OAuthDutiesNode; memory: MemoryNode; listeners: Set<(ks: ReadonlySet<string> | null) => void> } {
  const memory = new MemoryNode(oauthDomains(), () => Date.now());
  const listeners = new Set<(ks: ReadonlySet<string> | null) => void>();
  memory.onApplied = (changes) => {
    const ks = new Set<string>([...changes.puts.map(([k]) => k), ...changes.dels.map(([k]) => k)]);
    for (const l of listeners) l(ks);
  };
  const node: OAuthDutiesNode = {
    read: (req) => memory.read(req),
    onStateChange: (l) => {
      listeners.add(l);
      return () => listeners.delete(l);
    },
    scanState: async (keyspace, o) =>
      memory
        .entries(keyspace)
        .filter(([k]) => (o.gte === undefined || k >= o.gte) && (o.lt === undefined || k < o.lt))
        .slice(0, o.limit)
        .map(([k, v]) => ({ key: enc.encode(k), value: v })),
    isLeader: () => leader,
    housekeeping: (domain, op, args, timeoutMs) => memory.write({ domain, op, args, timeoutMs }),
  };
  return { node, memory, listeners };
}

function table(cache: CachePublisher, name: string): CacheUpdate | undefined {
  let got: CacheUpdate | undefined;
  cache.subscribe((u) => {
    if (u.table === name) got = u;
  })();
  return got;
}

test('loadOAuthKeys: none configured is no key and no OAuth config; a key gives both; a bad key fails', async (t) => {
  const config = await testConfig(t, { workers: 0 });
  assert.deepEqual(loadOAuthKeys(config, {}), { master: null, oauthConfig: null });
  const keys = loadOAuthKeys(config, { [MASTER_KEY_ENV]: MasterKeyRing.generateText() });
  assert.ok(keys.master instanceof MasterKeyRing);
  assert.equal(keys.oauthConfig?.issuer, config.oauth.issuer);
  assert.throws(() => loadOAuthKeys(config, { [MASTER_KEY_ENV]: 'not a key' }));
});

test('with a master key and a hooked node, the OAuth tables reach the cache and the leader creates the keys', { timeout: 20_000 }, async (t) => {
  const config = await testConfig(t, { workers: 0 });
  const keys = loadOAuthKeys(config, { [MASTER_KEY_ENV]: MasterKeyRing.generateText() });
  const { node, memory, listeners } = hookedNode(true);
  const cache = new CachePublisher();
  const { log, lines } = capture();
  const duties = await startOAuthDuties({ keys, node, cache, audit: config.audit, log });
  assert.ok(duties, 'the duties run');
  try {
    // Published before start resolved: every OAuth table, empty for now.
    for (const name of ['clients', 'signing_keys', 'data_keys']) assert.ok(table(cache, name), `table ${name} published`);
    // The leader's round (every second) creates the data key and the signing keys.
    const ring = await waitFor(
      'the signing key ring in the cache',
      () => table(cache, 'signing_keys')?.entries.find(([k]) => k === 'ring')?.[1] as SigningKeyRing | undefined,
      10_000,
    );
    assert.deepEqual(ring.keys.map((k) => k.state).sort(), ['active', 'next']);
    assert.deepEqual(memory.log.map((e) => `${e.domain}.${e.op}`).slice(0, 2), ['crypto.init', 'keys.init']);
    assert.ok(!lines.some((l) => /no master key/.test(l.msg)));
  } finally {
    duties.stop();
  }
  assert.equal(listeners.size, 0, 'stop() unsubscribes from state changes');
});

test('without a master key nothing runs, and the node says it serves no OAuth', async (t) => {
  const config = await testConfig(t, { workers: 0 });
  const { node, memory, listeners } = hookedNode(true);
  const cache = new CachePublisher();
  const { log, lines } = capture();
  assert.equal(await startOAuthDuties({ keys: { master: null, oauthConfig: null }, node, cache, audit: config.audit, log }), null);
  assert.ok(lines.some((l) => l.level === 40 && /no master key .*serves no OAuth endpoints/.test(l.msg)));
  assert.equal(listeners.size, 0);
  assert.equal(table(cache, 'signing_keys'), undefined);
  assert.equal(memory.log.length, 0);
});

test('a node without the hooks (a stand-in) runs no duties, and no warning: it has a key', async (t) => {
  const config = await testConfig(t, { workers: 0 });
  const keys = loadOAuthKeys(config, { [MASTER_KEY_ENV]: MasterKeyRing.generateText() });
  const cache = new CachePublisher();
  const { log, lines } = capture();
  assert.equal(await startOAuthDuties({ keys, node: new FakeNode(), cache, audit: config.audit, log }), null);
  assert.equal(lines.length, 0);
  assert.equal(table(cache, 'signing_keys'), undefined);
});
