// `npm run bench:mfa` (issue 6, "Benchmark"): TOTP verifications/s and p50/p99 on a local 3-node
// cluster (each a replicated write, fsync on), and WebAuthn assertion verifications/s. Target:
// TOTP p99 under 20 ms at 100 concurrent users, judged on the users model: 100 users, each
// verifying at a random moment of every 30 s step, open loop (a TOTP user can verify at most once
// per step). Also an open-loop rate sweep (the highest rate whose p99 stays under 20 ms) and the
// closed-loop capacity (requests/s with 100 always in flight). See scripts/bench-mfa/README.md.
//
// Set-up (not measured): a first-party client with require_mfa; --users TOTP users and
// --webauthn-users WebAuthn users created through the admin API, each enrolled through the
// enrollment pages (its first sign-in: password → authenticator app or security key → first code
// or attestation; the WebAuthn keys are test/unit/mfa/soft-authenticator.ts, real ES256
// assertions). Before each level, sign-ins are prepared up to the second-factor page (password
// done). The measured request is the second-factor POST of one prepared sign-in, sent open loop
// by scripts/bench-mfa/open-loop.ts (users model, sweep) or by the closed-loop runner of
// scripts/bench-oauth/load.ts (capacity); success is the authorization response with a code
// (form_post page), anything else is an error.
//
// stdout: one JSON line per measurement (users, sweep rate, capacity level), then one summary JSON
// line (also --out FILE, pretty).
// stderr: progress and a short table. Every process started is killed at the end, also on
// failure, Ctrl-C and when the run outlives its deadline. See scripts/bench-mfa/README.md.
import { randomBytes } from 'node:crypto';
import { writeFileSync } from 'node:fs';
import { loadavg } from 'node:os';
import type { Answer, HttpCall } from './bench/client.ts';
import { cleanupAllSync, setKeepTemp, waitFor } from './bench/procs.ts';
import { machineInfo } from './bench/report.ts';
import { runLoad } from './bench-oauth/load.ts';
import type { RequestSource } from './bench-oauth/load.ts';
import { BENCH_REDIRECT_URI } from './bench-oauth/target.ts';
import { totpStep } from '../src/mfa/totp.ts';
import { Rng } from '../test/sim/rng.ts';
import { parseMfaBenchArgs, USAGE, UsageError } from './bench-mfa/args.ts';
import type { Factor, MfaBenchArgs } from './bench-mfa/args.ts';
import { MfaCluster, RAFT_SETTINGS, killMfaClusterSync } from './bench-mfa/cluster.ts';
import { BENCH_CLIENT_ID, CodePool, SoftAuthenticator, enrollTotp, enrollWebAuthn, inParallel, prepareTotp, prepareWebAuthn, signInPageReady, totpCall, webauthnCall } from './bench-mfa/flows.ts';
import type { TotpUser, WebAuthnUser } from './bench-mfa/flows.ts';
import { refusalReason } from './bench-mfa/pages.ts';
import { StepQueue, byClient, cycle, poissonOffsets, stepsOverlapping, usersArrivals } from './bench-mfa/schedule.ts';
import { runOpenLoop } from './bench-mfa/open-loop.ts';
import { humanTable, summarize } from './bench-mfa/summary.ts';
import type { MfaLevel, SweepRun, UsersRun } from './bench-mfa/summary.ts';

const say = (line: string): void => void process.stderr.write(`[bench:mfa] ${line}\n`);
const load1 = (): number[] => loadavg().map((x) => Math.round(x * 100) / 100);
const seconds = (t0: number): number => Math.round((performance.now() - t0) / 10) / 100;

function emit(o: Record<string, unknown>): void {
  process.stdout.write(`${JSON.stringify(o)}\n`);
}

