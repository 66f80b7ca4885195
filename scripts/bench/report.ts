// The benchmark's report: one JSON document (every system per level, ratios to etcd, failover,
// machine, targets of issues 4 and 14) and a short human table.
import { spawnSync } from 'node:child_process';
import { cpus, loadavg, release, totalmem } from 'node:os';
import type { FailoverResult, LevelResult } from './workload.ts';
import type { SystemName } from './system.ts';

export interface SystemReport {
  readonly version: string;
  readonly settings: Record<string, unknown>;
  readonly levels: LevelResult[];
  failover: FailoverResult | null;
}

export interface Target {
  readonly target: string;
  /** null: not measured in this run (level or phase skipped, or a system missing). */
  readonly met: boolean | null;
  readonly detail: string;
}

export interface MachineInfo {
  readonly cpus: number;
  readonly cpuModel: string;
  readonly memoryBytes: number;
  readonly kernel: string;
  readonly node: string;
  readonly etcd: string | null;
  /** Filesystem type of the data directory: fsync on tmpfs would cost nothing and flatter both systems. */
  readonly dataDirFilesystem: string;
  readonly loadAverageAtStart: number[];
  loadAverageAtEnd: number[];
}

export function machineInfo(dataParent: string, etcdVersion: string | null): MachineInfo {
  const fs = spawnSync('stat', ['-f', '-c', '%T', dataParent], { encoding: 'utf8', timeout: 5_000 });
  const c = cpus();
  return {
    cpus: c.length,
    cpuModel: c[0]?.model ?? 'unknown',
    memoryBytes: totalmem(),
    kernel: release(),
    node: process.version,
    etcd: etcdVersion,
    dataDirFilesystem: fs.status === 0 ? fs.stdout.trim() : 'unknown',
    loadAverageAtStart: loadavg().map((x) => Math.round(x * 100) / 100),
    loadAverageAtEnd: [],
  };
}

export interface Ratio {
  readonly concurrency: number;
  /** raftauth / etcd writes per second: above 1 is raftauth faster. */
  readonly throughput: number | null;
  /** raftauth / etcd latency: below 1 is raftauth faster. */
  readonly p50: number | null;
  readonly p99: number | null;
  /** raftauth / etcd CPU per write, all processes of the cluster: below 1 is raftauth cheaper. */
  readonly cpuPerWrite: number | null;
}

const ratio = (a: number, b: number): number | null => (b > 0 ? Math.round((a / b) * 1000) / 1000 : null);

export function ratios(r: SystemReport | undefined, e: SystemReport | undefined): Ratio[] {
  if (!r || !e) return [];
  return r.levels.flatMap((lr) => {
    const le = e.levels.find((x) => x.concurrency === lr.concurrency);
    if (!le) return [];
    const cpu = lr.cpuMsPerWrite !== null && le.cpuMsPerWrite !== null ? ratio(lr.cpuMsPerWrite, le.cpuMsPerWrite) : null;
    return [{ concurrency: lr.concurrency, throughput: ratio(lr.writesPerSec, le.writesPerSec), p50: ratio(lr.latency.p50Ms, le.latency.p50Ms), p99: ratio(lr.latency.p99Ms, le.latency.p99Ms), cpuPerWrite: cpu }];
  });
}

/** Every non-etcd system's ratios to etcd, by system name (none without etcd in the run). */
export function ratiosToEtcd(systems: Partial<Record<SystemName, SystemReport>>): Partial<Record<SystemName, Ratio[]>> {
  const out: Partial<Record<SystemName, Ratio[]>> = {};
  if (!systems.etcd) return out;
  for (const [name, s] of Object.entries(systems) as [SystemName, SystemReport][]) if (name !== 'etcd') out[name] = ratios(s, systems.etcd);
  return out;
}

/**
 * Issue 14's steady-state targets for system `name` against etcd, judged on this run's numbers:
 * at concurrency 64 throughput >= 1.5x etcd, p99 and cluster CPU per write no worse; at 1 a p50
 * no worse; at 256 throughput >= 1.5x. (Its failover target is issue 4's, judged in `targets`.)
 */
