// `npm run bench:oauth` (issue 5): requests/s and p50/p99 of raftauth's token endpoint for
// client_credentials, refresh_token and authorization_code on a local 3-node cluster (fsync on),
// side by side in the same run with oidc-provider (one process, in-memory adapter, ES256 JWT access
// tokens) doing the same grants, with a ceiling (a bare node:http server on as many worker
// processes as raftauth has HTTP processes, that checks a Basic secret and signs an ES256 JWT), and
// with etcd's put rate at the same concurrency (scripts/bench's etcd runner) for the refresh
// comparison. Every system is started first; then at each concurrency they are measured back to
// back, one at a time (see measure()), so that on a shared machine the systems compared at one
// concurrency see the same conditions.
//
// stdout: one JSON line per measured level, then one summary JSON line (also --out FILE, pretty).
// stderr: progress and a short table. Every process started is killed at the end, also on failure,
// Ctrl-C and when the run outlives its deadline. See scripts/bench-oauth/README.md.
import { randomBytes } from 'node:crypto';
import { writeFileSync } from 'node:fs';
import { loadavg } from 'node:os';
import { EtcdCluster, ensureEtcd } from './bench/etcd.ts';
import { cleanupAllSync, runBenchmark, setKeepTemp } from './bench/procs.ts';
import { machineInfo } from './bench/report.ts';
import { runLevel } from './bench/workload.ts';
import { parseOAuthBenchArgs, USAGE, UsageError } from './bench-oauth/args.ts';
import type { OAuthBenchArgs } from './bench-oauth/args.ts';
import { CeilingServer, OidcProviderServer } from './bench-oauth/children.ts';
import { benchClientCredentialsRounds, benchCodeExchange, benchRefresh, codesNeeded, makeFamilies, MAX_CODES, sampleResponse, SETUP_CONCURRENCY } from './bench-oauth/grants.ts';
import type { LevelTiming } from './bench-oauth/grants.ts';
import type { LoadResult } from './bench-oauth/load.ts';
import { RaftauthServer, killAllRaftauthSync } from './bench-oauth/raftauth.ts';
import { humanTable, levelOf, summarize } from './bench-oauth/summary.ts';
import type { EtcdLevel, Grant, OAuthSystem, Results } from './bench-oauth/summary.ts';
import { clientCredentialsCall } from './bench-oauth/target.ts';
import type { TokenServer } from './bench-oauth/target.ts';

/** Refresh-token families kept beyond the largest level, to replace any that gets revoked. */
const SPARE_FAMILIES = 8;
/** Start, set-up and stop of one system on a loaded 2-core machine (and dist/ built first when stale). */
const SYSTEM_ALLOWANCE_S = 180;

const say = (line: string): void => void process.stderr.write(`[bench:oauth] ${line}\n`);
const load1 = () => loadavg().map((x) => Math.round(x * 100) / 100);

function emit(o: Record<string, unknown>): void {
  process.stdout.write(`${JSON.stringify(o)}\n`);
}

function runDeadlineMs(a: OAuthBenchArgs): number {
  const level = a.warmupSeconds + a.seconds + a.requestTimeoutMs / 1000 + 5;
  // Worst case per level of the code grant: minting takes about as long as the level.
  const perSystem = SYSTEM_ALLOWANCE_S + a.concurrency.length * level * 4;
  return Math.ceil((a.only.length * perSystem * 1.5 + 60) * 1000);
}

/** What the phases share: the measured results, the report's per-system info, the level timing. */
interface Run {
  readonly a: OAuthBenchArgs;
  readonly t: LevelTiming;
  readonly results: Results;
  readonly systems: Partial<Record<OAuthSystem | 'etcd', Record<string, unknown>>>;
}

function record(run: Run, s: TokenServer, grant: Grant, r: LoadResult & { readonly familiesLost?: number; readonly attempt?: number; readonly slices?: number }): void {
  ((run.results[s.system] ??= {})[grant] ??= []).push(r);
  emit({ type: 'level', system: s.system, grant, ...r, loadAverage: load1() });
  const extra = (r.familiesLost !== undefined ? `, ${r.familiesLost} families lost` : '') + (r.ranDryAtS !== null ? `, the codes ran out at ${r.ranDryAtS} s` : '');
  say(`${s.system} ${grant} c${r.concurrency}: ${r.requestsPerSec} req/s, p50 ${r.latency.p50Ms} ms, p99 ${r.latency.p99Ms} ms, ${r.errorCount} errors${extra}`);
}

/**
 * One authorization_code level: codes minted (sized on this run's refresh rate at the same
 * concurrency — an exchange is a read and a write, like a rotation — twice over, since on a shared
 * machine the rate moves; minting costs a replicated write per code on raftauth, so not more), then
 * exchanged. A level whose codes ran out before half its window is run again with 4x as many.
 */
