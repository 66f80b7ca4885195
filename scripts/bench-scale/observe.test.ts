// The parts of bench:scale's observation that read text: node log lines and /metrics.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { dirBytes, parseLogLine, rssMb, snapshotEventOf, snapshotMetricLines, sweptOf } from './observe.ts';
import { mkdtempSync, mkdirSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';

test('log lines: snapshots (not backups), durations when present, sweeps', () => {
  assert.equal(parseLogLine('not json'), null);
  assert.equal(parseLogLine('{broken'), null);
  const created = parseLogLine(JSON.stringify({ level: 30, time: 1000, msg: 'created snapshot', index: 10, bytes: 2048 }))!;
  assert.deepEqual(snapshotEventOf(2, created), { node: 2, atMs: 1000, msg: 'created snapshot', index: 10, bytes: 2048, durationMs: null });
  const timed = parseLogLine(JSON.stringify({ time: 5, msg: 'compacted the log', durationMs: 12.5 }))!;
  assert.equal(snapshotEventOf(1, timed)!.durationMs, 12.5);
  assert.equal(snapshotEventOf(1, parseLogLine(JSON.stringify({ msg: 'created snapshot for a backup' }))!), null);
  assert.equal(snapshotEventOf(1, parseLogLine(JSON.stringify({ msg: 'worker serving HTTP' }))!), null);
  assert.deepEqual(sweptOf(parseLogLine(JSON.stringify({ time: 7, msg: 'swept expired OAuth records', deleted: 1000 }))!), { atMs: 7, deleted: 1000 });
  assert.equal(sweptOf(parseLogLine(JSON.stringify({ msg: 'swept expired OAuth records' }))!), null);
});

test('metrics: snapshot and compaction samples, without histogram buckets', () => {
  const text = ['# HELP raftauth_snapshots_total x', 'raftauth_snapshots_total{event="created"} 3', 'raftauth_snapshot_size_bytes_bucket{le="1"} 0', 'raftauth_snapshot_size_bytes_sum 4096', 'raftauth_raft_term 2', 'raftauth_log_compactions_total 5'].join('\n');
  assert.deepEqual(snapshotMetricLines(text), { 'raftauth_snapshots_total{event="created"}': 3, raftauth_snapshot_size_bytes_sum: 4096, raftauth_log_compactions_total: 5 });
});

test('rssMb reads this process; dirBytes sums files under a tree', () => {
  const mine = rssMb(process.pid);
  if (mine !== null) assert.ok(mine > 1 && mine < 100_000);
  assert.equal(rssMb(2 ** 30), null);
  const d = mkdtempSync(join(tmpdir(), 'bench-scale-observe-'));
  try {
    mkdirSync(join(d, 'a'));
    writeFileSync(join(d, 'x'), Buffer.alloc(100));
    writeFileSync(join(d, 'a', 'y'), Buffer.alloc(23));
    assert.equal(dirBytes(d), 123);
    assert.equal(dirBytes(join(d, 'missing')), 0);
  } finally {
    rmSync(d, { recursive: true, force: true });
  }
});
