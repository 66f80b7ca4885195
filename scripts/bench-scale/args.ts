// Command line of `npm run bench:scale` (scripts/bench-scale.ts). Every limit is explicit; a bad
// value is refused with a message naming the option and what it accepts.
import { tmpdir } from 'node:os';

export class UsageError extends Error {
  constructor(message: string) {
    super(message);
    this.name = 'UsageError';
  }
}

export const PHASES = ['learner', 'follower', 'sweep'] as const;
export type Phase = (typeof PHASES)[number];

export interface ScaleArgs {
  /** State sizes in records (fill-records.ts RECORDS_PER_UNIT), ascending. */
  readonly sizes: readonly number[];
  /** Length of the sustained-write measurement at each size. */
  readonly measureSeconds: number;
  /** Writes in flight during the measurement. */
  readonly concurrency: number;
  /** Units (chains of writes) in flight while filling. */
  readonly fillConcurrency: number;
  /** Log entries a stopped follower falls behind before its restart (the leader's commit index moves on by as many). */
  readonly behindEntries: number;
  /** Chains of writes in flight while the follower is down (fewer: fewer commands per entry, more entries per write). */
  readonly behindConcurrency: number;
  /** Expiring records written for the sweep measurement. */
  readonly sweepRecords: number;
  /** Phases left out. */
  readonly skip: readonly Phase[];
  /** Deadline of each phase (the fill of one size, the measurement, a catch-up, the sweep). */
  readonly phaseTimeoutSeconds: number;
  /** HTTP workers per node. */
  readonly workers: number;
  /** Parent of the run's temp dir (the nodes' data dirs). */
  readonly dir: string;
  readonly out: string | null;
  readonly keepTemp: boolean;
}

export const DEFAULTS: ScaleArgs = {
  sizes: [10_000, 100_000, 1_000_000],
  measureSeconds: 30,
  concurrency: 64,
  fillConcurrency: 128,
  behindEntries: 50_000,
  behindConcurrency: 8,
  sweepRecords: 100_000,
  skip: [],
  phaseTimeoutSeconds: 3_600,
  workers: 1,
  dir: tmpdir(),
  out: null,
  keepTemp: false,
};

export const LIMITS = {
  maxSizes: 10,
  size: [100, 50_000_000],
  measureSeconds: [1, 3_600],
  concurrency: [1, 1_024],
  fillConcurrency: [1, 4_096],
  behindEntries: [100, 5_000_000],
  behindConcurrency: [1, 4_096],
  sweepRecords: [100, 5_000_000],
  phaseTimeoutSeconds: [10, 86_400],
  workers: [0, 16],
} as const;

export const USAGE = `usage: npm run bench:scale -- [options]
  --sizes LIST              state sizes in records, ascending, comma-separated (default 10000,100000,1000000; each ${LIMITS.size[0]}..${LIMITS.size[1]}, at most ${LIMITS.maxSizes})
  --measure-seconds N       sustained writes measured at each size (default 30; ${LIMITS.measureSeconds[0]}..${LIMITS.measureSeconds[1]})
  --concurrency N           writes in flight while measuring (default 64; ${LIMITS.concurrency[0]}..${LIMITS.concurrency[1]})
  --fill-concurrency N      record chains in flight while filling (default 128; ${LIMITS.fillConcurrency[0]}..${LIMITS.fillConcurrency[1]})
  --behind N                log entries a stopped follower falls behind before its restart (default 50000; ${LIMITS.behindEntries[0]}..${LIMITS.behindEntries[1]})
  --behind-concurrency N    write chains in flight meanwhile (default 8; ${LIMITS.behindConcurrency[0]}..${LIMITS.behindConcurrency[1]}): the leader batches concurrent writes into one entry
  --sweep-records N         expired records the leader's sweep must delete (default 100000; ${LIMITS.sweepRecords[0]}..${LIMITS.sweepRecords[1]})
  --skip LIST               leave phases out: ${PHASES.join(', ')} (comma-separated)
  --phase-timeout-seconds N deadline of each phase; a phase over it fails the run (default 3600; ${LIMITS.phaseTimeoutSeconds[0]}..${LIMITS.phaseTimeoutSeconds[1]})
  --workers N               HTTP workers per node (default 1, as cluster-configs/local-3.yaml; ${LIMITS.workers[0]}..${LIMITS.workers[1]})
  --dir DIR                 parent of the run's temp dir (default the OS temp dir; use a disk, not tmpfs, for fsync to cost what it costs)
  --out FILE                also write the JSON report to FILE
  --keep-temp               keep the temp dir (node logs, data) after the run
  --help
`;

