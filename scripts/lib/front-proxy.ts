// The front address of a local cluster: a small HTTP reverse proxy on the loopback interface that
// balances round-robin over the nodes that are ready. It is the one URL clients (and the OAuth
// layer, as its issuer) use, like haproxy.cfg in production (cluster-configs/haproxy.cfg).
//
// Its URL is http://localhost:<port>, not http://127.0.0.1:<port>: browsers treat localhost as a
// secure context (W3C Secure Contexts §3.1) and accept it as a WebAuthn RP ID, while on
// 127.0.0.1 every security-key or passkey ceremony fails with a SecurityError. `localhost` may
// resolve to ::1 or to 127.0.0.1, so the front listens on both (the same port); the IPv6 one is
// skipped only where the machine has no IPv6 loopback. A [::1]:<port> taken by another program
// is refused: a browser trying ::1 first would reach that program instead.
//
// Readiness: every checkIntervalMs each node is asked `GET /readyz` (200 = ready). A node that
// answers 404 there (a build without the health endpoints) is asked `GET /v1/status` instead and
// counts as ready when it knows a leader. A node that does not answer, or answers anything else,
// is not ready. A connection refused while proxying marks the node not ready at once.
//
// Queueing: when no node is ready (an election in progress), a request waits for one up to
// queueTimeoutMs (haproxy's `timeout queue`) instead of failing at once: clients see latency, not
// errors, during a failover.
//
// Retries: a request is sent again to another ready node only when it certainly never reached the
// first one: the connection was refused, or a reused keep-alive connection was reset before any
// response (Node's documented race of a server closing an idle socket). Anything else is answered
// 502/504 to the client: a write that may have been applied is not replayed behind its back.
import { Agent, createServer, request } from 'node:http';
import type { IncomingHttpHeaders, IncomingMessage, Server, ServerResponse } from 'node:http';
import type { AddressInfo } from 'node:net';
import { waitFor } from './wait.ts';

/** Largest request body the front accepts (it is buffered so that a refused attempt can be sent again). Nodes default to 64 KiB. */
export const FRONT_MAX_BODY_BYTES = 1024 * 1024;
/** Concurrent client connections the front accepts. */
export const FRONT_MAX_CONNECTIONS = 1024;
/** Upstream sockets kept per node. */
const MAX_SOCKETS_PER_NODE = 256;
/** Attempts on different nodes for one request (see Retries above). */
const MAX_ATTEMPTS = 3;
const CHECK_TIMEOUT_MS = 1_000;
/** Tries to find a port free on both 127.0.0.1 and ::1 when any port will do. */
const MAX_PORT_TRIES = 10;
const MAX_CHECK_BODY_BYTES = 64 * 1024;

// RFC 9110 §7.6.1: connection-specific fields are not forwarded.
const HOP_BY_HOP = new Set(['connection', 'keep-alive', 'proxy-authenticate', 'proxy-authorization', 'proxy-connection', 'te', 'trailer', 'transfer-encoding', 'upgrade', 'host', 'content-length']);

export interface Backend {
  readonly id: number;
  /** e.g. http://127.0.0.1:18001 */
  readonly url: string;
}

export interface FrontProxyOptions {
  readonly backends: readonly Backend[];
  /** Port on 127.0.0.1 (and ::1); 0 = any free port. */
  readonly port: number;
  /** Default 250 ms. */
  readonly checkIntervalMs?: number;
  /** Deadline of one proxied request (the nodes' own deadline is 5 s by default). Default 30 s. */
  readonly upstreamTimeoutMs?: number;
  /** How long a request waits for a ready node when none is. Default 10 s. */
  readonly queueTimeoutMs?: number;
}

interface BackendState {
  readonly b: Backend;
  readonly host: string;
  readonly port: number;
  ready: boolean;
  /** false once /readyz answered 404: then /v1/status decides. */
  hasReadyz: boolean;
}

export class FrontProxy {
  private readonly opts: FrontProxyOptions;
  private readonly states: BackendState[];
  private readonly agent = new Agent({ keepAlive: true, maxSockets: MAX_SOCKETS_PER_NODE });
  /** The listening servers: 127.0.0.1, then ::1 where the machine has it. */
  private servers: Server[] = [];
  private timer: NodeJS.Timeout | null = null;
  private next = 0;
  private readonly checkIntervalMs: number;
  private readonly upstreamTimeoutMs: number;
  private readonly queueTimeoutMs: number;
  /** Requests waiting for a ready node (at most FRONT_MAX_CONNECTIONS: one per connection). */
  private readonly readyWaiters = new Set<() => void>();

  constructor(opts: FrontProxyOptions) {
    this.opts = opts;
    if (opts.backends.length === 0) throw new Error('the front needs at least one node');
    this.states = opts.backends.map((b) => {
      const u = new URL(b.url);
      if (u.protocol !== 'http:') throw new Error(`front: node ${b.id} URL must be http: ${b.url}`);
      return { b, host: u.hostname, port: Number(u.port || 80), ready: false, hasReadyz: true };
    });
    this.checkIntervalMs = opts.checkIntervalMs ?? 250;
    this.upstreamTimeoutMs = opts.upstreamTimeoutMs ?? 30_000;
    this.queueTimeoutMs = opts.queueTimeoutMs ?? 10_000;
  }

