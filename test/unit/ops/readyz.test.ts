// /healthz and /readyz on real in-process nodes (LevelDB, mTLS gRPC), and the readiness rule itself.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import type { FastifyInstance } from 'fastify';
import { LocalCluster, put, waitFor } from '../node/helpers.ts';
import { appFor } from './helpers.ts';
import { evaluateReadiness } from '../../../src/ops/health.ts';
import type { NodeHealth } from '../../../src/node/api.ts';

// The LocalCluster's timing: 20 ms ticks, election after 10 ticks.
const ELECTION_TIMEOUT_MS = 200;

interface ReadyBody {
  ready: boolean;
  reasons: string[];
  node: NodeHealth | null;
}

async function readyz(app: FastifyInstance, deep = false): Promise<{ status: number; body: ReadyBody }> {
  const r = await app.inject({ method: 'GET', url: deep ? '/readyz?deep=1' : '/readyz' });
  return { status: r.statusCode, body: r.json() as ReadyBody };
}

test('readyz: every node of a healthy 3-node cluster is ready (shallow and deep); healthz is up', async (t) => {
  const c = new LocalCluster();
  await c.init([1, 2, 3]);
  t.after(() => c.close());
  for (const id of [1, 2, 3]) await c.start(id);
  const leader = await c.leader();
  await put(leader, 'k', 'v');
  const committed = (await leader.status()).commit;
  const apps = new Map<number, FastifyInstance>();
  for (const [id, n] of c.nodes) apps.set(id, await appFor(n));
  t.after(async () => {
    for (const a of apps.values()) await a.close();
  });

  for (const [id, app] of apps) {
    const h = await app.inject({ method: 'GET', url: '/healthz' });
    assert.equal(h.statusCode, 200);
    assert.equal((h.json() as { node: number }).node, id);
    const r = await waitFor(`node ${id} ready`, async () => {
      const x = await readyz(app);
      return x.status === 200 ? x : undefined;
    });
    assert.deepEqual(r.body.reasons, []);
    assert.equal(r.body.node!.leader, leader.id);
    assert.ok(r.body.node!.leaderContactAgeMs !== null && r.body.node!.leaderContactAgeMs <= ELECTION_TIMEOUT_MS);
    assert.equal(r.body.node!.electionTimeoutMs, ELECTION_TIMEOUT_MS);
    const d = await readyz(app, true);
    assert.equal(d.status, 200, JSON.stringify(d.body));
    assert.equal(d.body.node!.deep!.ok, true);
    // The deep check is a real round trip (ReadIndex): afterwards the node has applied at least
    // everything committed before it began.
    assert.ok(d.body.node!.applied >= committed, `applied ${d.body.node!.applied} < committed ${committed}`);
  }
  const bad = await apps.get(1)!.inject({ method: 'GET', url: '/readyz?deep=yes' });
  assert.equal(bad.statusCode, 400);
});

for (const which of ['leader', 'follower'] as const) {
  test(`readyz: a ${which} cut off from the majority turns not ready within about an election timeout, deep too`, async (t) => {
    const c = new LocalCluster();
    await c.init([1, 2, 3]);
    t.after(() => c.close());
    for (const id of [1, 2, 3]) await c.start(id);
    const leader = await c.leader();
    await put(leader, 'k', 'v');
    const keepId = which === 'leader' ? leader.id : [1, 2, 3].find((id) => id !== leader.id)!;
    const app = await appFor(c.nodes.get(keepId)!);
    t.after(() => app.close());
    await waitFor('ready before the cut', async () => (await readyz(app)).status === 200);

    // Stop both others: from the last stop on, the kept node hears from nobody.
    for (const id of [1, 2, 3]) if (id !== keepId) await c.stop(id);
    const cutAt = Date.now();
    const r = await waitFor('not ready', async () => {
      const x = await readyz(app);
      return x.status === 503 ? x : undefined;
    }, 5_000);
    const tookMs = Date.now() - cutAt;
    t.diagnostic(`not ready ${tookMs} ms after the cut: ${r.body.reasons.join("; ")}`);
    // One election timeout plus scheduling slack on a loaded 2-core machine.
    assert.ok(tookMs <= ELECTION_TIMEOUT_MS + 1_000, `not ready only after ${tookMs} ms`);
    assert.equal(r.body.ready, false);
    assert.ok(r.body.reasons.length > 0);
    assert.ok(
      r.body.reasons.some((s) => /leader|majority/.test(s)),
      `reasons name the lost leader or majority: ${JSON.stringify(r.body.reasons)}`,
    );
    // It stays not ready, and the deep check fails within its deadline (no majority to confirm a read index).
    const d0 = Date.now();
    const d = await readyz(app, true);
    assert.equal(d.status, 503);
    assert.ok(Date.now() - d0 < 2_500, `deep readiness answered after ${Date.now() - d0} ms`);
    assert.ok(d.body.node!.deep === null || d.body.node!.deep.ok === false);
  });
}

