// `npm run bench:fsync`: what this machine's disk does to a replicated write before raftauth adds
// anything. One LevelDB (classic-level, as the nodes use it) in a temp dir under --dir, a small
// batch written with sync: true every --interval-ms for --seconds, one at a time (the closed loop
// of a quiet node: each write waits for its fsync). Prints one JSON line: the latency percentiles
// and every write slower than --slow-ms with its time, so periodic stalls (a journal commit every
// few seconds, a host flush) show as a row of evenly spaced times. Every raftauth write waits for
// such an fsync on the leader and on a quorum of followers, so a stall here is a stall there.
//
//   npm run bench:fsync -- --seconds 30
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { parseArgs } from 'node:util';
import { ClassicLevel } from 'classic-level';
import { LatencyHistogram } from './bench/histogram.ts';

const USAGE = `usage: npm run bench:fsync -- [--seconds N (default 30)] [--interval-ms N (default 20)] [--slow-ms N (default 8)] [--dir DIR (default the OS temp dir)]\n`;

function num(v: string | undefined, name: string, def: number, min: number, max: number): number {
  if (v === undefined) return def;
  const n = Number(v);
  if (!Number.isFinite(n) || n < min || n > max) throw new Error(`--${name} must be a number from ${min} to ${max}`);
  return n;
}

async function main(): Promise<number> {
  let o: { seconds: number; intervalMs: number; slowMs: number; dir: string };
  try {
    const { values } = parseArgs({ options: { seconds: { type: 'string' }, 'interval-ms': { type: 'string' }, 'slow-ms': { type: 'string' }, dir: { type: 'string' }, help: { type: 'boolean' } }, strict: true });
    if (values.help) {
      process.stdout.write(USAGE);
      return 0;
    }
    o = { seconds: num(values.seconds, 'seconds', 30, 1, 3600), intervalMs: num(values['interval-ms'], 'interval-ms', 20, 0, 10_000), slowMs: num(values['slow-ms'], 'slow-ms', 8, 0.1, 10_000), dir: values.dir ?? tmpdir() };
  } catch (e) {
    process.stderr.write(`${(e as Error).message}\n${USAGE}`);
    return 2;
  }
  const dir = mkdtempSync(join(o.dir, 'raftauth-bench-fsync-'));
  const db = new ClassicLevel<string, Uint8Array>(dir, { keyEncoding: 'utf8', valueEncoding: 'view' });
  try {
    await db.open();
    const value = new Uint8Array(256).fill(7);
    const hist = new LatencyHistogram();
    const slow: { atS: number; ms: number }[] = [];
    const t0 = performance.now();
    for (let i = 0; performance.now() - t0 < o.seconds * 1000; i++) {
      const t = performance.now();
      await db.batch([{ type: 'put', key: `k${i}`, value }], { sync: true });
      const ms = performance.now() - t;
      hist.recordMs(ms);
      if (ms > o.slowMs) slow.push({ atS: Math.round((t - t0) / 10) / 100, ms: Math.round(ms * 10) / 10 });
      if (o.intervalMs > 0) await new Promise((r) => setTimeout(r, o.intervalMs));
    }
    const gaps = slow.slice(1).map((s, i) => Math.round((s.atS - slow[i]!.atS) * 100) / 100);
    process.stdout.write(`${JSON.stringify({ benchmark: 'fsync', settings: o, latency: hist.summary(), slowWrites: slow, secondsBetweenSlowWrites: gaps })}\n`);
    return 0;
  } finally {
    await db.close().catch(() => undefined);
    rmSync(dir, { recursive: true, force: true });
  }
}

process.exitCode = await main();
