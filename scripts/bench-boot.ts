// `npm run bench:boot`: how long a node takes from exec to serving when it rejoins a running
// 3-node cluster, and how much memory its primary and each HTTP worker hold then — for each way of
// running a node: the built dist/ (`node --enable-source-maps dist/main.js`), the single binary
// (bundled from dist/), and optionally the way before dist/ (`node --import tsx src/main.ts`).
//
// For each way: a 3-node cluster on loopback in a temp dir (raft defaults, OAuth on: master key
// and issuer; one HTTP worker per node unless --workers), all three ready and agreeing on a leader.
// Then --runs times: SIGKILL a follower's process group (primary and workers), start it again
// with the same command, and time exec → the first /readyz 200 on its HTTP port (polled every
// PROBE_MS over a fresh connection), and exec → its first HTTP answer of any status. The RSS of
// the primary and of each worker (/proc VmRSS) is read when /readyz first answers 200. The report
// gives the median, min and max of the runs, and the raw samples.
//
// One JSON document goes to stdout (and --out FILE); progress goes to stderr. It is a benchmark,
// not a test: nothing is asserted, the targets are reported beside the numbers. Every process and
// temp dir is removed at the end, on failure, on Ctrl-C, and when the run outlives its deadline.
import { mkdirSync, readFileSync, writeFileSync } from 'node:fs';
import { writeFile } from 'node:fs/promises';
import { request } from 'node:http';
import { loadavg } from 'node:os';
import { join } from 'node:path';
import { stringify } from 'yaml';
import { createClusterCa, issueNodeCert, writePem } from '../src/crypto/certs.ts';
import { MasterKeyRing } from '../src/crypto/seal.ts';
import { BOOT_FROM, USAGE, UsageError, parseBootArgs, summarize } from './bench-boot/args.ts';
import type { BootArgs, BootFrom, Summary } from './bench-boot/args.ts';
import { cleanupAllSync, freePorts, runBenchmark, killAndWait, makeTempDir, removeTempDir, setKeepTemp, spawnChild, withTimeout } from './bench/procs.ts';
import type { Child } from './bench/procs.ts';
import { machineInfo } from './bench/report.ts';
import { buildBinary } from './build-binary.ts';
import { DIST_MAIN, NODE_ARGS, REPO_ROOT, buildIfStale } from './lib/dist.ts';
import { childrenOf } from './lib/proc.ts';

/** The issue's target for exec → /readyz 200, on an idle machine. */
const BOOT_TARGET_MS = 1_000;
/** Readiness poll interval during a measured boot: the figures are this coarse. */
const PROBE_MS = 10;
/** Deadline of one probe request (a stuck connection must not stall the clock's reading). */
const PROBE_TIMEOUT_MS = 1_000;
/** The cluster coming up at first, and one measured boot: bounds, not expectations. */
const CLUSTER_UP_TIMEOUT_MS = 120_000;
const BOOT_TIMEOUT_MS = 120_000;
/** A node's graceful stop at the end, then SIGKILL. */
const STOP_TIMEOUT_MS = 15_000;
const EXIT_TIMEOUT_MS = 10_000;
const NODE_IDS = [1, 2, 3] as const;
const MB = 1024 * 1024;

const say = (line: string): void => void process.stderr.write(`[bench:boot] ${line}\n`);

interface Way {
  readonly from: BootFrom;
  /** The command line, for the report (FILE: the node's config). */
  readonly shown: string;
  readonly command: string;
  args(configFile: string): string[];
  readonly cwd: string;
  readonly env: NodeJS.ProcessEnv;
}

/** The environment of a node: nothing of this process's node options, the test runner's or raftauth's overrides. */
function nodeEnv(extra: NodeJS.ProcessEnv = {}): NodeJS.ProcessEnv {
  const env: NodeJS.ProcessEnv = {};
  for (const [k, v] of Object.entries(process.env)) {
    if (k === 'NODE_OPTIONS' || k.startsWith('NODE_TEST') || k.startsWith('RAFTAUTH_')) continue;
    env[k] = v;
  }
  return { ...env, ...extra };
}

