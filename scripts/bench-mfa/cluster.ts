// The MFA benchmark's cluster: 3 real nodes (dist/main.js) from the shared launcher
// (scripts/lib/local-cluster.ts, loopback, fsync on) with the shipped node settings (tickMs 50, one
// HTTP worker per node), the issuer being a front proxy's URL as under `npm start` (so the WebAuthn
// RP ID and origin are the front's, as a browser would see them); the load goes to the nodes
// directly. One setting differs: oauth.passwordScryptLn (default 10 here, 17 shipped), because
// creating thousands of users and logging them in is set-up, not what is measured.
//
// (scripts/bench-oauth/raftauth.ts starts a cluster the same way, but its settings are fixed and
// its admin and login helpers are private, so this module uses the launcher directly.)
import { createWriteStream } from 'node:fs';
import type { WriteStream } from 'node:fs';
import { join } from 'node:path';
import type { Endpoint } from '../bench/client.ts';
import { WaitAborted, makeTempDir, waitFor } from '../bench/procs.ts';
import { FrontProxy } from '../lib/front-proxy.ts';
import { adminUrl, httpUrl, loopbackSpec, startCluster } from '../lib/local-cluster.ts';
import type { LocalCluster } from '../lib/local-cluster.ts';

/** Three nodes on a busy 2-core machine take a while to start. */
const START_TIMEOUT_MS = 120_000;
const ADMIN_TIMEOUT_MS = 30_000;
export const RAFT_SETTINGS = { tickMs: 50, electionTick: 10, heartbeatTick: 1 } as const;

/** Process groups of every node this module started (their HTTP workers are in them). */
const groups = new Set<number>();

/** SIGKILL every node process group started here. Synchronous: usable from process.on('exit'). */
export function killMfaClusterSync(): void {
  for (const pgid of [...groups]) {
    groups.delete(pgid);
    try {
      process.kill(-pgid, 'SIGKILL');
    } catch {
      // gone already
    }
  }
}

export class MfaCluster {
  private readonly cluster: LocalCluster;
  private readonly front: FrontProxy;
  private readonly log: WriteStream;
  readonly issuer: string;
  readonly dir: string;
  readonly endpoints: readonly Endpoint[];
  readonly nodeUrls: readonly string[];

  private constructor(
    cluster: LocalCluster,
    front: FrontProxy,
    log: WriteStream,
    issuer: string,
    dir: string,
  ) {
    this.cluster = cluster;
    this.front = front;
    this.log = log;
    this.issuer = issuer;
    this.dir = dir;
    this.endpoints = cluster.nodes.map((n) => ({ member: String(n.id), host: '127.0.0.1', port: n.spec.ports.http }));
    this.nodeUrls = cluster.nodes.map((n) => httpUrl(n.spec));
  }

  static async start(parentDir: string, scryptLn: number, say: (s: string) => void): Promise<MfaCluster> {
    const dir = await makeTempDir('raftauth-bench-mfa-', parentDir);
    const spec = await loopbackSpec({
      dir,
      nodes: 3,
      name: 'bench-mfa',
      settings: { raft: { ...RAFT_SETTINGS }, http: { workers: 1 }, log: { level: 'warn' }, oauth: { passwordScryptLn: scryptLn } },
    });
    const front = new FrontProxy({ backends: spec.nodes.map((n) => ({ id: n.id, url: httpUrl(n) })), port: 0 });
    const issuer = await front.start();
    const log = createWriteStream(join(dir, 'nodes.log'), { flags: 'a' });
    let cluster: LocalCluster | null = null;
    try {
      cluster = await startCluster({ ...spec, issuer }, { onLine: (id, line) => void log.write(`[n${id}] ${line}\n`) });
      for (const n of cluster.nodes) if (n.pid !== undefined) groups.add(n.pid);
      const { leader } = await cluster.waitForLeader(START_TIMEOUT_MS);
      say(`node ${leader} leads (issuer ${issuer})`);
      return new MfaCluster(cluster, front, log, issuer, dir);
    } catch (e) {
      await cluster?.stop();
      killMfaClusterSync();
      await front.close();
      log.end();
      throw e;
    }
  }

  /** POST to the admin API of the first node, expecting 201; retried until ADMIN_TIMEOUT_MS (a write right after the election may meet a node still learning the leader). */
  async admin(path: string, body: unknown): Promise<Record<string, unknown>> {
    const url = `${adminUrl(this.cluster.nodes[0]!.spec)}${path}`;
    const token = this.cluster.adminToken;
    return waitFor(
      `POST ${path} (admin API)`,
      async () => {
        const res = await fetch(url, { method: 'POST', headers: { authorization: `Bearer ${token}`, 'content-type': 'application/json' }, body: JSON.stringify(body), signal: AbortSignal.timeout(ADMIN_TIMEOUT_MS) });
        const text = await res.text();
        if (res.status === 201) return JSON.parse(text) as Record<string, unknown>;
        const detail = `HTTP ${res.status} ${text.slice(0, 300)}`;
        // A refusal (bad request, conflict) will not change by asking again.
        throw res.status >= 400 && res.status < 500 && res.status !== 408 && res.status !== 429 ? new WaitAborted(detail) : new Error(detail);
      },
      ADMIN_TIMEOUT_MS,
    );
  }

  async stop(): Promise<void> {
    await this.front.close();
    await this.cluster.stop();
    killMfaClusterSync(); // HTTP workers follow their primary; this makes sure of it
    this.log.end();
  }
}
