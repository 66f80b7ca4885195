// Command line of `npm run bench:mfa` (scripts/bench-mfa.ts).
import { tmpdir } from 'node:os';
import { parseArgs } from 'node:util';
import { UsageError } from '../bench-oauth/args.ts';

export { UsageError };

export const FACTORS = ['totp', 'webauthn'] as const;
export type Factor = (typeof FACTORS)[number];

export const USAGE = `usage: npm run bench:mfa -- [options]
  --seconds N             measured seconds per factor and concurrency (default 10)
  --warmup N              warm-up seconds before each measured window (default 2)
  --concurrency L         concurrency levels, comma-separated (default 100); the summary reports 100
                          (or the highest level when 100 is not among them)
  --users N               TOTP users, enrolled before any measurement (default 3000); each verifies at
                          most once per 30 s step, so N bounds the TOTP rate (N per level, N / 30 per
                          second across steps). Also the number of interactions prepared per level and factor
  --webauthn-users N      WebAuthn users, each with one soft-authenticator credential (default 200; at
                          least the highest concurrency: one user is driven by one virtual client)
  --only F                factors to measure, comma-separated: totp,webauthn (default both)
  --scrypt-ln N           oauth.passwordScryptLn of the benchmark's cluster (default 10: user creation
                          and logins are set-up, not measured; the shipped default is 17)
  --setup-concurrency N   requests in flight during set-up (default 32)
  --request-timeout-ms N  deadline of one measured request (default 10000); past it, an error
  --dir DIR               parent of the temp data dir (default the OS temp dir; not tmpfs, for fsync to count)
  --keep-temp             keep the temp dir (node logs, data) for a post-mortem
  --out FILE              also write the summary JSON to FILE
`;

export interface MfaBenchArgs {
  readonly seconds: number;
  readonly warmupSeconds: number;
  readonly concurrency: readonly number[];
  readonly users: number;
  readonly webauthnUsers: number;
  readonly only: readonly Factor[];
  readonly scryptLn: number;
  readonly setupConcurrency: number;
  readonly requestTimeoutMs: number;
  readonly dir: string;
  readonly keepTemp: boolean;
  readonly out: string | null;
}

/** Bounds: a typo must not start an hour-long run, or enroll a million users, on a shared machine. */
const LIMITS = {
  seconds: [1, 600],
  warmup: [0, 120],
  concurrency: [1, 1024],
  users: [1, 50_000],
  'webauthn-users': [1, 10_000],
  // src/server/config.ts oauth.passwordScryptLn accepts 10..20.
  'scrypt-ln': [10, 20],
  'setup-concurrency': [1, 256],
  'request-timeout-ms': [100, 120_000],
} as const satisfies Record<string, readonly [number, number]>;

function int(name: keyof typeof LIMITS, raw: string | undefined, def: number): number {
  if (raw === undefined) return def;
  const [min, max] = LIMITS[name];
  const s = raw.trim();
  const n = /^[0-9]+$/.test(s) ? Number(s) : NaN;
  if (!(n >= min && n <= max)) throw new UsageError(`--${name} must be an integer from ${min} to ${max} (got ${JSON.stringify(raw)})`);
  return n;
}

/** Parse argv (without node and the script). Throws UsageError (message '' for --help). */
export function parseMfaBenchArgs(argv: readonly string[]): MfaBenchArgs {
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
        users: { type: 'string' },
        'webauthn-users': { type: 'string' },
        only: { type: 'string' },
        'scrypt-ln': { type: 'string' },
        'setup-concurrency': { type: 'string' },
        'request-timeout-ms': { type: 'string' },
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
  const concurrency = [...new Set((v.concurrency ?? '100').split(',').map((s) => int('concurrency', s, 0)))].sort((a, b) => a - b);
  const only = v.only === undefined ? [...FACTORS] : [...new Set(v.only.split(',').map((s) => s.trim()))];
  for (const f of only) if (!(FACTORS as readonly string[]).includes(f)) throw new UsageError(`--only: unknown factor ${JSON.stringify(f)} (expected ${FACTORS.join(', ')})`);
  const maxC = concurrency[concurrency.length - 1]!;
  const users = int('users', v.users, 3000);
  const webauthnUsers = int('webauthn-users', v['webauthn-users'], 200);
  // One user is driven by one virtual client (its signature counter must grow in the order sent),
  // so fewer users than clients would leave clients idle and the level below its concurrency.
  if (only.includes('webauthn') && webauthnUsers < maxC) throw new UsageError(`--webauthn-users (${webauthnUsers}) must be at least the highest concurrency (${maxC})`);
  // Every client needs a prepared interaction at the start of the level.
  if (only.includes('totp') && users < maxC) throw new UsageError(`--users (${users}) must be at least the highest concurrency (${maxC})`);
  if (v.out !== undefined && v.out.trim() === '') throw new UsageError('--out must name a file');
  return {
    seconds: int('seconds', v.seconds, 10),
    warmupSeconds: int('warmup', v.warmup, 2),
    concurrency,
    users,
    webauthnUsers,
    only: FACTORS.filter((f) => only.includes(f)),
    scryptLn: int('scrypt-ln', v['scrypt-ln'], 10),
    setupConcurrency: int('setup-concurrency', v['setup-concurrency'], 32),
    requestTimeoutMs: int('request-timeout-ms', v['request-timeout-ms'], 10_000),
    dir: v.dir ?? tmpdir(),
    keepTemp: v['keep-temp'] === true,
    out: v.out ?? null,
  };
}
