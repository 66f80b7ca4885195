// Multi-process cluster harness: real node processes on loopback, run from the built program
// (`node --enable-source-maps dist/main.js --config FILE`, what an operator runs: `npm run build`
// first; a missing or stale dist/ fails the test at once), each with its own config file,
// certificate, data directory and log file, all inside one temp directory per test.
//
// Rules it enforces (test/cluster is the DESIGN testing pyramid's level 3):
//  - loopback only: every port is picked by binding 127.0.0.1:0, reading the port and closing;
//  - no fixed sleeps: every wait is `waitFor(what, cond, timeoutMs)`, a condition with a deadline;
//  - no leftovers: every child is tracked and SIGKILLed by `close()`, which a test calls in a
//    `finally`/`after` (also on failure), and the temp directory is removed.
//
// The HTTP client opens one connection per request (no keep-alive agent). That makes "the request
// was never sent" (ECONNREFUSED) distinguishable from "the request was sent and then lost" (reset,
// timeout), which test 4 counts differently, and it keeps a pooled idle connection from being
// reused just as a stopping node closes it.
import assert from 'node:assert/strict';
import { spawn } from 'node:child_process';
import type { ChildProcess } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import { appendFileSync, existsSync, readFileSync } from 'node:fs';
import { mkdtemp, rm, writeFile } from 'node:fs/promises';
import { request } from 'node:http';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { stringify } from 'yaml';
import { createClusterCa, issueNodeCert, writePem } from '../../src/crypto/certs.ts';
import type { CertAndKey, ClusterCa } from '../../src/crypto/certs.ts';
import { MasterKeyRing } from '../../src/crypto/seal.ts';
import { distArgs, requireFreshDist } from '../../scripts/lib/dist.ts';

/** The repository root, derived from this file's location (CI runs in a fresh clone elsewhere). */
export const REPO_ROOT = fileURLToPath(new URL('../..', import.meta.url));

/** Characters of a node's log kept for failure messages. */
const LOG_TAIL_CHARS = 4_000;
/** Default deadline of one HTTP request made by the harness. */
const HTTP_TIMEOUT_MS = 5_000;
/** Largest response body the harness reads (a status or a KV value in these tests is far smaller). */
const MAX_RESPONSE_BYTES = 4 * 1024 * 1024;
/**
 * Deadline for a spawned node to serve HTTP: about a second alone, much longer on a loaded 2-core
 * machine (three nodes and their workers starting at once, other tests beside them). A deadline,
 * not a delay: a quick start returns at once.
 */
const START_SERVING_TIMEOUT_MS = 90_000;
/** Poll interval of waitFor. */
const POLL_MS = 25;

// ---------------------------------------------------------------------------------------------
// Waiting and ports

/** Thrown by a waitFor condition to stop waiting at once (e.g. the process it waits on died). */
export { WaitAborted, freePort } from '../../scripts/lib/wait.ts';
import { WaitAborted, freePort, waitFor as waitForShared } from '../../scripts/lib/wait.ts';
import type { NodeStatus } from '../../src/node/api.ts';

/** Wait for `cond` (see scripts/lib/wait.ts), polling every POLL_MS. */
export function waitFor<T>(what: string, cond: () => Promise<T | undefined | null | false> | T | undefined | null | false, timeoutMs: number): Promise<T> {
  return waitForShared(what, cond, timeoutMs, POLL_MS);
}

// ---------------------------------------------------------------------------------------------
// HTTP

export interface HttpResult {
  readonly status: number;
  readonly body: Record<string, unknown>;
  readonly headers: Record<string, string | string[] | undefined>;
}

/**
 * Why a request got no HTTP answer. `refused`: the connection was refused, so the request was
 * never sent (a load balancer may try another node). `lost`: it was sent (or may have been) and
 * no answer came: reset, closed, or timed out.
 */
export class HttpFailure extends Error {
  readonly kind: 'refused' | 'lost';
  readonly code: string;

  constructor(
    kind: 'refused' | 'lost',
    code: string,
    message: string,
  ) {
    super(message);
    this.kind = kind;
    this.code = code;
    this.name = 'HttpFailure';
  }
}

