// /metrics of real in-process nodes: every family the operator surface promises, with values that
// follow from what the test did.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { LocalCluster, put, waitFor } from '../node/helpers.ts';
import { appFor, has, metricTypes, parseMetrics, sum } from './helpers.ts';
import type { Sample } from './helpers.ts';
import { FSYNC_BUCKETS_SECONDS, NodeMetrics, metricsText } from '../../../src/ops/metrics.ts';

const WRITES = 60;

/** Every family the issue lists, with its Prometheus type. */
const REQUIRED_FAMILIES: Record<string, string> = {
  raftauth_raft_term: 'gauge',
  raftauth_raft_role: 'gauge',
  raftauth_raft_leader_changes_total: 'counter',
  raftauth_raft_commit_index: 'gauge',
  raftauth_raft_applied_index: 'gauge',
  raftauth_raft_apply_lag_entries: 'gauge',
  raftauth_proposals_total: 'counter',
  raftauth_proposal_duration_seconds: 'histogram',
  raftauth_storage_fsync_duration_seconds: 'histogram',
  raftauth_snapshots_total: 'counter',
  raftauth_snapshot_size_bytes: 'histogram',
  raftauth_log_compaction_duration_seconds: 'histogram',
  raftauth_log_bytes: 'gauge',
  raftauth_peer_rtt_seconds: 'histogram',
  raftauth_http_requests_total: 'counter',
  raftauth_http_request_duration_seconds: 'histogram',
};

