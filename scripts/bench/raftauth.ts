// raftauth under test: a 3-node cluster of real node processes (the built dist/main.js) on loopback, one temp dir
// holding the CA, certificates, configs, data and logs.
//
// This is the benchmark's own minimal launcher: the shared launcher (scripts/lib/local-cluster.ts)
// was not written yet when the benchmark was. It writes the same node config as the shipped local
// config (cluster-configs/local-3.yaml: its tickMs, one HTTP worker per node) with only ports and paths changed, and no admin API
// (the benchmark needs none). Each node runs in its own process group, so kill(i) is a kill -9 of
// the node *and* its HTTP workers, as a machine failure would be.
import { spawnSync } from 'node:child_process';
import { writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { stringify } from 'yaml';
import { createClusterCa, issueNodeCert, writePem } from '../../src/crypto/certs.ts';
import type { Answer, Endpoint, HttpCall } from './client.ts';
import { freePorts, makeTempDir, spawnChild, waitFor, WaitAborted } from './procs.ts';
import { MemberCluster } from './member-cluster.ts';
import type { Child } from './procs.ts';
import type { SystemUnderTest } from './system.ts';
import { buildIfStale, distArgs } from '../lib/dist.ts';

const REPO_ROOT = fileURLToPath(new URL('../..', import.meta.url));
const MEMBERS = 3;
/** A node starts in about a second; allow for a loaded 2-core machine. */
const START_TIMEOUT_MS = 60_000;
const STATUS_TIMEOUT_MS = 1_000;

export interface RaftauthOptions {
  /** http.workers of every node. */
  readonly workers: number;
  /** raft.tickMs of every node (electionTick stays at its default of 10). */
  readonly tickMs: number;
  /** The client's attempt timeout; the request deadline by default (the node retries inside it). */
  readonly attemptTimeoutMs: number;
  /** raft.maxWritesInFlight of every node; null or absent: the node's default. */
  readonly writesInFlight?: number | null;
}

interface Member {
  readonly id: number;
  readonly httpPort: number;
  readonly raftPort: number;
  child: Child | null;
  dead: boolean;
}

function packageVersion(): string {
  const git = spawnSync('git', ['-C', REPO_ROOT, 'describe', '--always', '--dirty'], { encoding: 'utf8', timeout: 5_000 });
  const rev = git.status === 0 ? git.stdout.trim() : 'unknown';
  const pkg = spawnSync(process.execPath, ['-p', 'require("./package.json").version'], { cwd: REPO_ROOT, encoding: 'utf8', timeout: 5_000 });
  return `${pkg.status === 0 ? pkg.stdout.trim() : '?'} (${rev})`;
}

/** raftauth's write (and the prototype's, the same API): the node waits and retries inside the deadline (DESIGN "Any node serves any request"). */
export function kvPutCall(key: string, value: string, budgetMs: number): HttpCall {
  return {
    method: 'PUT',
    path: `/v1/kv/${encodeURIComponent(key)}`,
    headers: { 'x-request-timeout-ms': String(Math.max(1, budgetMs)) },
    body: Buffer.from(JSON.stringify({ value })),
  };
}

export class RaftauthCluster extends MemberCluster<Member> implements SystemUnderTest {
  readonly name = 'raftauth' as const;
  readonly version = packageVersion();
  readonly settings: Record<string, unknown>;
  readonly attemptTimeoutMs: number;

  private constructor(
    dir: string,
    members: Member[],
    opts: RaftauthOptions,
  ) {
    super(dir, members, members.map((m): Endpoint => ({ member: String(m.id), host: '127.0.0.1', port: m.httpPort })));
    this.attemptTimeoutMs = opts.attemptTimeoutMs;
    this.settings = {
      members: MEMBERS,
      clientAttemptTimeoutMs: opts.attemptTimeoutMs,
      tickMs: opts.tickMs,
      electionTick: 10,
      heartbeatTick: 1,
      electionTimeoutMs: `${10 * opts.tickMs}-${20 * opts.tickMs} (randomized, Raft §5.2)`,
      httpWorkersPerNode: opts.workers,
      maxWritesInFlight: opts.writesInFlight ?? 'the node default (1)',
      logLevel: 'warn',
      fsync: 'on (one fsynced LevelDB batch per Ready)',
      api: 'PUT /v1/kv/:key',
      launcher: 'scripts/bench/raftauth.ts (the benchmark\'s own; scripts/lib/local-cluster.ts was not there when it was written)',
      dataDir: dir,
    };
  }

  static async start(opts: RaftauthOptions, parentDir: string): Promise<RaftauthCluster> {
    // The nodes run the built program (dist/main.js); on stderr, since the benchmark's JSON is on stdout.
    buildIfStale((l) => process.stderr.write(`[build] ${l}\n`));
    const dir = await makeTempDir('raftauth-bench-raftauth-', parentDir);
    const ports = await freePorts(MEMBERS * 2);
    const members: Member[] = Array.from({ length: MEMBERS }, (_, i) => ({ id: i + 1, httpPort: ports[2 * i]!, raftPort: ports[2 * i + 1]!, child: null, dead: false }));
    const c = new RaftauthCluster(dir, members, opts);
    try {
      const ca = await createClusterCa();
      await writePem(dir, 'ca', ca);
      const initialMembers = members.map((m) => ({ id: m.id, raftAddress: `127.0.0.1:${m.raftPort}`, httpAddress: `127.0.0.1:${m.httpPort}` }));
      // The node sees no RAFTAUTH_* variable: an override left in the caller's shell would change the
      // configuration under test (or be refused as unknown).
      // BENCH_RAFTAUTH_NODE_ARGS: extra node flags for every node process and its workers (profiling:
      // "--cpu-prof --cpu-prof-dir=DIR"; node refuses --cpu-prof in NODE_OPTIONS).
      const nodeArgs = (process.env.BENCH_RAFTAUTH_NODE_ARGS ?? '').split(' ').filter((x) => x.length > 0);
      const env: NodeJS.ProcessEnv = {};
      for (const [k, v] of Object.entries(process.env)) if (!k.startsWith('RAFTAUTH_')) env[k] = v;
      for (const m of members) {
        await writePem(dir, `node${m.id}`, await issueNodeCert(ca, m.id));
        const config = {
          node: { id: m.id, dataDir: `data${m.id}` },
          cluster: { initialMembers },
          raft: { tickMs: opts.tickMs, ...(opts.writesInFlight != null ? { maxWritesInFlight: opts.writesInFlight } : {}) },
          tls: { ca: 'ca.crt', cert: `node${m.id}.crt`, key: `node${m.id}.key` },
          http: { workers: opts.workers },
          // BENCH_RAFTAUTH_LOG=info for a post-mortem with --keep-temp (README); the node's config check refuses other words.
          log: { level: process.env.BENCH_RAFTAUTH_LOG ?? 'warn' },
        };
        const file = join(dir, `node${m.id}.yaml`);
        await writeFile(file, stringify(config));
        m.child = spawnChild(`raftauth node ${m.id}`, process.execPath, [...nodeArgs, ...distArgs(['--config', file])], join(dir, `node${m.id}.log`), { cwd: REPO_ROOT, env });
      }
      await c.leader(START_TIMEOUT_MS);
      return c;
    } catch (e) {
      await c.stop();
      throw e;
    }
  }

  putCall(key: string, value: string, budgetMs: number): HttpCall {
    return kvPutCall(key, value, budgetMs);
  }

  putOk(a: Answer): boolean {
    return a.status === 200;
  }

  private async status(i: number): Promise<{ id: number; role: string; leader: number; term: number }> {
    const a = await this.statusPool.attempt(i, { method: 'GET', path: '/v1/status', headers: {}, body: Buffer.alloc(0) }, STATUS_TIMEOUT_MS);
    if (a.status !== 200) throw new Error(`raftauth node ${this.members[i]!.id} status: HTTP ${a.status} ${a.body}`);
    return JSON.parse(a.body) as { id: number; role: string; leader: number; term: number };
  }

  async term(): Promise<number> {
    const live = this.members.map((m, i) => ({ m, i })).filter(({ m }) => !m.dead);
    const st = await Promise.all(live.map(({ i }) => this.status(i)));
    return Math.max(...st.map((s) => s.term));
  }

  async leader(timeoutMs: number): Promise<number> {
    return waitFor(
      'the raftauth nodes to agree on a leader',
      async () => {
        const live = this.members.map((m, i) => ({ m, i })).filter(({ m }) => !m.dead);
        for (const { m } of live) if (m.child && !m.child.running) throw new WaitAborted(`raftauth node ${m.id} exited ${JSON.stringify(m.child.exit)}:\n${m.child.logTail()}`);
        const st = await Promise.all(live.map(({ i }) => this.status(i)));
        const leaders = new Set(st.map((s) => s.leader));
        if (leaders.size !== 1 || st[0]!.leader === 0) return null;
        const k = st.findIndex((s) => s.id === st[0]!.leader && s.role === 'leader');
        return k < 0 ? null : live[k]!.i + 1; // +1: 0 is falsy for waitFor
      },
      timeoutMs,
    ).then((x) => x - 1);
  }
}