export function steadyTargets(name: SystemName, s: SystemReport | undefined, e: SystemReport | undefined): Target[] {
  const level = (x: SystemReport | undefined, c: number) => x?.levels.find((l) => l.concurrency === c);
  const judge = (c: number, what: string, f: (a: LevelResult, b: LevelResult) => { met: boolean | null; detail: string }): Target => {
    const target = `concurrency ${c}: ${name} ${what}`;
    const a = level(s, c);
    const b = level(e, c);
    return a && b ? { target, ...f(a, b) } : { target, met: null, detail: 'not measured' };
  };
  return [
    judge(64, 'throughput >= 1.5x etcd, same run', (a, b) => ({ met: a.writesPerSec >= 1.5 * b.writesPerSec, detail: `${a.writesPerSec} vs ${b.writesPerSec} writes/s (x${ratio(a.writesPerSec, b.writesPerSec)})` })),
    judge(64, 'p99 <= etcd p99', (a, b) => ({ met: a.latency.p99Ms <= b.latency.p99Ms, detail: `${a.latency.p99Ms} vs ${b.latency.p99Ms} ms` })),
    judge(64, 'cluster CPU per write <= etcd', (a, b) =>
      a.cpuMsPerWrite === null || b.cpuMsPerWrite === null
        ? { met: null, detail: 'no CPU readings (/proc missing)' }
        : { met: a.cpuMsPerWrite <= b.cpuMsPerWrite, detail: `${a.cpuMsPerWrite} vs ${b.cpuMsPerWrite} ms per write` },
    ),
    judge(1, 'p50 <= etcd p50', (a, b) => ({ met: a.latency.p50Ms <= b.latency.p50Ms, detail: `${a.latency.p50Ms} vs ${b.latency.p50Ms} ms` })),
    judge(256, 'throughput >= 1.5x etcd, same run', (a, b) => ({ met: a.writesPerSec >= 1.5 * b.writesPerSec, detail: `${a.writesPerSec} vs ${b.writesPerSec} writes/s (x${ratio(a.writesPerSec, b.writesPerSec)})` })),
  ];
}

/** steadyTargets of every non-etcd system in the run, by name. */
export function targetsBySystem(systems: Partial<Record<SystemName, SystemReport>>): Partial<Record<SystemName, Target[]>> {
  const out: Partial<Record<SystemName, Target[]>> = {};
  for (const [name, s] of Object.entries(systems) as [SystemName, SystemReport][]) if (name !== 'etcd') out[name] = steadyTargets(name, s, systems.etcd);
  return out;
}

/** Issue 4's benchmark targets, judged on this run's numbers. */
export function targets(systems: Partial<Record<SystemName, SystemReport>>, failoverTargetMs: number): Target[] {
  const r = systems.raftauth;
  const e = systems.etcd;
  const level = (s: SystemReport | undefined, c: number) => s?.levels.find((l) => l.concurrency === c);
  const out: Target[] = [];
  {
    const lr = level(r, 64);
    const le = level(e, 64);
    out.push(
      lr && le
        ? {
            target: 'concurrency 64: raftauth throughput >= 1.5x etcd, same run',
            met: lr.writesPerSec >= 1.5 * le.writesPerSec,
            detail: `${lr.writesPerSec} vs ${le.writesPerSec} writes/s (x${ratio(lr.writesPerSec, le.writesPerSec)})`,
          }
        : { target: 'concurrency 64: raftauth throughput >= 1.5x etcd, same run', met: null, detail: 'not measured' },
      lr && le
        ? { target: 'concurrency 64: raftauth p99 <= etcd p99', met: lr.latency.p99Ms <= le.latency.p99Ms, detail: `${lr.latency.p99Ms} vs ${le.latency.p99Ms} ms` }
        : { target: 'concurrency 64: raftauth p99 <= etcd p99', met: null, detail: 'not measured' },
    );
  }
  {
    const lr = level(r, 1);
    const le = level(e, 1);
    out.push(
      lr && le
        ? { target: 'concurrency 1: raftauth p50 <= etcd p50', met: lr.latency.p50Ms <= le.latency.p50Ms, detail: `${lr.latency.p50Ms} vs ${le.latency.p50Ms} ms` }
        : { target: 'concurrency 1: raftauth p50 <= etcd p50', met: null, detail: 'not measured' },
    );
  }
  {
    const f = r?.failover ?? null;
    const name = `failover: raftauth gap <= ${failoverTargetMs} ms, no failed request, no error from a live node`;
    if (!f) out.push({ target: name, met: null, detail: 'not measured' });
    else {
      const liveErrors = Object.values(f.erroredAttemptsOnLiveMembers).reduce((a, b) => a + b, 0);
      out.push({
        target: name,
        met: f.gapMs !== null && f.gapMs <= failoverTargetMs && f.failedRequests === 0 && liveErrors === 0,
        detail: `gap ${f.gapMs ?? 'none'} ms, ${f.failedRequests} failed requests, ${liveErrors} errored attempts on live nodes (etcd: gap ${e?.failover?.gapMs ?? 'n/a'} ms, ${e?.failover?.failedRequests ?? 'n/a'} failed)`,
      });
    }
  }
  return out;
}