async function prepareWay(from: BootFrom, a: BootArgs): Promise<Way> {
  switch (from) {
    case 'dist':
      buildIfStale(say);
      return { from, shown: `node ${NODE_ARGS.join(' ')} dist/main.js --config FILE`, command: process.execPath, args: (f) => [...NODE_ARGS, DIST_MAIN, '--config', f], cwd: REPO_ROOT, env: nodeEnv() };
    case 'binary': {
      const dir = await makeTempDir('raftauth-bench-boot-binary-', a.dir);
      const binary = join(dir, 'raftauth');
      await buildBinary({ outFile: binary, log: say });
      // The binary writes its LevelDB addon to a private file under TMPDIR at each start (src/sea/addon.ts).
      const tmp = join(dir, 'tmp');
      mkdirSync(tmp, { mode: 0o700 });
      return { from, shown: 'raftauth --config FILE (the single binary, bundled from dist/)', command: binary, args: (f) => ['--config', f], cwd: dir, env: nodeEnv({ TMPDIR: tmp }) };
    }
    case 'tsx':
      // cwd is the repository so that `--import tsx` resolves from its node_modules; the workers get the loader too (src/server/process.ts).
      return { from, shown: 'node --import tsx src/main.ts --config FILE (the way before dist/)', command: process.execPath, args: (f) => ['--import', 'tsx', join(REPO_ROOT, 'src', 'main.ts'), '--config', f], cwd: REPO_ROOT, env: nodeEnv() };
  }
}

/** The HTTP status of GET path, or null when there was no answer (refused, reset, timed out). */
function probe(port: number, path: string): Promise<{ status: number; body: string } | null> {
  return new Promise((resolve) => {
    const req = request({ host: '127.0.0.1', port, path, method: 'GET', agent: false, timeout: PROBE_TIMEOUT_MS }, (res) => {
      let body = '';
      res.setEncoding('utf8');
      res.on('data', (c: string) => {
        if (body.length < 64 * 1024) body += c;
      });
      res.on('end', () => resolve({ status: res.statusCode ?? 0, body }));
      res.on('error', () => resolve(null));
    });
    req.on('timeout', () => req.destroy(new Error('timeout')));
    req.on('error', () => resolve(null));
    req.end();
  });
}

/** VmRSS of `pid` in MB (one decimal), or null when it is gone. */
function rssMb(pid: number): number | null {
  try {
    const m = /^VmRSS:\s+(\d+) kB$/m.exec(readFileSync(`/proc/${pid}/status`, 'utf8'));
    return m ? Math.round((Number(m[1]) * 1024 * 10) / MB) / 10 : null;
  } catch {
    return null;
  }
}


interface Member {
  readonly id: number;
  readonly httpPort: number;
  readonly configFile: string;
  child: Child | null;
}

interface BootSample {
  readonly node: number;
  readonly readyMs: number;
  readonly firstHttpMs: number;
  readonly rssPrimaryMB: number | null;
  readonly rssWorkersMB: readonly (number | null)[];
}

class BootCluster {
  readonly way: Way;
  readonly dir: string;
  readonly members: readonly Member[];

  private constructor(way: Way, dir: string, members: readonly Member[]) {
    this.way = way;
    this.dir = dir;
    this.members = members;
  }

  static async create(way: Way, a: BootArgs): Promise<BootCluster> {
    const dir = await makeTempDir(`raftauth-bench-boot-${way.from}-`, a.dir);
    const ports = await freePorts(NODE_IDS.length * 2);
    const ca = await createClusterCa();
    await writePem(dir, 'ca', ca);
    await writeFile(join(dir, 'master.key'), MasterKeyRing.generateText(), { mode: 0o600 });
    const initialMembers = NODE_IDS.map((id, i) => ({ id, raftAddress: `127.0.0.1:${ports[2 * i + 1]}`, httpAddress: `127.0.0.1:${ports[2 * i]}` }));
    const members: Member[] = [];
    for (const [i, id] of NODE_IDS.entries()) {
      await writePem(dir, `node${id}`, await issueNodeCert(ca, id, ['127.0.0.1']));
      const config = {
        node: { id, dataDir: join(dir, `data${id}`) },
        cluster: { initialMembers },
        tls: { ca: join(dir, 'ca.crt'), cert: join(dir, `node${id}.crt`), key: join(dir, `node${id}.key`) },
        http: { workers: a.workers },
        crypto: { masterKeyFile: join(dir, 'master.key') },
        oauth: { issuer: `http://127.0.0.1:${ports[0]}` },
      };
      const configFile = join(dir, `node${id}.yaml`);
      await writeFile(configFile, stringify(config));
      members.push({ id, httpPort: ports[2 * i]!, configFile, child: null });
    }
    return new BootCluster(way, dir, members);
  }

  member(id: number): Member {
    return this.members.find((m) => m.id === id)!;
  }

