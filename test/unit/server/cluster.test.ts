// The real process model: HTTP workers forked with node:cluster, the fake node in this (primary)
// process, requests over IPC, the read cache pushed to workers, supervision and graceful stop.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { createServer } from 'node:net';
import type { AddressInfo } from 'node:net';
import { NodeError } from '../../../src/node/api.ts';
import type { ApplyResult } from '../../../src/node/api.ts';
import { createLogger } from '../../../src/server/log.ts';
import { startServer } from '../../../src/server/process.ts';
import { VERSION } from '../../../src/version.ts';
import { PushingFakeNode, alive, call, testConfig, waitFor } from './helpers.ts';

/** A logger whose lines the test can read. */
function capturingLogger(): { logger: ReturnType<typeof createLogger>; lines: Record<string, unknown>[] } {
  const lines: Record<string, unknown>[] = [];
  const logger = createLogger('info', { node: 1 }, { write: (s: string) => void lines.push(JSON.parse(s) as Record<string, unknown>) });
  return { logger, lines };
}

test('two forked workers serve HTTP over IPC with a pushed read cache; a killed worker is restarted; stop drains', async (t) => {
  const config = await testConfig(t, { workers: 2, requestTimeoutMs: 3000 });
  const node = new PushingFakeNode();
  const { logger, lines } = capturingLogger();
  const server = await startServer(config, () => node, { handleSignals: false, logger, drainMs: 2000 });
  t.after(() => server.stop());
  const port = server.address.port;
  assert.equal(server.address.host, '127.0.0.1');
  const workers = server.workers();
  assert.equal(workers.length, 2);
  for (const w of workers) assert.notEqual(w.pid, process.pid);

  // Both workers answer, on the one shared port; the primary serves no HTTP itself. Every answer
  // is kept and judged after the wait, so a wrong one cannot pass for "not yet".
  const seen = new Set<string>();
  const statusAnswers: unknown[][] = [];
  await waitFor('both workers to answer', async () => {
    const r = await call(port, 'GET', '/v1/status');
    statusAnswers.push([r.status, r.body]);
    seen.add(String(r.headers['x-raftauth-worker']));
    return seen.size === 2;
  });
  for (const a of statusAnswers) assert.deepEqual(a, [200, { ...node.statusValue, version: VERSION }]);
  assert.deepEqual([...seen].sort(), workers.map((w) => String(w.id)).sort());

  // Writes and reads cross IPC to the node in this process.
  let r = await call(port, 'PUT', '/v1/kv/a', { body: { value: 'one' } });
  assert.deepEqual([r.status, r.body], [200, {}]);
  assert.equal(new TextDecoder().decode(node.data.get('a')), 'one');
  r = await call(port, 'POST', '/v1/kv/a/append', { body: { value: '+two' } });
  assert.deepEqual([r.status, r.body], [200, { value: 'one+two' }]);
  r = await call(port, 'GET', '/v1/kv/a?consistency=local');
  assert.deepEqual([r.status, r.body], [200, { value: 'one+two' }]);
  assert.equal(node.last('read')?.req.consistency, 'local');

  // Many concurrent requests over both workers: every answer reaches its own request.
  const answers = await Promise.all(Array.from({ length: 100 }, (_, i) => call(port, 'POST', `/v1/kv/c${i % 10}/append`, { body: { value: `${i},` } })));
  assert.ok(answers.every((a) => a.status === 200));
  for (let k = 0; k < 10; k++) {
    const got = await call(port, 'GET', `/v1/kv/c${k}`);
    const parts = ((got.body as { value: string }).value.split(',').filter(Boolean)).map(Number).sort((a, b) => a - b);
    assert.deepEqual(parts, Array.from({ length: 10 }, (_, j) => j * 10 + k), `key c${k}`);
  }

  // Errors keep their mapping through IPC.
  node.hook = () => Promise.reject(new NodeError('TIMEOUT', 'slow raft'));
  r = await call(port, 'PUT', '/v1/kv/a', { body: { value: 'x' } });
  assert.deepEqual([r.status, r.body], [504, { error: 'TIMEOUT', message: 'slow raft', indeterminate: true }]);
  node.hook = null;

  // Cached status is answered by the worker without asking the node.
  const statusCalls = node.countCalls('status');
  for (let i = 0; i < 4; i++) {
    r = await call(port, 'GET', '/v1/status?cached=1');
    assert.deepEqual([r.status, r.headers['x-raftauth-cache'], r.body], [200, 'hit', { ...node.statusValue, version: VERSION }]);
  }
  assert.equal(node.countCalls('status'), statusCalls, 'no IPC for cached status');

  // A term change is pushed to every worker.
  node.setStatus({ ...node.statusValue, term: 9, leader: 2, role: 'follower' });
  const updated = new Set<string>();
  await waitFor('both workers to hold term 9', async () => {
    const a = await call(port, 'GET', '/v1/status?cached=1');
    if ((a.body as { term: number }).term === 9) updated.add(String(a.headers['x-raftauth-worker']));
    return updated.size === 2;
  });

  // Kill one worker: it is replaced, and the replacement gets the cache and serves.
  const victim = workers[0]!;
  process.kill(victim.pid, 'SIGKILL');
  await waitFor('the killed worker to be replaced', () => {
    const now = server.workers();
    return now.length === 2 && !now.some((w) => w.pid === victim.pid);
  });
  assert.equal(server.restarts(), 1);
  assert.ok(lines.some((l) => l.msg === 'worker exited unexpectedly' && l.worker === victim.id && l.signal === 'SIGKILL'));
  const replacement = server.workers().find((w) => w.id !== workers[1]!.id)!;
  await waitFor('the replacement to answer from its cache', async () => {
    const a = await call(port, 'GET', '/v1/status?cached=1');
    return a.headers['x-raftauth-worker'] === String(replacement.id) && a.headers['x-raftauth-cache'] === 'hit' && (a.body as { term: number }).term === 9;
  });

  // Graceful stop: a request in flight in a worker is answered, then workers exit, then the node stops.
  let release!: (r: ApplyResult) => void;
  node.hook = () => new Promise((res) => (release = res));
  const inflight = call(port, 'PUT', '/v1/kv/b', { body: { value: 'late' } });
  await waitFor('the request to reach the node', () => node.last('write')?.req.args && (node.last('write')!.req.args as { key: string }).key === 'b');
  const pids = server.workers().map((w) => w.pid);
  const stopping = server.stop();
  await waitFor('stop to begin', () => lines.some((l) => l.msg === 'stopping'));
  assert.equal(node.stopped, false, 'the node outlives the workers');
  release({ ok: true, value: { drained: true } });
  r = await inflight;
  assert.deepEqual([r.status, r.body], [200, { drained: true }]);
  await stopping;
  assert.equal(node.stopped, true);
  assert.equal(node.subscribers, 0);
  await waitFor('the worker processes to be gone', () => pids.every((p) => !alive(p)));
  assert.equal(server.restarts(), 1, 'no restarts while stopping');
});

