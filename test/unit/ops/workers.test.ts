// Health and metrics when HTTP is served by node:cluster workers: readiness facts and the node's
// metrics come from the primary over IPC; each worker counts its own HTTP requests, and a scrape
// on any worker shows the sum over all of them.
import cluster from 'node:cluster';
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { startServer } from '../../../src/server/process.ts';
import { createLogger } from '../../../src/server/log.ts';
import { NodeMetrics } from '../../../src/ops/metrics.ts';
import type { HealthRequest, NodeHealth } from '../../../src/node/api.ts';
import { FakeNode, call, testConfig } from '../server/helpers.ts';
import { parseMetrics, sum } from './helpers.ts';

/** The serving-side fake node, plus health facts and node metrics like a RaftNode's. */
class OpsFakeNode extends FakeNode {
  facts: NodeHealth = { id: 1, role: 'leader', leader: 1, term: 3, commit: 10, applied: 10, leaderContactAgeMs: 0, electionTimeoutMs: 1000, stopping: false, deep: null };
  readonly healthCalls: HealthRequest[] = [];
  readonly nodeMetrics = new NodeMetrics(1, { term: () => this.facts.term, role: () => this.facts.role, leader: () => this.facts.leader, commit: () => this.facts.commit, applied: () => this.facts.applied });

  async health(req: HealthRequest): Promise<NodeHealth> {
    this.healthCalls.push(req);
    return { ...this.facts, deep: req.deep ? { ok: true, ms: 1, error: null } : null };
  }

  metricsJson(): Promise<unknown[]> {
    return this.nodeMetrics.json();
  }

  currentTerm(): number {
    return this.facts.term;
  }
}

test('workers: /readyz asks the primary over IPC; /metrics on any worker sums every worker\'s HTTP metrics with the node\'s', async (t) => {
  const config = await testConfig(t, { workers: 2 });
  const node = new OpsFakeNode();
  node.nodeMetrics.proposal('ok', 0.002);
  const server = await startServer(config, () => node, { handleSignals: false, logger: createLogger('silent', { node: 1 }), drainMs: 1000 });
  t.after(() => server.stop());
  const port = server.address.port;
  assert.equal(server.workers().length, 2);

  // Readiness through IPC, shallow and deep.
  const r = await call(port, 'GET', '/readyz');
  assert.equal(r.status, 200, JSON.stringify(r.body));
  assert.equal((r.body as { node: NodeHealth }).node.term, 3);
  const d = await call(port, 'GET', '/readyz?deep=1');
  assert.equal(d.status, 200);
  assert.deepEqual(node.healthCalls.at(-1), { deep: true, timeoutMs: 1000 });
  node.facts = { ...node.facts, leader: 0, role: 'candidate', leaderContactAgeMs: null };
  const nr = await call(port, 'GET', '/readyz');
  assert.equal(nr.status, 503);
  assert.deepEqual((nr.body as { reasons: string[] }).reasons, ['no leader known']);
  assert.equal((await call(port, 'GET', '/healthz')).status, 200);

  // Traffic on fresh connections (one per request): the two workers share it. node:cluster's
  // default scheduling on Linux is round-robin in the primary, which hands consecutive connections
  // to different workers, so with sequential requests both serve from the second one on: no
  // timing is involved. (Under SCHED_NONE the kernel picks, and all may land on one worker.)
  assert.equal(cluster.schedulingPolicy, cluster.SCHED_RR, 'this test relies on node:cluster round-robin (NODE_CLUSTER_SCHED_POLICY must not be "none")');
  const PUTS = 30;
  const perWorker = new Map<string, number>();
  for (let i = 0; i < PUTS; i++) {
    const a = await call(port, 'PUT', `/v1/kv/k${i}`, { body: { value: 'v' } });
    assert.equal(a.status, 200);
    const w = String(a.headers['x-raftauth-worker']);
    perWorker.set(w, (perWorker.get(w) ?? 0) + 1);
  }
  // Both workers served some of it: the sums below add counts from two processes.
  assert.deepEqual([...perWorker.keys()].sort(), server.workers().map((w) => String(w.id)).sort(), JSON.stringify([...perWorker]));
  assert.ok(Math.max(...perWorker.values()) < PUTS, JSON.stringify([...perWorker]));
  assert.equal((await call(port, 'GET', '/no/such/route')).status, 404);

  // Every scrape, whichever worker answers it, shows the totals of both workers.
  for (let i = 0; i < 4; i++) {
    const m = await call(port, 'GET', '/metrics');
    assert.equal(m.status, 200);
    assert.match(String(m.headers['content-type']), /^text\/plain/);
    const s = parseMetrics(String(m.body));
    assert.equal(sum(s, 'raftauth_http_requests_total', { route: '/v1/kv/:key', method: 'PUT', status: '200' }), PUTS);
    assert.equal(sum(s, 'raftauth_http_request_duration_seconds_count', { route: '/v1/kv/:key', method: 'PUT' }), PUTS);
    assert.equal(sum(s, 'raftauth_http_requests_total', { route: '/readyz', status: '200' }), 2);
    assert.equal(sum(s, 'raftauth_http_requests_total', { route: '/readyz', status: '503' }), 1);
    assert.equal(sum(s, 'raftauth_http_requests_total', { route: 'unmatched', status: '404' }), 1);
    // The scrapes before this one are counted too (a response is counted once it is sent).
    assert.ok(sum(s, 'raftauth_http_requests_total', { route: '/metrics' }) >= i);
    // The node's own metrics come from the primary, once (not once per worker).
    assert.equal(sum(s, 'raftauth_raft_term'), 3);
    assert.equal(sum(s, 'raftauth_proposals_total', { outcome: 'ok' }), 1);
    assert.equal(sum(s, 'raftauth_raft_role', { role: 'candidate' }), 1);
  }
});

