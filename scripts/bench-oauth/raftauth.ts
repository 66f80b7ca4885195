// raftauth under the OAuth benchmark: a local 3-node cluster from the shared launcher
// (scripts/lib/local-cluster.ts: real node processes from dist/ on loopback, fsync on) with the shipped
// node settings (cluster-configs/local-3.yaml: tickMs 50, one HTTP worker per node unless
// --workers), the issuer being a front proxy's URL as under `npm start`. Clients and the user are
// created through the admin API; the load goes to the three nodes' HTTP addresses directly.
//
// Authorization codes are minted as a browser would get them: one login through the login form
// (GET /authorize → the login page with its sealed interaction → POST /login, cookies carried),
// then, with that login session, each GET /authorize of the first-party client redirects straight
// back with a code (one replicated code.create each).
import { spawnSync } from 'node:child_process';
import { createHash, randomBytes } from 'node:crypto';
import { createWriteStream, readdirSync, readFileSync } from 'node:fs';
import type { WriteStream } from 'node:fs';
import { join, relative } from 'node:path';
import type { Endpoint } from '../bench/client.ts';
import { Pool } from '../bench/client.ts';
import { makeTempDir, waitFor } from '../bench/procs.ts';
import { FrontProxy } from '../lib/front-proxy.ts';
import { REPO_ROOT, adminUrl, httpUrl, loopbackSpec, startCluster } from '../lib/local-cluster.ts';
import type { LocalCluster } from '../lib/local-cluster.ts';
import { CookieJar, authorizationResponse, basicAuth, findLoginForm, loginSubmission, pkcePair } from './html.ts';
import { BENCH_REDIRECT_URI, CC_SCOPE, CODE_SCOPE, FORM, clientCredentialsCall } from './target.ts';
import type { MintedCode, TokenServer } from './target.ts';

/** Three nodes on a busy 2-core machine take a while to start. */
const START_TIMEOUT_MS = 90_000;
const REQUEST_TIMEOUT_MS = 30_000;
/** Redirects followed in the login dance before giving up (authorize → login page → code is 2-3). */
const MAX_REDIRECTS = 8;

/** Primary pids of every node ever started here: killed (with their process groups) by killAllSync. */
const startedPids = new Set<number>();

/** SIGKILL every raftauth node's process group started by this module (sync: usable from process.on('exit')). */
export function killAllRaftauthSync(): void {
  for (const pid of startedPids) {
    try {
      process.kill(-pid, 'SIGKILL');
    } catch {
      // already gone
    }
  }
  startedPids.clear();
}

function gitVersion(): string {
  const git = spawnSync('git', ['-C', REPO_ROOT, 'describe', '--always', '--dirty'], { encoding: 'utf8', timeout: 5_000 });
  return git.status === 0 ? git.stdout.trim() : 'unknown';
}

/**
 * SHA-256 over the paths and contents of src/** at start: `git describe --dirty` cannot tell two
 * uncommitted trees apart, and the numbers belong to the code that ran.
 */
function sourceDigest(): string {
  const h = createHash('sha256');
  const walk = (dir: string): void => {
    for (const e of readdirSync(dir, { withFileTypes: true }).sort((a, b) => (a.name < b.name ? -1 : 1))) {
      const p = join(dir, e.name);
      if (e.isDirectory()) walk(p);
      else if (e.isFile()) h.update(`${relative(REPO_ROOT, p)}\0`).update(readFileSync(p)).update('\0');
    }
  };
  walk(join(REPO_ROOT, 'src'));
  return h.digest('hex').slice(0, 16);
}

interface HttpAnswer {
  readonly status: number;
  readonly location: string | null;
  readonly setCookies: string[];
  readonly text: string;
}

async function http(url: string, init: { method?: string; headers?: Record<string, string>; body?: string }): Promise<HttpAnswer> {
  const res = await fetch(url, { ...init, redirect: 'manual', signal: AbortSignal.timeout(REQUEST_TIMEOUT_MS) });
  return { status: res.status, location: res.headers.get('location'), setCookies: res.headers.getSetCookie(), text: await res.text() };
}

export class RaftauthServer implements TokenServer {
  private readonly cluster: LocalCluster;
  private readonly front: FrontProxy;
  private readonly log: WriteStream;
  readonly issuer: string;
  readonly dir: string;
  readonly system = 'raftauth' as const;
  readonly version = `${gitVersion()} (src digest ${sourceDigest()})`;
  readonly settings: Record<string, unknown>;
  readonly endpoints: readonly Endpoint[];
  private readonly jar = new CookieJar();
  private ccAuth = '';
  private webAuth = '';

