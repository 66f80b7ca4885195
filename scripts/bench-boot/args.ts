// Command line of `npm run bench:boot` (scripts/bench-boot.ts), and the summary of its samples.
import { tmpdir } from 'node:os';
import { parseArgs } from 'node:util';

/** How a node is run: the built dist/ under node, the single binary, or the sources under tsx (the way before dist/). */
export type BootFrom = 'dist' | 'binary' | 'tsx';
export const BOOT_FROM: readonly BootFrom[] = ['dist', 'binary', 'tsx'];

export const USAGE = `usage: npm run bench:boot -- [options]
  --runs N        restarts measured per way of running (default 5; the report gives the median)
  --from LIST     ways of running, comma-separated, in order: dist, binary, tsx (default dist,binary;
                  tsx is the way before dist/: node --import tsx src/main.ts, a "before" figure)
  --workers N     http.workers of every node (default 1, as the shipped local config)
  --dir DIR       parent of the temp dirs (default the OS temp dir)
  --keep-temp     keep the temp dirs (configs, data, node logs) for a post-mortem
  --out FILE      also write the JSON report to FILE
`;

export class UsageError extends Error {}

export interface BootArgs {
  readonly runs: number;
  readonly from: readonly BootFrom[];
  readonly workers: number;
  readonly dir: string;
  readonly keepTemp: boolean;
  readonly out: string | null;
}

/** Most restarts per way of running: each is a kill and a boot, and the run must stay bounded. */
export const MAX_RUNS = 50;
/** Most HTTP workers per node (the node's own limit is higher; more only measures the fork). */
export const MAX_WORKERS = 16;

function int(v: string | undefined, name: string, lo: number, hi: number, dflt: number): number {
  if (v === undefined) return dflt;
  if (!/^[0-9]+$/.test(v) || Number(v) < lo || Number(v) > hi) throw new UsageError(`${name} must be an integer from ${lo} to ${hi}, got ${JSON.stringify(v)}`);
  return Number(v);
}

export function parseBootArgs(argv: readonly string[]): BootArgs {
  let values;
  try {
    ({ values } = parseArgs({
      args: [...argv],
      options: {
        runs: { type: 'string' },
        from: { type: 'string' },
        workers: { type: 'string' },
        dir: { type: 'string' },
        'keep-temp': { type: 'boolean' },
        out: { type: 'string' },
        help: { type: 'boolean' },
      },
      strict: true,
      allowPositionals: false,
    }));
  } catch (e) {
    throw new UsageError((e as Error).message);
  }
  if (values.help) throw new UsageError('');
  const from: BootFrom[] = [];
  for (const w of (values.from ?? 'dist,binary').split(',').map((x) => x.trim())) {
    if (!(BOOT_FROM as readonly string[]).includes(w)) throw new UsageError(`--from: unknown way of running ${JSON.stringify(w)} (dist, binary, tsx)`);
    if (!from.includes(w as BootFrom)) from.push(w as BootFrom);
  }
  return {
    runs: int(values.runs, '--runs', 1, MAX_RUNS, 5),
    from,
    workers: int(values.workers, '--workers', 1, MAX_WORKERS, 1),
    dir: values.dir ?? tmpdir(),
    keepTemp: values['keep-temp'] ?? false,
    out: values.out ?? null,
  };
}

export interface Summary {
  readonly median: number;
  readonly min: number;
  readonly max: number;
  /** Every sample, in the order taken. */
  readonly samples: readonly number[];
}

/** Median (the mean of the two middle samples when their number is even), min and max; null for no samples. */
export function summarize(samples: readonly number[]): Summary | null {
  if (samples.length === 0) return null;
  const s = [...samples].sort((a, b) => a - b);
  const mid = s.length >> 1;
  const median = s.length % 2 === 1 ? s[mid]! : (s[mid - 1]! + s[mid]!) / 2;
  return { median: Math.round(median * 10) / 10, min: s[0]!, max: s[s.length - 1]!, samples: [...samples] };
}