test('workers = 0: the primary serves /metrics and /readyz itself with the same content', async (t) => {
  const config = await testConfig(t, { workers: 0 });
  const node = new OpsFakeNode();
  const server = await startServer(config, () => node, { handleSignals: false, logger: createLogger('silent', { node: 1 }), drainMs: 500 });
  t.after(() => server.stop());
  const port = server.address.port;
  assert.equal((await call(port, 'GET', '/readyz')).status, 200);
  assert.equal((await call(port, 'PUT', '/v1/kv/a', { body: { value: 'v' } })).status, 200);
  const s = parseMetrics(String((await call(port, 'GET', '/metrics')).body));
  assert.equal(sum(s, 'raftauth_http_requests_total', { route: '/v1/kv/:key', method: 'PUT', status: '200' }), 1);
  assert.equal(sum(s, 'raftauth_raft_term'), 3);
});

test('workers: a node without health is not ready, and says so', async (t) => {
  const config = await testConfig(t, { workers: 1 });
  const node = new FakeNode();
  const server = await startServer(config, () => node, { handleSignals: false, logger: createLogger('silent', { node: 1 }), drainMs: 500 });
  t.after(() => server.stop());
  const r = await call(server.address.port, 'GET', '/readyz');
  assert.equal(r.status, 503);
  assert.match(JSON.stringify(r.body), /reports no health/);
});

test('logs: the serving process\'s own lines carry the node id and the node\'s current term', async (t) => {
  const config = await testConfig(t, { workers: 0 });
  const node = new OpsFakeNode();
  const lines: Record<string, unknown>[] = [];
  const logger = createLogger('info', { node: 1 }, { write: (s: string) => void lines.push(JSON.parse(s) as Record<string, unknown>) });
  const server = await startServer(config, () => node, { handleSignals: false, logger, drainMs: 500 });
  const serving = lines.find((l) => l.msg === 'primary serving HTTP');
  assert.ok(serving, JSON.stringify(lines));
  assert.equal(serving.node, 1);
  assert.equal(serving.term, 3);
  node.facts = { ...node.facts, term: 4 };
  await server.stop();
  const stopping = lines.find((l) => l.msg === 'stopping')!;
  assert.equal(stopping.term, 4);
  assert.ok(lines.every((l) => l.node === 1 && typeof l.term === 'number'), JSON.stringify(lines));
});
