// The CLI's client of the nodes' admin APIs (src/ops/admin.ts).
//
// Which nodes: the admin URLs given with --admin (repeatable or comma-separated), else
// $RAFTAUTH_ADMIN, else the nodes of a cluster.json (--cluster FILE, or .raftauth/local/cluster.json
// when it exists). A cluster.json also maps node ids to admin URLs.
//
// Membership changes and leader transfer must reach the leader. Another node answers 409
// NOT_LEADER with the leader's id and HTTP address, but not its admin address (a node does not know
// its peers' admin addresses: they are not in the replicated member table). The client finds the
// leader's admin URL from cluster.json's id map or by asking each known admin URL for its status
// (which names the node's id), and follows at most MAX_LEADER_HOPS redirects. While no leader is
// known (an election is running) it retries until its deadline.
import { existsSync, readFileSync } from 'node:fs';
import { dirname, join, resolve } from 'node:path';
import type { NodeStatus } from '../node/api.ts';
import { CliError, UsageError } from './args.ts';
import { DEFAULT_CLUSTER_FILE, readClusterFile } from './cluster-file.ts';

/** Redirects to a new leader followed before giving up (leadership moving again and again). */
export const MAX_LEADER_HOPS = 5;
/** Pause between attempts while the cluster has no leader (elections take ~1 s). */
const NO_LEADER_RETRY_MS = 200;
/** Largest admin response read. Status of a 64-member cluster is a few KiB. */
const MAX_RESPONSE_BYTES = 1024 * 1024;
export const DEFAULT_TIMEOUT_MS = 20_000;

/** HTTP methods of the admin API (PATCH: changing an OAuth client). */
export type AdminMethod = 'GET' | 'POST' | 'PATCH' | 'DELETE';

export interface AdminResponse {
  readonly status: number;
  readonly body: unknown;
  /** The admin URL that answered. */
  readonly url: string;
}

export interface AdminClientOptions {
  /** Admin base URLs, e.g. http://127.0.0.1:19001. At least one. */
  readonly endpoints: readonly string[];
  readonly token: string;
  /** Known node id → admin URL (from cluster.json). */
  readonly adminById?: ReadonlyMap<number, string>;
  /** Deadline of one command, including retries while there is no leader. */
  readonly timeoutMs?: number;
}

function normalizeUrl(raw: string): string {
  let u: URL;
  try {
    u = new URL(raw);
  } catch {
    throw new UsageError(`not a URL: ${JSON.stringify(raw)} (expected e.g. http://127.0.0.1:19001)`);
  }
  if (u.protocol !== 'http:' && u.protocol !== 'https:') throw new UsageError(`admin URL must be http(s): ${raw}`);
  return u.origin;
}

/** An admin API's error body, `{ error, message }`, as one line. */
export function describeError(r: AdminResponse): string {
  const b = r.body as { error?: unknown; message?: unknown } | null;
  const code = typeof b?.error === 'string' ? b.error : `HTTP ${r.status}`;
  return typeof b?.message === 'string' ? `${code}: ${b.message}` : code;
}

export class AdminClient {
  readonly endpoints: readonly string[];
  private readonly token: string;
  private readonly adminById = new Map<number, string>();
  readonly timeoutMs: number;

  constructor(opts: AdminClientOptions) {
    if (opts.endpoints.length === 0) throw new UsageError('no admin URL: pass --admin URL, set RAFTAUTH_ADMIN, or run next to a cluster.json (--cluster FILE)');
    this.endpoints = [...new Set(opts.endpoints.map(normalizeUrl))];
    this.token = opts.token;
    for (const [id, u] of opts.adminById ?? []) this.adminById.set(id, normalizeUrl(u));
    this.timeoutMs = opts.timeoutMs ?? DEFAULT_TIMEOUT_MS;
  }

