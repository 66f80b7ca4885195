// The HTTP API served by the primary itself (http.workers: 0) over a fake node on 127.0.0.1:0.
import { test } from 'node:test';
import type { TestContext } from 'node:test';
import assert from 'node:assert/strict';
import { NodeError } from '../../../src/node/api.ts';
import { startServer } from '../../../src/server/process.ts';
import { VERSION } from '../../../src/version.ts';
import type { ServerHandle } from '../../../src/server/process.ts';
import { createLogger } from '../../../src/server/log.ts';
import { FakeNode, PushingFakeNode, call, hang, testConfig, waitFor } from './helpers.ts';

async function serve<N extends FakeNode = FakeNode>(
  t: TestContext,
  http: { bodyLimitBytes?: number; requestTimeoutMs?: number } = {},
  node: N = new FakeNode() as N,
): Promise<{ node: N; port: number; server: ServerHandle }> {
  const config = await testConfig(t, { workers: 0, ...http });
  const server = await startServer(config, () => node, { handleSignals: false, logger: createLogger('silent', { node: 1 }), statusPollMs: 10, drainMs: 500 });
  t.after(() => server.stop());
  assert.equal(server.address.host, '127.0.0.1');
  assert.ok(server.address.port > 0);
  return { node, port: server.address.port, server };
}

test('kv routes: put, get, cas, append, delete, with the node seeing the right requests', async (t) => {
  const { node, port } = await serve(t);
  let r = await call(port, 'PUT', '/v1/kv/k%2F1', { body: { value: 'v1' } });
  assert.equal(r.status, 200);
  assert.deepEqual(r.body, {});
  assert.equal(r.headers['x-raftauth-worker'], '0');
  assert.equal(r.headers['x-raftauth-node'], '1');
  assert.equal(r.headers['content-type'], 'application/json; charset=utf-8');
  assert.deepEqual(node.last('write'), { method: 'write', req: { domain: 'kv', op: 'put', args: { key: 'k/1', value: 'v1' }, timeoutMs: 2000 } });

  r = await call(port, 'GET', '/v1/kv/k%2F1');
  assert.deepEqual([r.status, r.body], [200, { value: 'v1' }]);
  assert.deepEqual(node.last('read'), { method: 'read', req: { domain: 'kv', op: 'get', args: { key: 'k/1' }, timeoutMs: 2000, consistency: 'linearizable' } });
  r = await call(port, 'GET', '/v1/kv/k%2F1?consistency=local');
  assert.deepEqual([r.status, r.body], [200, { value: 'v1' }]);
  assert.equal(node.last('read')?.req.consistency, 'local');
  r = await call(port, 'GET', '/v1/kv/missing');
  assert.deepEqual([r.status, r.body], [200, { value: null }]);

  r = await call(port, 'POST', '/v1/kv/k%2F1/cas', { body: { expected: 'nope', value: 'v2' } });
  assert.deepEqual([r.status, r.body], [200, { ok: false, actual: 'v1' }]);
  r = await call(port, 'POST', '/v1/kv/k%2F1/cas', { body: { expected: 'v1', value: 'v2' } });
  assert.deepEqual([r.status, r.body], [200, { ok: true, actual: 'v1' }]);
  r = await call(port, 'POST', '/v1/kv/new/cas', { body: { expected: null, value: 'n' } });
  assert.deepEqual([r.status, r.body], [200, { ok: true, actual: null }]);

  r = await call(port, 'POST', '/v1/kv/k%2F1/append', { body: { value: '+x' } });
  assert.deepEqual([r.status, r.body], [200, { value: 'v2+x' }]);

  r = await call(port, 'DELETE', '/v1/kv/k%2F1');
  assert.deepEqual([r.status, r.body], [200, { existed: true }]);
  r = await call(port, 'DELETE', '/v1/kv/k%2F1');
  assert.deepEqual([r.status, r.body], [200, { existed: false }]);
  assert.deepEqual(node.last('write'), { method: 'write', req: { domain: 'kv', op: 'delete', args: { key: 'k/1' }, timeoutMs: 2000 } });
});

test('status, polled: live and from the read cache', async (t) => {
  const { node, port } = await serve(t);
  let r = await call(port, 'GET', '/v1/status');
  assert.deepEqual([r.status, r.body], [200, { ...node.statusValue, version: VERSION }]);

  const before = node.countCalls('status');
  r = await call(port, 'GET', '/v1/status?cached=1');
  assert.deepEqual([r.status, r.body, r.headers['x-raftauth-cache']], [200, { ...node.statusValue, version: VERSION }, 'hit']);
  assert.equal(r.headers['x-raftauth-cache-version'], '1');
  // Commit progress alone is not pushed; a new term is.
  node.statusValue = { ...node.statusValue, commit: 99 };
  node.statusValue = { ...node.statusValue, term: 4, leader: 2, role: 'follower' };
  const pushed = await waitFor('the new term in the cache', async () => {
    const a = await call(port, 'GET', '/v1/status?cached=1');
    return (a.body as { term: number }).term === 4 ? a : null;
  });
  assert.equal(pushed.headers['x-raftauth-cache-version'], '2');
  assert.equal((pushed.body as { leader: number }).leader, 2);
  r = await call(port, 'GET', '/v1/status?cached=yes');
  assert.equal(r.status, 400);
  assert.ok(node.countCalls('status') > before, 'the poller calls status()');
});

