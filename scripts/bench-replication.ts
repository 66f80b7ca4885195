// `npm run bench:replication`: replicated writes/s and p50/p99 latency of a local 3-node raftauth
// cluster, fsync on, at concurrency 1, 16, 64 and 256, and its failover gap (kill -9 of the leader
// until the next successful write) — side by side with etcd 3.4 (Debian etcd-server, 3 members on
// loopback) under the very same client, in the same run, with the ratios and issue 4's targets.
//
// The systems run one after the other, never at the same time, so neither takes CPU or disk from
// the other on this shared machine. One JSON document goes to stdout (and --out FILE); a short
// table and progress go to stderr. Every process and temp dir is removed at the end, on failure,
// on Ctrl-C and when the whole run outlives its computed deadline.
import { randomBytes } from 'node:crypto';
import { writeFileSync } from 'node:fs';
import { loadavg } from 'node:os';
import { parseBenchArgs, UsageError, USAGE } from './bench/args.ts';
import type { BenchArgs } from './bench/args.ts';
import { RETRY_PAUSE_MS } from './bench/client.ts';
import { EtcdCluster, ensureEtcd } from './bench/etcd.ts';
import { cleanupAllSync, runBenchmark, setKeepTemp } from './bench/procs.ts';
import { RaftauthCluster } from './bench/raftauth.ts';
import { humanTable, machineInfo, ratios, ratiosToEtcd, targets, targetsBySystem } from './bench/report.ts';
import type { SystemReport } from './bench/report.ts';
import { isProtoSystem } from './bench/system.ts';
import type { SystemName, SystemUnderTest } from './bench/system.ts';
import { ProtoCluster } from './bench/proto.ts';
import { runFailover, runLevel } from './bench/workload.ts';
import { SHIPPED_TICK_MS } from './bench/args.ts';

/**
 * What issue 4 measured for etcd on this 2-core machine when it was quiet. This run's etcd numbers
 * far below these mean the machine was busy: the ratios still compare like with like, the
 * absolute numbers do not describe the machine.
 */
const ISSUE_ETCD_REFERENCE = {
  concurrency1: { writesPerSec: 380, p50Ms: 2.2 },
  concurrency64: { writesPerSec: 2800, p99Ms: 65 },
  failoverGapMs: [1100, 1800],
} as const;

/** Allowance per cluster start and stop (on a loaded 2-core machine; dist/ is built first when stale). */
const START_STOP_ALLOWANCE_S = 90;

const say = (line: string): void => void process.stderr.write(`[bench] ${line}\n`);

/** The longest this run may take once etcd is installed: the sum of its phases' bounds, with slack. */
function runDeadlineMs(a: BenchArgs): number {
  const perLevel = a.warmupSeconds + a.seconds + a.requestTimeoutMs / 1000 + 2;
  const failover = a.failoverConcurrency > 0 && !a.systems.every(isProtoSystem) ? a.warmupSeconds + 2 * a.failoverMaxSeconds + a.requestTimeoutMs / 1000 + 20 : 0;
  const perSystem = START_STOP_ALLOWANCE_S + a.levels.length * perLevel + failover;
  return Math.ceil((a.systems.length * perSystem * 1.5 + 60) * 1000);
}

