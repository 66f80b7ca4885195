// Command line of `npm run bench:oauth` (scripts/bench-oauth.ts).
import { tmpdir } from 'node:os';
import { parseArgs } from 'node:util';

export const SYSTEMS = ['raftauth', 'oidc', 'ceiling', 'etcd'] as const;
export type SystemKey = (typeof SYSTEMS)[number];

export const USAGE = `usage: npm run bench:oauth -- [options]
  --seconds N            measured seconds per grant and concurrency (default 10)
  --warmup N             warm-up seconds before each measured window (default 2)
  --concurrency L        concurrency levels, comma-separated (default 1,16,64)
  --rounds N             client_credentials: slices each system's measured time is cut into, the systems
                         taking turns (default 5; 1 = each system's level in one piece)
  --only S               systems to run, comma-separated, in this order: raftauth,oidc,ceiling,etcd (default all)
  --workers N            http.workers of each raftauth node (default 1, as cluster-configs/local-3.yaml);
                         the ceiling runs 3 x max(N, 1) worker processes (raftauth's HTTP processes in total)
  --request-timeout-ms N deadline of one request (default 10000); a request past it is an error
  --etcd-value-bytes N   bytes of each etcd value (default 64, as bench:replication)
  --dir DIR              parent of the temp data dirs (default the OS temp dir; not tmpfs, for fsync to count)
  --keep-temp            keep the temp dirs (node logs, data) for a post-mortem
  --out FILE             also write the summary JSON to FILE
`;

export interface OAuthBenchArgs {
  readonly seconds: number;
  readonly warmupSeconds: number;
  readonly concurrency: readonly number[];
  readonly only: readonly SystemKey[];
  readonly rounds: number;
  readonly workers: number;
  readonly requestTimeoutMs: number;
  readonly etcdValueBytes: number;
  readonly dir: string;
  readonly keepTemp: boolean;
  readonly out: string | null;
}

export class UsageError extends Error {}

/** Upper bounds: a typo must not start an hour-long run or thousands of sockets on a shared machine. */
const MAX_SECONDS = 600;
const MAX_CONCURRENCY = 1024;
const MAX_WORKERS = 8;

function num(name: string, raw: string | undefined, def: number, min: number, max: number, integer: boolean): number {
  if (raw === undefined) return def;
  const n = Number(raw.trim());
  if (raw.trim() === '' || !Number.isFinite(n) || n < min || n > max) throw new UsageError(`--${name} must be a number from ${min} to ${max} (got ${JSON.stringify(raw)})`);
  if (integer && !Number.isInteger(n)) throw new UsageError(`--${name} must be an integer (got ${JSON.stringify(raw)})`);
  return n;
}

/** Parse argv (without node and the script). Throws UsageError (message '' for --help). */
export function parseOAuthBenchArgs(argv: readonly string[]): OAuthBenchArgs {
  let v;
  try {
    v = parseArgs({
      args: [...argv],
      strict: true,
      allowPositionals: false,
      options: {
        seconds: { type: 'string' },
        warmup: { type: 'string' },
        concurrency: { type: 'string' },
        only: { type: 'string' },
        rounds: { type: 'string' },
        workers: { type: 'string' },
        'request-timeout-ms': { type: 'string' },
        'etcd-value-bytes': { type: 'string' },
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
  const concurrency = (v.concurrency ?? '1,16,64').split(',').map((s) => num('concurrency', s, 0, 1, MAX_CONCURRENCY, true));
  if (new Set(concurrency).size !== concurrency.length) throw new UsageError('--concurrency must not repeat a level');
  const onlyRaw = (v.only ?? SYSTEMS.join(',')).split(',').map((s) => s.trim());
  for (const s of onlyRaw) if (!(SYSTEMS as readonly string[]).includes(s)) throw new UsageError(`--only: unknown system ${JSON.stringify(s)} (${SYSTEMS.join(', ')})`);
  if (new Set(onlyRaw).size !== onlyRaw.length) throw new UsageError('--only must not repeat a system');
  // Always in the canonical order: raftauth first, so the etcd comparison and the ratios read the same way in every run.
  const only = SYSTEMS.filter((s) => onlyRaw.includes(s));
  return {
    seconds: num('seconds', v.seconds, 10, 0.5, MAX_SECONDS, false),
    warmupSeconds: num('warmup', v.warmup, 2, 0, MAX_SECONDS, false),
    concurrency,
    only,
    rounds: num('rounds', v.rounds, 5, 1, 100, true),
    workers: num('workers', v.workers, 1, 0, MAX_WORKERS, true),
    requestTimeoutMs: num('request-timeout-ms', v['request-timeout-ms'], 10_000, 100, 120_000, true),
    etcdValueBytes: num('etcd-value-bytes', v['etcd-value-bytes'], 64, 1, 16 * 1024, true),
    dir: v.dir ?? tmpdir(),
    keepTemp: v['keep-temp'] ?? false,
    out: v.out ?? null,
  };
}