test('status pushed by the node: cached answers never call the node', async (t) => {
  const { node, port, server } = await serve(t, {}, new PushingFakeNode());
  assert.equal(node.subscribers, 1);
  assert.equal(node.countCalls('status'), 1, 'one initial read, no polling');
  let r = await call(port, 'GET', '/v1/status?cached=1');
  assert.deepEqual([r.status, r.body, r.headers['x-raftauth-cache-version']], [200, { ...node.statusValue, version: VERSION }, '1']);
  node.setStatus({ ...node.statusValue, applied: 50 });
  assert.equal(server.cache.local.version('status'), 1, 'applied progress alone is not pushed');
  node.setStatus({ ...node.statusValue, role: 'follower', leader: 3, term: 7 });
  r = await call(port, 'GET', '/v1/status?cached=1');
  assert.deepEqual([r.body, r.headers['x-raftauth-cache-version']], [{ ...node.statusValue, version: VERSION }, '2']);
  assert.equal(node.countCalls('status'), 1, 'cached answers did not call the node');
  r = await call(port, 'GET', '/v1/status');
  assert.deepEqual([r.body, r.headers['x-raftauth-cache']], [{ ...node.statusValue, version: VERSION }, undefined]);
  assert.equal(node.countCalls('status'), 2);
  await server.stop();
  assert.equal(node.subscribers, 0, 'unsubscribed on stop');
});

test('domain errors are 400 with the domain code', async (t) => {
  const { port } = await serve(t);
  const r = await call(port, 'POST', '/v1/kv/k/append', { body: { value: 'x'.repeat(10) } });
  assert.equal(r.status, 200);
  const long = 'k'.repeat(300);
  const r2 = await call(port, 'PUT', `/v1/kv/${long}`, { body: { value: 'v' } });
  assert.deepEqual([r2.status, (r2.body as { error: string }).error], [400, 'INVALID_ARGUMENT']);
  assert.match((r2.body as { message: string }).message, /key is longer than 256 bytes/);
});

test('node errors map to 503, 504 (indeterminate for writes), 400 and 503', async (t) => {
  const { node, port } = await serve(t);
  const cases: [NodeError['code'], number][] = [
    ['UNAVAILABLE', 503],
    ['STOPPING', 503],
    ['INVALID_REQUEST', 400],
    ['TIMEOUT', 504],
  ];
  for (const [code, status] of cases) {
    node.hook = () => Promise.reject(new NodeError(code, `fake ${code}`));
    const w = await call(port, 'PUT', '/v1/kv/k', { body: { value: 'v' } });
    const expectedWrite: Record<string, unknown> = { error: code, message: `fake ${code}` };
    if (code === 'TIMEOUT') expectedWrite.indeterminate = true;
    assert.deepEqual([w.status, w.body], [status, expectedWrite], code);
    const rd = await call(port, 'GET', '/v1/kv/k');
    assert.deepEqual([rd.status, rd.body], [status, { error: code, message: `fake ${code}` }], code);
  }
  node.hook = () => Promise.reject(new Error('a bug'));
  const bug = await call(port, 'GET', '/v1/kv/k');
  assert.deepEqual([bug.status, bug.body], [500, { error: 'INTERNAL', message: 'internal error' }]);
});

test('x-request-timeout-ms shortens the deadline, is capped by the config, and is validated', async (t) => {
  const { node, port } = await serve(t, { requestTimeoutMs: 2000 });
  await call(port, 'GET', '/v1/kv/k', { headers: { 'x-request-timeout-ms': '150' } });
  assert.equal(node.last('read')?.req.timeoutMs, 150);
  await call(port, 'PUT', '/v1/kv/k', { body: { value: 'v' }, headers: { 'x-request-timeout-ms': '999999' } });
  assert.equal(node.last('write')?.req.timeoutMs, 2000);
  for (const bad of ['0', '-5', 'soon', '1.5']) {
    const r = await call(port, 'GET', '/v1/kv/k', { headers: { 'x-request-timeout-ms': bad } });
    assert.deepEqual([r.status, (r.body as { error: string }).error], [400, 'INVALID_REQUEST'], bad);
  }
  // A node that honours its deadline answers TIMEOUT after it: 504.
  node.hook = (c) => hang(c.method === 'status' ? 1 : c.req.timeoutMs);
  const started = Date.now();
  const r = await call(port, 'POST', '/v1/kv/k/append', { body: { value: 'v' }, headers: { 'x-request-timeout-ms': '100' } });
  assert.deepEqual([r.status, (r.body as { indeterminate: boolean }).indeterminate], [504, true]);
  assert.ok(Date.now() - started >= 95);
});

