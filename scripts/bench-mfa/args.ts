// Command line of `npm run bench:mfa` (scripts/bench-mfa.ts).
import { randomInt } from 'node:crypto';
import { tmpdir } from 'node:os';
import { parseArgs } from 'node:util';
import { UsageError } from '../bench-oauth/args.ts';

export { UsageError };

export const FACTORS = ['totp', 'webauthn'] as const;
export type Factor = (typeof FACTORS)[number];

/**
 * What is measured (scripts/bench-mfa/README.md): `users` — the users model, N users each
 * verifying at a random moment of every 30 s step (open loop; the target is judged here);
 * `sweep` — open-loop Poisson arrivals at fixed rates (the rate whose p99 stays under 20 ms);
 * `capacity` — a closed loop with `--concurrency` requests always in flight (requests/s at
 * saturation; WebAuthn is measured only this way).
 */
export const MODELS = ['users', 'sweep', 'capacity'] as const;
export type Model = (typeof MODELS)[number];

export const USAGE = `usage: npm run bench:mfa -- [options]
  --models L              what to measure, comma-separated: users,sweep,capacity (default all three)
  --open-users N          users model: N users, each verifying once at a random moment of every 30 s
                          step (open loop), default 100 (the issue's "100 concurrent users")
  --users-seconds N       users model: measured seconds (default 60: about 2 verifications per user)
  --rates L               sweep: open-loop arrival rates per second, comma-separated (default 10,25,50,100,200)
  --seed N                seed of the open-loop arrival times (default random; printed in the summary)
  --seconds N             measured seconds per sweep rate and per capacity level (default 10)
  --warmup N              warm-up seconds before each measured window (default 2)
  --concurrency L         capacity: closed-loop levels (requests always in flight), comma-separated
                          (default 100); the summary reports 100 (or the highest level)
  --users N               TOTP users, enrolled before any measurement (default 3000); each verifies at
                          most once per 30 s step, so N bounds a sweep rate or capacity level (N
                          verifications per level). At least --open-users
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
  readonly models: readonly Model[];
  readonly openUsers: number;
  readonly usersSeconds: number;
  readonly rates: readonly number[];
  readonly seed: number;
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
  'open-users': [1, 10_000],
  'users-seconds': [1, 600],
  rates: [1, 5_000],
  seed: [0, 2 ** 31 - 1],
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
        models: { type: 'string' },
        'open-users': { type: 'string' },
        'users-seconds': { type: 'string' },
        rates: { type: 'string' },
        seed: { type: 'string' },
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
  const models = v.models === undefined ? [...MODELS] : [...new Set(v.models.split(',').map((s) => s.trim()))];
  for (const m of models) if (!(MODELS as readonly string[]).includes(m)) throw new UsageError(`--models: unknown model ${JSON.stringify(m)} (expected ${MODELS.join(', ')})`);
  const rates = [...new Set((v.rates ?? '10,25,50,100,200').split(',').map((s) => int('rates', s, 0)))].sort((a, b) => a - b);
  const openUsers = int('open-users', v['open-users'], 100);
  const users = int('users', v.users, 3000);
  // The users model's users are taken from the enrolled ones.
  if (only.includes('totp') && models.includes('users') && users < openUsers) throw new UsageError(`--users (${users}) must be at least --open-users (${openUsers})`);
  const webauthnUsers = int('webauthn-users', v['webauthn-users'], 200);
  // One user is driven by one virtual client (its signature counter must grow in the order sent),
  // so fewer users than clients would leave clients idle and the level below its concurrency.
  if (models.includes('capacity') && only.includes('webauthn') && webauthnUsers < maxC) throw new UsageError(`--webauthn-users (${webauthnUsers}) must be at least the highest concurrency (${maxC})`);
  // Every client needs a prepared interaction at the start of the level.
  if (models.includes('capacity') && only.includes('totp') && users < maxC) throw new UsageError(`--users (${users}) must be at least the highest concurrency (${maxC})`);
  if (v.out !== undefined && v.out.trim() === '') throw new UsageError('--out must name a file');
  return {
    models: MODELS.filter((m) => models.includes(m)),
    openUsers,
    usersSeconds: int('users-seconds', v['users-seconds'], 60),
    rates,
    seed: int('seed', v.seed, randomInt(2 ** 31 - 1)),
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
