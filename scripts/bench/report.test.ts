// The report's ratios and targets (report.ts): every non-etcd system gets its ratios to etcd and
// issue 14's steady-state targets; the raftauth-only `ratios` stays as it was.
import assert from 'node:assert/strict';
import { test } from 'node:test';
import { humanTable, ratios, ratiosToEtcd, steadyTargets, targetsBySystem } from './report.ts';
import type { SystemReport } from './report.ts';
import type { LevelResult } from './workload.ts';

function level(concurrency: number, writesPerSec: number, p50Ms: number, p99Ms: number, cpuMsPerWrite: number | null): LevelResult {
  return {
    concurrency,
    measuredSeconds: 1,
    writes: writesPerSec,
    writesPerSec,
    latency: { count: writesPerSec, minMs: 0, meanMs: p50Ms, p50Ms, p90Ms: p99Ms, p99Ms, p999Ms: p99Ms, maxMs: p99Ms, clamped: 0 },
    failedRequests: 0,
    erroredAttempts: {},
    leaderMember: '1',
    byMember: {},
    cpuMsPerWrite,
    cpuMsPerWriteByKind: null,
  };
}

const sys = (...levels: LevelResult[]): SystemReport => ({ version: 't', settings: {}, levels, failover: null });

const etcd = sys(level(1, 200, 4, 8, 2), level(64, 1000, 50, 100, 0.8), level(256, 2000, 100, 200, 0.6));
const raftauth = sys(level(1, 100, 8, 16, 4), level(64, 500, 100, 150, 1.6));
const proto = sys(level(1, 400, 2, 4, 1), level(64, 2000, 30, 90, 0.8), level(256, 2900, 80, 300, 0.5));

test('ratiosToEtcd gives each non-etcd system its ratios, level by level', () => {
  const r = ratiosToEtcd({ etcd, raftauth, proto });
  assert.deepEqual(Object.keys(r).sort(), ['proto', 'raftauth']);
  assert.deepEqual(r.raftauth, ratios(raftauth, etcd), 'the same numbers as the raftauth-only ratios');
  assert.deepEqual(r.proto, [
    { concurrency: 1, throughput: 2, p50: 0.5, p99: 0.5, cpuPerWrite: 0.5 },
    { concurrency: 64, throughput: 2, p50: 0.6, p99: 0.9, cpuPerWrite: 1 },
    { concurrency: 256, throughput: 1.45, p50: 0.8, p99: 1.5, cpuPerWrite: 0.833 },
  ]);
  assert.deepEqual(r.raftauth?.map((x) => x.concurrency), [1, 64], 'a level etcd or the system lacks gives no ratio');
  assert.deepEqual(ratiosToEtcd({ raftauth, proto }), {}, 'no etcd, no ratios');
});

test('steadyTargets judges issue 14s targets, and says "not measured" for a missing level or system', () => {
  const t = steadyTargets('proto', proto, etcd);
  assert.deepEqual(t.map((x) => [x.target, x.met]), [
    ['concurrency 64: proto throughput >= 1.5x etcd, same run', true],
    ['concurrency 64: proto p99 <= etcd p99', true],
    ['concurrency 64: proto cluster CPU per write <= etcd', true],
    ['concurrency 1: proto p50 <= etcd p50', true],
    ['concurrency 256: proto throughput >= 1.5x etcd, same run', false],
  ]);
  assert.match(t[4]!.detail, /2900 vs 2000 writes\/s \(x1\.45\)/);
  const r = steadyTargets('raftauth', raftauth, etcd);
  assert.deepEqual(r.map((x) => x.met), [false, false, false, false, null]);
  assert.equal(r[4]!.detail, 'not measured');
  assert.ok(steadyTargets('proto', proto, undefined).every((x) => x.met === null));
  const noCpu = steadyTargets('proto', sys(level(64, 2000, 30, 90, null)), etcd);
  assert.equal(noCpu[2]!.met, null);
  assert.deepEqual(Object.keys(targetsBySystem({ etcd, raftauth, proto })).sort(), ['proto', 'raftauth']);
});

test('the human table has a ratio line and the steady targets of every non-etcd system', () => {
  const systems = { etcd, raftauth, proto };
  const text = humanTable(systems, ratios(raftauth, etcd), [], ratiosToEtcd(systems), targetsBySystem(systems));
  assert.match(text, /^raftauth\/etcd: c1 thr x0\.5 /m);
  assert.match(text, /^proto\/etcd: c1 thr x2 p50 x0\.5 p99 x0\.5 cpu x0\.5; c64 thr x2 /m);
  assert.match(text, /^\[MET\] concurrency 64: proto cluster CPU per write <= etcd: 0\.8 vs 0\.8 ms per write$/m);
  assert.match(text, /^\[NOT MET\] concurrency 64: raftauth cluster CPU per write <= etcd: 1\.6 vs 0\.8 ms per write$/m);
});