  start(id: number): Child {
    const m = this.member(id);
    m.child = spawnChild(`raftauth node ${id} (${this.way.from})`, this.way.command, this.way.args(m.configFile), join(this.dir, `node${id}.log`), { cwd: this.way.cwd, env: this.way.env });
    return m.child;
  }

  private checkAlive(): void {
    for (const m of this.members) if (m.child && !m.child.running) throw new Error(`node ${m.id} exited (${JSON.stringify(m.child.exit)}):\n${m.child.logTail()}`);
  }

  /** Every node ready and all agreeing on one leader; returns the leader. */
  async waitHealthy(timeoutMs: number): Promise<number> {
    const deadline = performance.now() + timeoutMs;
    for (;;) {
      this.checkAlive();
      const leaders = new Set<number>();
      let ready = true;
      for (const m of this.members) {
        const r = await probe(m.httpPort, '/readyz');
        const s = r?.status === 200 ? await probe(m.httpPort, '/v1/status') : null;
        if (s?.status !== 200) {
          ready = false;
          break;
        }
        leaders.add((JSON.parse(s.body) as { leader: number }).leader);
      }
      const [l] = [...leaders];
      if (ready && leaders.size === 1 && l !== undefined && l !== 0) return l;
      if (performance.now() > deadline) throw new Error(`the cluster was not ready with one leader within ${timeoutMs} ms`);
      await new Promise((r) => setTimeout(r, 50));
    }
  }

  /** SIGKILL node `id`'s process group, start it again and time it to serving. */
  async rejoin(id: number): Promise<BootSample> {
    const m = this.member(id);
    if (m.child) await killAndWait(m.child, EXIT_TIMEOUT_MS);
    const t0 = performance.now();
    const child = this.start(id);
    let firstHttpMs: number | null = null;
    for (;;) {
      if (!child.running) throw new Error(`node ${id} exited while booting (${JSON.stringify(child.exit)}):\n${child.logTail()}`);
      const r = await probe(m.httpPort, '/readyz');
      const at = performance.now() - t0;
      if (r !== null && firstHttpMs === null) firstHttpMs = at;
      if (r?.status === 200) {
        return {
          node: id,
          readyMs: Math.round(at),
          firstHttpMs: Math.round(firstHttpMs!),
          rssPrimaryMB: rssMb(child.pid),
          rssWorkersMB: childrenOf(child.pid).map(rssMb),
        };
      }
      if (at > BOOT_TIMEOUT_MS) throw new Error(`node ${id} was not ready within ${BOOT_TIMEOUT_MS} ms:\n${child.logTail()}`);
      await new Promise((res) => setTimeout(res, PROBE_MS));
    }
  }

  async stop(): Promise<void> {
    // Gracefully first (SIGTERM to each primary, which stops its workers), then the process groups.
    await Promise.all(
      this.members.map(async (m) => {
        if (!m.child?.running) return;
        try {
          process.kill(m.child.pid, 'SIGTERM');
          await withTimeout(m.child.exited, STOP_TIMEOUT_MS, `node ${m.id} to exit after SIGTERM`);
        } catch {
          // killed below
        }
      }),
    );
    await Promise.all(this.members.map(async (m) => (m.child ? killAndWait(m.child, EXIT_TIMEOUT_MS) : undefined)));
    for (const m of this.members) m.child?.closeLog();
    removeTempDir(this.dir);
  }
}

interface WayReport {
  readonly command: string;
  readonly readyMs: Summary | null;
  readonly firstHttpMs: Summary | null;
  readonly rssPrimaryMB: Summary | null;
  /** Every worker of every run. */
  readonly rssWorkerMB: Summary | null;
  readonly meetsBootTarget: boolean | null;
  readonly runs: readonly BootSample[];
}