  /** One request to one admin URL. Connection failures throw; HTTP errors are returned. */
  async request(base: string, method: AdminMethod, path: string, body?: unknown, timeoutMs = this.timeoutMs): Promise<AdminResponse> {
    const headers: Record<string, string> = { authorization: `Bearer ${this.token}` };
    if (body !== undefined) headers['content-type'] = 'application/json';
    let res: Response;
    try {
      res = await fetch(`${base}${path}`, {
        method,
        headers,
        ...(body !== undefined ? { body: JSON.stringify(body) } : {}),
        signal: AbortSignal.timeout(timeoutMs),
      });
    } catch (e) {
      const cause = (e as { cause?: { code?: string; message?: string } }).cause;
      const why = cause?.code ?? cause?.message ?? (e as Error).message;
      throw new CliError(`cannot reach the admin API at ${base}: ${why}`);
    }
    const text = await res.text();
    if (text.length > MAX_RESPONSE_BYTES) throw new CliError(`${base}${path}: response larger than ${MAX_RESPONSE_BYTES} bytes`);
    let parsed: unknown = null;
    if (text.length > 0) {
      try {
        parsed = JSON.parse(text);
      } catch {
        throw new CliError(`${base}${path}: answered HTTP ${res.status} with a body that is not JSON`);
      }
    }
    if (res.status === 401) throw new CliError(`${base}: the admin token was refused (401); check --token-file or RAFTAUTH_ADMIN_TOKEN`);
    return { status: res.status, body: parsed, url: base };
  }

  /** The status of the node behind one admin URL. */
  async statusOf(base: string, timeoutMs = this.timeoutMs): Promise<NodeStatus> {
    const r = await this.request(base, 'GET', '/admin/v1/status', undefined, timeoutMs);
    if (r.status !== 200) throw new CliError(`${base}: status failed: ${describeError(r)}`);
    const s = r.body as NodeStatus;
    if (typeof s?.id !== 'number') throw new CliError(`${base}: status answer has no node id`);
    this.adminById.set(s.id, base);
    return s;
  }

  /** Every endpoint's status, in parallel; an unreachable node is reported, not thrown. */
  async statusAll(timeoutMs = Math.min(this.timeoutMs, 5_000)): Promise<{ url: string; status: NodeStatus | null; error: string | null }[]> {
    return Promise.all(
      this.endpoints.map(async (url) => {
        try {
          return { url, status: await this.statusOf(url, timeoutMs), error: null };
        } catch (e) {
          return { url, status: null, error: (e as Error).message };
        }
      }),
    );
  }

  /** The admin URL of node `id`, from the id map or by asking every endpoint who it is. */
  async adminUrlOf(id: number): Promise<string | null> {
    const known = this.adminById.get(id);
    if (known) return known;
    await this.statusAll();
    return this.adminById.get(id) ?? null;
  }

  /**
   * Send a request that only the leader may serve, following 409 NOT_LEADER to the leader. Tries
   * the endpoints in order until one answers; returns the first answer that is not NOT_LEADER. A
   * request any node serves (the OAuth client and user routes) is answered by the first reachable one.
   */
  async onLeader(method: AdminMethod, path: string, body?: unknown): Promise<AdminResponse> {
    const deadline = Date.now() + this.timeoutMs;
    const remaining = () => Math.max(1, deadline - Date.now());
    let target: string | null = null;
    let hops = 0;
    for (;;) {
      let r: AdminResponse;
      if (target === null) {
        r = await this.firstReachable(method, path, body, remaining);
      } else {
        try {
          r = await this.request(target, method, path, body, remaining());
        } catch (e) {
          // The leader we were sent to is gone (crashed, or stopped since): start over from the
          // endpoints, which will name the next leader once one is elected. Nothing was sent.
          if (!(e instanceof CliError) || !/cannot reach/.test(e.message) || Date.now() >= deadline || ++hops > MAX_LEADER_HOPS) throw e;
          target = null;
          await new Promise((res) => setTimeout(res, Math.min(NO_LEADER_RETRY_MS, remaining())));
          continue;
        }
      }
      const b = r.body as { error?: unknown; leader?: unknown; leaderHttp?: unknown } | null;
      if (r.status !== 409 || b?.error !== 'NOT_LEADER') return r;
      const leader = typeof b.leader === 'number' ? b.leader : 0;
      if (Date.now() >= deadline) throw new CliError(`no leader accepted the request within ${this.timeoutMs} ms (last answer: node at ${r.url} says leader ${leader || 'unknown'})`);
      if (leader === 0) {
        // An election is running: ask again shortly, same node.
        target = r.url;
        await new Promise((res) => setTimeout(res, Math.min(NO_LEADER_RETRY_MS, remaining())));
        continue;
      }
      if (++hops > MAX_LEADER_HOPS) throw new CliError(`leadership moved more than ${MAX_LEADER_HOPS} times while sending the request; try again`);
      const url = await this.adminUrlOf(leader);
      if (url === null) {
        const http = typeof b.leaderHttp === 'string' ? ` (HTTP ${b.leaderHttp})` : '';
        throw new CliError(`node ${leader}${http} is the leader, but its admin URL is unknown: pass it with --admin or use --cluster cluster.json`);
      }
      if (url === r.url) {
        // The node's status said it leads, but it refused as not the leader: it just lost it.
        await new Promise((res) => setTimeout(res, Math.min(NO_LEADER_RETRY_MS, remaining())));
      }
      target = url;
    }
  }

