// The real admin API for CLI tests: in-process RaftNodes (real LevelDB, real mTLS transport, the
// real OAuth domains) with src/ops/admin.ts's app listening on 127.0.0.1, as src/main.ts serves
// it, and the OAuth state bootstrapped the way a leader does it (data key, signing keys). Every
// HTTP request an admin listener receives is recorded (method, URL), so a test can tell that a
// command sent nothing.
import { pino } from 'pino';
import type { FastifyInstance } from 'fastify';
import { buildAdminApp } from '../../../src/ops/admin.ts';
import type { RaftNode } from '../../../src/node/node.ts';
import type { MasterKeyRing } from '../../../src/crypto/seal.ts';
import { DEFAULT_OAUTH_CONFIG } from '../../../src/oauth/config.ts';
import type { OAuthConfig } from '../../../src/oauth/config.ts';
import { adminKeyRotation, ensureOAuthState } from '../../../src/server/oauth-node.ts';
import { oauthDomains } from '../../../src/state/oauth-domains.ts';
import { stateApplier } from '../../../src/state/applier.ts';
import { LocalCluster, freePort, waitFor } from '../node/helpers.ts';

/** A cheap scrypt: the CLI tests create users, they do not measure password hashing. */
export const TEST_OAUTH_CONFIG: OAuthConfig = { ...DEFAULT_OAUTH_CONFIG, issuer: 'http://127.0.0.1:8080', passwordScrypt: { ln: 10, r: 8, p: 1 } };

export interface AdminRequest {
  readonly node: number;
  readonly method: string;
  readonly url: string;
}

export interface AdminClusterOptions {
  readonly token: string;
  /** The master key ring every node's admin API holds (it serves the OAuth routes only with one). */
  readonly master: MasterKeyRing;
  /** The ring whose current key wraps the data key at bootstrap (default: `master`): an older key, to leave something to rewrap. */
  readonly bootstrapMaster?: MasterKeyRing;
}

/**
 * Nodes `ids` of one cluster, each with its admin API on a loopback port that stays the same
 * across a restart of the node (so a CLI given the URLs can reach it again).
 */
export class AdminCluster {
  readonly cluster = new LocalCluster({ applier: stateApplier(oauthDomains()) });
  readonly requests: AdminRequest[] = [];
  /** Called on every request an admin listener receives (after it is recorded). */
  onRequest: ((r: AdminRequest) => void) | null = null;
  private readonly ports = new Map<number, number>();
  private readonly apps = new Map<number, FastifyInstance>();
  private readonly opts: AdminClusterOptions;

  private constructor(opts: AdminClusterOptions) {
    this.opts = opts;
  }

  get master(): MasterKeyRing {
    return this.opts.master;
  }

  static async start(ids: readonly number[], opts: AdminClusterOptions): Promise<AdminCluster> {
    const c = new AdminCluster(opts);
    try {
      await c.cluster.init([...ids]);
      for (const id of ids) c.ports.set(id, await freePort());
      for (const id of ids) await c.cluster.start(id);
      const leader = await c.cluster.leader();
      await ensureOAuthState(
        (domain, op, args) => leader.housekeeping(domain, op, args, 5_000),
        (domain, op, args) => leader.read({ domain, op, args, timeoutMs: 5_000 }),
        opts.bootstrapMaster ?? opts.master,
        'ES256',
        Date.now(),
      );
      for (const id of ids) await c.startAdmin(id);
    } catch (e) {
      await c.close();
      throw e;
    }
    return c;
  }

  url(id: number): string {
    const port = this.ports.get(id);
    if (port === undefined) throw new Error(`node ${id} has no admin port`);
    return `http://127.0.0.1:${port}`;
  }

  node(id: number): RaftNode {
    const n = this.cluster.nodes.get(id);
    if (n === undefined) throw new Error(`node ${id} is not running`);
    return n;
  }

  /** The id of the node every running node agrees leads. */
  async leaderId(): Promise<number> {
    return waitFor('a leader every running node agrees on', async () => {
      const sts = await Promise.all([...this.cluster.nodes.values()].map((n) => n.status()));
      const l = sts[0]?.leader ?? 0;
      return l !== 0 && sts.every((s) => s.leader === l) ? l : null;
    });
  }

  /** Serve node `id`'s admin API on its port (as src/main.ts does: same app, loopback listener). */
  async startAdmin(id: number): Promise<void> {
    const app = buildAdminApp({ node: this.node(id), token: this.opts.token, oauth: { master: this.master, config: TEST_OAUTH_CONFIG, rotateSigningKeys: adminKeyRotation(this.node(id), this.master, TEST_OAUTH_CONFIG, pino({ level: 'silent' })) } });
    app.server.on('request', (req: { method?: string; url?: string }) => {
      const r = { node: id, method: req.method ?? '', url: req.url ?? '' };
      this.requests.push(r);
      this.onRequest?.(r);
    });
    await app.listen({ host: '127.0.0.1', port: this.ports.get(id)! });
    this.apps.set(id, app);
  }

  /** Close node `id`'s admin listener only (the node keeps running): its URL becomes unreachable. */
  async stopAdmin(id: number): Promise<void> {
    const app = this.apps.get(id);
    this.apps.delete(id);
    await app?.close();
  }

  /** Stop node `id` and its admin API. */
  async stopNode(id: number): Promise<void> {
    await this.stopAdmin(id);
    await this.cluster.stop(id);
  }

  /** Restart node `id` from its data directory, and its admin API on the same port. */
  async restartNode(id: number): Promise<void> {
    await this.cluster.start(id);
    await this.startAdmin(id);
  }

  async close(): Promise<void> {
    for (const id of [...this.apps.keys()]) await this.stopAdmin(id);
    await this.cluster.close();
  }
}