test('metrics: every required family, with values that match the cluster after some writes', async (t) => {
  // A small log budget so the run compacts the log.
  const c = new LocalCluster({ storage: { compactLogBytes: 4096, snapshotCatchupEntries: 5 } });
  await c.init([1, 2, 3]);
  t.after(() => c.close());
  for (const id of [1, 2, 3]) await c.start(id);
  const leader = await c.leader();
  const follower = [...c.nodes.values()].find((n) => n.id !== leader.id)!;
  for (let i = 0; i < WRITES; i++) await put(i % 2 === 0 ? leader : follower, `k${i}`, `v${i}`);
  // A domain refusal is a proposal outcome too (nothing is applied for it, but it is answered).
  const bad = await leader.write({ domain: 'kv', op: 'put', args: { key: '', value: 'x' }, timeoutMs: 5_000 });
  assert.equal(bad.ok, false);

  const app = await appFor(leader);
  t.after(() => app.close());
  // Some HTTP traffic of our own: a matched route, an unmatched one.
  assert.equal((await app.inject({ method: 'GET', url: '/healthz' })).statusCode, 200);
  assert.equal((await app.inject({ method: 'GET', url: '/nope/at/all?x=1' })).statusCode, 404);
  assert.equal((await app.inject({ method: 'PUT', url: '/v1/kv/http-key', payload: { value: 'x' } })).statusCode, 200);

  const res = await app.inject({ method: 'GET', url: '/metrics' });
  assert.equal(res.statusCode, 200);
  assert.match(String(res.headers['content-type']), /^text\/plain; version=0\.0\.4/);
  const text = res.body;
  const types = metricTypes(text);
  for (const [name, type] of Object.entries(REQUIRED_FAMILIES)) assert.equal(types.get(name), type, `family ${name} of type ${type}`);
  const s = parseMetrics(text);
  // Every sample is labelled with the node.
  assert.ok(s.every((x) => x.labels.node === String(leader.id)), 'every sample has node="<id>"');

  const st = await leader.status();
  const one = (name: string, labels: Record<string, string> = {}): number => {
    const found = s.filter((x) => x.name === name && Object.entries(labels).every(([k, v]) => x.labels[k] === v));
    assert.equal(found.length, 1, `exactly one sample ${name} ${JSON.stringify(labels)}`);
    return found[0]!.value;
  };
  assert.equal(one('raftauth_raft_term'), st.term);
  assert.ok(st.term >= 2);
  assert.equal(one('raftauth_raft_role', { role: 'leader' }), 1);
  assert.equal(one('raftauth_raft_role', { role: 'follower' }), 0);
  assert.equal(one('raftauth_raft_leader'), leader.id);
  assert.ok(one('raftauth_raft_leader_changes_total') >= 1, 'the election counted as a leader change');
  const commit = one('raftauth_raft_commit_index');
  const applied = one('raftauth_raft_applied_index');
  assert.ok(commit >= WRITES + 1 && commit <= st.lastIndex, `commit ${commit}`);
  assert.ok(applied >= WRITES + 1 && applied <= commit, `applied ${applied}`);
  assert.equal(one('raftauth_raft_apply_lag_entries'), commit - applied);

  // Proposals: half the writes (and the refused one, and the HTTP one) went through the leader.
  const okLeader = sum(s, 'raftauth_proposals_total', { outcome: 'ok' });
  assert.equal(okLeader, WRITES / 2 + 1);
  assert.equal(sum(s, 'raftauth_proposals_total', { outcome: 'rejected' }), 1);
  assert.equal(sum(s, 'raftauth_proposal_duration_seconds_count', { outcome: 'ok' }), okLeader);
  assert.ok(sum(s, 'raftauth_proposal_duration_seconds_sum', { outcome: 'ok' }) > 0);
  assertHistogramConsistent(s, 'raftauth_proposal_duration_seconds', { outcome: 'ok' });

  // fsync: at least one fsynced batch per proposal round; buckets 0.1 ms .. 1 s.
  const fsyncs = sum(s, 'raftauth_storage_fsync_duration_seconds_count');
  assert.ok(fsyncs >= 10, `fsync count ${fsyncs}`);
  const les = s.filter((x) => x.name === 'raftauth_storage_fsync_duration_seconds_bucket').map((x) => x.labels.le);
  assert.deepEqual(les, [...FSYNC_BUCKETS_SECONDS.map(String), '+Inf']);
  assertHistogramConsistent(s, 'raftauth_storage_fsync_duration_seconds', {});

  // Compactions: the log passed its budget several times; compacting copies no state (no state file created).
  const compactions = sum(s, 'raftauth_log_compaction_duration_seconds_count');
  assert.ok(compactions >= 2, `compactions ${compactions}`);
  assertHistogramConsistent(s, 'raftauth_log_compaction_duration_seconds', {});
  assert.equal(sum(s, 'raftauth_snapshots_total', { event: 'created' }), 0, 'no state file written: nobody needed one');
  const logBytes = one('raftauth_log_bytes');
  assert.ok(logBytes > 0 && logBytes <= 4096 * 1.25 + 1024, `log bytes ${logBytes} within the (spread) budget plus an entry`);

  // Peer RTT: the leader sent appends and heartbeats to both followers.
  for (const n of c.nodes.values()) {
    if (n.id === leader.id) continue;
    const count = sum(s, 'raftauth_peer_rtt_seconds_count', { peer: String(n.id) });
    assert.ok(count >= 5, `RTT samples to ${n.id}: ${count}`);
    const mean = sum(s, 'raftauth_peer_rtt_seconds_sum', { peer: String(n.id) }) / count;
    assert.ok(mean > 0 && mean < 1, `mean RTT to ${n.id}: ${mean}`);
  }

  // HTTP: by route pattern, method and status; the unknown URL does not become a label.
  assert.equal(sum(s, 'raftauth_http_requests_total', { route: '/healthz', method: 'GET', status: '200' }), 1);
  assert.equal(sum(s, 'raftauth_http_requests_total', { route: '/v1/kv/:key', method: 'PUT', status: '200' }), 1);
  assert.equal(sum(s, 'raftauth_http_requests_total', { route: 'unmatched', method: 'GET', status: '404' }), 1);
  assert.ok(!text.includes('/nope/at/all'));
  assert.equal(sum(s, 'raftauth_http_request_duration_seconds_count', { route: '/healthz' }), 1);

  // A follower reports its own view.
  const fapp = await appFor(follower);
  t.after(() => fapp.close());
  const fs = parseMetrics((await fapp.inject({ method: 'GET', url: '/metrics' })).body);
  assert.equal(sum(fs, 'raftauth_raft_role', { role: 'follower' }), 1);
  assert.equal(sum(fs, 'raftauth_raft_leader'), leader.id);
  assert.equal(sum(fs, 'raftauth_proposals_total', { outcome: 'ok' }), WRITES / 2);
  await waitFor('the follower applied the writes', async () => parseMetrics((await fapp.inject({ method: 'GET', url: '/metrics' })).body).some((x) => x.name === 'raftauth_raft_applied_index' && x.value >= WRITES + 1));
});

