// bench:scale's cluster: 3 real nodes (dist/main.js) from the shared launcher (scripts/lib/
// local-cluster.ts, loopback, fsync on) with the shipped node settings (tickMs 50, one HTTP worker
// per node) and log level info (the nodes log their snapshots and the sweep at info; the bench
// reads those lines). Also the 4th node that joins as a learner, and the follower restart.
import { createWriteStream, existsSync } from 'node:fs';
import type { WriteStream } from 'node:fs';
import { readFile, rm, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { parse as parseYaml, stringify } from 'yaml';
import { issueNodeCertFiles, loadCa } from '../../src/cli/cert-files.ts';
import type { ClusterCa } from '../../src/crypto/certs.ts';
import { LocalCluster, adminUrl, httpUrl, loopbackSpec, nodeConfigYaml, startCluster, freePort } from '../lib/local-cluster.ts';
import type { ClusterSpec, NodeSpec } from '../lib/local-cluster.ts';
import type { AdminStatus } from './observe.ts';
import { parseLogLine } from './observe.ts';

export const START_TIMEOUT_MS = 120_000;
const ADMIN_TIMEOUT_MS = 30_000;
const STATUS_TIMEOUT_MS = 1_500;
export const LEARNER_ID = 4;
export const RAFT_SETTINGS = { tickMs: 50, electionTick: 10, heartbeatTick: 1 } as const;

/** Process groups of every node started here (each node is its own group, with its HTTP workers). */
const groups = new Set<number>();

/** SIGKILL every node process group started here. Synchronous: usable from process.on('exit'). */
export function killScaleClusterSync(): void {
  for (const pgid of [...groups]) {
    groups.delete(pgid);
    try {
      process.kill(-pgid, 'SIGKILL');
    } catch {
      // gone already
    }
  }
}

export type LineHandler = (node: number, rec: Record<string, unknown>) => void;

export class ScaleCluster {
  readonly cluster: LocalCluster;
  readonly spec: ClusterSpec;
  readonly dir: string;
  private readonly log: WriteStream;
  private readonly handlers: LineHandler[] = [];
  private learner: LocalCluster | null = null;
  private learnerSpec: NodeSpec | null = null;

  private constructor(cluster: LocalCluster, spec: ClusterSpec, dir: string, log: WriteStream) {
    this.cluster = cluster;
    this.spec = spec;
    this.dir = dir;
    this.log = log;
  }

  static async start(dir: string, workers: number, say: (s: string) => void): Promise<ScaleCluster> {
    const spec = await loopbackSpec({ dir, nodes: 3, name: 'bench-scale', settings: { raft: { ...RAFT_SETTINGS }, http: { workers }, log: { level: 'info' } } });
    const log = createWriteStream(join(dir, 'nodes.log'), { flags: 'a' });
    let self: ScaleCluster | null = null;
    const onLine = (id: number, line: string): void => {
      log.write(`[n${id}] ${line}\n`);
      const rec = parseLogLine(line);
      if (rec && self) for (const h of self.handlers) h(id, rec);
    };
    const cluster = await startCluster(spec, { onLine });
    self = new ScaleCluster(cluster, spec, dir, log);
    for (const n of cluster.nodes) if (n.pid !== undefined) groups.add(n.pid);
    try {
      const { leader } = await cluster.waitForLeader(START_TIMEOUT_MS);
      say(`node ${leader} leads`);
    } catch (e) {
      await self.stop();
      throw e;
    }
    return self;
  }

  onLogLine(h: LineHandler): () => void {
    this.handlers.push(h);
    return () => {
      const i = this.handlers.indexOf(h);
      if (i >= 0) this.handlers.splice(i, 1);
    };
  }

  get members(): { id: number; raftAddress: string; httpUrl: string }[] {
    return this.spec.nodes.map((n) => ({ id: n.id, raftAddress: `127.0.0.1:${n.ports.raft}`, httpUrl: httpUrl(n) }));
  }

  get adminUrls(): string[] {
    return this.spec.nodes.map((n) => adminUrl(n));
  }

  get token(): string {
    return this.cluster.adminToken;
  }

  ca(): Promise<ClusterCa> {
    return loadCa(this.cluster.prepared.certsDir);
  }

  masterKeyText(): Promise<string> {
    return readFile(join(this.spec.dir, 'master.key'), 'utf8');
  }

  /** Every running primary (node id, pid), the learner included. */
  primaries(): { node: number; pid: number | undefined }[] {
    const out = this.cluster.nodes.map((n) => ({ node: n.id, pid: n.pid }));
    if (this.learner) for (const n of this.learner.nodes) out.push({ node: n.id, pid: n.pid });
    return out;
  }

  dataDir(id: number): string {
    return join(this.spec.dir, `n${id}`, 'data');
  }

  async admin(base: string, method: string, path: string, body?: unknown): Promise<{ status: number; json: unknown }> {
    const r = await fetch(`${base}${path}`, {
      method,
      headers: { authorization: `Bearer ${this.token}`, ...(body !== undefined ? { 'content-type': 'application/json' } : {}) },
      ...(body !== undefined ? { body: JSON.stringify(body) } : {}),
      signal: AbortSignal.timeout(ADMIN_TIMEOUT_MS),
    });
    const text = await r.text();
    let json: unknown = text;
    try {
      json = JSON.parse(text);
    } catch {
      // not JSON: kept as text
    }
    return { status: r.status, json };
  }

  async status(base: string): Promise<AdminStatus | null> {
    try {
      const r = await fetch(`${base}/admin/v1/status`, { headers: { authorization: `Bearer ${this.token}` }, signal: AbortSignal.timeout(STATUS_TIMEOUT_MS) });
      return r.ok ? ((await r.json()) as AdminStatus) : null;
    } catch {
      return null;
    }
  }

  /** The admin status of every running voter (null for one that does not answer). */
  statuses(): Promise<(AdminStatus | null)[]> {
    return Promise.all(this.spec.nodes.filter((n) => this.cluster.node(n.id).running).map((n) => this.status(adminUrl(n))));
  }

  async leader(): Promise<{ id: number; adminUrl: string; status: AdminStatus }> {
    const { leader } = await this.cluster.waitForLeader(START_TIMEOUT_MS);
    const n = this.spec.nodes.find((x) => x.id === leader)!;
    const st = await this.status(adminUrl(n));
    if (!st) throw new Error(`the leader ${leader} does not answer its admin status`);
    return { id: leader, adminUrl: adminUrl(n), status: st };
  }

  /** A `/metrics` scrape of node `id` (text; empty on failure). */
  async metrics(id: number): Promise<string> {
    const n = this.spec.nodes.find((x) => x.id === id) ?? this.learnerSpec;
    if (!n) return '';
    try {
      const r = await fetch(`${httpUrl(n)}/metrics`, { signal: AbortSignal.timeout(5_000) });
      return r.ok ? await r.text() : '';
    } catch {
      return '';
    }
  }

  /** Start a new, empty node 4 (cluster.join) and add it as a learner through the leader's admin API. */
  async addLearner(): Promise<{ adminUrl: string }> {
    if (this.learner) throw new Error('the learner is already running');
    if (this.learnerSpec === null) {
      this.learnerSpec = { id: LEARNER_ID, zone: null, ports: { raft: await freePort(), http: await freePort(), admin: await freePort() } };
      await issueNodeCertFiles(this.cluster.prepared.certsDir, LEARNER_ID, { outDir: this.cluster.prepared.certsDir, overwrite: true });
    }
    const n4 = this.learnerSpec;
    const nodeDir = join(this.spec.dir, `n${LEARNER_ID}`);
    await rm(nodeDir, { recursive: true, force: true });
    const { mkdir } = await import('node:fs/promises');
    await mkdir(nodeDir, { recursive: true, mode: 0o700 });
    const cfg = parseYaml(nodeConfigYaml({ ...this.spec, nodes: [...this.spec.nodes, n4] }, n4)) as { cluster: Record<string, unknown> };
    cfg.cluster.join = true;
    const configFile = join(nodeDir, 'node.yaml');
    await writeFile(configFile, stringify(cfg));
    const onLine = (id: number, line: string): void => {
      this.log.write(`[n${id}] ${line}\n`);
      const rec = parseLogLine(line);
      if (rec) for (const h of this.handlers) h(id, rec);
    };
    this.learner = new LocalCluster({ ...this.spec, nodes: [n4] }, { certsDir: this.cluster.prepared.certsDir, tokenFile: this.cluster.prepared.tokenFile, nodes: [{ id: LEARNER_ID, configFile, dataDir: join(nodeDir, 'data') }], created: [] }, { onLine });
    this.learner.launch(LEARNER_ID);
    const pid = this.learner.node(LEARNER_ID).pid;
    if (pid !== undefined) groups.add(pid);
    const lead = await this.leader();
    const r = await this.admin(lead.adminUrl, 'POST', '/admin/v1/members', { id: LEARNER_ID, raftAddress: `127.0.0.1:${n4.ports.raft}`, httpAddress: `127.0.0.1:${n4.ports.http}`, adminAddress: `127.0.0.1:${n4.ports.admin}` });
    if (r.status !== 200) throw new Error(`adding learner ${LEARNER_ID}: HTTP ${r.status} ${JSON.stringify(r.json)}`);
    return { adminUrl: adminUrl(n4) };
  }

  learnerRunning(): boolean {
    return this.learner?.node(LEARNER_ID).running ?? false;
  }

  learnerLogTail(): string {
    return this.learner?.logTail(LEARNER_ID) ?? '';
  }

  /** Remove node 4 from the configuration, stop it and delete its data. */
  async removeLearner(): Promise<void> {
    if (!this.learner) return;
    try {
      const lead = await this.leader();
      const r = await this.admin(lead.adminUrl, 'DELETE', `/admin/v1/members/${LEARNER_ID}`);
      if (r.status !== 200 && r.status !== 404) throw new Error(`removing learner ${LEARNER_ID}: HTTP ${r.status} ${JSON.stringify(r.json)}`);
    } finally {
      const pid = this.learner.node(LEARNER_ID).pid;
      await this.learner.stop();
      if (pid !== undefined) groups.delete(pid);
      this.learner = null;
      await rm(join(this.spec.dir, `n${LEARNER_ID}`), { recursive: true, force: true });
    }
  }

  /** Stop voter `id` gracefully (SIGTERM) and wait until it is gone. */
  async stopNode(id: number): Promise<void> {
    const pid = this.cluster.node(id).pid;
    this.cluster.kill(id, 'SIGTERM');
    await this.cluster.exited(id);
    if (pid !== undefined) groups.delete(pid);
  }

  restartNode(id: number): void {
    this.cluster.restart(id);
    const pid = this.cluster.node(id).pid;
    if (pid !== undefined) groups.add(pid);
  }

  nodeRunning(id: number): boolean {
    return this.cluster.node(id).running;
  }

  nodeLogTail(id: number): string {
    return this.cluster.logTail(id);
  }

  async stop(): Promise<void> {
    if (this.learner) {
      await this.learner.stop().catch(() => undefined);
      this.learner = null;
    }
    const pids = this.cluster.nodes.map((n) => n.pid).filter((p): p is number => p !== undefined);
    await this.cluster.stop();
    // Stopped in order: their groups are gone (a worker left behind would have been killed with its group below).
    for (const p of pids) {
      try {
        process.kill(-p, 'SIGKILL');
      } catch {
        // the group is gone, as it should be
      }
      groups.delete(p);
    }
    await new Promise<void>((r) => this.log.end(r));
  }

  exists(): boolean {
    return existsSync(this.spec.dir);
  }
}