async function benchSystem(sut: SystemUnderTest, a: BenchArgs, value: string): Promise<SystemReport> {
  const report: SystemReport = { version: sut.version, settings: sut.settings, levels: [], failover: null };
  const o = { requestTimeoutMs: a.requestTimeoutMs, value };
  for (const c of a.levels) {
    say(`${sut.name}: concurrency ${c}, ${a.warmupSeconds} s warm-up + ${a.seconds} s`);
    const termAtStart = await sut.term();
    const r = await runLevel(sut, c, a.warmupSeconds * 1000, a.seconds * 1000, o);
    r.termAtStart = termAtStart;
    r.termAtEnd = await sut.term();
    const elections = r.termAtEnd - termAtStart;
    say(`${sut.name}: concurrency ${c}: ${r.writesPerSec} writes/s, p50 ${r.latency.p50Ms} ms, p99 ${r.latency.p99Ms} ms, ${r.failedRequests} failed${elections > 0 ? `, term rose by ${elections} (elections during the level)` : ''}`);
    report.levels.push(r);
  }
  // The prototype has a fixed leader and no elections: a failover would only measure its absence.
  if (a.failoverConcurrency > 0 && !isProtoSystem(sut.name)) {
    say(`${sut.name}: failover at concurrency ${a.failoverConcurrency}: kill -9 of the leader after ${a.warmupSeconds} s`);
    report.failover = await runFailover(sut, a.failoverConcurrency, Math.max(1000, a.warmupSeconds * 1000), a.failoverMaxSeconds * 1000, o);
    say(`${sut.name}: failover gap ${report.failover.gapMs ?? 'none'} ms, ${report.failover.failedRequests} failed requests`);
  }
  return report;
}