async function codeLevel(run: Run, s: TokenServer, c: number): Promise<void> {
  const expected = Math.max(levelOf(run.results, s.system, 'refresh_token', c)?.requestsPerSec ?? 0, 50);
  let n = codesNeeded(expected * 2, run.t.warmupMs, run.t.measureMs, c);
  for (let attempt = 1; ; attempt++) {
    say(`${s.system}: minting ${n} authorization codes for concurrency ${c}`);
    const t0 = performance.now();
    const codes = await s.mintCodes(n, SETUP_CONCURRENCY);
    const mintSeconds = Math.round((performance.now() - t0) / 10) / 100;
    say(`${s.system}: authorization_code at concurrency ${c} (${n} codes minted in ${mintSeconds} s)`);
    const r = await benchCodeExchange(s, codes, c, run.t, mintSeconds);
    if (attempt === 1 && r.ranDryAtS !== null && r.ranDryAtS < run.a.seconds / 2 && n < MAX_CODES) {
      say(`${s.system}: the codes ran out ${r.ranDryAtS} s into the window: again with more`);
      n = Math.min(MAX_CODES, n * 4);
      continue;
    }
    record(run, s, 'authorization_code', { ...r, attempt });
    return;
  }
}

/**
 * The measurement, interleaved: every system is started first (idle, they cost next to nothing),
 * then at each concurrency the systems run one after the other, back to back (never two under load
 * at once). On a machine shared with other work, the systems compared at one concurrency then see
 * the same conditions, which running each system's whole series in turn would not give.
 */
async function measure(run: Run, servers: readonly TokenServer[], etcd: EtcdCluster | null, etcdValue: string): Promise<EtcdLevel[] | null> {
  const { a, t } = run;
  for (const s of servers) {
    const info = run.systems[s.system]!;
    info.sampleResponses = { client_credentials: await sampleResponse(s, clientCredentialsCall(s.ccAuthorization), a.requestTimeoutMs) };
  }
  for (const c of a.concurrency) {
    if (servers.length === 0) break;
    say(`client_credentials at concurrency ${c}: ${servers.map((s) => s.system).join(', ')}, each ${a.warmupSeconds} s warm-up + ${a.seconds} s in ${a.rounds} interleaved slices`);
    const rs = await benchClientCredentialsRounds(servers, c, t, a.rounds);
    rs.forEach((r, i) => record(run, servers[i]!, 'client_credentials', { ...r, slices: a.rounds }));
  }
  const web = servers.filter((s) => s.webAuthorization !== null);
  const families = new Map<TokenServer, (string | null)[]>();
  const maxC = Math.max(...a.concurrency);
  for (const s of web) {
    say(`${s.system}: minting and exchanging ${maxC + SPARE_FAMILIES} codes for the refresh-token families`);
    families.set(s, await makeFamilies(s, maxC + SPARE_FAMILIES, a.requestTimeoutMs));
  }
  const etcdLevels: EtcdLevel[] | null = etcd ? [] : null;
  for (const c of a.concurrency) {
    for (const s of web) {
      say(`${s.system}: refresh_token at concurrency ${c} (one family per client)`);
      record(run, s, 'refresh_token', await benchRefresh(s, families.get(s)!, c, t));
    }
    if (etcd) {
      say(`etcd: puts at concurrency ${c}, ${a.warmupSeconds} s warm-up + ${a.seconds} s`);
      const r = await runLevel(etcd, c, t.warmupMs, t.measureMs, { requestTimeoutMs: a.requestTimeoutMs, value: etcdValue });
      const l: EtcdLevel = { concurrency: c, writesPerSec: r.writesPerSec, p50Ms: r.latency.p50Ms, p99Ms: r.latency.p99Ms, failedRequests: r.failedRequests };
      etcdLevels!.push(l);
      emit({ type: 'level', system: 'etcd', grant: 'put', ...r, loadAverage: load1() });
      say(`etcd put c${c}: ${l.writesPerSec} writes/s, p50 ${l.p50Ms} ms, p99 ${l.p99Ms} ms, ${l.failedRequests} failed`);
    }
  }
  for (const c of a.concurrency) for (const s of web) await codeLevel(run, s, c);
  return etcdLevels;
}