export async function httpJson(
  address: string,
  method: string,
  path: string,
  opts: { body?: unknown; headers?: Record<string, string>; timeoutMs?: number } = {},
): Promise<HttpResult> {
  const [host, portText] = address.split(':') as [string, string];
  const payload = opts.body === undefined ? undefined : Buffer.from(JSON.stringify(opts.body));
  const timeoutMs = opts.timeoutMs ?? HTTP_TIMEOUT_MS;
  return new Promise<HttpResult>((resolve, reject) => {
    let connected = false;
    const req = request(
      {
        host,
        port: Number(portText),
        method,
        path,
        agent: false,
        headers: {
          connection: 'close',
          ...(payload ? { 'content-type': 'application/json', 'content-length': String(payload.length) } : {}),
          ...opts.headers,
        },
      },
      (res) => {
        const chunks: Buffer[] = [];
        let size = 0;
        res.on('data', (c: Buffer) => {
          size += c.length;
          if (size > MAX_RESPONSE_BYTES) req.destroy(new Error(`response larger than ${MAX_RESPONSE_BYTES} bytes`));
          else chunks.push(c);
        });
        res.on('error', (e) => reject(new HttpFailure('lost', (e as NodeJS.ErrnoException).code ?? 'ERR', `${method} ${address}${path}: ${e.message}`)));
        res.on('end', () => {
          clearTimeout(timer);
          const text = Buffer.concat(chunks).toString('utf8');
          let body: Record<string, unknown>;
          try {
            body = text === '' ? {} : (JSON.parse(text) as Record<string, unknown>);
          } catch {
            body = { raw: text };
          }
          resolve({ status: res.statusCode ?? 0, body, headers: res.headers });
        });
      },
    );
    req.on('socket', (s) => s.on('connect', () => (connected = true)));
    const timer = setTimeout(() => req.destroy(Object.assign(new Error(`no answer within ${timeoutMs} ms`), { code: 'TIMEOUT' })), timeoutMs);
    req.on('error', (e: NodeJS.ErrnoException) => {
      clearTimeout(timer);
      const code = e.code ?? 'ERR';
      const kind = code === 'ECONNREFUSED' && !connected ? 'refused' : 'lost';
      reject(new HttpFailure(kind, code, `${method} ${address}${path}: ${code}: ${e.message}`));
    });
    if (payload) req.write(payload);
    req.end();
  });
}

// ---------------------------------------------------------------------------------------------
// Nodes

/** What GET /v1/status answers: the node's own status type. */
export type NodeStatusView = NodeStatus;

export interface MemberPorts {
  readonly id: number;
  readonly raftAddress: string;
  readonly httpAddress: string;
  readonly adminAddress: string;
}

export interface ClusterOptions {
  /** `raft:` section overrides (tickMs defaults to 50: election timeout 0.5–1 s). */
  readonly raft?: Record<string, unknown>;
  /** http.workers: 0 = the primary serves HTTP, 1+ = node:cluster workers. Default 0. */
  readonly workers?: number;
  /** Prefix of the temp directory. */
  readonly name?: string;
  /**
   * Serve OAuth: a master key file is written (0600) and every node gets crypto.masterKeyFile and
   * an `oauth:` section with this issuer (e.g. a front proxy's URL) and these settings.
   */
  readonly oauth?: { readonly issuer: string; readonly settings?: Record<string, unknown> };
}

export interface StartOptions {
  /** Start as a node added later (cluster.join: true): it starts empty. */
  readonly join?: boolean;
  /** The members listed in cluster.initialMembers. Default: every member reserved so far. */
  readonly members?: readonly number[];
  /** Extra environment variables (crash injection). */
  readonly env?: Record<string, string>;
  /** TLS material to use instead of this cluster's (a node with a certificate from another CA). */
  readonly tls?: { readonly caPem: string; readonly cert: CertAndKey };
}

export interface Exit {
  readonly code: number | null;
  readonly signal: NodeJS.Signals | null;
}

/**
 * Every node process any cluster of this test process started. If the test process exits without
 * a cluster's close() having run (a test runner timeout, an uncaught error), they are SIGKILLed
 * here: no node may outlive its test. (A SIGKILL of the test process itself cannot be caught.)
 */
const liveChildren = new Set<ChildProcess>();
process.on('exit', () => {
  for (const child of liveChildren) child.kill('SIGKILL');
});