async function benchWay(from: BootFrom, a: BootArgs): Promise<WayReport> {
  const way = await prepareWay(from, a);
  say(`${from}: starting 3 nodes (${way.shown})`);
  const cluster = await BootCluster.create(way, a);
  const runs: BootSample[] = [];
  try {
    for (const id of NODE_IDS) cluster.start(id);
    let leader = await cluster.waitHealthy(CLUSTER_UP_TIMEOUT_MS);
    for (let r = 0; r < a.runs; r++) {
      // A follower, alternating: killing the leader would add an election to the figure.
      const followers = NODE_IDS.filter((id) => id !== leader);
      const victim = followers[r % followers.length]!;
      const s = await cluster.rejoin(victim);
      say(`${from}: run ${r + 1}/${a.runs}: node ${victim} ready in ${s.readyMs} ms (first HTTP answer ${s.firstHttpMs} ms); RSS primary ${s.rssPrimaryMB} MB, workers ${s.rssWorkersMB.join(', ')} MB`);
      runs.push(s);
      // The next kill only once all three serve again (and the leader is known).
      leader = await cluster.waitHealthy(CLUSTER_UP_TIMEOUT_MS);
    }
  } finally {
    await cluster.stop();
  }
  const readyMs = summarize(runs.map((s) => s.readyMs));
  const nums = (xs: readonly (number | null)[]): number[] => xs.filter((x): x is number => x !== null);
  return {
    command: way.shown,
    readyMs,
    firstHttpMs: summarize(runs.map((s) => s.firstHttpMs)),
    rssPrimaryMB: summarize(nums(runs.map((s) => s.rssPrimaryMB))),
    rssWorkerMB: summarize(nums(runs.flatMap((s) => s.rssWorkersMB))),
    meetsBootTarget: readyMs === null ? null : readyMs.median <= BOOT_TARGET_MS,
    runs,
  };
}

/** The longest this run may take: per way a binary build, a cluster start, each run's boot and recovery, a stop. */
function runDeadlineMs(a: BootArgs): number {
  const perWay = 120_000 + CLUSTER_UP_TIMEOUT_MS + a.runs * (BOOT_TIMEOUT_MS + CLUSTER_UP_TIMEOUT_MS) + STOP_TIMEOUT_MS + EXIT_TIMEOUT_MS;
  return a.from.length * perWay + 60_000;
}

async function main(): Promise<number> {
  let a: BootArgs;
  try {
    a = parseBootArgs(process.argv.slice(2));
  } catch (e) {
    if (!(e instanceof UsageError)) throw e;
    process.stderr.write(`${e.message ? `${e.message}\n` : ''}${USAGE}`);
    return e.message ? 2 : 0;
  }
  if (process.platform !== 'linux') throw new Error('bench:boot reads /proc: Linux only');
  setKeepTemp(a.keepTemp);
  const startedAt = new Date().toISOString();
  const deadlineMs = runDeadlineMs(a);
  const watchdog = setTimeout(() => {
    say(`the run outlived its deadline of ${Math.round(deadlineMs / 1000)} s: stopping every process`);
    cleanupAllSync();
    process.exit(1);
  }, deadlineMs);
  watchdog.unref();

  const machine = machineInfo(a.dir, null);
  const results: Partial<Record<BootFrom, WayReport>> = {};
  for (const from of a.from) results[from] = await benchWay(from, a);

  const notes: string[] = [];
  machine.loadAverageAtEnd = loadavg().map((x) => Math.round(x * 100) / 100);
  if (machine.loadAverageAtStart[0]! > machine.cpus * 0.5) notes.push(`the machine was busy at the start (1-min load ${machine.loadAverageAtStart[0]} on ${machine.cpus} cpus): the target is for an idle machine`);
  if (a.from.includes('tsx')) notes.push("tsx: its transform cache (in the OS temp dir) was warm from the cluster's own start; a first start on a cold cache (after a reboot, or under systemd's PrivateTmp) is slower");
  const doc = {
    benchmark: 'boot',
    startedAt,
    finishedAt: new Date().toISOString(),
    args: a,
    machine,
    method: {
      cluster: `3 nodes on loopback, raft defaults, OAuth on (master key, issuer), http.workers ${a.workers}; data in --dir`,
      run: 'SIGKILL of a follower\'s process group (primary and workers; followers alternate, so no election is timed), then the same command again',
      readyMs: `from just before spawn (exec) to the first /readyz 200 on the node's HTTP port, polled every ${PROBE_MS} ms over a fresh connection`,
      firstHttpMs: 'from exec to the first HTTP answer of any status (an HTTP worker listening)',
      rss: 'VmRSS from /proc when /readyz first answers 200: the primary, and each HTTP worker (children of the primary)',
      ways: Object.fromEntries(BOOT_FROM.filter((f) => a.from.includes(f)).map((f) => [f, results[f]?.command])),
    },
    targets: { bootMs: BOOT_TARGET_MS, note: 'exec → /readyz 200 within 1 s on an idle machine (issue 13)' },
    results,
    notes,
  };
  const json = JSON.stringify(doc, null, 2) + '\n';
  process.stdout.write(json);
  if (a.out !== null) writeFileSync(a.out, json);
  clearTimeout(watchdog);
  return 0;
}

// Whatever way the process ends, no node or temp dir outlives it.
runBenchmark(main, say);