/** A short table for humans. */
export function humanTable(
  systems: Partial<Record<SystemName, SystemReport>>,
  rs: Ratio[],
  ts: Target[],
  byName: Partial<Record<SystemName, Ratio[]>> = {},
  steady: Partial<Record<SystemName, Target[]>> = {},
): string {
  const lines: string[] = [];
  const pad = (s: string | number, w: number) => String(s).padStart(w);
  lines.push(`${'system'.padEnd(22)}${pad('conc', 5)}${pad('writes/s', 10)}${pad('p50 ms', 9)}${pad('p99 ms', 9)}${pad('failed', 8)}${pad('cpu ms/write', 14)}`);
  for (const [name, s] of Object.entries(systems)) {
    for (const l of s.levels) lines.push(`${name.padEnd(22)}${pad(l.concurrency, 5)}${pad(l.writesPerSec.toFixed(0), 10)}${pad(l.latency.p50Ms.toFixed(2), 9)}${pad(l.latency.p99Ms.toFixed(2), 9)}${pad(l.failedRequests, 8)}${pad(l.cpuMsPerWrite === null ? '-' : l.cpuMsPerWrite.toFixed(3), 14)}`);
  }
  const line = (name: string, list: Ratio[]): string => `${name}/etcd: ` + list.map((r) => `c${r.concurrency} thr x${r.throughput ?? '-'} p50 x${r.p50 ?? '-'} p99 x${r.p99 ?? '-'} cpu x${r.cpuPerWrite ?? '-'}`).join('; ');
  if (rs.length > 0) lines.push(line('raftauth', rs));
  for (const [name, list] of Object.entries(byName)) if (name !== 'raftauth' && list.length > 0) lines.push(line(name, list));
  for (const [name, s] of Object.entries(systems)) {
    const f = s.failover;
    if (f) lines.push(`${name} failover (c${f.concurrency}, killed ${f.killedMember}): gap ${f.gapMs ?? '-'} ms (probe ${f.probeGapMs ?? '-'}, clients ${f.clientGapMs ?? '-'}), all resumed ${f.allClientsResumedMs ?? '-'} ms, failed ${f.failedRequests}, errored attempts killed/live ${JSON.stringify(f.erroredAttemptsOnKilledMember)}/${JSON.stringify(f.erroredAttemptsOnLiveMembers)}`);
  }
  const mark = (t: Target): string => `[${t.met === null ? 'n/a' : t.met ? 'MET' : 'NOT MET'}] ${t.target}: ${t.detail}`;
  for (const t of ts) lines.push(mark(t));
  // Issue 14's steady-state targets of every non-etcd system (raftauth's repeat two of issue 4's, above).
  for (const list of Object.values(steady)) for (const t of list) lines.push(mark(t));
  return lines.join('\n') + '\n';
}