export class NodeProcess {
  readonly id: number;
  readonly child: ChildProcess;
  readonly logFile: string;
  readonly exited: Promise<Exit>;
  exit: Exit | null = null;
  constructor(
    id: number,
    child: ChildProcess,
    logFile: string,
  ) {
    this.id = id;
    this.child = child;
    this.logFile = logFile;
    this.exited = new Promise<Exit>((resolve) => {
      liveChildren.add(child);
      child.once('exit', (code, signal) => {
        liveChildren.delete(child);
        this.exit = { code, signal };
        resolve(this.exit);
      });
    });
  }
  get running(): boolean {
    return this.exit === null;
  }
}

/**
 * One test's cluster: a CA, reserved ports per member, configs, and the node processes.
 * Create with `ProcessCluster.create`, always `close()` in a finally.
 */
export class ProcessCluster {
  readonly dir: string;
  readonly ca: ClusterCa;
  private readonly opts: ClusterOptions;
  readonly members = new Map<number, MemberPorts>();
  readonly adminToken = randomBytes(32).toString('base64url');
  private readonly procs = new Map<number, NodeProcess>();
  private readonly startOpts = new Map<number, StartOptions>();
  private readonly all: NodeProcess[] = [];
  private closed = false;

  private constructor(
    dir: string,
    ca: ClusterCa,
    opts: ClusterOptions,
  ) {
    this.dir = dir;
    this.ca = ca;
    this.opts = opts;
  }

  static async create(ids: readonly number[], opts: ClusterOptions = {}): Promise<ProcessCluster> {
    requireFreshDist();
    const dir = await mkdtemp(join(tmpdir(), `raftauth-${opts.name ?? 'cluster'}-`));
    const c = new ProcessCluster(dir, await createClusterCa(), opts);
    await writeFile(join(dir, 'admin.token'), c.adminToken, { mode: 0o600 });
    await writePem(dir, 'ca', c.ca);
    for (const id of ids) await c.reserve(id);
    return c;
  }

  /** Reserve ports for member `id` (a node added later). */
  async reserve(id: number): Promise<MemberPorts> {
    const m: MemberPorts = {
      id,
      raftAddress: `127.0.0.1:${await freePort()}`,
      httpAddress: `127.0.0.1:${await freePort()}`,
      adminAddress: `127.0.0.1:${await freePort()}`,
    };
    this.members.set(id, m);
    return m;
  }

  member(id: number): MemberPorts {
    const m = this.members.get(id);
    if (m === undefined) throw new Error(`node ${id} has no reserved ports`);
    return m;
  }

  dataDir(id: number): string {
    return join(this.dir, `data${id}`);
  }

  logFile(id: number): string {
    return join(this.dir, `node${id}.log`);
  }

  proc(id: number): NodeProcess {
    const p = this.procs.get(id);
    if (p === undefined) throw new Error(`node ${id} was never started`);
    return p;
  }

  isRunning(id: number): boolean {
    return this.procs.get(id)?.running ?? false;
  }

  /** Write node `id`'s config file and return its path. */
  async writeConfig(id: number, opts: StartOptions = {}): Promise<string> {
    const memberIds = opts.members ?? [...this.members.keys()];
    const m = this.member(id);
    let tls = { ca: 'ca.crt', cert: `node${id}.crt`, key: `node${id}.key` };
    if (opts.tls) {
      await writeFile(join(this.dir, `foreign-ca-${id}.crt`), opts.tls.caPem);
      await writePem(this.dir, `foreign-node${id}`, opts.tls.cert, { overwrite: true });
      tls = { ca: `foreign-ca-${id}.crt`, cert: `foreign-node${id}.crt`, key: `foreign-node${id}.key` };
    } else if (!existsSync(join(this.dir, `node${id}.crt`))) {
      await writePem(this.dir, `node${id}`, await issueNodeCert(this.ca, id));
    }
    const config = {
      node: { id, dataDir: `data${id}` },
      cluster: {
        initialMembers: memberIds.map((mid) => ({ id: mid, raftAddress: this.member(mid).raftAddress, httpAddress: this.member(mid).httpAddress })),
        join: opts.join ?? false,
      },
      raft: { tickMs: 50, ...this.opts.raft },
      tls,
      http: { workers: this.opts.workers ?? 0 },
      admin: { listen: m.adminAddress, tokenFile: 'admin.token' },
      ...(this.opts.oauth ? { crypto: { masterKeyFile: 'master.key' }, oauth: { ...this.opts.oauth.settings, issuer: this.opts.oauth.issuer } } : {}),
    };
    if (this.opts.oauth && !existsSync(join(this.dir, 'master.key'))) await writeFile(join(this.dir, 'master.key'), MasterKeyRing.generateText(), { mode: 0o600 });
    const file = join(this.dir, `node${id}.yaml`);
    await writeFile(file, stringify(config));
    return file;
  }