/** Generous: set-up of thousands of users on a loaded 2-core machine, then each level's preparation. */
function runDeadlineMs(a: MfaBenchArgs): number {
  const setupS = 300 + (a.users + a.webauthnUsers) * 0.2;
  const perLevelS = a.warmupSeconds + a.seconds + a.requestTimeoutMs / 1000 + 120 + a.users * 0.1;
  const capacityS = a.models.includes('capacity') ? a.concurrency.length * a.only.length * perLevelS : 0;
  const sweepS = a.models.includes('sweep') && a.only.includes('totp') ? a.rates.length * perLevelS : 0;
  const usersS = a.models.includes('users') && a.only.includes('totp') ? a.warmupSeconds + a.usersSeconds + a.requestTimeoutMs / 1000 + 120 + a.openUsers * stepsOverlapping((a.warmupSeconds + a.usersSeconds) * 1000, STEP_MS) * 0.1 : 0;
  return Math.ceil((setupS + capacityS + sweepS + usersS) * 1000 * 1.5);
}

/** RFC 6238 X: one TOTP step. */
const STEP_MS = 30_000;

interface Bench {
  readonly a: MfaBenchArgs;
  readonly cluster: MfaCluster;
  readonly password: string;
  readonly totpUsers: TotpUser[];
  readonly webauthnUsers: WebAuthnUser[];
}

const node = (b: Bench, i: number): string => b.cluster.nodeUrls[i % b.cluster.nodeUrls.length]!;

/** Admin API users, then each one's enrollment through the pages; progress every ~20 %. */
async function enroll<U>(b: Bench, what: string, names: readonly string[], make: (name: string, i: number) => Promise<U>): Promise<U[]> {
  const t0 = performance.now();
  let done = 0;
  const step = Math.max(1, Math.ceil(names.length / 5));
  const out = await inParallel(names, b.a.setupConcurrency, async (name, i) => {
    await b.cluster.admin('/admin/v1/users', { username: name, password: b.password });
    const u = await make(name, i);
    if (++done % step === 0) say(`${what}: ${done}/${names.length} enrolled (${seconds(t0)} s)`);
    return u;
  });
  say(`${what}: ${names.length} users enrolled in ${seconds(t0)} s`);
  return out;
}

async function setUp(a: MfaBenchArgs, cluster: MfaCluster): Promise<Bench> {
  await cluster.admin('/admin/v1/clients', {
    client_id: BENCH_CLIENT_ID,
    client_name: 'bench MFA client',
    token_endpoint_auth_method: 'none',
    redirect_uris: [BENCH_REDIRECT_URI],
    grant_types: ['authorization_code'],
    scopes: ['openid'],
    first_party: true,
    require_mfa: true,
  });
  // Every node must serve the sign-in page for the client (OAuth keys bootstrapped, client applied) before any set-up load.
  for (const url of cluster.nodeUrls) await waitFor(`${url} to show the sign-in page`, () => signInPageReady(url), 120_000);
  const b: Bench = { a, cluster, password: randomBytes(18).toString('base64url'), totpUsers: [], webauthnUsers: [] };
  const pad = (i: number): string => String(i).padStart(5, '0');
  if (a.only.includes('totp')) {
    const names = Array.from({ length: a.users }, (_, i) => `bench-totp-${pad(i)}`);
    b.totpUsers.push(
      ...(await enroll(b, 'TOTP', names, async (username, index) => {
        const { secret, step } = await enrollTotp(node(b, index), username, b.password);
        return { index, username, secret, lastStep: step };
      })),
    );
  }
  // WebAuthn is measured by the capacity model only.
  if (a.only.includes('webauthn') && a.models.includes('capacity')) {
    const origin = new URL(cluster.issuer).origin;
    const names = Array.from({ length: a.webauthnUsers }, (_, i) => `bench-webauthn-${pad(i)}`);
    b.webauthnUsers.push(
      ...(await enroll(b, 'WebAuthn', names, async (username, index) => {
        const soft = new SoftAuthenticator(origin, { userVerification: true });
        await enrollWebAuthn(node(b, index), username, b.password, soft);
        return { index, username, soft };
      })),
    );
  }
  return b;
}