test('a node that ignores its deadline is cut off one second after it', async (t) => {
  const { node, port } = await serve(t, { requestTimeoutMs: 2000 });
  node.hook = () => new Promise(() => {});
  const started = Date.now();
  const r = await call(port, 'PUT', '/v1/kv/k', { body: { value: 'v' }, headers: { 'x-request-timeout-ms': '50' } });
  const took = Date.now() - started;
  // The message names the bound that cut it: the request's 50 ms plus the 1 s grace, not the
  // configured 2 s (no upper bound on the elapsed time: a loaded machine only makes it later).
  assert.deepEqual(r.body, { error: 'TIMEOUT', message: 'the node did not answer within 1050 ms', indeterminate: true });
  assert.equal(r.status, 504);
  assert.ok(took >= 1040, `cut off after ${took} ms, before the deadline and its grace`);
});

test('bodies: size limit 413, JSON only 415, malformed JSON 400, wrong shapes 400', async (t) => {
  const { node, port } = await serve(t, { bodyLimitBytes: 100 });
  const writesBefore = node.countCalls('write');
  let r = await call(port, 'PUT', '/v1/kv/k', { body: { value: 'x'.repeat(200) } });
  assert.deepEqual([r.status, (r.body as { error: string }).error], [413, 'PAYLOAD_TOO_LARGE']);
  r = await call(port, 'PUT', '/v1/kv/k', { body: { value: 'x'.repeat(80) } });
  assert.equal(r.status, 200, 'just under the limit is fine');
  r = await call(port, 'PUT', '/v1/kv/k', { body: 'value=x', headers: { 'content-type': 'text/plain' } });
  assert.deepEqual([r.status, (r.body as { error: string }).error], [415, 'UNSUPPORTED_MEDIA_TYPE']);
  r = await call(port, 'PUT', '/v1/kv/k', { body: 'value=x', headers: { 'content-type': 'application/x-www-form-urlencoded' } });
  assert.equal(r.status, 415);
  r = await call(port, 'PUT', '/v1/kv/k', { body: '{"value": "x"' });
  assert.deepEqual([r.status, (r.body as { error: string }).error], [400, 'INVALID_JSON']);
  r = await call(port, 'PUT', '/v1/kv/k', { body: '', headers: { 'content-type': 'application/json' } });
  assert.deepEqual([r.status, (r.body as { error: string }).error], [400, 'INVALID_JSON']);
  r = await call(port, 'PUT', '/v1/kv/k');
  assert.deepEqual([r.status, (r.body as { error: string }).error], [400, 'INVALID_REQUEST'], 'no body at all');
  for (const body of [[1], '"str"', { value: 5 }, { other: 'x' }]) {
    r = await call(port, 'PUT', '/v1/kv/k', { body: typeof body === 'string' ? body : body });
    assert.deepEqual([r.status, (r.body as { error: string }).error], [400, 'INVALID_REQUEST'], JSON.stringify(body));
  }
  r = await call(port, 'POST', '/v1/kv/k/cas', { body: { value: 'x' } });
  assert.match((r.body as { message: string }).message, /expected must be a string or null/);
  r = await call(port, 'POST', '/v1/kv/k/cas', { body: { expected: 3, value: 'x' } });
  assert.equal(r.status, 400);
  r = await call(port, 'GET', '/v1/kv/k?consistency=eventual');
  assert.equal(r.status, 400);
  assert.equal(node.countCalls('write'), writesBefore + 1, 'only the valid write reached the node');
});

test('unknown routes are 404 JSON', async (t) => {
  const { port } = await serve(t);
  for (const [method, path] of [['GET', '/'], ['GET', '/v1/nope'], ['POST', '/v1/kv/k'], ['PATCH', '/v1/kv/k'], ['GET', '/v1/kv/k/cas']]) {
    const r = await call(port, method!, path!);
    assert.equal(r.status, 404, `${method} ${path}`);
    assert.equal((r.body as { error: string }).error, 'NOT_FOUND');
  }
  // An empty key matches the route; the kv domain refuses it.
  const empty = await call(port, 'GET', '/v1/kv/');
  assert.deepEqual([empty.status, (empty.body as { error: string }).error], [400, 'INVALID_ARGUMENT']);
});

test('stop waits for a request in flight, then stops the node', async (t) => {
  const { node, port, server } = await serve(t);
  let release!: () => void;
  node.hook = () => new Promise((r) => (release = () => r({ ok: true, value: { done: true } })));
  const inflight = call(port, 'PUT', '/v1/kv/k', { body: { value: 'v' } });
  await waitFor('the request to reach the node', () => node.countCalls('write') === 1);
  const stopping = server.stop();
  // Release only once stop has begun: the answer must still arrive.
  setImmediate(() => release());
  const r = await inflight;
  assert.deepEqual([r.status, r.body], [200, { done: true }]);
  await stopping;
  assert.equal(node.stopped, true);
  await assert.rejects(call(port, 'GET', '/v1/status'), /ECONNREFUSED/);
});