  /**
   * Spawn node `id` (it must not be running). Resolves once spawned, not once serving: see
   * waitServing. A restart reuses the members, join flag and TLS material of the node's previous
   * start unless given again (its config does not change across restarts); `env` is never reused,
   * so a restart after crash injection runs without it.
   */
  async start(id: number, opts: StartOptions = {}): Promise<NodeProcess> {
    if (this.closed) throw new Error('cluster is closed');
    if (this.isRunning(id)) throw new Error(`node ${id} is already running`);
    const prev = this.startOpts.get(id) ?? {};
    const kept: StartOptions = {
      ...(opts.members ?? prev.members ? { members: opts.members ?? prev.members } : {}),
      ...(opts.join ?? prev.join ? { join: opts.join ?? prev.join } : {}),
      ...(opts.tls ?? prev.tls ? { tls: opts.tls ?? prev.tls } : {}),
    };
    this.startOpts.set(id, kept);
    const file = await this.writeConfig(id, kept);
    const logFile = this.logFile(id);
    appendFileSync(logFile, `### start node ${id} at ${new Date().toISOString()}${opts.env ? ` env ${JSON.stringify(opts.env)}` : ''}\n`);
    // The node sees no RAFTAUTH_* variable but those the test gives: an override left in the
    // developer's shell would silently change the config under test (or be refused as unknown).
    // The test runner's own variables must not leak in either.
    const env: NodeJS.ProcessEnv = {};
    for (const [k, v] of Object.entries(process.env)) if (!k.startsWith('RAFTAUTH_') && !k.startsWith('NODE_TEST')) env[k] = v;
    Object.assign(env, opts.env);
    const child = spawn(process.execPath, distArgs(['--config', file]), { cwd: REPO_ROOT, env, stdio: ['ignore', 'pipe', 'pipe'] });
    const p = new NodeProcess(id, child, logFile);
    const sink = (b: Buffer) => appendFileSync(logFile, b);
    child.stdout!.on('data', sink);
    child.stderr!.on('data', sink);
    this.procs.set(id, p);
    this.all.push(p);
    return p;
  }

  /** Start and wait until its HTTP API answers /v1/status. */
  async startServing(id: number, opts: StartOptions = {}, timeoutMs = START_SERVING_TIMEOUT_MS): Promise<NodeProcess> {
    const p = await this.start(id, opts);
    await this.waitServing(id, timeoutMs);
    return p;
  }

  async waitServing(id: number, timeoutMs = START_SERVING_TIMEOUT_MS): Promise<NodeStatusView> {
    return waitFor(
      `node ${id} to serve HTTP`,
      async () => {
        const p = this.proc(id);
        if (!p.running) throw new WaitAborted(`node ${id} exited (${JSON.stringify(p.exit)}) instead of serving`);
        return this.status(id);
      },
      timeoutMs,
    ).catch((e: Error) => {
      throw new Error(`${e.message}\nlog tail of node ${id}:\n${this.logTail(id)}`);
    });
  }

  /** SIGKILL node `id` and wait for it to be gone. */
  async kill(id: number): Promise<Exit> {
    const p = this.proc(id);
    if (p.running) p.child.kill('SIGKILL');
    return p.exited;
  }

  /** SIGTERM (graceful stop) and wait for the exit, with a deadline. */
  async stop(id: number, timeoutMs = 20_000): Promise<Exit> {
    const p = this.proc(id);
    if (p.running) p.child.kill('SIGTERM');
    return this.waitExit(id, timeoutMs);
  }

  async waitExit(id: number, timeoutMs: number): Promise<Exit> {
    const p = this.proc(id);
    let timer: NodeJS.Timeout | undefined;
    const limit = new Promise<never>((_, reject) => {
      timer = setTimeout(() => reject(new Error(`node ${id} did not exit within ${timeoutMs} ms; log tail:\n${this.logTail(id)}`)), timeoutMs);
    });
    try {
      return await Promise.race([p.exited, limit]);
    } finally {
      clearTimeout(timer);
    }
  }

  logText(id: number): string {
    const f = this.logFile(id);
    return existsSync(f) ? readFileSync(f, 'utf8') : '';
  }

  logTail(id: number): string {
    return this.logText(id).slice(-LOG_TAIL_CHARS);
  }

