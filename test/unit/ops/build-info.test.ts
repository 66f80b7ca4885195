// Issue 13, defect 7: the version in the status answers and in /metrics (raftauth_build_info), and
// prom-client's default process and event-loop metrics for every process of a node (the primary
// and each HTTP worker), labelled by process so the primary/worker merge of /metrics keeps them
// apart instead of summing or dropping them (src/ops/metrics.ts ProcessMetrics).
import assert from 'node:assert/strict';
import { readFileSync } from 'node:fs';
import { test } from 'node:test';
import { startServer } from '../../../src/server/process.ts';
import { createLogger } from '../../../src/server/log.ts';
import { buildAdminApp } from '../../../src/ops/admin.ts';
import type { RaftNode } from '../../../src/node/node.ts';
import { VERSION } from '../../../src/version.ts';
import { FakeNode, call, testConfig } from '../server/helpers.ts';
import { parseMetrics } from './helpers.ts';
import type { Sample } from './helpers.ts';

/** The process labels of the series named `name`. */
function processes(samples: readonly Sample[], name: string): string[] {
  return samples.filter((s) => s.name === name).map((s) => s.labels.process ?? '(none)').sort();
}

/** Every default metric family this test relies on, one series per process. */
const PER_PROCESS = ['process_cpu_user_seconds_total', 'process_resident_memory_bytes', 'process_start_time_seconds', 'nodejs_eventloop_lag_p99_seconds', 'nodejs_heap_size_used_bytes'];

for (const workers of [2, 0]) {
  test(`http.workers ${workers}: /metrics has raftauth_build_info{version} once and the default process metrics of every process, one series each; /v1/status has the version`, async (t) => {
    const config = await testConfig(t, { workers });
    const server = await startServer(config, () => new FakeNode(), { handleSignals: false, logger: createLogger('silent', { node: 1 }), drainMs: 500 });
    t.after(() => server.stop());
    const port = server.address.port;
    const expected = ['primary', ...server.workers().map((w) => `worker-${w.id}`)].sort();
    assert.equal(expected.length, 1 + workers);

    // A few scrapes, so whichever worker answers, the answer is the whole node's.
    for (let i = 0; i < 3; i++) {
      const m = await call(port, 'GET', '/metrics');
      assert.equal(m.status, 200);
      const s = parseMetrics(String(m.body));
      const info = s.filter((x) => x.name === 'raftauth_build_info');
      assert.deepEqual(
        info.map((x) => [x.labels.version, x.labels.node, x.value]),
        [[VERSION, '1', 1]],
        'one build_info series, from the primary',
      );
      for (const name of PER_PROCESS) assert.deepEqual(processes(s, name), expected, name);
      // Every series of a default family carries the node label too.
      assert.ok(s.filter((x) => x.name === 'process_cpu_user_seconds_total').every((x) => x.labels.node === '1'));
    }

    for (const path of ['/v1/status', '/v1/status?cached=1']) {
      const st = await call(port, 'GET', path);
      assert.equal(st.status, 200, path);
      assert.equal((st.body as { version?: unknown }).version, VERSION, path);
    }
  });
}

test('the admin API status carries the version', async () => {
  // The status route also lists the member table's addresses: none here.
  const node = Object.assign(new FakeNode(), { memberAddresses: () => new Map() }) as unknown as RaftNode;
  const token = 'v'.repeat(40);
  const app = buildAdminApp({ node, token });
  try {
    const r = await app.inject({ method: 'GET', url: '/admin/v1/status', headers: { authorization: `Bearer ${token}` } });
    assert.equal(r.statusCode, 200, r.body);
    const body = r.json() as { version?: unknown; id?: unknown };
    assert.equal(body.version, VERSION);
    assert.equal(body.id, 1);
  } finally {
    await app.close();
  }
});

/** A process's resident set size as the kernel reports it (Linux /proc/<pid>/status VmRSS). */
function kernelRssBytes(pid: number): number {
  const m = /^VmRSS:\s+(\d+) kB$/m.exec(readFileSync(`/proc/${pid}/status`, 'utf8'));
  if (!m) throw new Error(`no VmRSS for ${pid}`);
  return Number(m[1]) * 1024;
}

test('issue 15: /metrics reports each process\'s own RSS (process_resident_memory_bytes per primary and per worker, not one summed)', { skip: process.platform !== 'linux' ? 'reads /proc' : false }, async (t) => {
  const config = await testConfig(t, { workers: 2 });
  const server = await startServer(config, () => new FakeNode(), { handleSignals: false, logger: createLogger('silent', { node: 1 }), drainMs: 500 });
  t.after(() => server.stop());
  // Ballast in this (the primary's) process, touched so it is resident: its RSS is then far from
  // any worker's, and a worker series repeating the primary's value could not pass.
  const ballast = Buffer.alloc(128 * 1024 * 1024, 1);
  const pids = new Map<string, number>([['primary', process.pid], ...server.workers().map((w) => [`worker-${w.id}`, w.pid] as [string, number])]);
  const s = parseMetrics(String((await call(server.address.port, 'GET', '/metrics')).body));
  const kernel = new Map([...pids].map(([label, pid]) => [label, kernelRssBytes(pid)]));
  const rss = new Map(s.filter((x) => x.name === 'process_resident_memory_bytes').map((x) => [x.labels.process!, x.value]));
  assert.deepEqual([...rss.keys()].sort(), [...pids.keys()].sort());
  for (const [label, bytes] of rss) {
    const k = kernel.get(label)!;
    // Read a moment apart, so not equal: within a sixth of each other, where a sum of the three
    // processes, or the primary's value (with its ballast) repeated for a worker, is not.
    assert.ok(Math.abs(bytes - k) <= k / 6, `${label}: /metrics ${bytes} B, kernel ${k} B`);
  }
  assert.ok(rss.get('primary')! > Math.max(...[...rss].filter(([l]) => l !== 'primary').map(([, v]) => v)) + ballast.length / 2, 'the ballast shows in the primary only');
});