  private constructor(
    cluster: LocalCluster,
    front: FrontProxy,
    log: WriteStream,
    issuer: string,
    workers: number,
    dir: string,
  ) {
    this.cluster = cluster;
    this.front = front;
    this.log = log;
    this.issuer = issuer;
    this.dir = dir;
    this.endpoints = cluster.nodes.map((n) => ({ member: String(n.id), host: '127.0.0.1', port: n.spec.ports.http }));
    this.settings = {
      nodes: 3,
      launcher: 'scripts/lib/local-cluster.ts (real node processes from dist/ on loopback)',
      raft: { tickMs: 50, electionTick: 10, heartbeatTick: 1 },
      httpWorkersPerNode: workers,
      fsync: 'on (every replicated write is fsynced on a majority before it is acknowledged)',
      logLevel: 'warn',
      issuer: `${issuer} (the front proxy; the load goes to the nodes directly, round robin)`,
      codeTtlS: 600,
      codeTtlNote: 'oauth.codeTtlS 600 (shipped default 60) so codes minted ahead of a level stay valid through it; the cost of an exchange does not depend on it',
      clientAuth: 'client_secret_basic',
      accessTokens: 'JWT, ES256 (RFC 9068), signed by the HTTP worker',
      refresh: 'each rotation is one replicated, fsynced rt.rotate (with its audit record, if the build writes one)',
      dataDir: dir,
    };
  }

  get ccAuthorization(): string {
    return this.ccAuth;
  }

  get webAuthorization(): string {
    return this.webAuth;
  }

  static async start(parentDir: string, workers: number, say: (s: string) => void): Promise<RaftauthServer> {
    const dir = await makeTempDir('raftauth-bench-oauth-', parentDir);
    const spec = await loopbackSpec({
      dir,
      nodes: 3,
      name: 'bench-oauth',
      settings: { raft: { tickMs: 50, electionTick: 10, heartbeatTick: 1 }, http: { workers }, log: { level: 'warn' }, oauth: { codeTtlS: 600 } },
    });
    const front = new FrontProxy({ backends: spec.nodes.map((n) => ({ id: n.id, url: httpUrl(n) })), port: 0 });
    const issuer = await front.start();
    const log = createWriteStream(join(dir, 'nodes.log'), { flags: 'a' });
    let cluster: LocalCluster;
    try {
      cluster = await startCluster({ ...spec, issuer }, { onLine: (id, line) => void log.write(`[n${id}] ${line}\n`) });
    } catch (e) {
      await front.close();
      log.end();
      throw e;
    }
    for (const n of cluster.nodes) if (n.pid !== undefined) startedPids.add(n.pid);
    const s = new RaftauthServer(cluster, front, log, issuer, workers, dir);
    try {
      const { leader } = await cluster.waitForLeader(START_TIMEOUT_MS);
      say(`raftauth: node ${leader} leads; creating the benchmark's clients and user through the admin API`);
      await s.setUp(spec.nodes.map(adminUrl)[0]!);
    } catch (e) {
      await s.stop();
      throw e;
    }
    return s;
  }

  private async admin(url: string, path: string, body: unknown): Promise<Record<string, unknown>> {
    // A write right after the election may meet a node still learning the leader: retried inside the deadline.
    return waitFor(
      `POST ${path} on the admin API`,
      async () => {
        const res = await fetch(`${url}${path}`, {
          method: 'POST',
          headers: { authorization: `Bearer ${this.cluster.adminToken}`, 'content-type': 'application/json' },
          body: JSON.stringify(body),
          signal: AbortSignal.timeout(REQUEST_TIMEOUT_MS),
        });
        const text = await res.text();
        if (res.status !== 201) throw new Error(`HTTP ${res.status} ${text.slice(0, 300)}`);
        return JSON.parse(text) as Record<string, unknown>;
      },
      START_TIMEOUT_MS,
    );
  }

  private async setUp(admin: string): Promise<void> {
    const cc = await this.admin(admin, '/admin/v1/clients', {
      client_id: 'bench-cc',
      client_name: 'bench client_credentials',
      token_endpoint_auth_method: 'client_secret_basic',
      redirect_uris: [],
      grant_types: ['client_credentials'],
      scopes: [CC_SCOPE],
    });
    const web = await this.admin(admin, '/admin/v1/clients', {
      client_id: 'bench-web',
      client_name: 'bench web client',
      token_endpoint_auth_method: 'client_secret_basic',
      redirect_uris: [BENCH_REDIRECT_URI],
      grant_types: ['authorization_code', 'refresh_token'],
      scopes: CODE_SCOPE.split(' '),
      first_party: true,
    });
    this.ccAuth = basicAuth('bench-cc', String(cc.client_secret));
    this.webAuth = basicAuth('bench-web', String(web.client_secret));
    const password = randomBytes(18).toString('base64url');
    await this.admin(admin, '/admin/v1/users', { username: 'bench', password });
    // Every node must have the signing keys and the clients in its read cache before any load.
    const pool = new Pool(this.endpoints, 1);
    try {
      for (let i = 0; i < this.endpoints.length; i++) {
        await waitFor(
          `node ${this.endpoints[i]!.member} to serve client_credentials`,
          async () => {
            const a = await pool.attempt(i, clientCredentialsCall(this.ccAuth), 5_000);
            if (a.status !== 200) throw new Error(`HTTP ${a.status} ${a.body.slice(0, 300)}`);
            return true;
          },
          START_TIMEOUT_MS,
        );
      }
    } finally {
      pool.close();
    }
    await this.login('bench', password);
  }