  /** Parsed pino lines of node `id`'s log (lines that are not JSON are skipped). */
  logLines(id: number): Record<string, unknown>[] {
    const out: Record<string, unknown>[] = [];
    for (const line of this.logText(id).split('\n')) {
      if (!line.startsWith('{')) continue;
      try {
        out.push(JSON.parse(line) as Record<string, unknown>);
      } catch {
        // a line cut by a SIGKILL
      }
    }
    return out;
  }

  // ---- HTTP API -------------------------------------------------------------------------------

  /** Whether GET /readyz answers 200 (a load balancer's check). */
  async readyz(id: number, timeoutMs = 1_000): Promise<boolean> {
    const r = await httpJson(this.member(id).httpAddress, 'GET', '/readyz', { timeoutMs });
    return r.status === 200;
  }

  async status(id: number): Promise<NodeStatusView> {
    const r = await httpJson(this.member(id).httpAddress, 'GET', '/v1/status', { timeoutMs: 2_000 });
    if (r.status !== 200) throw new Error(`status of node ${id}: HTTP ${r.status} ${JSON.stringify(r.body)}`);
    return r.body as unknown as NodeStatusView;
  }

  put(id: number, key: string, value: string, timeoutMs = HTTP_TIMEOUT_MS): Promise<HttpResult> {
    return httpJson(this.member(id).httpAddress, 'PUT', `/v1/kv/${encodeURIComponent(key)}`, { body: { value }, timeoutMs: timeoutMs + 2_000, headers: { 'x-request-timeout-ms': String(timeoutMs) } });
  }

  append(id: number, key: string, value: string, timeoutMs = HTTP_TIMEOUT_MS): Promise<HttpResult> {
    return httpJson(this.member(id).httpAddress, 'POST', `/v1/kv/${encodeURIComponent(key)}/append`, { body: { value }, timeoutMs: timeoutMs + 2_000, headers: { 'x-request-timeout-ms': String(timeoutMs) } });
  }

  get(id: number, key: string, opts: { local?: boolean; timeoutMs?: number } = {}): Promise<HttpResult> {
    const q = opts.local ? '?consistency=local' : '';
    const timeoutMs = opts.timeoutMs ?? HTTP_TIMEOUT_MS;
    return httpJson(this.member(id).httpAddress, 'GET', `/v1/kv/${encodeURIComponent(key)}${q}`, { timeoutMs: timeoutMs + 2_000, headers: { 'x-request-timeout-ms': String(timeoutMs) } });
  }

  /** The value of `key` in node `id`'s applied state (consistency=local), or null when absent. */
  async localValue(id: number, key: string): Promise<string | null> {
    const r = await this.get(id, key, { local: true });
    if (r.status !== 200) throw new Error(`local read of ${key} on node ${id}: HTTP ${r.status} ${JSON.stringify(r.body)}`);
    const v = r.body.value;
    return typeof v === 'string' ? v : null;
  }

  admin(id: number, method: string, path: string, body?: unknown): Promise<HttpResult> {
    return httpJson(this.member(id).adminAddress, method, path, { body, headers: { authorization: `Bearer ${this.adminToken}` }, timeoutMs: 20_000 });
  }

  // ---- cluster-level waits --------------------------------------------------------------------

  /** Stop a wait at once if one of `ids` has exited: polling a dead node until the deadline hides why. */
  private ensureRunning(ids: readonly number[]): void {
    for (const id of ids) {
      const p = this.procs.get(id);
      if (p !== undefined && !p.running) throw new WaitAborted(`node ${id} exited (${JSON.stringify(p.exit)}); log tail:\n${this.logTail(id)}`);
    }
  }

  /**
   * Wait until every node among `ids` reports the same leader, that leader is among `ids` and says
   * it is the leader. Returns the leader's id. Ends at once if one of them has exited.
   */
  async waitLeader(ids: readonly number[], timeoutMs = 15_000): Promise<number> {
    return waitFor(
      `a leader agreed on by nodes ${ids.join(',')}`,
      async () => {
        this.ensureRunning(ids);
        const sts = await Promise.all(ids.map((id) => this.status(id)));
        const lead = sts[0]!.leader;
        if (lead === 0 || !ids.includes(lead)) return null;
        if (!sts.every((s) => s.leader === lead)) return null;
        return sts.find((s) => s.id === lead)!.role === 'leader' ? lead : null;
      },
      timeoutMs,
    );
  }

