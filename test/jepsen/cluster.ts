// The nodes of a Jepsen run: real node processes of the built program (dist/main.js, `npm run
// build`; init() refuses a missing or stale dist/), each started inside its own network
// namespace with `ip netns exec` (which execs, so the child's pid is the node's: kill -9, SIGSTOP
// and SIGCONT go straight to it). Used by the runner, which itself runs in the client namespace:
// every HTTP request below leaves from there.
import { spawn } from 'node:child_process';
import type { ChildProcess } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import { createWriteStream, existsSync } from 'node:fs';
import type { WriteStream } from 'node:fs';
import { mkdir, rm, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { stringify } from 'yaml';
import { createClusterCa, issueNodeCert, writePem } from '../../src/crypto/certs.ts';
import type { ClusterCa } from '../../src/crypto/certs.ts';
import { MasterKeyRing } from '../../src/crypto/seal.ts';
import type { NodeStatus } from '../../src/node/api.ts';
import { REPO_ROOT, httpJson } from '../cluster/harness.ts';
import { distArgs, requireFreshDist } from '../../scripts/lib/dist.ts';
import type { HttpResult } from '../cluster/harness.ts';
import { waitFor } from '../../scripts/lib/wait.ts';
import { nodeIp, nodeNs } from './hosts.ts';
import type { Hosts } from './hosts.ts';

export const RAFT_PORT = 7000;
export const HTTP_PORT = 8080;
export const ADMIN_PORT = 9090;
/**
 * The issuer written into tokens and metadata. A loopback URL (the config accepts http only
 * there); the clients resolve every redirect against the node they talk to, not against it.
 */
export const ISSUER = `http://127.0.0.1:${HTTP_PORT}`;
/** Deadline of a status request. */
const STATUS_TIMEOUT_MS = 1_500;
/** Deadline of an admin request (membership changes take up to 15 s on the node). */
const ADMIN_TIMEOUT_MS = 20_000;

export interface ClusterOptions {
  readonly oauth: boolean;
  /** Debug-only switches (src/server/config.ts `unsafe`); the node gets RAFTAUTH_ALLOW_UNSAFE=1. */
  readonly unsafe?: { readonly ackBeforeCommit?: boolean; readonly readWithoutReadIndex?: boolean };
  /** raft.tickMs (election timeout 10–20 ticks). */
  readonly tickMs: number;
}

export function httpAddress(id: number): string {
  return `${nodeIp(id)}:${HTTP_PORT}`;
}

export class NodeCluster {
  readonly hosts: Hosts;
  /** Directory of configs, certificates, data and logs. */
  readonly dir: string;
  readonly opts: ClusterOptions;
  readonly adminToken = randomBytes(32).toString('base64url');
  /** The cluster CA (made by init()): the prefill's client certificate is issued by it (test/jepsen/prefill.ts). */
  private clusterCa: ClusterCa | null = null;
  private readonly procs = new Map<number, ChildProcess>();
  private readonly exits = new Map<number, Promise<void>>();
  private readonly logs = new Map<number, WriteStream>();
  private readonly paused = new Set<number>();
  private readonly killing = new Set<ChildProcess>();
  /** Exits nobody asked for: a node that stopped by itself (a fatal error, a crash). */
  readonly crashes: { readonly node: number; readonly code: number | null; readonly signal: string | null; readonly at: string }[] = [];

  constructor(
    hosts: Hosts,
    dir: string,
    opts: ClusterOptions,
  ) {
    this.hosts = hosts;
    this.dir = dir;
    this.opts = opts;
  }

  get ids(): readonly number[] {
    return this.hosts.nodeIds;
  }

  private config(id: number, joining: boolean): Record<string, unknown> {
    return {
      node: { id, dataDir: `data${id}` },
      cluster: { initialMembers: this.ids.map((m) => ({ id: m, raftAddress: `${nodeIp(m)}:${RAFT_PORT}`, httpAddress: httpAddress(m) })), join: joining },
      raft: { tickMs: this.opts.tickMs },
      tls: { ca: 'ca.crt', cert: `node${id}.crt`, key: `node${id}.key` },
      http: { workers: 0 },
      admin: { listen: `${nodeIp(id)}:${ADMIN_PORT}`, tokenFile: 'admin.token' },
      ...(this.opts.oauth ? { crypto: { masterKeyFile: 'master.key' }, oauth: { issuer: ISSUER, passwordScryptLn: 10 } } : {}),
      ...(this.opts.unsafe ? { unsafe: this.opts.unsafe } : {}),
    };
  }

  /**
   * Make node `id` (stopped) a new, empty server: its data is deleted and it starts with
   * cluster.join, to be added back as a learner through the admin API (membership fault).
   */
  async wipeForJoin(id: number): Promise<void> {
    if (this.procs.has(id)) throw new Error(`node ${id} is running`);
    await rm(this.dataDir(id), { recursive: true, force: true });
    await writeFile(join(this.dir, `node${id}.yaml`), stringify(this.config(id, true)));
  }

  async init(): Promise<void> {
    requireFreshDist();
    await mkdir(this.dir, { recursive: true });
    const ca = await createClusterCa();
    this.clusterCa = ca;
    await writePem(this.dir, 'ca', ca);
    await writeFile(join(this.dir, 'admin.token'), this.adminToken, { mode: 0o600 });
    if (this.opts.oauth) await writeFile(join(this.dir, 'master.key'), MasterKeyRing.generateText(), { mode: 0o600 });
    for (const id of this.ids) {
      await writePem(this.dir, `node${id}`, await issueNodeCert(ca, id, [nodeIp(id)]));
      await writeFile(join(this.dir, `node${id}.yaml`), stringify(this.config(id, false)));
    }
  }

  get ca(): ClusterCa {
    if (this.clusterCa === null) throw new Error('the cluster has no CA before init()');
    return this.clusterCa;
  }

  isRunning(id: number): boolean {
    return this.procs.has(id);
  }

  isPaused(id: number): boolean {
    return this.paused.has(id);
  }

  /** Spawn node `id` in its namespace (not waiting for it to serve). */
  start(id: number): void {
    if (this.procs.has(id)) throw new Error(`node ${id} is already running`);
    let log = this.logs.get(id);
    if (log === undefined) {
      log = createWriteStream(join(this.dir, `node${id}.log`), { flags: 'a' });
      this.logs.set(id, log);
    }
    log.write(`### start node ${id} at ${new Date().toISOString()}\n`);
    const env: NodeJS.ProcessEnv = {};
    for (const [k, v] of Object.entries(process.env)) if (!k.startsWith('RAFTAUTH_') && !k.startsWith('NODE_TEST')) env[k] = v;
    if (this.opts.unsafe) env.RAFTAUTH_ALLOW_UNSAFE = '1';
    const child = spawn('ip', ['netns', 'exec', nodeNs(this.hosts, id), process.execPath, ...distArgs(['--config', join(this.dir, `node${id}.yaml`)])], {
      cwd: REPO_ROOT,
      env,
      stdio: ['ignore', 'pipe', 'pipe'],
    });
    child.stdout!.pipe(log, { end: false });
    child.stderr!.pipe(log, { end: false });
    this.procs.set(id, child);
    this.exits.set(
      id,
      new Promise<void>((resolve) =>
        child.once('exit', (code, signal) => {
          if (!this.killing.delete(child)) this.crashes.push({ node: id, code, signal, at: new Date().toISOString() });
          if (this.procs.get(id) === child) this.procs.delete(id);
          this.paused.delete(id);
          resolve();
        }),
      ),
    );
  }

  /** kill -9 and wait for the process to be gone. */
  async kill(id: number): Promise<void> {
    const p = this.procs.get(id);
    if (p === undefined) return;
    this.killing.add(p);
    p.kill('SIGKILL');
    await this.exits.get(id);
  }

  pause(id: number): void {
    const p = this.procs.get(id);
    if (p === undefined || this.paused.has(id)) return;
    p.kill('SIGSTOP');
    this.paused.add(id);
  }

  resume(id: number): void {
    const p = this.procs.get(id);
    if (p === undefined || !this.paused.has(id)) return;
    p.kill('SIGCONT');
    this.paused.delete(id);
  }

  async status(id: number): Promise<NodeStatus> {
    const r = await httpJson(httpAddress(id), 'GET', '/v1/status', { timeoutMs: STATUS_TIMEOUT_MS });
    if (r.status !== 200) throw new Error(`status of node ${id}: HTTP ${r.status}`);
    return r.body as unknown as NodeStatus;
  }

  admin(id: number, method: string, path: string, body?: unknown): Promise<HttpResult> {
    return httpJson(`${nodeIp(id)}:${ADMIN_PORT}`, method, path, { ...(body !== undefined ? { body } : {}), headers: { authorization: `Bearer ${this.adminToken}` }, timeoutMs: ADMIN_TIMEOUT_MS });
  }

  /** Wait until node `id` answers /v1/status; fails at once if it exited. */
  waitServing(id: number, timeoutMs: number): Promise<NodeStatus> {
    return waitFor(
      `node ${id} to serve HTTP`,
      async () => {
        if (!this.procs.has(id)) throw new Error(`node ${id} is not running`);
        return this.status(id);
      },
      timeoutMs,
      50,
    );
  }

  /** The leader that every one of `ids` agrees on (and that says it leads). */
  waitLeader(ids: readonly number[], timeoutMs: number): Promise<number> {
    return waitFor(
      `a leader agreed on by nodes ${ids.join(',')}`,
      async () => {
        const sts = await Promise.all(ids.map((id) => this.status(id)));
        const lead = sts[0]!.leader;
        if (lead === 0 || !ids.includes(lead) || !sts.every((s) => s.leader === lead)) return null;
        return sts.find((s) => s.id === lead)!.role === 'leader' ? lead : null;
      },
      timeoutMs,
      50,
    );
  }

  /** The node that says it is the leader, asking every running node once (0 if none answers so). */
  async currentLeader(): Promise<number> {
    const sts = await Promise.all([...this.procs.keys()].filter((id) => !this.paused.has(id)).map((id) => this.status(id).catch(() => null)));
    let best: NodeStatus | null = null;
    for (const s of sts) if (s && s.role === 'leader' && (best === null || s.term > best.term)) best = s;
    return best?.id ?? 0;
  }

  /**
   * An admin call on the leader, following 409 NOT_LEADER (leadership moves under faults) until
   * `timeoutMs`. Returns the last answer.
   */
  async onLeader(method: string, path: string, body: unknown, timeoutMs: number): Promise<HttpResult> {
    const deadline = performance.now() + timeoutMs;
    let last: HttpResult = { status: 0, body: { error: 'no leader found' }, headers: {} };
    while (performance.now() < deadline) {
      const leader = await this.currentLeader();
      if (leader !== 0) {
        last = await this.admin(leader, method, path, body).catch((e: Error) => ({ status: 0, body: { error: e.message }, headers: {} }));
        if (last.status !== 409 && last.status !== 0 && last.status < 500) return last;
      }
      await new Promise((r) => setTimeout(r, 200));
    }
    return last;
  }

  /** SIGCONT and SIGKILL every node, wait for the exits, close the logs. */
  async close(): Promise<void> {
    for (const id of [...this.paused]) this.resume(id);
    await Promise.all([...this.procs.keys()].map((id) => this.kill(id)));
    await Promise.all([...this.logs.values()].map((l) => new Promise<void>((r) => l.end(r))));
  }

  dataDir(id: number): string {
    return join(this.dir, `data${id}`);
  }

  hasData(id: number): boolean {
    return existsSync(this.dataDir(id));
  }
}