  private async firstReachable(method: AdminMethod, path: string, body: unknown, remaining: () => number): Promise<AdminResponse> {
    const errors: string[] = [];
    for (const url of this.endpoints) {
      try {
        return await this.request(url, method, path, body, remaining());
      } catch (e) {
        if (!(e instanceof CliError) || !/cannot reach/.test(e.message)) throw e;
        errors.push(e.message);
      }
    }
    throw new CliError(errors.join('\n'));
  }
}

export interface ConnectionArgs {
  readonly admin: readonly string[];
  readonly tokenFile: string | undefined;
  readonly clusterFile: string | undefined;
  readonly timeoutMs: number | undefined;
}

/** Build the client from the command line and the environment (see the file comment for the order). */
export function clientFromArgs(a: ConnectionArgs, env: NodeJS.ProcessEnv, cwd: string): AdminClient {
  let endpoints = [...a.admin];
  if (endpoints.length === 0 && env.RAFTAUTH_ADMIN) endpoints = env.RAFTAUTH_ADMIN.split(',').map((s) => s.trim()).filter(Boolean);
  const clusterPath = a.clusterFile !== undefined ? resolve(cwd, a.clusterFile) : endpoints.length === 0 && existsSync(resolve(cwd, DEFAULT_CLUSTER_FILE)) ? resolve(cwd, DEFAULT_CLUSTER_FILE) : null;
  const adminById = new Map<number, string>();
  if (clusterPath !== null) {
    let c;
    try {
      c = readClusterFile(clusterPath);
    } catch (e) {
      throw new CliError(`${(e as Error).message} (npm start writes it while the local cluster runs)`);
    }
    for (const n of c.nodes) adminById.set(n.id, n.admin);
    if (endpoints.length === 0) endpoints = c.nodes.map((n) => n.admin);
  }
  let token: string | undefined;
  // The token file named on the command line wins; then the token in the environment; then the
  // admin.token beside a cluster.json (where `npm start` keeps it).
  const tokenFile = a.tokenFile ?? (env.RAFTAUTH_ADMIN_TOKEN ? undefined : clusterPath !== null && existsSync(join(dirname(clusterPath), 'admin.token')) ? join(dirname(clusterPath), 'admin.token') : undefined);
  if (tokenFile !== undefined) {
    try {
      token = readFileSync(resolve(cwd, tokenFile), 'utf8').trim();
    } catch (e) {
      throw new CliError(`cannot read the admin token file: ${(e as Error).message}`);
    }
  } else if (env.RAFTAUTH_ADMIN_TOKEN) {
    token = env.RAFTAUTH_ADMIN_TOKEN.trim();
  }
  if (!token) throw new UsageError('no admin token: pass --token-file FILE or set RAFTAUTH_ADMIN_TOKEN');
  return new AdminClient({ endpoints, token, adminById, ...(a.timeoutMs !== undefined ? { timeoutMs: a.timeoutMs } : {}) });
}