/** A source over prepared sign-ins: `pick(c)` gives client c's next call; refusals are tallied by reason. */
function source(pick: (c: number) => HttpCall | null, refusals: Record<string, number>): RequestSource {
  return {
    next: pick,
    answered(_c: number, _call: HttpCall, ans: Answer): void {
      if (ans.status === 200) return;
      const r = refusalReason(ans.status, ans.body);
      refusals[r] = (refusals[r] ?? 0) + 1;
    },
  };
}

async function level(b: Bench, factor: Factor, c: number): Promise<MfaLevel> {
  const { a } = b;
  const n = a.users;
  const t0 = performance.now();
  const refusals: Record<string, number> = {};
  let pick: (client: number) => HttpCall | null;
  if (factor === 'totp') {
    // Users that verified longest ago first: they are the ones usable in the current step.
    const users = [...b.totpUsers].sort((x, y) => (x.lastStep ?? -1) - (y.lastStep ?? -1));
    say(`totp c${c}: preparing ${n} sign-ins (one per user, password done)`);
    const queue = new StepQueue(await inParallel(users, a.setupConcurrency, (u, i) => prepareTotp(node(b, i), u, b.password)));
    pick = () => {
      const step = totpStep(Date.now());
      const p = queue.take(step);
      return p === null ? null : totpCall(p, step);
    };
  } else {
    say(`webauthn c${c}: preparing ${n} sign-ins over ${b.webauthnUsers.length} users (password done, challenge issued)`);
    const prepared = await inParallel(cycle(b.webauthnUsers.length, n), a.setupConcurrency, (u, i) => prepareWebAuthn(node(b, i), b.webauthnUsers[u]!, b.password));
    // One user's sign-ins all on one client: its counter reaches the server in signing order.
    const queues = byClient(prepared, (p) => p.user.index, c);
    const pos = new Array<number>(c).fill(0);
    pick = (client) => {
      const p = queues[client]![pos[client]!++];
      return p === undefined ? null : webauthnCall(p);
    };
  }
  const prepareSeconds = seconds(t0);
  say(`${factor} c${c}: ${n} prepared in ${prepareSeconds} s; ${a.warmupSeconds} s warm-up + ${a.seconds} s`);
  const pool = new CodePool(b.cluster.endpoints, c);
  try {
    const r = await runLoad(pool, source(pick, refusals), c, a.warmupSeconds * 1000, a.seconds * 1000, a.requestTimeoutMs);
    return { factor, ...r, refusals, prepared: n, prepareSeconds };
  } finally {
    pool.close();
  }
}

/** Refusals by reason, from the answers that were not the authorization response. */
function tally(refusals: Record<string, number>): (i: number, ans: Answer) => void {
  return (_i, ans) => {
    if (ans.status === 200) return;
    const r = refusalReason(ans.status, ans.body);
    refusals[r] = (refusals[r] ?? 0) + 1;
  };
}

/**
 * The users model: --open-users users (those that verified longest ago), each sending one
 * verification at a uniformly random moment of every 30 s step of the warm-up and the window, open
 * loop. Each arrival uses the code of the step it was scheduled in (what the phone showed then:
 * the server accepts ±1 step, so a late send is still that user's one code of that step).
 */