async function main(): Promise<number> {
  let a: BenchArgs;
  try {
    a = parseBenchArgs(process.argv.slice(2));
  } catch (e) {
    if (!(e instanceof UsageError)) throw e;
    process.stderr.write(`${e.message ? `${e.message}\n` : ''}${USAGE}`);
    return e.message ? 2 : 0;
  }
  setKeepTemp(a.keepTemp);
  const startedAt = new Date().toISOString();
  const notes: string[] = [];

  let etcd: { bin: string; version: string; installedNow: boolean } | null = null;
  if (a.systems.includes('etcd')) {
    etcd = ensureEtcd(say);
    if (etcd.installedNow) notes.push(`etcd was not on PATH: this run installed the Debian packages etcd-server and etcd-client (${etcd.version})`);
    say(`etcd ${etcd.version} at ${etcd.bin}`);
  }

  const deadlineMs = runDeadlineMs(a);
  const watchdog = setTimeout(() => {
    say(`the run outlived its deadline of ${Math.round(deadlineMs / 1000)} s: stopping every process`);
    cleanupAllSync();
    process.exit(1);
  }, deadlineMs);
  watchdog.unref();

  const machine = machineInfo(a.dir, etcd?.version ?? null);
  if (machine.dataDirFilesystem === 'tmpfs' || machine.dataDirFilesystem === 'ramfs') {
    notes.push(`the data dirs are on ${machine.dataDirFilesystem}: fsync costs nothing there, so these numbers do not show fsync on disk (use --dir)`);
  }
  // The same value for both systems: printable ASCII, so raftauth's JSON string and etcd's base64 carry the same bytes.
  const value = randomBytes(a.valueBytes).toString('base64url').slice(0, a.valueBytes);
  const systems: Partial<Record<SystemName, SystemReport>> = {};
  for (const name of a.systems) {
    say(`${name}: starting a 3-member cluster on loopback`);
    const sut: SystemUnderTest =
      name === 'etcd'
        ? await EtcdCluster.start(etcd!.bin, etcd!.version, a.dir, a.etcdAttemptTimeoutMs)
        : isProtoSystem(name)
          ? await ProtoCluster.start(name, a.requestTimeoutMs, a.dir)
          : await RaftauthCluster.start({ workers: a.raftauthWorkers, tickMs: a.raftauthTickMs, attemptTimeoutMs: a.raftauthAttemptTimeoutMs, writesInFlight: a.raftauthWritesInFlight }, a.dir);
    try {
      systems[name] = await benchSystem(sut, a, value);
    } finally {
      await sut.stop();
    }
  }
  if (a.systems.includes('raftauth')) {
    notes.push(`raftauth was started by the benchmark's own launcher (scripts/bench/raftauth.ts; the shared scripts/lib/local-cluster.ts was not there when the benchmark was written) with the node settings of cluster-configs/local-3.yaml: tickMs ${SHIPPED_TICK_MS}, one HTTP worker per node`);
    if (a.raftauthTickMs !== SHIPPED_TICK_MS) notes.push(`raftauth ran with --raftauth-tick-ms ${a.raftauthTickMs}, not the shipped ${SHIPPED_TICK_MS}: election timeouts ${10 * a.raftauthTickMs}-${20 * a.raftauthTickMs} ms`);
  }
  const protos = a.systems.filter(isProtoSystem);
  if (protos.length > 0) {
    notes.push(`${protos.join(', ')}: the write-path prototype (scripts/bench/prototype/, README "Prototype"): raftauth's process model and peer transport with a fixed leader, no raft core, no elections, no sessions, no OAuth, no log compaction; a ceiling, not a product`);
    if (a.failoverConcurrency > 0) notes.push(`${protos.join(', ')}: no failover phase (a fixed leader and no elections); its failover is null`);
  }
  machine.loadAverageAtEnd = loadavg().map((x) => Math.round(x * 100) / 100);
  if (machine.loadAverageAtStart[0]! > machine.cpus * 0.75) notes.push(`the machine was busy at the start (1-min load ${machine.loadAverageAtStart[0]} on ${machine.cpus} cpus): absolute numbers are low; ratios are fairer than absolutes`);

  const etcd64 = systems.etcd?.levels.find((l) => l.concurrency === 64);
  if (etcd64 && etcd64.writesPerSec < ISSUE_ETCD_REFERENCE.concurrency64.writesPerSec / 2) {
    notes.push(`etcd did ${etcd64.writesPerSec} writes/s at concurrency 64 against the issue's ${ISSUE_ETCD_REFERENCE.concurrency64.writesPerSec} on a quiet machine: this machine was busy during the run`);
  }
  const rs = ratios(systems.raftauth, systems.etcd);
  const ts = targets(systems, a.failoverTargetMs);
  const byName = ratiosToEtcd(systems);
  const steady = targetsBySystem(systems);
  const doc = {
    benchmark: 'replication',
    startedAt,
    finishedAt: new Date().toISOString(),
    args: a,
    machine,
    client: {
      http: 'node:http, one keep-alive Agent per endpoint, one put in flight per client (closed loop), the same code path for both systems',
      spread: 'the k-th put of client c goes to member (c + k) mod 3',
      keys: 'bench/c<client>/<seq mod 100>',
      valueBytes: a.valueBytes,
      retryPolicy: `the same code for both: any failed attempt (network error, attempt timeout, non-2xx answer) is retried on the next member after ${RETRY_PAUSE_MS} ms until the put's deadline (${a.requestTimeoutMs} ms, retries included); then the put counts as failed`,
      attemptTimeoutsInFailover: {
        note: `in the concurrency levels every attempt may use the whole deadline (${a.requestTimeoutMs} ms) for both systems`,
        raftauth: `${a.raftauthAttemptTimeoutMs} ms: the node waits and retries inside the deadline it is given (x-request-timeout-ms = the attempt's budget), so one attempt may use the whole remaining deadline`,
        etcd: `${a.etcdAttemptTimeoutMs} ms: an etcd follower that forwarded a put to a leader that died answers only at its own request timeout (7 s by default), so the client times the attempt out itself and tries the next member, as a clientv3 user with a per-call context does`,
      },
      latency: 'from the first attempt to the successful answer, retries included; HdrHistogram-style histogram, 3 significant digits',
      failoverGap: 'from the SIGKILL of the leader\'s process group to the first successful put among puts sent after the kill, by the load clients or by the probe (a fresh put every 20 ms to the survivors from the kill until one succeeds); clientGapMs counts the load clients only',
    },
    issueEtcdReference: ISSUE_ETCD_REFERENCE,
    systems,
    ratios: rs,
    ratiosToEtcd: byName,
    targets: ts,
    targetsBySystem: steady,
    notes,
  };
  const json = JSON.stringify(doc, null, 2) + '\n';
  process.stdout.write(json);
  if (a.out !== null) writeFileSync(a.out, json);
  process.stderr.write(humanTable(systems, rs, ts, byName, steady));
  clearTimeout(watchdog);
  return 0;
}

// Whatever way the process ends, no node, etcd member or temp dir outlives it.
runBenchmark(main, say);