function int(name: string, v: string | undefined, [lo, hi]: readonly [number, number]): number {
  if (v === undefined) throw new UsageError(`${name} needs a value`);
  if (!/^[0-9]+$/.test(v)) throw new UsageError(`${name} must be a whole number from ${lo} to ${hi}, got ${JSON.stringify(v)}`);
  const n = Number(v);
  if (!Number.isSafeInteger(n) || n < lo || n > hi) throw new UsageError(`${name} must be from ${lo} to ${hi}, got ${v}`);
  return n;
}

export function parseSizes(v: string | undefined): number[] {
  if (v === undefined || v.trim() === '') throw new UsageError('--sizes needs a comma-separated list of record counts');
  const parts = v.split(',').map((s) => s.trim());
  if (parts.length > LIMITS.maxSizes) throw new UsageError(`--sizes lists at most ${LIMITS.maxSizes} sizes, got ${parts.length}`);
  const sizes = parts.map((p) => int('--sizes', p, LIMITS.size));
  for (let i = 1; i < sizes.length; i++) if (sizes[i]! <= sizes[i - 1]!) throw new UsageError(`--sizes must be strictly ascending (the state only grows), got ${v}`);
  return sizes;
}

export function parseSkip(v: string | undefined): Phase[] {
  if (v === undefined || v.trim() === '') throw new UsageError(`--skip needs a list of phases: ${PHASES.join(', ')}`);
  const out: Phase[] = [];
  for (const p of v.split(',').map((s) => s.trim())) {
    if (!(PHASES as readonly string[]).includes(p)) throw new UsageError(`--skip: unknown phase ${JSON.stringify(p)}; the phases are ${PHASES.join(', ')}`);
    if (!out.includes(p as Phase)) out.push(p as Phase);
  }
  return out;
}

/** Parse argv (without node and script). Throws UsageError (message '' for --help). */
export function parseScaleArgs(argv: readonly string[]): ScaleArgs {
  const a: { -readonly [K in keyof ScaleArgs]: ScaleArgs[K] } = { ...DEFAULTS };
  for (let i = 0; i < argv.length; i++) {
    const flag = argv[i]!;
    const value = (): string | undefined => {
      const v = argv[i + 1];
      if (v === undefined || v.startsWith('--')) return undefined;
      i++;
      return v;
    };
    switch (flag) {
      case '--sizes':
        a.sizes = parseSizes(value());
        break;
      case '--measure-seconds':
        a.measureSeconds = int(flag, value(), LIMITS.measureSeconds);
        break;
      case '--concurrency':
        a.concurrency = int(flag, value(), LIMITS.concurrency);
        break;
      case '--fill-concurrency':
        a.fillConcurrency = int(flag, value(), LIMITS.fillConcurrency);
        break;
      case '--behind':
        a.behindEntries = int(flag, value(), LIMITS.behindEntries);
        break;
      case '--behind-concurrency':
        a.behindConcurrency = int(flag, value(), LIMITS.behindConcurrency);
        break;
      case '--sweep-records':
        a.sweepRecords = int(flag, value(), LIMITS.sweepRecords);
        break;
      case '--skip':
        a.skip = parseSkip(value());
        break;
      case '--phase-timeout-seconds':
        a.phaseTimeoutSeconds = int(flag, value(), LIMITS.phaseTimeoutSeconds);
        break;
      case '--workers':
        a.workers = int(flag, value(), LIMITS.workers);
        break;
      case '--dir': {
        const v = value();
        if (v === undefined || v === '') throw new UsageError('--dir needs a directory');
        a.dir = v;
        break;
      }
      case '--out': {
        const v = value();
        if (v === undefined || v === '') throw new UsageError('--out needs a file name');
        a.out = v;
        break;
      }
      case '--keep-temp':
        a.keepTemp = true;
        break;
      case '--help':
      case '-h':
        throw new UsageError('');
      default:
        throw new UsageError(`unknown option ${JSON.stringify(flag)}`);
    }
  }
  return a;
}