  /** Wait until each of `ids` has applied at least the leader's current commit index. */
  async waitCaughtUp(ids: readonly number[], leader: number, timeoutMs = 20_000): Promise<number> {
    const target = (await this.status(leader)).commit;
    await waitFor(
      `nodes ${ids.join(',')} to apply up to index ${target}`,
      async () => {
        this.ensureRunning(ids);
        return (await Promise.all(ids.map((id) => this.status(id)))).every((s) => s.applied >= target);
      },
      timeoutMs,
    );
    return target;
  }

  /** Kill every process this cluster started (SIGKILL), wait for them, remove the temp directory. */
  async close(): Promise<void> {
    this.closed = true;
    for (const p of this.all) if (p.running) p.child.kill('SIGKILL');
    await Promise.all(this.all.map((p) => p.exited));
    // CLUSTER_TEST_KEEP=1 keeps the directory (configs, logs, data) to look into a failure.
    if (process.env.CLUSTER_TEST_KEEP === '1') console.log(`# kept ${this.dir}`);
    else await rm(this.dir, { recursive: true, force: true });
  }
}

/** Milliseconds since `t0`, rounded. */
export function since(t0: number): number {
  return Math.round(performance.now() - t0);
}

// ---------------------------------------------------------------------------------------------
// Browsing the server-rendered pages (OAuth login, MFA prompts)

/** Default deadline of one Browser request (a page may wait for a Raft write and a scrypt). */
const BROWSER_TIMEOUT_MS = 20_000;

export interface BrowserOptions {
  /**
   * The loopback source address of every connection (e.g. '127.0.0.2'): the nodes see it as the
   * client IP, so scenarios that count failures per IP do not share one counter.
   */
  readonly localAddress?: string;
  readonly timeoutMs?: number;
}

export interface BrowserRequest {
  readonly method?: string;
  /** An application/x-www-form-urlencoded body (the method defaults to POST). */
  readonly form?: Record<string, string>;
}

/** A request whose connection is open and headers sent, its body held back until fire(). */
export interface ArmedRequest {
  fire(): Promise<Response>;
}

/**
 * A minimal browser: a cookie jar (names and values only: every test host is 127.0.0.1, and a
 * browser does not separate cookies by port either) and manual redirects, so every hop is checked
 * by the test. One connection per request, like httpJson. Answers are WHATWG Responses (with
 * `url` set) for the tests' convenience.
 */
export class Browser {
  private readonly opts: BrowserOptions;
  private readonly jar = new Map<string, string>();
  /** Every cookie value ever set (the no-secret-at-rest check looks for them). */
  readonly seen = new Set<string>();
  constructor(opts: BrowserOptions = {}) {
    this.opts = opts;
  }

  async fetch(url: string, init: BrowserRequest = {}): Promise<Response> {
    return (await this.arm(url, init)).fire();
  }