  /** Wait until some node is ready (true) or the queue timeout passes (false). */
  private waitForReadyNode(): Promise<boolean> {
    if (this.states.some((s) => s.ready)) return Promise.resolve(true);
    return new Promise<boolean>((resolve) => {
      const done = (v: boolean) => {
        clearTimeout(timer);
        this.readyWaiters.delete(wake);
        resolve(v);
      };
      const wake = () => done(true);
      const timer = setTimeout(() => done(false), this.queueTimeoutMs);
      this.readyWaiters.add(wake);
    });
  }

  /**
   * Listen on 127.0.0.1 and ::1 (the same port) and start checking the nodes. Resolves with the
   * front URL, http://localhost:<port>. With port 0, a free port is looked for on both addresses
   * (a bounded number of tries).
   */
  async start(): Promise<string> {
    for (let attempt = 1; ; attempt++) {
      const v4 = await this.listen(this.opts.port, '127.0.0.1');
      const port = (v4.address() as AddressInfo).port;
      try {
        const v6 = await this.listen(port, '::1');
        this.servers = [v4, v6];
        break;
      } catch (e) {
        const code = (e as NodeJS.ErrnoException).code;
        // No IPv6 loopback on this machine: localhost can only mean 127.0.0.1 here.
        if (code === 'EADDRNOTAVAIL' || code === 'EAFNOSUPPORT') {
          this.servers = [v4];
          break;
        }
        await closeServer(v4);
        if (code === 'EADDRINUSE' && this.opts.port === 0 && attempt < MAX_PORT_TRIES) continue;
        if (code === 'EADDRINUSE') {
          throw new Error(`[::1]:${port} is in use by another program; a browser opening http://localhost:${port} could reach it instead of the front`, { cause: e });
        }
        throw e;
      }
    }
    const tick = async () => {
      await this.checkAll();
      if (this.servers.length > 0) this.timer = setTimeout(() => void tick(), this.checkIntervalMs);
    };
    await this.checkAll();
    this.timer = setTimeout(() => void tick(), this.checkIntervalMs);
    return this.url;
  }

  private async listen(port: number, host: string): Promise<Server> {
    const server = createServer((req, res) => void this.handle(req, res));
    server.maxConnections = FRONT_MAX_CONNECTIONS;
    await new Promise<void>((resolve, reject) => {
      server.once('error', reject);
      server.listen(port, host, () => {
        server.off('error', reject);
        resolve();
      });
    });
    return server;
  }

  /** http://localhost:<port> (see the header: a secure context, where WebAuthn works). */
  get url(): string {
    const first = this.servers[0];
    if (!first) throw new Error('front not started');
    return `http://localhost:${(first.address() as AddressInfo).port}`;
  }

  /** The port the front listens on (on 127.0.0.1, and on ::1 where the machine has it). */
  get port(): number {
    const first = this.servers[0];
    if (!first) throw new Error('front not started');
    return (first.address() as AddressInfo).port;
  }

  /**
   * Resolve once at least `min` nodes are ready, checking them all now and then every poll, so a
   * caller that announces the front URL knows the proxy will route (its periodic round may not
   * have run yet right after a start).
   */
  async waitUntilReady(min: number, timeoutMs: number): Promise<void> {
    await waitFor(
      `${min} ready node(s) behind the front address`,
      async () => {
        await this.checkAll();
        return this.readyNodes().length >= min;
      },
      timeoutMs,
    );
  }

  /** Requests waiting for a ready node right now. */
  queued(): number {
    return this.readyWaiters.size;
  }

  /** Ids of the nodes currently considered ready. */
  readyNodes(): number[] {
    return this.states.filter((s) => s.ready).map((s) => s.b.id);
  }

  async close(): Promise<void> {
    for (const w of [...this.readyWaiters]) w();
    const servers = this.servers;
    this.servers = [];
    if (this.timer) clearTimeout(this.timer);
    this.timer = null;
    await Promise.all(servers.map(closeServer));
    this.agent.destroy();
  }

  private async get(s: BackendState, path: string): Promise<{ status: number; body: string }> {
    const r = await fetch(`${s.b.url}${path}`, { signal: AbortSignal.timeout(CHECK_TIMEOUT_MS) });
    const body = await r.text();
    return { status: r.status, body: body.slice(0, MAX_CHECK_BODY_BYTES) };
  }

  private async check(s: BackendState): Promise<boolean> {
    if (s.hasReadyz) {
      const r = await this.get(s, '/readyz');
      if (r.status !== 404) return r.status === 200;
      s.hasReadyz = false;
    }
    const r = await this.get(s, '/v1/status?cached=1');
    if (r.status !== 200) return false;
    const st = JSON.parse(r.body) as { leader?: unknown };
    return typeof st.leader === 'number' && st.leader !== 0;
  }

