// One Jepsen run, from inside the client namespace (started by jepsen.ts with `ip netns exec`):
// start the nodes in their namespaces, run the workloads and the nemesis, heal, a quiet period,
// final reads, then the checkers and the report. Every socket this process opens is in the client
// namespace. Results go to the run directory; the exit code is 0 whenever the run completed (the
// verdicts are in summary.json), 2 when it could not run.
import { existsSync, readFileSync } from 'node:fs';
import { rm, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { Rng } from '../sim/rng.ts';
import { CodeWorkload, RefreshWorkload, checkCodes, checkRefresh } from './auth.ts';
import { checkAudit, collectAudit } from './audit.ts';
import { checkAvailability } from './availability.ts';
import { NodeCluster } from './cluster.ts';
import { History } from './history.ts';
import type { Hosts } from './hosts.ts';
import { KvWorkload, checkKv } from './kv.ts';
import { AddressPool, TotpWorkload, checkTotp } from './mfa.ts';
import { CLIENT_POOL } from './hosts.ts';
import { Nemesis, makeSchedule } from './nemesis.ts';
import type { FaultKind } from './nemesis.ts';
import { clientKnown, setupOAuth } from './oauth-client.ts';
import { writeReport } from './report.ts';
import { prefill } from './prefill.ts';
import type { PrefillSummary } from './prefill.ts';
import { waitFor } from '../../scripts/lib/wait.ts';

export type WorkloadName = 'kv' | 'refresh' | 'code' | 'totp' | 'audit';
export const WORKLOADS: readonly WorkloadName[] = ['kv', 'refresh', 'code', 'totp', 'audit'];

export interface RunOptions {
  readonly seed: number;
  readonly hosts: Hosts;
  readonly dir: string;
  /** Time of the fault schedule (quiet periods and faults), before the final quiet period. */
  readonly timeMs: number;
  readonly kinds: readonly FaultKind[];
  readonly workloads: readonly WorkloadName[];
  readonly quietMs: readonly [number, number];
  readonly faultMs: readonly [number, number];
  readonly finalQuietMs: number;
  /** Workers per workload; `totp` acceptance races and `lockout` cycles both belong to the totp workload. */
  readonly workers: { readonly kv: number; readonly refresh: number; readonly code: number; readonly totp?: number; readonly lockout?: number };
  /** The negative control: a debug switch that breaks linearizability. */
  readonly unsafe?: 'ackBeforeCommit' | 'readWithoutReadIndex';
  /** Keep the nodes' data directories (they are deleted otherwise; logs are always kept). */
  readonly keepData: boolean;
  /** Budget of the linearizability search. */
  readonly checkMs: number;
  /** Records written before the run (prefill.ts); 0 or absent: none. */
  readonly prefill?: number;
}

export interface RunSummary {
  readonly result: 'valid' | 'invalid' | 'unknown';
  readonly seed: number;
  readonly dir: string;
  readonly nodes: readonly number[];
  readonly workloads: readonly WorkloadName[];
  readonly unsafe: string | null;
  readonly durationMs: number;
  readonly operations: Record<string, Record<string, number>>;
  readonly faults: readonly { fault: string; start: number; end: number; detail: Record<string, unknown> }[];
  readonly verdicts: Record<string, { valid: boolean | 'unknown' } & Record<string, unknown>>;
  readonly availability: ReturnType<typeof checkAvailability>;
  readonly plotErrors: readonly string[];
  /** What --prefill wrote before the run (null: nothing). */
  readonly prefill: PrefillSummary | null;
}

/** The distinct fatal-error lines of a node's log (what a crash said), at most a few. */
function fatalLines(file: string): string[] {
  if (!existsSync(file)) return [];
  const out = new Set<string>();
  for (const line of readFileSync(file, 'utf8').split('\n')) {
    if (!line.includes('fatal')) continue;
    try {
      const j = JSON.parse(line) as { msg?: string; err?: string };
      out.add(`${j.msg ?? ''}: ${j.err ?? ''}`.slice(0, 300));
    } catch {
      out.add(line.slice(0, 300));
    }
    if (out.size >= 3) break;
  }
  return [...out];
}

const log = (line: string): void => {
  process.stdout.write(`${line}\n`);
};

export async function runInside(o: RunOptions): Promise<RunSummary> {
  const ids = o.hosts.nodeIds;
  const rng = new Rng(o.seed);
  const scheduleRng = rng.fork();
  const nemesisRng = rng.fork();
  const workerRng = rng.fork();
  const prefillRecords = o.prefill ?? 0;
  // The prefill seals with the cluster's data key: it needs the OAuth set-up (master key, client) even for a kv-only run.
  const oauth = prefillRecords > 0 || o.workloads.includes('refresh') || o.workloads.includes('code') || o.workloads.includes('totp') || o.workloads.includes('audit');
  const cluster = new NodeCluster(o.hosts, join(o.dir, 'nodes'), { oauth, tickMs: 50, ...(o.unsafe ? { unsafe: { [o.unsafe]: true } } : {}) });
  const history = new History(join(o.dir, 'history.jsonl'));
  const kv = new KvWorkload(history, () => ids);
  const nemesis = new Nemesis(cluster, history, nemesisRng, log, (key) => kv.keys.add(key));
  const onSignal = (): void => nemesis.abort();
  process.once('SIGTERM', onSignal);
  process.once('SIGINT', onSignal);
  const schedule = makeSchedule(scheduleRng, { ids, kinds: o.kinds, timeMs: o.timeMs, quietMs: o.quietMs, faultMs: o.faultMs });
  log(`jepsen: seed ${o.seed}; ${ids.length} nodes; workloads ${o.workloads.join(',')}; ${schedule.length} faults: ${schedule.map((s) => s.fault).join(', ')}`);
  try {
    await cluster.init();
    for (const id of ids) cluster.start(id);
    await Promise.all(ids.map((id) => cluster.waitServing(id, 90_000)));
    const leader = await cluster.waitLeader(ids, 30_000);
    log(`jepsen: cluster up, leader ${leader}`);
    if (oauth) {
      await setupOAuth(cluster, leader);
      for (const id of ids) await waitFor(`the OAuth client on node ${id}`, () => clientKnown(id), 30_000, 100);
    }
    const prefilled = prefillRecords > 0 ? await prefill(cluster, prefillRecords, log) : null;

    history.begin();
    const all = (): readonly number[] => ids;
    const rt = new RefreshWorkload(history, all);
    const codes = new CodeWorkload(history, all);
    const totp = new TotpWorkload(history, cluster, all, new AddressPool(CLIENT_POOL), log);
    let stopping = false;
    const stop = (): boolean => stopping;
    const workers: Promise<void>[] = [];
    if (o.workloads.includes('kv')) for (let w = 0; w < o.workers.kv; w++) workers.push(kv.worker(w, workerRng.fork(), stop));
    if (o.workloads.includes('refresh')) for (let w = 0; w < o.workers.refresh; w++) workers.push(rt.worker(w, workerRng.fork(), stop));
    if (o.workloads.includes('code')) for (let w = 0; w < o.workers.code; w++) workers.push(codes.worker(workerRng.fork(), stop));
    if (o.workloads.includes('totp')) {
      for (let w = 0; w < (o.workers.totp ?? 2); w++) workers.push(totp.raceWorker(workerRng.fork(), stop));
      for (let w = 0; w < (o.workers.lockout ?? 1); w++) workers.push(totp.lockWorker(workerRng.fork(), stop));
    }

    await nemesis.run(schedule);
    history.event('event', 'final-quiet', {});
    log(`jepsen: healed; final quiet period ${o.finalQuietMs} ms`);
    await new Promise((r) => setTimeout(r, o.finalQuietMs));
    stopping = true;
    await Promise.all(workers);
    const finalLeader = await cluster.waitLeader(ids, 30_000).catch((e: Error) => {
      log(`jepsen: no common leader after healing: ${e.message}`);
      return 0;
    });
    history.event('event', 'final-reads', { leader: finalLeader });
    await kv.finalReads(ids);
    await rt.finalRefreshes(workerRng.fork());
    // Workload 5: every node's audit log, read after everything else was acknowledged.
    const audit = o.workloads.includes('audit') ? await collectAudit(cluster, history, ids) : null;
    const endMs = history.now();
    await history.close();

    // Checkers.
    log(`jepsen: ${history.ops.length} operations; checking`);
    const verdicts: RunSummary['verdicts'] = {};
    if (o.workloads.includes('kv') || o.unsafe) verdicts.linearizable = { ...checkKv(history.ops, { maxSteps: 20_000_000, deadlineMs: o.checkMs }) };
    if (o.workloads.includes('refresh')) verdicts['refresh-tokens'] = { ...checkRefresh(history.ops) };
    if (o.workloads.includes('code')) verdicts['authorization-codes'] = { ...checkCodes(history.ops) };
    if (o.workloads.includes('totp')) verdicts.totp = { ...checkTotp(history.ops) };
    if (audit !== null) verdicts.audit = { ...checkAudit(history.ops, audit, history.epochMs) };
    // The schedule must end healed: every node running, connected and a voter on every node.
    verdicts.healed = { checker: 'healed', valid: nemesis.healed };
    // A node that stopped by itself (not killed by the nemesis) is a bug whatever the histories say.
    verdicts['node-crashes'] = { checker: 'node-crashes', valid: cluster.crashes.length === 0, crashes: cluster.crashes.map((c) => ({ ...c, fatal: fatalLines(join(cluster.dir, `node${c.node}.log`)) })) };
    const availability = checkAvailability(history.ops, nemesis.windows);
    for (const [name, v] of Object.entries(verdicts)) await writeFile(join(o.dir, `${name}.json`), JSON.stringify(v, null, 2));
    await writeFile(join(o.dir, 'availability.json'), JSON.stringify(availability, null, 2));

    const operations: Record<string, Record<string, number>> = {};
    for (const op of history.ops) {
      const k = `${op.workload} ${op.f}`;
      operations[k] ??= { ok: 0, fail: 0, info: 0 };
      operations[k][op.outcome]!++;
    }
    const valids = Object.values(verdicts).map((v) => v.valid);
    const result = valids.includes(false) ? 'invalid' : valids.includes('unknown') ? 'unknown' : 'valid';
    const base = {
      result,
      seed: o.seed,
      dir: o.dir,
      nodes: ids,
      workloads: o.workloads,
      unsafe: o.unsafe ?? null,
      durationMs: Math.round(endMs),
      operations,
      faults: nemesis.windows.map((w) => ({ fault: w.fault, start: w.start, end: w.end, detail: w.detail })),
      verdicts,
      availability,
      prefill: prefilled,
    } as const;
    const plotErrors = await writeReport({ dir: o.dir, title: `raftauth Jepsen run, seed ${o.seed}${o.unsafe ? ` (negative control: unsafe.${o.unsafe})` : ''}`, ops: history.ops, windows: nemesis.windows, endMs, summary: base });
    const summary: RunSummary = { ...base, plotErrors };
    await writeFile(join(o.dir, 'summary.json'), JSON.stringify(summary, null, 2));
    log(`jepsen: ${result}; report ${join(o.dir, 'report.html')}`);
    return summary;
  } finally {
    process.off('SIGTERM', onSignal);
    process.off('SIGINT', onSignal);
    await history.close().catch(() => undefined);
    await cluster.close();
    if (!o.keepData) for (const id of ids) await rm(cluster.dataDir(id), { recursive: true, force: true });
  }
}

// Started by jepsen.ts: `node --import tsx runner.ts <options JSON>`.
if (import.meta.url === `file://${process.argv[1]}`) {
  const o = JSON.parse(process.argv[2] ?? '') as RunOptions;
  runInside(o).then(
    () => process.exit(0),
    (e: Error) => {
      process.stderr.write(`jepsen runner failed: ${e.stack ?? e.message}\n`);
      process.exit(2);
    },
  );
}
