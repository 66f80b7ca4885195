// Command line of `npm run bench:replication` (scripts/bench-replication.ts).
import { readFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { fileURLToPath } from 'node:url';
import { parse } from 'yaml';
import { parseArgs } from 'node:util';
import { SYSTEM_NAMES } from './system.ts';
import type { SystemName } from './system.ts';

export const USAGE = `usage: npm run bench:replication -- [options]
  --seconds N               measured seconds per concurrency level (default 10)
  --warmup N                warm-up seconds before each level and before the kill (default 2)
  --levels L                concurrency levels, comma-separated (default 1,16,64,256)
  --systems S               systems to run, in order (default etcd,raftauth); also proto, proto-noworker,
                            proto-notls, proto-noworker-notls (the write-path prototype, README "Prototype")
  --failover-concurrency N  clients during the failover phase (default 16); 0 skips failover
  --failover-max-seconds N  longest the failover phase runs after the kill (default 15)
  --failover-target-ms N    issue 4's failover gap target (default 500)
  --request-timeout-ms N    deadline of one put, retries included (default 5000)
  --etcd-attempt-timeout-ms N      etcd client: timeout of one attempt before trying another member (default 1000)
  --raftauth-attempt-timeout-ms N  raftauth client: timeout of one attempt (default: the request timeout)
  --value-bytes N           bytes of each value (default 64)
  --raftauth-workers N      http.workers of each raftauth node (default 1, as the shipped local config)
  --raftauth-tick-ms N      raft.tickMs of each raftauth node (default: that of the shipped cluster-configs/local-3.yaml)
  --raftauth-writes-in-flight N  raft.maxWritesInFlight of each raftauth node (default: the node's default, 1)
  --dir DIR                 parent of the temp data dirs (default the OS temp dir; must not be tmpfs for fsync to count)
  --keep-temp               keep the temp dirs (logs, data) for a post-mortem
  --out FILE                also write the JSON report to FILE
`;

/**
 * raft.tickMs of the shipped local config (cluster-configs/local-3.yaml), which the benchmark runs
 * raftauth with unless told otherwise: read from the file, so the two cannot drift apart.
 */
export const SHIPPED_TICK_MS: number = shippedTickMs();

function shippedTickMs(): number {
  const file = fileURLToPath(new URL('../../cluster-configs/local-3.yaml', import.meta.url));
  const doc = parse(readFileSync(file, 'utf8')) as { settings?: { raft?: { tickMs?: unknown } } } | null;
  const t = doc?.settings?.raft?.tickMs;
  if (typeof t !== 'number' || !Number.isInteger(t) || t < 1) throw new Error(`${file}: no integer settings.raft.tickMs`);
  return t;
}

export interface BenchArgs {
  readonly seconds: number;
  readonly warmupSeconds: number;
  readonly levels: readonly number[];
  readonly systems: readonly SystemName[];
  readonly failoverConcurrency: number;
  readonly failoverMaxSeconds: number;
  readonly failoverTargetMs: number;
  readonly requestTimeoutMs: number;
  readonly etcdAttemptTimeoutMs: number;
  readonly raftauthAttemptTimeoutMs: number;
  readonly valueBytes: number;
  readonly raftauthWorkers: number;
  readonly raftauthTickMs: number;
  /** raft.maxWritesInFlight of each raftauth node; null: the node's default. */
  readonly raftauthWritesInFlight: number | null;
  readonly dir: string;
  readonly keepTemp: boolean;
  readonly out: string | null;
}

export class UsageError extends Error {}

/** Upper bounds: a typo must not start an hour-long run or 100 000 sockets on a shared machine. */
const MAX_SECONDS = 600;
const MAX_CONCURRENCY = 1024;

function num(name: string, raw: string | undefined, def: number, min: number, max: number): number {
  if (raw === undefined) return def;
  const n = Number(raw);
  if (!Number.isFinite(n) || n < min || n > max) throw new UsageError(`--${name} must be a number from ${min} to ${max} (got ${JSON.stringify(raw)})`);
  return n;
}

function int(name: string, raw: string | undefined, def: number, min: number, max: number): number {
  const n = num(name, raw, def, min, max);
  if (!Number.isInteger(n)) throw new UsageError(`--${name} must be an integer (got ${JSON.stringify(raw)})`);
  return n;
}

export function parseBenchArgs(argv: readonly string[]): BenchArgs {
  let v;
  try {
    v = parseArgs({
      args: [...argv],
      strict: true,
      allowPositionals: false,
      options: {
        seconds: { type: 'string' },
        warmup: { type: 'string' },
        levels: { type: 'string' },
        systems: { type: 'string' },
        'failover-concurrency': { type: 'string' },
        'failover-max-seconds': { type: 'string' },
        'failover-target-ms': { type: 'string' },
        'request-timeout-ms': { type: 'string' },
        'value-bytes': { type: 'string' },
        'etcd-attempt-timeout-ms': { type: 'string' },
        'raftauth-attempt-timeout-ms': { type: 'string' },
        'raftauth-workers': { type: 'string' },
        'raftauth-tick-ms': { type: 'string' },
        'raftauth-writes-in-flight': { type: 'string' },
        dir: { type: 'string' },
        'keep-temp': { type: 'boolean' },
        out: { type: 'string' },
        help: { type: 'boolean' },
      },
    }).values;
  } catch (e) {
    throw new UsageError((e as Error).message);
  }
  if (v.help) throw new UsageError('');
  const levels = (v.levels ?? '1,16,64,256').split(',').map((s) => int('levels', s.trim(), 0, 1, MAX_CONCURRENCY));
  if (new Set(levels).size !== levels.length) throw new UsageError('--levels must not repeat a level');
  const systems = (v.systems ?? 'etcd,raftauth').split(',').map((s) => s.trim());
  for (const s of systems) if (!(SYSTEM_NAMES as readonly string[]).includes(s)) throw new UsageError(`--systems: unknown system ${JSON.stringify(s)} (${SYSTEM_NAMES.join(', ')})`);
  if (new Set(systems).size !== systems.length) throw new UsageError(`--systems must list each system once (${SYSTEM_NAMES.join(', ')})`);
  const requestTimeoutMs = int('request-timeout-ms', v['request-timeout-ms'], 5_000, 10, 60_000);
  return {
    seconds: num('seconds', v.seconds, 10, 0.5, MAX_SECONDS),
    warmupSeconds: num('warmup', v.warmup, 2, 0, MAX_SECONDS),
    levels,
    systems: systems as SystemName[],
    failoverConcurrency: int('failover-concurrency', v['failover-concurrency'], 16, 0, MAX_CONCURRENCY),
    failoverMaxSeconds: num('failover-max-seconds', v['failover-max-seconds'], 15, 1, 120),
    failoverTargetMs: num('failover-target-ms', v['failover-target-ms'], 500, 1, 60_000),
    requestTimeoutMs,
    etcdAttemptTimeoutMs: int('etcd-attempt-timeout-ms', v['etcd-attempt-timeout-ms'], Math.min(1_000, requestTimeoutMs), 10, requestTimeoutMs),
    raftauthAttemptTimeoutMs: int('raftauth-attempt-timeout-ms', v['raftauth-attempt-timeout-ms'], requestTimeoutMs, 10, requestTimeoutMs),
    valueBytes: int('value-bytes', v['value-bytes'], 64, 1, 16 * 1024),
    raftauthWorkers: int('raftauth-workers', v['raftauth-workers'], 1, 0, 8),
    raftauthTickMs: int('raftauth-tick-ms', v['raftauth-tick-ms'], SHIPPED_TICK_MS, 1, 1_000),
    raftauthWritesInFlight: v['raftauth-writes-in-flight'] === undefined ? null : int('raftauth-writes-in-flight', v['raftauth-writes-in-flight'], 8, 1, 1_000),
    dir: v.dir ?? tmpdir(),
    keepTemp: v['keep-temp'] ?? false,
    out: v.out ?? null,
  };
}