  /**
   * Open the connection and send the request line and headers, but not the body: fire() sends it.
   * Requests armed first and fired in the same tick reach their servers as close to the same
   * moment as loopback allows (the "same code on two nodes at once" test).
   */
  arm(url: string, init: BrowserRequest = {}): Promise<ArmedRequest> {
    const u = new URL(url);
    if (u.protocol !== 'http:') throw new Error(`Browser speaks http only: ${url}`);
    const headers: Record<string, string> = { connection: 'close' };
    if (this.jar.size > 0) headers.cookie = [...this.jar].map(([k, v]) => `${k}=${v}`).join('; ');
    let body: Buffer | undefined;
    if (init.form) {
      body = Buffer.from(new URLSearchParams(init.form).toString());
      headers['content-type'] = 'application/x-www-form-urlencoded';
      headers['content-length'] = String(body.length);
    }
    const method = init.method ?? (body ? 'POST' : 'GET');
    const timeoutMs = this.opts.timeoutMs ?? BROWSER_TIMEOUT_MS;
    return new Promise<ArmedRequest>((armed, armFailed) => {
      const req = request({
        host: u.hostname,
        port: Number(u.port || 80),
        method,
        path: u.pathname + u.search,
        agent: false,
        headers,
        ...(this.opts.localAddress !== undefined ? { localAddress: this.opts.localAddress } : {}),
      });
      const timer = setTimeout(() => req.destroy(Object.assign(new Error(`no answer within ${timeoutMs} ms`), { code: 'TIMEOUT' })), timeoutMs);
      const answer = new Promise<Response>((resolve, reject) => {
        req.on('error', (e) => {
          clearTimeout(timer);
          const err = new Error(`${method} ${url}: ${e.message}`);
          // Before the connection was ready this fails arm(); after, the answer (a no-op for the other).
          armFailed(err);
          reject(err);
        });
        req.on('response', (res) => {
          const chunks: Buffer[] = [];
          let size = 0;
          res.on('data', (c: Buffer) => {
            size += c.length;
            if (size > MAX_RESPONSE_BYTES) req.destroy(new Error(`response larger than ${MAX_RESPONSE_BYTES} bytes`));
            else chunks.push(c);
          });
          res.on('error', (e) => reject(new Error(`${method} ${url}: ${e.message}`)));
          res.on('end', () => {
            clearTimeout(timer);
            const h = new Headers();
            for (let i = 0; i + 1 < res.rawHeaders.length; i += 2) h.append(res.rawHeaders[i]!, res.rawHeaders[i + 1]!);
            this.takeCookies(h.getSetCookie());
            const status = res.statusCode ?? 0;
            const r = new Response(status === 204 || status === 304 ? null : Buffer.concat(chunks), { status, headers: h });
            Object.defineProperty(r, 'url', { value: url });
            resolve(r);
          });
        });
      });
      // An error before the connection is ready rejects arm(); the answer's rejection is then never awaited.
      answer.catch(() => {});
      req.on('socket', (s) => {
        const ready = () => armed({ fire: () => (req.end(body), answer) });
        if (s.connecting) s.once('connect', ready);
        else ready();
      });
      req.flushHeaders();
    });
  }

  private takeCookies(setCookies: readonly string[]): void {
    for (const c of setCookies) {
      const [pair, ...attrs] = c.split(';');
      const i = pair!.indexOf('=');
      const name = pair!.slice(0, i).trim();
      const value = pair!.slice(i + 1).trim();
      const expired = attrs.some((a) => /^\s*max-age=0\s*$/i.test(a)) || value === '';
      if (expired) this.jar.delete(name);
      else {
        this.jar.set(name, value);
        this.seen.add(value);
      }
    }
  }
}

export interface ParsedForm {
  readonly action: string;
  /** Every named input's value (submit buttons excluded). */
  readonly fields: Record<string, string>;
  readonly inputs: { name: string; type: string }[];
}

/** The first form of a page: its action (resolved against `base`) and every named input's value. */
export function parseForm(html: string, base: string): ParsedForm {
  const form = /<form\b([^>]*)>([\s\S]*?)<\/form>/i.exec(html);
  assert.ok(form, `no form in the page: ${html.slice(0, 500)}`);
  const attr = (tag: string, name: string): string | null => {
    const m = new RegExp(`\\b${name}\\s*=\\s*("([^"]*)"|'([^']*)')`, 'i').exec(tag);
    return m ? decodeEntities(m[2] ?? m[3] ?? '') : null;
  };
  const action = new URL(attr(form[1]!, 'action') ?? '', base).toString();
  const fields: Record<string, string> = {};
  const inputs: { name: string; type: string }[] = [];
  for (const m of form[2]!.matchAll(/<(input|button)\b([^>]*)>/gi)) {
    const name = attr(m[2]!, 'name');
    if (!name) continue;
    const type = (attr(m[2]!, 'type') ?? (m[1]!.toLowerCase() === 'button' ? 'submit' : 'text')).toLowerCase();
    inputs.push({ name, type });
    if (type !== 'submit') fields[name] = attr(m[2]!, 'value') ?? '';
  }
  return { action, fields, inputs };
}

export function decodeEntities(s: string): string {
  return s.replace(/&quot;/g, '"').replace(/&#39;/g, "'").replace(/&#x27;/g, "'").replace(/&lt;/g, '<').replace(/&gt;/g, '>').replace(/&amp;/g, '&');
}

/** Fill a login form: the password input gets the password, the other visible text input the username. */
export function fillLogin(form: ParsedForm, username: string, password: string): Record<string, string> {
  const out = { ...form.fields };
  const pw = form.inputs.find((i) => i.type === 'password');
  const user = form.inputs.find((i) => i.type === 'text' || i.type === 'email' || i.name === 'username');
  assert.ok(pw && user, `login form without username/password inputs: ${JSON.stringify(form.inputs)}`);
  out[pw.name] = password;
  out[user.name] = username;
  return out;
}