async function usersModel(b: Bench, rng: Rng): Promise<UsersRun> {
  const { a } = b;
  const n = a.openUsers;
  const totalMs = (a.warmupSeconds + a.usersSeconds) * 1000;
  const perUser = stepsOverlapping(totalMs, STEP_MS);
  const chosen = [...b.totpUsers].sort((x, y) => (x.lastStep ?? -1) - (y.lastStep ?? -1) || x.index - y.index).slice(0, n);
  const t0 = performance.now();
  say(`users: preparing ${n * perUser} sign-ins (${perUser} per user for ${n} users, password done)`);
  // One user's password logins one after the other: the login flow lets a user have only a couple
  // of password attempts in flight (MAX_PENDING_ATTEMPTS), and more would be refused as throttled.
  const queues = await inParallel(chosen, a.setupConcurrency, async (u, i) => {
    const mine = [];
    for (let k = 0; k < perUser; k++) mine.push(await prepareTotp(node(b, i + k), u, b.password));
    return mine;
  });
  const prepared = queues.flat();
  const prepareSeconds = seconds(t0);
  const start = Date.now();
  // A user who already verified in a step (its enrollment's, say) has no code left for it.
  const arrivals = usersArrivals(n, start, totalMs, STEP_MS, () => rng.float()).filter((x) => {
    const last = chosen[x.user]!.lastStep;
    return last === null || totpStep(x.atMs) > last;
  });
  say(`users: ${n} users, ${arrivals.length} verifications scheduled over ${a.warmupSeconds} s warm-up + ${a.usersSeconds} s (open loop)`);
  const refusals: Record<string, number> = {};
  const pool = new CodePool(b.cluster.endpoints, n * perUser);
  try {
    const r = await runOpenLoop(
      pool,
      arrivals.map((x) => x.atMs - start),
      (i) => {
        const x = arrivals[i]!;
        const p = queues[x.user]!.shift();
        if (p === undefined) return null;
        const step = totpStep(x.atMs);
        p.user.lastStep = step;
        return totpCall(p, step);
      },
      { warmupMs: a.warmupSeconds * 1000, measureMs: a.usersSeconds * 1000, timeoutMs: a.requestTimeoutMs },
      tally(refusals),
    );
    return { ...r, users: n, refusals, prepared: prepared.length, prepareSeconds };
  } finally {
    pool.close();
  }
}

/** One sweep rate: Poisson arrivals at `rate`/s over the warm-up and the window, each taking the next prepared sign-in whose user may verify in that step. */
async function sweepRate(b: Bench, rate: number, rng: Rng): Promise<SweepRun> {
  const { a } = b;
  const totalMs = (a.warmupSeconds + a.seconds) * 1000;
  const offsets = poissonOffsets(rate, totalMs, () => rng.float());
  // A few more than arrivals: users who verified in the current step are kept for the next.
  const n = Math.min(a.users, Math.ceil(offsets.length * 1.1) + 10);
  const users = [...b.totpUsers].sort((x, y) => (x.lastStep ?? -1) - (y.lastStep ?? -1)).slice(0, n);
  const t0 = performance.now();
  say(`sweep ${rate}/s: preparing ${n} sign-ins for ${offsets.length} arrivals`);
  const queue = new StepQueue(await inParallel(users, a.setupConcurrency, (u, i) => prepareTotp(node(b, i), u, b.password)));
  const prepareSeconds = seconds(t0);
  const refusals: Record<string, number> = {};
  // Enough sockets that the client never queues a send behind a busy socket (an open loop has no bound on requests in flight).
  const pool = new CodePool(b.cluster.endpoints, Math.max(64, Math.ceil(rate)));
  const start = Date.now();
  try {
    const r = await runOpenLoop(
      pool,
      offsets,
      (i) => {
        const step = totpStep(start + offsets[i]!);
        const p = queue.take(step);
        return p === null ? null : totpCall(p, step);
      },
      { warmupMs: a.warmupSeconds * 1000, measureMs: a.seconds * 1000, timeoutMs: a.requestTimeoutMs },
      tally(refusals),
    );
    return { ...r, targetRatePerSec: rate, refusals, prepared: n, prepareSeconds };
  } finally {
    pool.close();
  }
}

/** The parsed flags, or the exit code after printing the usage (2 for a bad flag, 0 for --help). */
function argsOrExitCode(argv: readonly string[]): MfaBenchArgs | number {
  try {
    return parseMfaBenchArgs(argv);
  } catch (e) {
    if (!(e instanceof UsageError)) throw e;
    process.stderr.write(e.message === '' ? USAGE : `${e.message}\n${USAGE}`);
    return e.message === '' ? 0 : 2;
  }
}

