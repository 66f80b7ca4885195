import { test } from 'node:test';
import assert from 'node:assert/strict';
import type { LoadResult } from './load.ts';
import { humanTable, ratio, summarize } from './summary.ts';
import type { Results } from './summary.ts';

function level(concurrency: number, requestsPerSec: number, errorCount = 0): LoadResult {
  return {
    concurrency,
    measuredSeconds: 10,
    ok: requestsPerSec * 10,
    requestsPerSec,
    latency: { count: requestsPerSec * 10, minMs: 1, meanMs: 2, p50Ms: 2, p90Ms: 3, p99Ms: 4, p999Ms: 5, maxMs: 6, clamped: 0 },
    errors: errorCount > 0 ? { 'HTTP 503 temporarily_unavailable': errorCount } : {},
    errorCount,
    ranDryAtS: null,
    warmup: { ok: 0, errors: {} },
  };
}

test('ratio rounds to 3 decimals and is null without a positive denominator', () => {
  assert.equal(ratio(2, 3), 0.667);
  assert.equal(ratio(1, 0), null);
  assert.equal(ratio(null, 2), null);
  assert.equal(ratio(2, undefined), null);
});

test('targets: client_credentials against oidc-provider (2x) and the ceiling (0.5x), refresh against etcd', () => {
  const results: Results = {
    raftauth: { client_credentials: [level(1, 500), level(16, 2000)], refresh_token: [level(1, 300), level(16, 900, 2)] },
    'oidc-provider': { client_credentials: [level(1, 250), level(16, 1001)], refresh_token: [level(1, 100)] },
    ceiling: { client_credentials: [level(1, 1000), level(16, 4001)] },
  };
  const etcd = [
    { concurrency: 1, writesPerSec: 300, p50Ms: 2, p99Ms: 5, failedRequests: 0 },
    { concurrency: 16, writesPerSec: 800, p50Ms: 2, p99Ms: 5, failedRequests: 0 },
  ];
  const s = summarize(results, etcd, [1, 16, 64]);
  const met = (c: number, prefix: string) => s.targets.find((t) => t.concurrency === c && t.target.startsWith(prefix))!.met;
  // c1: exactly at each bound counts as met.
  assert.equal(met(1, 'client_credentials: raftauth >= 2x'), true);
  assert.equal(met(1, 'client_credentials: raftauth >= 0.5x'), true);
  assert.equal(met(1, 'refresh_token'), true);
  // c16: just under each bound; refresh faster than etcd but with failed requests.
  assert.equal(met(16, 'client_credentials: raftauth >= 2x'), false);
  assert.equal(met(16, 'client_credentials: raftauth >= 0.5x'), false);
  assert.equal(met(16, 'refresh_token'), false);
  assert.match(s.targets.find((t) => t.concurrency === 16 && t.target.startsWith('refresh_token'))!.detail, /2 failed requests/);
  // c64: nothing measured.
  assert.deepEqual(s.targets.filter((t) => t.concurrency === 64).map((t) => t.met), [null, null, null]);
  assert.deepEqual(s.clientCredentials[0], { concurrency: 1, raftauth: 500, oidcProvider: 250, ceiling: 1000, raftauthOverOidcProvider: 2, raftauthOverCeiling: 0.5 });
  assert.deepEqual(s.refreshVsEtcd[1], { concurrency: 16, raftauthRefreshPerSec: 900, etcdPutsPerSec: 800, raftauthOverEtcd: 1.125 });
  assert.deepEqual(s.raftauthOverOidcProvider, [
    { grant: 'client_credentials', concurrency: 1, ratio: 2 },
    { grant: 'client_credentials', concurrency: 16, ratio: 1.998 },
    { grant: 'refresh_token', concurrency: 1, ratio: 3 },
  ]);
  const table = humanTable(results, etcd, s);
  assert.match(table, /\[MET\] c1 client_credentials: raftauth >= 2x oidc-provider/);
  assert.match(table, /\[NOT MET\] c16 refresh_token/);
  assert.match(table, /\[n\/a\] c64/);
});

test('without etcd the refresh target is not judged', () => {
  const s = summarize({ raftauth: { refresh_token: [level(1, 300)] } }, null, [1]);
  assert.equal(s.targets.find((t) => t.target.startsWith('refresh_token'))!.met, null);
  assert.equal(s.refreshVsEtcd[0]!.raftauthOverEtcd, null);
});