async function main(): Promise<number> {
  let a: OAuthBenchArgs;
  try {
    a = parseOAuthBenchArgs(process.argv.slice(2));
  } catch (e) {
    if (!(e instanceof UsageError)) throw e;
    process.stderr.write(`${e.message ? `${e.message}\n` : ''}${USAGE}`);
    return e.message ? 2 : 0;
  }
  setKeepTemp(a.keepTemp);
  const startedAt = new Date().toISOString();
  const notes: string[] = [];
  let etcd: { bin: string; version: string; installedNow: boolean } | null = null;
  if (a.only.includes('etcd')) {
    etcd = ensureEtcd(say);
    if (etcd.installedNow) notes.push(`etcd was not on PATH: this run installed the Debian packages etcd-server and etcd-client (${etcd.version})`);
  }
  const deadlineMs = runDeadlineMs(a);
  const watchdog = setTimeout(() => {
    say(`the run outlived its deadline of ${Math.round(deadlineMs / 1000)} s: stopping every process`);
    cleanupEverything();
    process.exit(1);
  }, deadlineMs);
  watchdog.unref();

  const machine = machineInfo(a.dir, etcd?.version ?? null);
  if (machine.dataDirFilesystem === 'tmpfs' || machine.dataDirFilesystem === 'ramfs') {
    notes.push(`the data dirs are on ${machine.dataDirFilesystem}: fsync costs nothing there (use --dir)`);
  }
  const results: Results = {};
  const systems: Run['systems'] = {};
  const run: Run = { a, t: { warmupMs: a.warmupSeconds * 1000, measureMs: a.seconds * 1000, requestTimeoutMs: a.requestTimeoutMs }, results, systems };
  const ceilingWorkers = 3 * Math.max(1, a.workers);
  const servers: TokenServer[] = [];
  let etcdSut: EtcdCluster | null = null;
  let etcdLevels: EtcdLevel[] | null;
  try {
    for (const key of a.only) {
      say(`${key}: starting`);
      let info: Record<string, unknown>;
      if (key === 'etcd') {
        etcdSut = await EtcdCluster.start(etcd!.bin, etcd!.version, a.dir, 1_000);
        info = systems.etcd = { version: etcd!.version, settings: etcdSut.settings, valueBytes: a.etcdValueBytes, runner: 'scripts/bench/etcd.ts + runLevel of scripts/bench/workload.ts (the bench:replication workload)' };
      } else {
        const s: TokenServer =
          key === 'raftauth' ? await RaftauthServer.start(a.dir, a.workers, say) : key === 'oidc' ? await OidcProviderServer.start(a.dir) : await CeilingServer.start(a.dir, ceilingWorkers);
        servers.push(s);
        info = systems[s.system] = { version: s.version, settings: s.settings };
      }
      info.loadAverageAtStart = load1();
    }
    const value = randomBytes(a.etcdValueBytes).toString('base64url').slice(0, a.etcdValueBytes);
    etcdLevels = await measure(run, servers, etcdSut, value);
  } finally {
    for (const s of servers) {
      say(`${s.system}: stopping`);
      await s.stop();
    }
    if (etcdSut) {
      say('etcd: stopping');
      await etcdSut.stop();
    }
  }
  if (etcd === null && a.only.includes('raftauth')) notes.push('etcd was not run (--only): the refresh_token target is not judged');

  machine.loadAverageAtEnd = load1();
  if (Math.max(machine.loadAverageAtStart[0]!, machine.loadAverageAtEnd[0]!) > machine.cpus * 0.75) {
    notes.push(`the machine was busy (1-min load ${machine.loadAverageAtStart[0]} on ${machine.cpus} cpus at the start, ${machine.loadAverageAtEnd[0]} at the end): compare ratios within this run, not absolute numbers`);
  }
  const summary = summarize(results, etcdLevels, a.concurrency);
  const doc = {
    type: 'summary',
    benchmark: 'oauth',
    startedAt,
    finishedAt: new Date().toISOString(),
    args: a,
    machine,
    client: {
      http: 'node:http, one keep-alive Agent per endpoint (scripts/bench/client.ts), one request in flight per virtual client (closed loop)',
      spread: 'raftauth: the k-th request of client c goes to node (c + k) mod 3, directly (not through the front proxy); oidc-provider and the ceiling have one address',
      schedule: `every system started first (idle while the others run); at each concurrency: client_credentials on raftauth, oidc-provider and the ceiling, each warmed up, then each one's measured time cut into ${a.rounds} slices taken in turn (order rotating each round); then refresh_token on raftauth, oidc-provider and etcd puts back to back; then authorization_code (codes minted right before each level). Never two systems under load at once`,
      errors: 'one attempt per request, no retry; any answer but 200 is an error, counted by status and OAuth error code',
      latency: 'successful requests only, from send to the last byte of the answer; HdrHistogram-style, 3 significant digits',
      grants: {
        client_credentials: 'client_secret_basic, scope api:read',
        refresh_token: `each client rotates its own family (from the code flow, scope "openid offline_access api:read"); ${SPARE_FAMILIES} spare families replace revoked ones`,
        authorization_code: 'codes minted before each level (raftauth: GET /authorize with a login session; oidc-provider: through its models), exchanged with client_secret_basic and a PKCE S256 verifier; scope "openid offline_access api:read" (access token + ID token + a new refresh-token family)',
      },
      ceilingWorkers,
    },
    systems,
    results,
    etcd: etcdLevels,
    summary,
    notes,
  };
  emit(doc);
  if (a.out !== null) writeFileSync(a.out, `${JSON.stringify(doc, null, 2)}\n`);
  process.stderr.write(humanTable(results, etcdLevels, summary));
  clearTimeout(watchdog);
  return 0;
}

function cleanupEverything(): void {
  killAllRaftauthSync();
  cleanupAllSync();
}

// Whatever way the process ends, no node, server or etcd member outlives it.
runBenchmark(main, say, cleanupEverything);

