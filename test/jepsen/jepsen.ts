// The suite's entry point on the host side (root namespace): remove leftovers of crashed runs,
// create the hosts (hosts.ts), run the runner as a child process inside the client namespace, and
// tear everything down afterwards — also when the runner fails and on SIGINT/SIGTERM.
import { spawn } from 'node:child_process';
import { randomInt } from 'node:crypto';
import { existsSync, readFileSync } from 'node:fs';
import { mkdir } from 'node:fs/promises';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { REPO_ROOT } from '../cluster/harness.ts';
import { canCreateHosts, cleanupStale, createHosts, destroyHosts, newPrefix } from './hosts.ts';
import { parseNemesis } from './nemesis.ts';
import { MAX_PREFILL_RECORDS } from './prefill.ts';
import type { RunOptions, RunSummary, WorkloadName } from './runner.ts';
import { WORKLOADS } from './runner.ts';
import { requireFreshDist } from '../../scripts/lib/dist.ts';

const RUNNER = fileURLToPath(new URL('./runner.ts', import.meta.url));
/** Time the runner gets to stop its nodes after SIGTERM before everything is killed. */
const STOP_GRACE_MS = 10_000;

export interface JepsenOptions {
  readonly seed?: number;
  readonly nodes?: number;
  /** Seconds of faults and quiet periods. */
  readonly timeS: number;
  /** --nemesis: group names and fault kinds, comma-separated. */
  readonly nemesis: string;
  /** --workload: all, or kv,refresh,code,totp,audit. */
  readonly workload: string;
  readonly quietMs?: readonly [number, number];
  readonly faultMs?: readonly [number, number];
  readonly finalQuietMs?: number;
  readonly workers?: { kv: number; refresh: number; code: number; totp?: number; lockout?: number };
  readonly unsafe?: 'ackBeforeCommit' | 'readWithoutReadIndex';
  /** Parent of the run directory. Default test-artifacts/jepsen. */
  readonly artifacts?: string;
  readonly keepData?: boolean;
  readonly checkMs?: number;
  /** Records written before the run (test/jepsen/prefill.ts; --prefill). */
  readonly prefill?: number;
  /** Where the runner's output goes (default: this process's stdout). */
  readonly out?: (chunk: string) => void;
}

export function parseWorkloads(spec: string): WorkloadName[] {
  if (spec === 'all') return [...WORKLOADS];
  const out = spec.split(',').map((s) => s.trim()).filter(Boolean);
  for (const w of out) if (!(WORKLOADS as readonly string[]).includes(w)) throw new Error(`unknown workload ${JSON.stringify(w)}: use all or ${WORKLOADS.join(', ')}`);
  if (out.length === 0) throw new Error('--workload names no workload');
  return out as WorkloadName[];
}

function stamp(): string {
  return new Date().toISOString().replace(/[:.]/g, '-').replace(/Z$/, '');
}

/** Run one Jepsen test end to end; resolves with the runner's summary. */
export async function runJepsen(j: JepsenOptions): Promise<RunSummary> {
  const can = await canCreateHosts();
  if (!can.ok) throw new Error(`the Jepsen suite needs root, iproute2 and nftables (network namespaces): ${can.why}`);
  const seed = j.seed ?? randomInt(1, 2 ** 31);
  const n = j.nodes ?? 5;
  if (!Number.isInteger(n) || n < 3 || n > 9) throw new Error(`--nodes must be 3..9, got ${n}`);
  if (!(j.timeS > 0 && j.timeS <= 24 * 3600)) throw new Error(`--time must be 1..86400 seconds, got ${j.timeS}`);
  if (j.prefill !== undefined && (!Number.isSafeInteger(j.prefill) || j.prefill < 0 || j.prefill > MAX_PREFILL_RECORDS)) throw new Error(`--prefill must be 0..${MAX_PREFILL_RECORDS} records, got ${j.prefill}`);
  // The nodes run the built program: refuse here, before any namespace exists, if it is missing or stale.
  requireFreshDist();
  const kinds = parseNemesis(j.nemesis);
  const workloads = parseWorkloads(j.workload);
  const dir = join(j.artifacts ?? join(REPO_ROOT, 'test-artifacts', 'jepsen'), `${stamp()}-${seed}`);
  await mkdir(dir, { recursive: true });
  const out = j.out ?? ((s: string) => process.stdout.write(s));
  out(`jepsen: seed ${seed} (replay with --seed ${seed}); run directory ${dir}\n`);

  const stale = await cleanupStale();
  if (stale.length > 0) out(`jepsen: removed leftovers of crashed runs: ${stale.join(', ')}\n`);
  const prefix = newPrefix();
  const ids = Array.from({ length: n }, (_, i) => i + 1);
  let child: ReturnType<typeof spawn> | null = null;
  let interrupted: NodeJS.Signals | null = null;
  const onSignal = (sig: NodeJS.Signals): void => {
    interrupted = sig;
    child?.kill('SIGTERM');
    // Whatever the runner does, everything in the namespaces is gone after the grace period.
    setTimeout(() => void destroyHosts(prefix), STOP_GRACE_MS).unref();
  };
  process.on('SIGINT', onSignal);
  process.on('SIGTERM', onSignal);
  try {
    const hosts = await createHosts(ids, prefix);
    const opts: RunOptions = {
      seed,
      hosts,
      dir,
      timeMs: Math.round(j.timeS * 1000),
      kinds,
      workloads,
      quietMs: j.quietMs ?? [2_000, 5_000],
      faultMs: j.faultMs ?? [5_000, 10_000],
      finalQuietMs: j.finalQuietMs ?? 5_000,
      workers: j.workers ?? { kv: 5, refresh: 2, code: 1, totp: 2, lockout: 1 },
      ...(j.unsafe ? { unsafe: j.unsafe } : {}),
      keepData: j.keepData ?? false,
      checkMs: j.checkMs ?? 120_000,
      ...(j.prefill !== undefined && j.prefill > 0 ? { prefill: j.prefill } : {}),
    };
    const env: NodeJS.ProcessEnv = {};
    for (const [k, v] of Object.entries(process.env)) if (!k.startsWith('NODE_TEST')) env[k] = v;
    child = spawn('ip', ['netns', 'exec', hosts.clientNs, process.execPath, '--import', 'tsx', RUNNER, JSON.stringify(opts)], { cwd: REPO_ROOT, env, stdio: ['ignore', 'pipe', 'pipe'] });
    child.stdout!.on('data', (b: Buffer) => out(b.toString()));
    child.stderr!.on('data', (b: Buffer) => out(b.toString()));
    const code = await new Promise<number | null>((resolve) => child!.once('exit', (c) => resolve(c)));
    if (interrupted) throw new Error(`interrupted by ${interrupted as string}`);
    const file = join(dir, 'summary.json');
    if (code !== 0 || !existsSync(file)) throw new Error(`the Jepsen runner failed (exit ${code}); see ${dir}`);
    return JSON.parse(readFileSync(file, 'utf8')) as RunSummary;
  } finally {
    process.off('SIGINT', onSignal);
    process.off('SIGTERM', onSignal);
    const left = await destroyHosts(prefix);
    if (left.length > 0) out(`jepsen: could not delete namespaces ${left.join(', ')}\n`);
  }
}