  private async checkAll(): Promise<void> {
    await Promise.all(
      this.states.map(async (s) => {
        try {
          s.ready = await this.check(s);
        } catch {
          s.ready = false;
        }
      }),
    );
    if (this.readyWaiters.size > 0 && this.states.some((s) => s.ready)) for (const w of [...this.readyWaiters]) w();
  }

  private pick(exclude: ReadonlySet<number>): BackendState | null {
    const n = this.states.length;
    for (let i = 0; i < n; i++) {
      const s = this.states[(this.next + i) % n]!;
      if (s.ready && !exclude.has(s.b.id)) {
        this.next = (this.next + i + 1) % n;
        return s;
      }
    }
    return null;
  }

  private async handle(req: IncomingMessage, res: ServerResponse): Promise<void> {
    const fail = (status: number, error: string, message: string) => {
      if (res.headersSent) {
        res.destroy();
        return;
      }
      res.writeHead(status, { 'content-type': 'application/json' });
      res.end(JSON.stringify({ error, message }));
    };
    const chunks: Buffer[] = [];
    let size = 0;
    try {
      for await (const c of req) {
        size += (c as Buffer).length;
        if (size > FRONT_MAX_BODY_BYTES) {
          fail(413, 'PAYLOAD_TOO_LARGE', `request body over ${FRONT_MAX_BODY_BYTES} bytes`);
          req.destroy();
          return;
        }
        chunks.push(c as Buffer);
      }
    } catch {
      return; // the client went away
    }
    const body = Buffer.concat(chunks);
    const headers: IncomingHttpHeaders = {};
    for (const [k, v] of Object.entries(req.headers)) if (!HOP_BY_HOP.has(k) && v !== undefined) headers[k] = v;
    headers['x-forwarded-for'] = req.socket.remoteAddress ?? '';
    headers['x-forwarded-host'] = req.headers.host ?? '';
    headers['x-forwarded-proto'] = 'http';
    if (body.length > 0) headers['content-length'] = String(body.length);

    const tried = new Set<number>();
    if (!(await this.waitForReadyNode())) {
      fail(503, 'UNAVAILABLE', `no node of the cluster became ready within ${this.queueTimeoutMs} ms`);
      return;
    }
    for (let attempt = 0; attempt < MAX_ATTEMPTS; attempt++) {
      const s = this.pick(tried);
      if (!s) break;
      tried.add(s.b.id);
      const outcome = await this.forward(s, req, res, headers, body);
      if (outcome === 'done') return;
      if (outcome === 'refused') s.ready = false;
    }
    fail(503, 'UNAVAILABLE', tried.size === 0 ? 'no node of the cluster is ready' : `no ready node accepted the request (tried nodes ${[...tried].join(', ')})`);
  }

  /** 'done': answered (or failed in a way that must not be retried); 'refused'/'retry': the node never saw it. */
  private forward(s: BackendState, req: IncomingMessage, res: ServerResponse, headers: IncomingHttpHeaders, body: Buffer): Promise<'done' | 'refused' | 'retry'> {
    return new Promise((resolve) => {
      const up = request({ host: s.host, port: s.port, method: req.method, path: req.url, headers, agent: this.agent, timeout: this.upstreamTimeoutMs }, (upRes) => {
        const h: Record<string, string | string[]> = {};
        for (const [k, v] of Object.entries(upRes.headers)) if (!HOP_BY_HOP.has(k) && v !== undefined) h[k] = v;
        res.writeHead(upRes.statusCode ?? 502, h);
        upRes.pipe(res);
        upRes.once('error', () => res.destroy());
        res.once('close', () => {
          if (!upRes.complete) upRes.destroy();
          resolve('done');
        });
      });
      up.once('timeout', () => up.destroy(Object.assign(new Error('upstream timeout'), { code: 'UPSTREAM_TIMEOUT' })));
      up.once('error', (e: NodeJS.ErrnoException) => {
        if (res.headersSent) {
          res.destroy();
          resolve('done');
          return;
        }
        if (e.code === 'ECONNREFUSED') return resolve('refused');
        if (e.code === 'ECONNRESET' && up.reusedSocket) return resolve('retry');
        const timeout = e.code === 'UPSTREAM_TIMEOUT';
        res.writeHead(timeout ? 504 : 502, { 'content-type': 'application/json' });
        res.end(JSON.stringify({ error: timeout ? 'TIMEOUT' : 'BAD_GATEWAY', message: `node ${s.b.id}: ${e.message}`, indeterminate: req.method !== 'GET' }));
        resolve('done');
      });
      up.end(body);
    });
  }
}

async function closeServer(server: Server): Promise<void> {
  server.closeAllConnections();
  await new Promise<void>((r) => server.close(() => r()));
}