async function main(): Promise<number> {
  const parsed = argsOrExitCode(process.argv.slice(2));
  if (typeof parsed === 'number') return parsed;
  const a = parsed;
  setKeepTemp(a.keepTemp);
  const startedAt = new Date().toISOString();
  const deadlineMs = runDeadlineMs(a);
  const watchdog = setTimeout(() => bail(`the run outlived its deadline of ${Math.round(deadlineMs / 1000)} s`, 1), deadlineMs).unref();

  const machine = machineInfo(a.dir, null);
  const notes: string[] = [
    `oauth.passwordScryptLn is ${a.scryptLn} on this cluster (shipped default 17): creating users and their password logins are set-up here, not measured`,
    'each measured TOTP request is the POST /mfa/totp of a sign-in already at the TOTP page: the server reads the factor, checks the code, records the outcome through Raft (a replayed step is refused in apply), upgrades the session and issues the authorization code; the replicated writes this costs are those of the code under test (docs/mfa.md "TOTP verification path")',
    'each measured WebAuthn request is the POST /mfa/webauthn of a sign-in already at the WebAuthn page (its challenge issued during preparation): credential read, signature verified, throttle, challenge and counter decided through Raft, session upgrade and code (the writes are those of the code under test)',
    'authorization requests use response_mode=form_post, so success is a 200 page with the code (with query mode it would be a 303 with the same writes)',
    `TOTP replay protection accepts one step per user, so a user verifies at most once per 30 s step: the users model (${a.openUsers} users) sends each user's verification at a uniformly random moment of every step (${(a.openUsers / 30).toFixed(2)} verifications/s offered), open loop (arrivals fixed before the run, independent of the answers), latency from the scheduled send time (no coordinated omission)`,
    `the sweep sends Poisson arrivals at ${a.rates.join(', ')} per second, open loop, each to the next prepared sign-in of a user that has not verified in that step (${a.users} TOTP users); the capacity model is a closed loop with ${a.concurrency.join(', ')} requests always in flight (its latency is queueing at saturation by construction)`,
    `open-loop arrival times are seeded: --seed ${a.seed} repeats them`,
    `WebAuthn: ${a.webauthnUsers} users, one soft-authenticator credential each (test/unit/mfa/soft-authenticator.ts: ES256, user verification, counter +1 per assertion), registered through the HTTP enrollment routes (/mfa/enroll/webauthn, /mfa/enroll/webauthn/finish); all of a user's sign-ins go to one virtual client, so its counter arrives in order`,
    'WebAuthn RP ID and origin are the defaults derived from the issuer (the front proxy, http://localhost:PORT); the measured requests go to the three nodes directly, round robin',
  ];
  if (machine.dataDirFilesystem === 'tmpfs' || machine.dataDirFilesystem === 'ramfs') notes.push(`the data dir is on ${machine.dataDirFilesystem}: fsync costs nothing there (use --dir)`);

  say('starting a 3-node cluster');
  const cluster = await MfaCluster.start(a.dir, a.scryptLn, say);
  const levels: MfaLevel[] = [];
  let users: UsersRun | null = null;
  const sweep: SweepRun[] = [];
  const setupStart = performance.now();
  let setupSeconds: number;
  const rng = new Rng(a.seed);
  const totp = a.only.includes('totp');
  try {
    const b = await setUp(a, cluster);
    setupSeconds = seconds(setupStart);
    // Quietest first: the users model (the target), then the sweep upwards, then saturation.
    if (totp && a.models.includes('users')) {
      users = await usersModel(b, rng);
      emit({ type: 'users', ...users, loadAverage: load1() });
      say(`users: ${users.users} users, ${users.ratePerSec} verifications/s, p50 ${users.latency.p50Ms} ms, p99 ${users.latency.p99Ms} ms, max ${users.latency.maxMs} ms, ${users.errorCount} errors`);
    }
    if (totp && a.models.includes('sweep')) {
      for (const r of a.rates) {
        const l = await sweepRate(b, r, rng);
        sweep.push(l);
        emit({ type: 'sweep', ...l, loadAverage: load1() });
        say(`sweep ${r}/s: ${l.ratePerSec} ok/s, p50 ${l.latency.p50Ms} ms, p99 ${l.latency.p99Ms} ms, ${l.errorCount} errors, at most ${l.maxInFlight} in flight`);
      }
    }
    if (a.models.includes('capacity')) {
      for (const c of a.concurrency) {
        for (const f of a.only) {
          const l = await level(b, f, c);
          levels.push(l);
          emit({ type: 'level', model: 'capacity', ...l, loadAverage: load1() });
          say(`${f} capacity c${c}: ${l.requestsPerSec} verifications/s, p50 ${l.latency.p50Ms} ms, p99 ${l.latency.p99Ms} ms, ${l.errorCount} errors${l.ranDryAtS !== null ? `, ran dry at ${l.ranDryAtS} s` : ''}`);
        }
      }
    }
  } finally {
    say('stopping the cluster');
    await cluster.stop();
  }

  machine.loadAverageAtEnd = load1();
  if (Math.max(machine.loadAverageAtStart[0]!, machine.loadAverageAtEnd[0]!) > machine.cpus * 0.75) {
    notes.push(`the machine was busy (1-min load ${machine.loadAverageAtStart[0]} on ${machine.cpus} cpus at the start, ${machine.loadAverageAtEnd[0]} at the end): the numbers are what this machine gave under that load`);
  }
  const summary = summarize({ users, sweep: totp && a.models.includes('sweep') ? sweep : null, capacity: a.models.includes('capacity') ? levels : null }, a.concurrency);
  const doc = {
    type: 'summary',
    benchmark: 'mfa',
    startedAt,
    finishedAt: new Date().toISOString(),
    args: a,
    machine,
    loadAverage: { atStart: machine.loadAverageAtStart, atEnd: machine.loadAverageAtEnd },
    cluster: {
      nodes: 3,
      launcher: 'scripts/lib/local-cluster.ts (real node processes from dist/ on loopback)',
      raft: RAFT_SETTINGS,
      httpWorkersPerNode: 1,
      fsync: 'on',
      passwordScryptLn: a.scryptLn,
      issuer: `${cluster.issuer} (front proxy; load to the nodes directly)`,
    },
    client: {
      users: 'open loop (scripts/bench-mfa/open-loop.ts): each user sends once at a uniformly random moment of every 30 s step; request i to node i mod 3; no retry',
      sweep: 'open loop: Poisson arrivals at each rate; request i to node i mod 3; no retry',
      capacity: 'runLoad of scripts/bench-oauth/load.ts: closed loop, one request in flight per virtual client, request k of client c to node (c + k) mod 3, no retry',
      success: 'HTTP 200 with the form_post authorization response carrying a code; any other answer is an error (refusals counted by reason in each line, warm-up included)',
      latency: 'successful requests, HdrHistogram-style (scripts/bench/histogram.ts): open loop from the scheduled send time to the last byte; closed loop from send to the last byte',
    },
    setupSeconds,
    users: summary.users,
    sweep: summary.sweep,
    capacity: summary.capacity,
    targets: summary.targets,
    targetNotes: summary.targetNotes,
    usersRun: users,
    sweepRuns: sweep,
    levels,
    notes,
  };
  emit(doc);
  if (a.out !== null) writeFileSync(a.out, `${JSON.stringify(doc, null, 2)}\n`);
  process.stderr.write(humanTable(summary));
  clearTimeout(watchdog);
  return 0;
}

/** Kill every node (process groups) and remove the temp dir. Synchronous, idempotent. */
function stopEverything(): void {
  killMfaClusterSync();
  cleanupAllSync();
}

function bail(why: string, code: number): never {
  say(`${why}: stopping every process`);
  stopEverything();
  process.exit(code);
}

// No node outlives this process, however it ends.
process.on('exit', stopEverything);
process.once('SIGINT', () => bail('SIGINT', 130));
process.once('SIGTERM', () => bail('SIGTERM', 143));

try {
  process.exitCode = await main();
} catch (e) {
  say(`failed: ${(e as Error)?.stack ?? String(e)}`);
  process.exitCode = 1;
} finally {
  stopEverything();
}
