// The CLI's client of the nodes' admin APIs (src/ops/admin.ts).
//
// Which nodes: the admin URLs given with --admin (repeatable or comma-separated), else
// $RAFTAUTH_ADMIN, else the node of a node config (--config FILE: its admin.listen), else the nodes
// of a cluster.json (--cluster FILE, or .raftauth/local/cluster.json when it exists). A cluster.json
// maps node ids to admin URLs; so does a node config (cluster.initialMembers' adminAddress).
//
// Beyond those, the replicated member table carries each member's admin address when it was given
// (issue 13): a node's admin status lists them (memberAddresses), so `status` given one node asks
// every member, and a 409 NOT_LEADER names the leader's admin address (leaderAdmin). Membership
// changes and leader transfer must reach the leader: the client follows NOT_LEADER to it (from the
// id map, the answer's leaderAdmin, or by asking each known admin URL for its status, which names
// the node's id), at most MAX_LEADER_HOPS times. While no leader is known (an election is
// running) it retries until its deadline.
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

/** One node's answer to a status request, or why there was none. */
export interface StatusResult {
  readonly url: string;
  /** The node the URL belongs to, when known (it answered, or the URL came from an id map). */
  readonly id: number | null;
  readonly status: NodeStatus | null;
  readonly error: string | null;
}

/** Options that must be loaded first (a node config is read with the node's own loader). */
export interface DeferredAdminClientOptions {
  readonly load: () => Promise<AdminClientOptions>;
  readonly timeoutMs?: number;
}

export class AdminClient {
  private endpointList: readonly string[] = [];
  private token = '';
  private readonly adminById = new Map<number, string>();
  readonly timeoutMs: number;
  /** Settles once deferred options are loaded; every request waits for it. */
  private readonly setup: Promise<void> | null = null;

  constructor(opts: AdminClientOptions | DeferredAdminClientOptions) {
    this.timeoutMs = opts.timeoutMs ?? DEFAULT_TIMEOUT_MS;
    if ('load' in opts) {
      this.setup = opts.load().then((o) => this.configure(o));
      // Its failure is reported by the first request (awaiting it); not an unhandled rejection.
      this.setup.catch(() => undefined);
    } else this.configure(opts);
  }

  private configure(opts: AdminClientOptions): void {
    if (opts.endpoints.length === 0) throw new UsageError('no admin URL: pass --admin URL, set RAFTAUTH_ADMIN, use --config with a node config, or run next to a cluster.json (--cluster FILE)');
    this.endpointList = [...new Set(opts.endpoints.map(normalizeUrl))];
    this.token = opts.token;
    for (const [id, u] of opts.adminById ?? []) this.adminById.set(id, normalizeUrl(u));
  }

  /** The admin URLs the command was given (or found in a config or cluster.json). */
  get endpoints(): readonly string[] {
    return this.endpointList;
  }