  private nodeUrl(i: number): string {
    const e = this.endpoints[i % this.endpoints.length]!;
    return `http://${e.host}:${e.port}`;
  }

  private authorizeUrl(i: number, challenge: string): string {
    const q = new URLSearchParams({ response_type: 'code', client_id: 'bench-web', redirect_uri: BENCH_REDIRECT_URI, scope: CODE_SCOPE, state: randomBytes(8).toString('base64url'), code_challenge: challenge, code_challenge_method: 'S256' });
    return `${this.nodeUrl(i)}/authorize?${q}`;
  }

  /** A request carrying the jar's cookies; Set-Cookie goes back into the jar. */
  private async browse(url: string, init: { method?: string; body?: string } = {}): Promise<HttpAnswer> {
    const headers: Record<string, string> = {};
    if (this.jar.size > 0) headers.cookie = this.jar.header();
    if (init.body !== undefined) headers['content-type'] = FORM;
    const a = await http(url, { ...init, headers });
    this.jar.store(a.setCookies);
    return a;
  }

  /** The login dance of a browser: authorize → login page → POST /login → redirect with a code. Leaves the session cookie in the jar. */
  private async login(username: string, password: string): Promise<void> {
    const { challenge } = pkcePair();
    let url = this.authorizeUrl(0, challenge);
    let a = await this.browse(url);
    let loggedIn = false;
    for (let hops = 0; hops < MAX_REDIRECTS; hops++) {
      if (a.location !== null && a.status >= 300 && a.status < 400) {
        const p = authorizationResponse(a.location, url, BENCH_REDIRECT_URI);
        if (p) {
          if (!p.get('code')) throw new Error(`raftauth: the login ended in an error redirect: ${a.location}`);
          if (!loggedIn) throw new Error('raftauth: /authorize issued a code without a login');
          return;
        }
        // Stay on the node: a relative or issuer-absolute location is resolved against the node.
        const next = new URL(a.location, url);
        url = `${this.nodeUrl(0)}${next.pathname}${next.search}`;
        a = await this.browse(url);
        continue;
      }
      const form = a.status === 200 ? findLoginForm(a.text) : null;
      if (form === null || loggedIn) throw new Error(`raftauth: expected the login page or a redirect, got HTTP ${a.status}: ${a.text.slice(0, 500)}`);
      const action = new URL(form.action || url, url);
      url = `${this.nodeUrl(0)}${action.pathname}${action.search}`;
      a = await this.browse(url, { method: 'POST', body: loginSubmission(form, username, password) });
      loggedIn = true;
    }
    throw new Error(`raftauth: more than ${MAX_REDIRECTS} redirects in the login`);
  }

  async mintCodes(n: number, concurrency: number): Promise<MintedCode[]> {
    const out: MintedCode[] = [];
    let next = 0;
    const worker = async (): Promise<void> => {
      while (next < n) {
        const i = next++;
        const pair = pkcePair();
        const url = this.authorizeUrl(i, pair.challenge);
        // Only the session and binding cookies are sent; the jar is not updated from the load.
        const a = await http(url, { headers: { cookie: this.jar.header() } });
        const p = a.location !== null ? authorizationResponse(a.location, url, BENCH_REDIRECT_URI) : null;
        const code = p?.get('code');
        if (!code) throw new Error(`raftauth: GET /authorize with a login session did not redirect with a code: HTTP ${a.status} ${a.location ?? a.text.slice(0, 300)}`);
        out.push({ code, verifier: pair.verifier });
      }
    };
    await Promise.all(Array.from({ length: Math.min(concurrency, n) }, () => worker()));
    return out;
  }

  async stop(): Promise<void> {
    await this.front.close();
    await this.cluster.stop();
    killAllRaftauthSync(); // HTTP workers follow their primary; this makes sure of it
    this.log.end();
  }
}
