// What the primary pushes to its workers (src/server/status-publisher.ts): the node's status into
// the read cache on every change (subscribed or polled, an unchanged status not again), and every
// table to each ready worker, the current versions first, until it is detached.
import assert from 'node:assert/strict';
import { test } from 'node:test';
import pino from 'pino';
import type { NodeStatus } from '../../../src/node/api.ts';
import { STATUS_KEY, STATUS_TABLE } from '../../../src/server/http.ts';
import { decodePrimaryMessage } from '../../../src/server/ipc.ts';
import type { Logger } from '../../../src/server/log.ts';
import { CachePublisher } from '../../../src/server/read-cache.ts';
import type { CacheUpdate } from '../../../src/server/read-cache.ts';
import { StatusPublisher } from '../../../src/server/status-publisher.ts';
import type { StatusSource } from '../../../src/server/status-publisher.ts';

function capture(): { log: Logger; lines: { level: number; msg: string; worker?: number; table?: string }[] } {
  const lines: { level: number; msg: string }[] = [];
  const log = pino({ level: 'debug' }, { write: (s: string) => void lines.push(JSON.parse(s) as { level: number; msg: string }) });
  return { log, lines };
}

const base: NodeStatus = { id: 1, role: 'follower', term: 3, leader: 2, commit: 10, applied: 10, lastIndex: 10, voters: [1, 2, 3], learners: [], members: null };

/** The status table's current version and value in the cache. */
function statusIn(cache: CachePublisher): { version: number; status: NodeStatus } | null {
  let got: CacheUpdate | null = null;
  const unsubscribe = cache.subscribe((u) => {
    if (u.table === STATUS_TABLE) got = u;
  });
  unsubscribe();
  if (got === null) return null;
  const u: CacheUpdate = got;
  const entry = u.entries.find(([k]) => k === STATUS_KEY);
  return { version: u.version, status: entry![1] as NodeStatus };
}

/** Resolves at the next publication of `table`. */
function nextPublication(cache: CachePublisher, table: string, skipCurrent = true): Promise<CacheUpdate> {
  return new Promise((resolve) => {
    let initial = skipCurrent;
    const unsubscribe = cache.subscribe((u) => {
      if (u.table !== table || initial) return;
      unsubscribe();
      resolve(u);
    });
    initial = false;
  });
}

class PushingNode implements StatusSource {
  current: NodeStatus = base;
  readonly listeners = new Set<(s: NodeStatus) => void>();
  statusCalls = 0;
  async status(): Promise<NodeStatus> {
    this.statusCalls++;
    return this.current;
  }
  onStatusChange(l: (s: NodeStatus) => void): () => void {
    this.listeners.add(l);
    return () => this.listeners.delete(l);
  }
  emit(s: NodeStatus): void {
    this.current = s;
    for (const l of this.listeners) l(s);
  }
}

test('a node that pushes its status: published at start and on each change, an unchanged one not again', async () => {
  const node = new PushingNode();
  const cache = new CachePublisher();
  const p = new StatusPublisher({ node, cache, pollMs: 1, log: capture().log });
  await p.start();
  assert.deepEqual(statusIn(cache), { version: 1, status: base });
  node.emit({ ...base, commit: 11, applied: 11, lastIndex: 11 });
  assert.equal(statusIn(cache)?.version, 1, 'only role, leader, term and membership count as a change');
  const changed = { ...base, role: 'leader', leader: 1, term: 4 };
  node.emit(changed);
  assert.deepEqual(statusIn(cache), { version: 2, status: changed });
  node.emit({ ...base, voters: [1, 2, 3, 4] });
  assert.equal(statusIn(cache)?.version, 3);
  assert.equal(node.statusCalls, 1, 'asked once at start; then it pushes');
  p.stop();
  assert.equal(node.listeners.size, 0, 'stop() unsubscribes');
});

test('a node without onStatusChange is polled; a failed poll publishes nothing and the next one goes on', async () => {
  const lines = capture();
  let fail = false;
  let current = base;
  let pollFailed!: () => void;
  const aPollFailed = new Promise<void>((resolve) => (pollFailed = resolve));
  const node: StatusSource = {
    status: async () => {
      if (fail) {
        pollFailed();
        throw new Error('not yet');
      }
      return current;
    },
  };
  const cache = new CachePublisher();
  const p = new StatusPublisher({ node, cache, pollMs: 2, log: lines.log });
  await p.start();
  assert.equal(statusIn(cache)?.version, 1);
  fail = true;
  const changed = { ...base, leader: 3, term: 5 };
  const published = nextPublication(cache, STATUS_TABLE);
  // At least one poll fails before the status is readable again.
  await aPollFailed;
  assert.equal(statusIn(cache)?.version, 1);
  current = changed;
  fail = false;
  const u = await published;
  assert.equal(u.version, 2);
  assert.ok(lines.lines.some((l) => l.level === 20 && /status poll failed/.test(l.msg)), 'the failed poll was logged (debug)');
  assert.deepEqual(statusIn(cache)?.status, changed);
  p.stop();
});

test('a ready worker receives every table, the current versions first, then each update, until detached', async () => {
  const { log, lines } = capture();
  const node = new PushingNode();
  const cache = new CachePublisher();
  cache.publish('clients', [['c1', { name: 'one' }]]);
  const p = new StatusPublisher({ node, cache, pollMs: 1, log });
  await p.start();
  const got = new Map<number, { table: string; version: number }[]>();
  const sendTo = (worker: number) => (bytes: Uint8Array) => {
    const u = decodePrimaryMessage(bytes);
    if (u.t !== 'cache.update') throw new Error(`expected cache.update, got ${u.t}`);
    got.set(worker, [...(got.get(worker) ?? []), { table: u.table, version: u.version }]);
  };
  p.attachWorker(1, sendTo(1));
  assert.deepEqual(got.get(1), [
    { table: 'clients', version: 1 },
    { table: STATUS_TABLE, version: 1 },
  ]);
  node.emit({ ...base, leader: 3 });
  assert.deepEqual(got.get(1)?.at(-1), { table: STATUS_TABLE, version: 2 });

  // A second `ready` (a worker that reconnected its cache) replaces the subscription: no doubles.
  got.set(1, []);
  p.attachWorker(1, sendTo(1));
  cache.publish('clients', [['c2', { name: 'two' }]]);
  assert.deepEqual(got.get(1), [
    { table: 'clients', version: 1 },
    { table: STATUS_TABLE, version: 2 },
    { table: 'clients', version: 2 },
  ]);

  // A worker whose channel throws is logged and does not stop the others' updates.
  p.attachWorker(2, () => {
    throw new Error('channel closed');
  });
  p.attachWorker(3, sendTo(3));
  cache.publish('clients', []);
  assert.deepEqual(got.get(3)?.at(-1), { table: 'clients', version: 3 });
  assert.ok(lines.some((l) => l.level === 50 && l.worker === 2 && l.table === 'clients' && /cannot push a cache update/.test(l.msg)));

  p.detachWorker(1);
  const before = got.get(1)!.length;
  cache.publish('clients', []);
  assert.equal(got.get(1)!.length, before, 'a detached worker gets nothing more');
  assert.deepEqual(got.get(3)?.at(-1), { table: 'clients', version: 4 });
  p.stop();
});