  /** One request to one admin URL. Connection failures throw; HTTP errors are returned. */
  async request(base: string, method: AdminMethod, path: string, body?: unknown, timeoutMs = this.timeoutMs): Promise<AdminResponse> {
    if (this.setup) await this.setup;
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

  /**
   * The status of the node behind one admin URL. The admin addresses its member table lists are
   * remembered for the members whose admin URL is not known otherwise.
   */
  async statusOf(base: string, timeoutMs = this.timeoutMs): Promise<NodeStatus> {
    const r = await this.request(base, 'GET', '/admin/v1/status', undefined, timeoutMs);
    if (r.status !== 200) throw new CliError(`${base}: status failed: ${describeError(r)}`);
    const s = r.body as NodeStatus & { memberAddresses?: unknown };
    if (typeof s?.id !== 'number') throw new CliError(`${base}: status answer has no node id`);
    this.adminById.set(s.id, base);
    // Older nodes send no memberAddresses, and older member records no adminAddress.
    if (Array.isArray(s.memberAddresses)) {
      for (const m of s.memberAddresses as { id?: unknown; adminAddress?: unknown }[]) {
        if (typeof m?.id !== 'number' || typeof m.adminAddress !== 'string' || this.adminById.has(m.id)) continue;
        try {
          this.adminById.set(m.id, normalizeUrl(`http://${m.adminAddress}`));
        } catch {
          // not an address we can use: the member stays without a known admin URL
        }
      }
    }
    return s;
  }

  /**
   * The status of every endpoint, then of every member that they name and that did not answer yet,
   * at the admin URL the member table (or cluster.json, or a node config) gives for it; in
   * parallel. An unreachable node is reported, not thrown; a member with no known admin URL is not
   * asked (buildStatusReport reports it as unknown).
   */
  async statusAll(timeoutMs = Math.min(this.timeoutMs, 5_000)): Promise<StatusResult[]> {
    if (this.setup) await this.setup;
    const idOf = (url: string): number | null => [...this.adminById].find(([, u]) => u === url)?.[0] ?? null;
    const ask = async (url: string, id: number | null): Promise<StatusResult> => {
      try {
        const status = await this.statusOf(url, timeoutMs);
        return { url, id: status.id, status, error: null };
      } catch (e) {
        return { url, id, status: null, error: (e as Error).message };
      }
    };
    const first = await Promise.all(this.endpoints.map((url) => ask(url, idOf(url))));
    const answered = new Set(first.flatMap((r) => (r.status ? [r.status.id] : [])));
    const asked = new Set(this.endpoints);
    const more: Promise<StatusResult>[] = [];
    const members = new Set(first.flatMap((r) => (r.status ? [...r.status.voters, ...r.status.learners] : [])));
    for (const id of [...members].sort((a, b) => a - b)) {
      const url = this.adminById.get(id);
      if (answered.has(id) || url === undefined || asked.has(url)) continue;
      asked.add(url);
      more.push(ask(url, id));
    }
    return [...first, ...(await Promise.all(more))];
  }

  /** The admin URL of node `id`, from the id map or by asking every endpoint who it is. */
  async adminUrlOf(id: number): Promise<string | null> {
    if (this.setup) await this.setup;
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
    if (this.setup) await this.setup;
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
      const b = r.body as { error?: unknown; leader?: unknown; leaderHttp?: unknown; leaderAdmin?: unknown } | null;
      if (r.status !== 409 || b?.error !== 'NOT_LEADER') return r;
      const leader = typeof b.leader === 'number' ? b.leader : 0;
      if (leader !== 0 && typeof b.leaderAdmin === 'string' && !this.adminById.has(leader)) {
        try {
          this.adminById.set(leader, normalizeUrl(`http://${b.leaderAdmin}`));
        } catch {
          // unusable: fall back to asking the known endpoints
        }
      }
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
        throw new CliError(`node ${leader}${http} is the leader, but its admin URL is unknown (its member record has no adminAddress): pass it with --admin, or use --config or --cluster`);
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
  /** A node's config file (--config): its admin API, its token file, the members' admin addresses. */
  readonly configFile?: string | undefined;
  readonly timeoutMs: number | undefined;
}

function readToken(file: string, cwd: string): string {
  try {
    return readFileSync(resolve(cwd, file), 'utf8').trim();
  } catch (e) {
    throw new CliError(`cannot read the admin token file: ${(e as Error).message}`);
  }
}

/** A listen host as a host to connect to: a wildcard means this host (loopback). */
function dialHost(host: string): string {
  if (host === '0.0.0.0') return '127.0.0.1';
  if (host === '::' || host === '[::]') return '[::1]';
  return host.includes(':') && !host.startsWith('[') ? `[${host}]` : host;
}

/**
 * The options from a node config (--config): endpoint its own admin API (admin.listen), token its
 * admin.tokenFile, ids mapped to the adminAddress of cluster.initialMembers. --admin,
 * $RAFTAUTH_ADMIN, --token-file and $RAFTAUTH_ADMIN_TOKEN still win. The config is read with the
 * node's own loader (so a config the node would refuse is refused here too, exit 2).
 */
async function optionsFromNodeConfig(a: ConnectionArgs, file: string, env: NodeJS.ProcessEnv, cwd: string): Promise<AdminClientOptions> {
  // Loaded only when asked for: the other commands need no YAML parser.
  const [{ loadConfig, ConfigError, formatHostPort }, { nodeEnv }] = await Promise.all([import('../server/config.ts'), import('./commands/start.ts')]);
  let c;
  try {
    c = loadConfig(resolve(cwd, file), nodeEnv(env));
  } catch (e) {
    if (e instanceof ConfigError) throw new UsageError(e.message);
    throw e;
  }
  const adminById = new Map<number, string>();
  for (const m of c.cluster.initialMembers) if (m.adminAddress) adminById.set(m.id, `http://${formatHostPort(m.adminAddress)}`);
  const own = c.admin.listen ? `http://${dialHost(c.admin.listen.host)}:${c.admin.listen.port}` : null;
  if (own !== null) adminById.set(c.node.id, own);
  let endpoints = [...a.admin];
  if (endpoints.length === 0 && env.RAFTAUTH_ADMIN) endpoints = env.RAFTAUTH_ADMIN.split(',').map((s) => s.trim()).filter(Boolean);
  if (endpoints.length === 0) {
    if (own === null) throw new UsageError(`${c.file} sets no admin.listen: node ${c.node.id} serves no admin API; pass --admin URL of another node`);
    endpoints = [own];
  }
  const tokenFile = a.tokenFile ?? (env.RAFTAUTH_ADMIN_TOKEN ? undefined : (c.admin.tokenFile ?? undefined));
  const token = tokenFile !== undefined ? readToken(tokenFile, cwd) : env.RAFTAUTH_ADMIN_TOKEN?.trim();
  if (!token) throw new UsageError('no admin token: pass --token-file FILE or set RAFTAUTH_ADMIN_TOKEN');
  return { endpoints, token, adminById };
}

/** Build the client from the command line and the environment (see the file comment for the order). */
export function clientFromArgs(a: ConnectionArgs, env: NodeJS.ProcessEnv, cwd: string): AdminClient {
  if (a.configFile !== undefined) {
    if (a.clusterFile !== undefined) throw new UsageError('give --config or --cluster, not both');
    const configFile = a.configFile;
    return new AdminClient({ load: () => optionsFromNodeConfig(a, configFile, env, cwd), ...(a.timeoutMs !== undefined ? { timeoutMs: a.timeoutMs } : {}) });
  }
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
    token = readToken(tokenFile, cwd);
  } else if (env.RAFTAUTH_ADMIN_TOKEN) {
    token = env.RAFTAUTH_ADMIN_TOKEN.trim();
  }
  if (!token) throw new UsageError('no admin token: pass --token-file FILE or set RAFTAUTH_ADMIN_TOKEN');
  return new AdminClient({ endpoints, token, adminById, ...(a.timeoutMs !== undefined ? { timeoutMs: a.timeoutMs } : {}) });
}