test('past the restart limit the primary logs an error and serves with fewer workers', async (t) => {
  const config = await testConfig(t, { workers: 1 });
  const node = new PushingFakeNode();
  const { logger, lines } = capturingLogger();
  const server = await startServer(config, () => node, { handleSignals: false, logger, restartLimit: { maxRestarts: 1, windowMs: 60_000 } });
  t.after(() => server.stop());
  const first = server.workers()[0]!;
  process.kill(first.pid, 'SIGKILL');
  const second = await waitFor('a replacement', () => server.workers().find((w) => w.pid !== first.pid));
  process.kill(second.pid, 'SIGKILL');
  await waitFor('the limit to be logged', () => lines.some((l) => l.msg === 'worker restart limit reached: not restarting; serving with fewer workers' && l.level === 50));
  assert.equal(server.restarts(), 1);
  assert.deepEqual(server.workers(), []);
  await server.stop();
  assert.equal(node.stopped, true);
});

test('start-up fails, and cleans up, when HTTP cannot listen: in a worker and in the primary', async (t) => {
  const blocker = createServer();
  await new Promise<void>((r) => blocker.listen(0, '127.0.0.1', r));
  t.after(() => blocker.close());
  const port = (blocker.address() as AddressInfo).port;
  for (const workers of [1, 0]) {
    const config = await testConfig(t, { workers, port });
    const node = new PushingFakeNode();
    const { logger, lines } = capturingLogger();
    await assert.rejects(
      startServer(config, () => node, { handleSignals: false, logger }),
      workers === 1 ? /HTTP worker \d+ exited during start-up \(code 1/ : /EADDRINUSE/,
    );
    assert.equal(node.stopped, true, `workers: ${workers}: the node is stopped again`);
    assert.equal(node.subscribers, 0);
    assert.ok(lines.some((l) => l.msg === 'stopped'));
  }
});