test('metrics: leader changes and installed snapshots are counted on the node that sees them', async (t) => {
  const c = new LocalCluster({ storage: { compactLogBytes: 4096, snapshotCatchupEntries: 5 } });
  await c.init([1, 2, 3]);
  t.after(() => c.close());
  for (const id of [1, 2, 3]) await c.start(id);
  const leader = await c.leader();
  const lagger = [1, 2, 3].find((id) => id !== leader.id)!;
  await c.stop(lagger);
  for (let i = 0; i < 80; i++) await put(leader, `s${i % 10}`, `v${i}`);
  const target = (await leader.status()).commit;
  const n = await c.start(lagger);
  await waitFor('the lagging node caught up', async () => (await n.status()).applied >= target, 20_000);
  const s = parseMetrics(await metricsText([await n.metricsJson()]));
  assert.ok(sum(s, 'raftauth_snapshots_total', { event: 'installed' }) >= 1, 'the lagger installed a snapshot');
  assert.ok(sum(s, 'raftauth_snapshots_total', { event: 'received' }) >= 1);
  assert.ok(sum(s, 'raftauth_snapshot_size_bytes_sum', { event: 'received' }) > 0);
  const ls = parseMetrics(await metricsText([await leader.metricsJson()]));
  assert.ok(sum(ls, 'raftauth_snapshots_total', { event: 'sent' }) >= 1, 'the leader sent it');
  // Written on demand for the lagger: a state file the leader created, with its size.
  const created = sum(ls, 'raftauth_snapshots_total', { event: 'created' });
  assert.ok(created >= 1, `state files created ${created}`);
  assert.equal(sum(ls, 'raftauth_snapshot_size_bytes_count', { event: 'created' }), created);
  assert.ok(sum(ls, 'raftauth_snapshot_size_bytes_sum', { event: 'created' }) > created * 10, 'state files have plausible sizes');

  const before = sum(s, 'raftauth_raft_leader_changes_total');
  await c.stop(leader.id);
  await waitFor('the restarted node saw the leader change', async () => {
    const now = parseMetrics(await metricsText([await n.metricsJson()]));
    return sum(now, 'raftauth_raft_leader_changes_total') > before;
  }, 10_000);
});

test('metrics: two nodes in one process keep separate registries', async () => {
  const src = (term: number) => ({ term: () => term, role: () => 'follower', leader: () => 0, commit: () => 0, applied: () => 0 });
  const a = new NodeMetrics(1, src(4));
  const b = new NodeMetrics(2, src(9));
  a.proposal('ok', 0.01);
  const sa = parseMetrics(await metricsText([await a.json()]));
  const sb = parseMetrics(await metricsText([await b.json()]));
  assert.equal(sum(sa, 'raftauth_raft_term'), 4);
  assert.equal(sum(sb, 'raftauth_raft_term'), 9);
  assert.equal(sum(sa, 'raftauth_proposals_total'), 1);
  assert.equal(sum(sb, 'raftauth_proposals_total'), 0);
});

/** Buckets are cumulative, non-decreasing, and +Inf equals _count. */
function assertHistogramConsistent(s: readonly Sample[], name: string, labels: Record<string, string>): void {
  const buckets = s.filter((x) => x.name === `${name}_bucket` && Object.entries(labels).every(([k, v]) => x.labels[k] === v));
  assert.ok(buckets.length > 1);
  for (let i = 1; i < buckets.length; i++) assert.ok(buckets[i]!.value >= buckets[i - 1]!.value, `${name} buckets cumulative`);
  assert.equal(buckets.at(-1)!.labels.le, '+Inf');
  assert.equal(buckets.at(-1)!.value, sum(s, `${name}_count`, labels));
  assert.ok(has(s, `${name}_sum`, labels));
}