test('readyz: an isolated leader without check-quorum still believes it leads; the contact rule makes it not ready', async (t) => {
  // Without check-quorum (§6.2) the core never steps an isolated leader down, so "a leader is
  // known" alone would keep it ready forever: only the driver's quorum-contact age catches it.
  const c = new LocalCluster({ checkQuorum: false });
  await c.init([1, 2, 3]);
  t.after(() => c.close());
  for (const id of [1, 2, 3]) await c.start(id);
  const leader = await c.leader();
  const app = await appFor(leader);
  t.after(() => app.close());
  await waitFor('ready', async () => (await readyz(app)).status === 200);
  for (const id of [1, 2, 3]) if (id !== leader.id) await c.stop(id);
  const cutAt = Date.now();
  const r = await waitFor('not ready', async () => {
    const x = await readyz(app);
    return x.status === 503 ? x : undefined;
  }, 5_000);
  assert.ok(Date.now() - cutAt <= ELECTION_TIMEOUT_MS + 1_000);
  assert.equal(r.body.node!.role, 'leader', 'the core still thinks it leads');
  assert.equal(r.body.node!.leader, leader.id);
  assert.match(r.body.reasons.join('; '), /the leader last heard from a majority \d+ ms ago/);
});

test('readyz: the node comes back ready when the majority returns', async (t) => {
  const c = new LocalCluster();
  await c.init([1, 2, 3]);
  t.after(() => c.close());
  for (const id of [1, 2, 3]) await c.start(id);
  await c.leader();
  const app = await appFor(c.nodes.get(1)!);
  t.after(() => app.close());
  await c.stop(2);
  await c.stop(3);
  await waitFor('not ready', async () => (await readyz(app)).status === 503, 5_000);
  await c.start(2);
  await waitFor('ready again', async () => (await readyz(app, true)).status === 200, 10_000);
});

function facts(over: Partial<NodeHealth>): NodeHealth {
  return { id: 1, role: 'follower', leader: 2, term: 5, commit: 100, applied: 100, leaderContactAgeMs: 50, electionTimeoutMs: 1000, stopping: false, deep: null, ...over };
}

test('evaluateReadiness: each rule on its own, with its reason', () => {
  assert.deepEqual(evaluateReadiness(facts({}), 1000), { ready: true, reasons: [] });
  const cases: [Partial<NodeHealth>, RegExp][] = [
    [{ leader: 0, leaderContactAgeMs: null }, /no leader known/],
    [{ leaderContactAgeMs: null }, /no message received from the leader/],
    [{ leaderContactAgeMs: 1001 }, /1001 ms ago \(election timeout 1000 ms\)/],
    [{ leader: 1, role: 'leader', leaderContactAgeMs: null }, /has not heard from a majority/],
    [{ leader: 1, role: 'leader', leaderContactAgeMs: 5000 }, /leader last heard from a majority 5000 ms ago/],
    [{ commit: 2101, applied: 1100 }, /1001 entries behind commit 2101 \(limit 1000\)/],
    [{ stopping: true }, /stopping/],
    [{ deep: { ok: false, ms: 1000, error: 'TIMEOUT: no read index' } }, /round trip failed after 1000 ms: TIMEOUT/],
  ];
  for (const [over, want] of cases) {
    const v = evaluateReadiness(facts(over), 1000);
    assert.equal(v.ready, false, JSON.stringify(over));
    assert.equal(v.reasons.length, 1, JSON.stringify(v.reasons));
    assert.match(v.reasons[0]!, want);
  }
  // The bounds are inclusive: exactly at the limit is still ready.
  assert.equal(evaluateReadiness(facts({ commit: 1100, applied: 100 }), 1000).ready, true);
  assert.equal(evaluateReadiness(facts({ leaderContactAgeMs: 1000 }), 1000).ready, true);
  assert.equal(evaluateReadiness(facts({ commit: 101, applied: 100 }), 0).ready, false);
  assert.equal(evaluateReadiness(facts({ deep: { ok: true, ms: 3, error: null } }), 1000).ready, true);
});

test('readyz: the apply-lag bound comes from http.readyMaxApplyLag', async (t) => {
  // A node whose facts are fixed: the app applies the configured bound to them.
  const node = {
    id: 7,
    write: () => Promise.reject(new Error('unused')),
    read: () => Promise.reject(new Error('unused')),
    status: () => Promise.reject(new Error('unused')),
    health: async () => facts({ id: 7, commit: 600, applied: 100 }),
  };
  const strict = await appFor(node, { readyMaxApplyLag: 499 });
  const loose = await appFor(node, { readyMaxApplyLag: 500 });
  const dflt = await appFor(node);
  t.after(async () => {
    await strict.close();
    await loose.close();
    await dflt.close();
  });
  assert.equal((await readyz(strict)).status, 503);
  assert.match((await readyz(strict)).body.reasons[0]!, /500 entries behind/);
  assert.equal((await readyz(loose)).status, 200);
  assert.equal((await readyz(dflt)).status, 200); // default 1000
});
