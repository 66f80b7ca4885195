// A reusable launcher for a local raftauth cluster: real node processes on loopback, run from the
// built program (`node --enable-source-maps dist/main.js --config FILE`; startCluster builds dist/
// first when it is missing or older than src/). Used by `npm start` (scripts/start-local.ts) and
// the benchmarks.
//
// Usage:
//   const spec = loadClusterSpec('cluster-configs/local-3.yaml');          // or loopbackSpec({ dir, nodes: 3 })
//   const cluster = await startCluster(spec);                               // credentials, configs, processes
//   const { leader } = await cluster.waitForLeader(10_000);
//   cluster.kill(leader, 'SIGKILL'); await cluster.exited(leader); cluster.restart(leader);
//   await cluster.stop();                                                   // SIGTERM, SIGKILL after a bound
//
// A cluster description (YAML, the files in cluster-configs/) is expanded into one node config per
// node. Its keys:
//   name       label for logs (default: the file name)
//   dir        directory of certificates, configs and data; relative to the working directory
//   front      127.0.0.1:PORT, where the front proxy of `npm start` listens (also on [::1]:PORT; port
//              0: any free port); default 127.0.0.1:8080. Its URL, the issuer, is http://localhost:PORT:
//              a secure context, where browsers allow WebAuthn (scripts/lib/front-proxy.ts)
//   basePorts  { raft, http, admin }: the i-th node of `nodes` (from 0) listens on base + i
//   settings   sections copied into every node's config: raft (but not listen), http (but not
//              listen), log; validated by the node's config loader (src/server/config.ts)
//   nodes      list of { id, zone?, ports?: { raft, http, admin } } (ports override basePorts)
// Every node address is 127.0.0.1: a local cluster never listens on anything but loopback.
//
// Layout of `dir` (created as needed, reused on the next start):
//   certs/ca.crt, certs/ca.key, certs/node<id>.crt, certs/node<id>.key   (keys 0600)
//   admin.token                                                          (0600)
//   members.json      the node ids the data was created for; a description with other ids is
//                     refused (a bootstrapped node ignores initialMembers, so silently mixing
//                     a 3-node data set with a 5-node description would not do what it says)
//   n<id>/node.yaml   the node's config, rewritten at every start from the description
//   n<id>/data/       the node's LevelDB store
import { spawn } from 'node:child_process';
import type { ChildProcess } from 'node:child_process';
import { existsSync, readFileSync } from 'node:fs';
import { mkdir, readFile, writeFile } from 'node:fs/promises';
import { basename, join, resolve } from 'node:path';
import { createInterface } from 'node:readline';
import { fileURLToPath } from 'node:url';
import { parse as parseYaml, stringify } from 'yaml';
import { caPaths, ensureAdminToken, initCa, issueNodeCertFiles, nodeCertName } from '../../src/cli/cert-files.ts';
import { nodeEnv } from '../../src/cli/commands/start.ts';
import { loadConfig } from '../../src/server/config.ts';
import { MasterKeyRing } from '../../src/crypto/seal.ts';
import { buildIfStale, distArgs } from './dist.ts';

/** The repository, derived from this file's location. */
export const REPO_ROOT = fileURLToPath(new URL('../..', import.meta.url));

export const LOOPBACK = '127.0.0.1';
/** Most nodes in a description (the node config allows 64 initial members). */
export const MAX_NODES = 64;
/** Default bound between SIGTERM and SIGKILL in stop(). */
export const STOP_GRACE_MS = 10_000;
/** Characters of each node's output kept for error messages. */
const LOG_TAIL_CHARS = 8_000;
/** Poll interval of waitForLeader. */
const POLL_MS = 50;
/** Deadline of one status request in waitForLeader. */
const STATUS_TIMEOUT_MS = 1_000;
/** Largest description file read. */
const MAX_SPEC_BYTES = 256 * 1024;

export interface NodePorts {
  readonly raft: number;
  readonly http: number;
  readonly admin: number;
}

export interface NodeSpec {
  readonly id: number;
  readonly zone: string | null;
  readonly ports: NodePorts;
}

/** Sections of a node config a description may set for every node. */
export type NodeSettings = Partial<Record<'raft' | 'http' | 'log' | 'oauth', Record<string, unknown>>>;

export interface ClusterSpec {
  readonly name: string;
  /** Absolute. */
  readonly dir: string;
  /** Port of the front proxy (npm start); 0 = any free port. It listens on 127.0.0.1 and ::1; its URL is http://localhost:<port>. */
  readonly frontPort: number;
  readonly nodes: readonly NodeSpec[];
  readonly settings: NodeSettings;
  /**
   * The OAuth issuer every node uses (oauth.issuer): npm start's front URL, known once the front
   * listens. Unset: each node's own http URL (right only for tests that talk to one node).
   */
  readonly issuer?: string;
}

export class SpecError extends Error {
  constructor(source: string, detail: string) {
    super(`cluster description ${source}: ${detail}`);
    this.name = 'SpecError';
  }
}

// ---------------------------------------------------------------------------------------------
// Descriptions

function isObject(v: unknown): v is Record<string, unknown> {
  return typeof v === 'object' && v !== null && !Array.isArray(v);
}

function port(v: unknown, what: string, source: string, allowZero = false): number {
  if (typeof v !== 'number' || !Number.isSafeInteger(v) || v < (allowZero ? 0 : 1) || v > 65535) throw new SpecError(source, `${what} must be a port from ${allowZero ? 0 : 1} to 65535 (got ${JSON.stringify(v)})`);
  return v;
}

function onlyKeys(o: Record<string, unknown>, keys: readonly string[], what: string, source: string): void {
  for (const k of Object.keys(o)) if (!keys.includes(k)) throw new SpecError(source, `${what}${k} is not a known key (expected ${keys.join(', ')})`);
}

/**
 * Parse a description (see the file comment). `dirOverride` replaces its `dir`; relative dirs
 * resolve against `cwd`.
 */
export function parseClusterSpec(text: string, source: string, opts: { cwd?: string; dirOverride?: string; frontPortOverride?: number } = {}): ClusterSpec {
  let raw: unknown;
  try {
    raw = parseYaml(text);
  } catch (e) {
    throw new SpecError(source, `not YAML: ${(e as Error).message}`);
  }
  if (!isObject(raw)) throw new SpecError(source, 'must be a mapping');
  onlyKeys(raw, ['name', 'dir', 'front', 'basePorts', 'settings', 'nodes'], '', source);
  const name = raw.name === undefined ? basename(source).replace(/\.ya?ml$/, '') : raw.name;
  if (typeof name !== 'string' || !/^[A-Za-z0-9._-]{1,64}$/.test(name)) throw new SpecError(source, 'name must be 1-64 letters, digits, dots, dashes or underscores');
  const dirRaw = opts.dirOverride ?? raw.dir;
  if (typeof dirRaw !== 'string' || dirRaw.length === 0) throw new SpecError(source, 'dir must be a path');
  const dir = resolve(opts.cwd ?? process.cwd(), dirRaw);

  let frontPort = 8080;
  if (raw.front !== undefined) {
    const m = typeof raw.front === 'string' ? /^127\.0\.0\.1:(\d{1,5})$/.exec(raw.front) : null;
    if (!m) throw new SpecError(source, `front must be "127.0.0.1:PORT" (got ${JSON.stringify(raw.front)})`);
    frontPort = port(Number(m[1]), 'front', source, true);
  }
  if (opts.frontPortOverride !== undefined) frontPort = port(opts.frontPortOverride, 'front port', source, true);

  let base: NodePorts | null = null;
  if (raw.basePorts !== undefined) {
    if (!isObject(raw.basePorts)) throw new SpecError(source, 'basePorts must be { raft, http, admin }');
    onlyKeys(raw.basePorts, ['raft', 'http', 'admin'], 'basePorts.', source);
    base = { raft: port(raw.basePorts.raft, 'basePorts.raft', source), http: port(raw.basePorts.http, 'basePorts.http', source), admin: port(raw.basePorts.admin, 'basePorts.admin', source) };
  }

  const settings: NodeSettings = {};
  if (raw.settings !== undefined) {
    if (!isObject(raw.settings)) throw new SpecError(source, 'settings must be a mapping of config sections');
    onlyKeys(raw.settings, ['raft', 'http', 'log', 'oauth'], 'settings.', source);
    for (const [section, body] of Object.entries(raw.settings)) {
      if (!isObject(body)) throw new SpecError(source, `settings.${section} must be a mapping`);
      if ('listen' in body) throw new SpecError(source, `settings.${section}.listen is derived from the node's ports; set basePorts or the node's ports instead`);
      settings[section as keyof NodeSettings] = body;
    }
  }

  if (!Array.isArray(raw.nodes) || raw.nodes.length === 0 || raw.nodes.length > MAX_NODES) throw new SpecError(source, `nodes must be a list of 1 to ${MAX_NODES} nodes`);
  const nodes = raw.nodes.map((n: unknown, i): NodeSpec => {
    if (!isObject(n)) throw new SpecError(source, `nodes[${i}] must be a mapping { id, zone?, ports? }`);
    onlyKeys(n, ['id', 'zone', 'ports'], `nodes[${i}].`, source);
    if (typeof n.id !== 'number' || !Number.isSafeInteger(n.id) || n.id < 1 || n.id > 2 ** 31 - 1) throw new SpecError(source, `nodes[${i}].id must be a positive integer`);
    if (n.zone !== undefined && (typeof n.zone !== 'string' || n.zone.length === 0 || n.zone.length > 256)) throw new SpecError(source, `nodes[${i}].zone must be a non-empty string`);
    let ports: NodePorts;
    if (n.ports !== undefined) {
      if (!isObject(n.ports)) throw new SpecError(source, `nodes[${i}].ports must be { raft, http, admin }`);
      onlyKeys(n.ports, ['raft', 'http', 'admin'], `nodes[${i}].ports.`, source);
      ports = { raft: port(n.ports.raft, `nodes[${i}].ports.raft`, source), http: port(n.ports.http, `nodes[${i}].ports.http`, source), admin: port(n.ports.admin, `nodes[${i}].ports.admin`, source) };
    } else if (base !== null) {
      ports = { raft: base.raft + i, http: base.http + i, admin: base.admin + i };
      port(ports.raft, `basePorts.raft + ${i}`, source);
      port(ports.http, `basePorts.http + ${i}`, source);
      port(ports.admin, `basePorts.admin + ${i}`, source);
    } else {
      throw new SpecError(source, `nodes[${i}] has no ports and there are no basePorts`);
    }
    return { id: n.id, zone: (n.zone as string | undefined) ?? null, ports };
  });
  const ids = new Set<number>();
  const used = new Set<number>(frontPort === 0 ? [] : [frontPort]);
  for (const n of nodes) {
    if (ids.has(n.id)) throw new SpecError(source, `node id ${n.id} appears twice`);
    ids.add(n.id);
    for (const p of [n.ports.raft, n.ports.http, n.ports.admin]) {
      if (used.has(p)) throw new SpecError(source, `port ${p} is used twice`);
      used.add(p);
    }
  }
  return { name, dir, frontPort, nodes, settings };
}

export function loadClusterSpec(file: string, opts: { cwd?: string; dirOverride?: string; frontPortOverride?: number } = {}): ClusterSpec {
  const text = readFileSync(file, 'utf8');
  if (text.length > MAX_SPEC_BYTES) throw new SpecError(file, `larger than ${MAX_SPEC_BYTES} bytes`);
  return parseClusterSpec(text, file, opts);
}

export { freePort } from './wait.ts';
import { freePort } from './wait.ts';

/** A description on free loopback ports, for tests and benchmarks: nodes 1..count. */
export async function loopbackSpec(opts: { dir: string; nodes: number; name?: string; settings?: NodeSettings; zones?: readonly string[] }): Promise<ClusterSpec> {
  if (!Number.isSafeInteger(opts.nodes) || opts.nodes < 1 || opts.nodes > MAX_NODES) throw new RangeError(`nodes must be 1..${MAX_NODES}`);
  const nodes: NodeSpec[] = [];
  const taken = new Set<number>();
  const pick = async (): Promise<number> => {
    for (;;) {
      const p = await freePort();
      if (!taken.has(p)) {
        taken.add(p);
        return p;
      }
    }
  };
  for (let i = 0; i < opts.nodes; i++) {
    nodes.push({ id: i + 1, zone: opts.zones ? (opts.zones[i % opts.zones.length] ?? null) : null, ports: { raft: await pick(), http: await pick(), admin: await pick() } });
  }
  return { name: opts.name ?? `loopback-${opts.nodes}`, dir: resolve(opts.dir), frontPort: 0, nodes, settings: opts.settings ?? { raft: { tickMs: 50 }, http: { workers: 1 } } };
}

// ---------------------------------------------------------------------------------------------
// Files: credentials and per-node configs

export interface NodeFiles {
  readonly id: number;
  readonly configFile: string;
  readonly dataDir: string;
}

export interface PreparedCluster {
  readonly certsDir: string;
  readonly tokenFile: string;
  readonly nodes: readonly NodeFiles[];
  /** What was created this time (empty on a restart), for the start-up message. */
  readonly created: readonly string[];
}

export const httpUrl = (n: NodeSpec): string => `http://${LOOPBACK}:${n.ports.http}`;
export const adminUrl = (n: NodeSpec): string => `http://${LOOPBACK}:${n.ports.admin}`;

/** The YAML config of one node of `spec` (paths relative to n<id>/node.yaml). */
export function nodeConfigYaml(spec: ClusterSpec, n: NodeSpec): string {
  const cfg = {
    node: { id: n.id, dataDir: 'data', ...(n.zone !== null ? { zone: n.zone } : {}) },
    cluster: {
      // adminAddress: recorded in the member table, so `raftauth status` given one node finds the rest.
      initialMembers: spec.nodes.map((m) => ({ id: m.id, raftAddress: `${LOOPBACK}:${m.ports.raft}`, httpAddress: `${LOOPBACK}:${m.ports.http}`, adminAddress: `${LOOPBACK}:${m.ports.admin}` })),
    },
    ...spec.settings,
    ...(spec.issuer !== undefined ? { oauth: { ...spec.settings.oauth, issuer: spec.issuer } } : {}),
    crypto: { masterKeyFile: '../master.key' },
    tls: { ca: '../certs/ca.crt', cert: `../certs/${nodeCertName(n.id)}.crt`, key: `../certs/${nodeCertName(n.id)}.key` },
    admin: { listen: `${LOOPBACK}:${n.ports.admin}`, tokenFile: '../admin.token' },
  };
  return `# Generated by scripts/lib/local-cluster.ts from the cluster description "${spec.name}"; rewritten at every start.\n${stringify(cfg)}`;
}

/**
 * Create what is missing (CA, node certificates, admin token; keys 0600), check the data belongs
 * to this set of nodes, write every node's config and validate it with the node's own loader.
 */
export async function prepareCluster(spec: ClusterSpec): Promise<PreparedCluster> {
  const created: string[] = [];
  await mkdir(spec.dir, { recursive: true, mode: 0o700 });
  const certsDir = join(spec.dir, 'certs');
  const ca = caPaths(certsDir);
  const haveCert = existsSync(ca.certPath);
  const haveKey = existsSync(ca.keyPath);
  if (haveCert !== haveKey) throw new Error(`${certsDir} has ${haveCert ? 'ca.crt but no ca.key' : 'ca.key but no ca.crt'}; restore the missing file or remove both to start over (a new CA needs new node certificates)`);
  if (!haveCert) {
    await initCa(certsDir);
    created.push(ca.certPath, ca.keyPath);
  }
  for (const n of spec.nodes) {
    const crt = join(certsDir, `${nodeCertName(n.id)}.crt`);
    const key = join(certsDir, `${nodeCertName(n.id)}.key`);
    if (existsSync(crt) && existsSync(key)) continue;
    if (existsSync(crt) !== existsSync(key)) throw new Error(`${certsDir}: node ${n.id} has only one of its certificate and key; remove the other to have both issued again`);
    await issueNodeCertFiles(certsDir, n.id, { outDir: certsDir });
    created.push(crt, key);
  }
  const tokenFile = join(spec.dir, 'admin.token');
  if (await ensureAdminToken(tokenFile)) created.push(tokenFile);
  // The master key wrapping the cluster's data keys (crypto.masterKeyFile): one for every node of
  // this local cluster. A production cluster keeps it out of the data directory (docs/operations.md).
  const masterKeyFile = join(spec.dir, 'master.key');
  if (!existsSync(masterKeyFile)) {
    await writeFile(masterKeyFile, MasterKeyRing.generateText(), { mode: 0o600, flag: 'wx' });
    created.push(masterKeyFile);
  }

  const ids = spec.nodes.map((n) => n.id).sort((a, b) => a - b);
  const membersFile = join(spec.dir, 'members.json');
  if (existsSync(membersFile)) {
    const was = (JSON.parse(await readFile(membersFile, 'utf8')) as { ids?: unknown }).ids;
    if (!Array.isArray(was) || was.join(',') !== ids.join(',')) {
      throw new Error(`${spec.dir} holds the data of nodes ${Array.isArray(was) ? was.join(', ') : '?'}, but the description "${spec.name}" lists nodes ${ids.join(', ')}; use another directory (--dir) or remove ${spec.dir}`);
    }
  } else {
    await writeFile(membersFile, `${JSON.stringify({ ids })}\n`);
  }

  const nodes: NodeFiles[] = [];
  for (const n of spec.nodes) {
    const nodeDir = join(spec.dir, `n${n.id}`);
    await mkdir(nodeDir, { recursive: true, mode: 0o700 });
    const configFile = join(nodeDir, 'node.yaml');
    await writeFile(configFile, nodeConfigYaml(spec, n));
    // Refuse a bad description here, with the node's own message, before any process starts.
    loadConfig(configFile, nodeEnv(process.env));
    nodes.push({ id: n.id, configFile, dataDir: join(nodeDir, 'data') });
  }
  return { certsDir, tokenFile, nodes, created };
}

// ---------------------------------------------------------------------------------------------
// Processes

export interface ExitInfo {
  readonly code: number | null;
  readonly signal: NodeJS.Signals | null;
}

export interface LaunchOptions {
  /** Called for each line a node prints; default: the line prefixed `[n<id>] ` on this process's stdout/stderr. */
  readonly onLine?: (id: number, line: string, stream: 'stdout' | 'stderr') => void;
  /** Called when a node process exits, whatever the reason (also during stop()). */
  readonly onExit?: (id: number, info: ExitInfo) => void;
  /** Extra environment for the nodes (RAFTAUTH_* overrides, test switches). */
  readonly env?: NodeJS.ProcessEnv;
}

export interface RunningNode {
  readonly id: number;
  readonly spec: NodeSpec;
  readonly httpUrl: string;
  readonly adminUrl: string;
  readonly configFile: string;
  /** The node's primary process id; undefined while it is not running. */
  readonly pid: number | undefined;
  readonly running: boolean;
}

function defaultOnLine(id: number, line: string, stream: 'stdout' | 'stderr'): void {
  (stream === 'stdout' ? process.stdout : process.stderr).write(`[n${id}] ${line}\n`);
}

interface Slot {
  readonly node: NodeSpec;
  readonly files: NodeFiles;
  child: ChildProcess | null;
  exit: Promise<ExitInfo> | null;
  tail: string;
}

export class LocalCluster {
  readonly spec: ClusterSpec;
  readonly prepared: PreparedCluster;
  private readonly opts: LaunchOptions;
  private readonly slots = new Map<number, Slot>();
  private stopping = false;

  constructor(
    spec: ClusterSpec,
    prepared: PreparedCluster,
    opts: LaunchOptions = {},
  ) {
    this.spec = spec;
    this.prepared = prepared;
    this.opts = opts;
    for (const n of spec.nodes) {
      const files = prepared.nodes.find((f) => f.id === n.id);
      if (!files) throw new Error(`node ${n.id} was not prepared`); // assertion
      this.slots.set(n.id, { node: n, files, child: null, exit: null, tail: '' });
    }
  }

  get adminToken(): string {
    return readFileSync(this.prepared.tokenFile, 'utf8').trim();
  }

  get nodes(): RunningNode[] {
    return [...this.slots.values()].map((s) => ({
      id: s.node.id,
      spec: s.node,
      httpUrl: httpUrl(s.node),
      adminUrl: adminUrl(s.node),
      configFile: s.files.configFile,
      pid: s.child && s.child.exitCode === null && s.child.signalCode === null ? s.child.pid : undefined,
      running: s.child !== null && s.child.exitCode === null && s.child.signalCode === null,
    }));
  }

  node(id: number): RunningNode {
    const n = this.nodes.find((x) => x.id === id);
    if (!n) throw new Error(`no node ${id} in cluster ${this.spec.name}`);
    return n;
  }

  private slot(id: number): Slot {
    const s = this.slots.get(id);
    if (!s) throw new Error(`no node ${id} in cluster ${this.spec.name}`);
    return s;
  }

  /** The last LOG_TAIL_CHARS characters node `id` printed (for error messages). */
  logTail(id: number): string {
    return this.slot(id).tail;
  }

  /** Start node `id`'s process (it must not be running). */
  launch(id: number): void {
    const s = this.slot(id);
    if (this.stopping) throw new Error('the cluster is stopping');
    if (s.child && s.child.exitCode === null && s.child.signalCode === null) throw new Error(`node ${id} is already running (pid ${s.child.pid})`);
    // BENCH_RAFTAUTH_NODE_ARGS: extra node flags for profiling the benchmarks (e.g. "--cpu-prof
    // --cpu-prof-dir=DIR"; node refuses --cpu-prof in NODE_OPTIONS). The workers inherit them.
    const extra = (process.env.BENCH_RAFTAUTH_NODE_ARGS ?? '').split(' ').filter((x) => x.length > 0);
    const child = spawn(process.execPath, [...extra, ...distArgs(['--config', s.files.configFile])], {
      cwd: REPO_ROOT,
      env: { ...nodeEnv(process.env), ...this.opts.env },
      stdio: ['ignore', 'pipe', 'pipe'],
      // Its own process group: a Ctrl-C in the terminal reaches only the launcher, which stops the
      // nodes in order (a node takes a second signal during its graceful stop as "exit now").
      detached: true,
    });
    this.installExitGuard();
    s.child = child;
    s.tail = '';
    const onLine = this.opts.onLine ?? defaultOnLine;
    for (const stream of ['stdout', 'stderr'] as const) {
      const rl = createInterface({ input: child[stream]!, crlfDelay: Infinity });
      rl.on('line', (line) => {
        s.tail = (s.tail + line + '\n').slice(-LOG_TAIL_CHARS);
        onLine(id, line, stream);
      });
    }
    s.exit = new Promise<ExitInfo>((res) => {
      child.once('error', (e) => {
        s.tail += `spawn failed: ${e.message}\n`;
        res({ code: null, signal: null });
      });
      child.once('exit', (code, signal) => {
        const info = { code, signal };
        this.opts.onExit?.(id, info);
        res(info);
      });
    });
  }

  private exitGuard: (() => void) | null = null;

  /**
   * Detached nodes outlive the launcher unless killed. If the launcher exits without stop() (an
   * uncaught error, process.exit), kill them synchronously on the way out. (A SIGKILL of the
   * launcher itself cannot be caught; its nodes then keep running and must be killed by pid, which
   * cluster.json lists.)
   */
  private installExitGuard(): void {
    if (this.exitGuard) return;
    this.exitGuard = () => {
      for (const s of this.slots.values()) if (s.child && s.child.exitCode === null && s.child.signalCode === null) s.child.kill('SIGKILL');
    };
    process.on('exit', this.exitGuard);
  }

  /** Send `signal` to node `id`'s primary (SIGKILL for a crash; its HTTP workers follow on disconnect). */
  kill(id: number, signal: NodeJS.Signals): void {
    const c = this.slot(id).child;
    if (c && c.exitCode === null && c.signalCode === null) c.kill(signal);
  }

  /** Resolves when node `id`'s process has exited (at once if it is not running). */
  async exited(id: number): Promise<ExitInfo> {
    return (await this.slot(id).exit) ?? { code: null, signal: null };
  }

  /** Start node `id` again after it exited (same config, same data). */
  restart(id: number): void {
    this.launch(id);
  }

  /**
   * Wait until the running nodes agree on a leader: one reports role leader, and a majority of
   * the description's nodes report that leader in the same term. Fails early when a node exits
   * during the wait or when `timeoutMs` passes, quoting the nodes' last output.
   */
  async waitForLeader(timeoutMs: number): Promise<{ leader: number; term: number }> {
    const deadline = Date.now() + timeoutMs;
    const majority = Math.floor(this.spec.nodes.length / 2) + 1;
    for (;;) {
      const dead = [...this.slots.values()].filter((s) => s.child === null || s.child.exitCode !== null || s.child.signalCode !== null);
      if (this.spec.nodes.length - dead.length < majority) {
        const s = dead[0]!;
        throw new Error(`node ${s.node.id} is not running (exit code ${s.child?.exitCode ?? '-'}, signal ${s.child?.signalCode ?? '-'}); no majority can form. Its last output:\n${s.tail}`);
      }
      const views = await Promise.all(
        [...this.slots.values()].map(async (s) => {
          try {
            const r = await fetch(`${httpUrl(s.node)}/v1/status`, { signal: AbortSignal.timeout(STATUS_TIMEOUT_MS) });
            return r.ok ? ((await r.json()) as { id: number; role: string; leader: number; term: number }) : null;
          } catch {
            return null;
          }
        }),
      );
      const leaderView = views.find((v) => v?.role === 'leader');
      if (leaderView) {
        const agree = views.filter((v) => v && v.leader === leaderView.id && v.term === leaderView.term).length;
        if (agree >= majority) return { leader: leaderView.id, term: leaderView.term };
      }
      if (Date.now() > deadline) {
        throw new Error(`no leader within ${timeoutMs} ms; statuses: ${JSON.stringify(views)}; last output of node ${this.spec.nodes[0]!.id}:\n${this.slot(this.spec.nodes[0]!.id).tail}`);
      }
      await new Promise((r) => setTimeout(r, POLL_MS));
    }
  }

  /** Stop every node: SIGTERM (graceful stop), then SIGKILL whatever still runs after `graceMs`. Idempotent. */
  async stop(graceMs = STOP_GRACE_MS): Promise<void> {
    this.stopping = true;
    const live = [...this.slots.values()].filter((s) => s.child && s.child.exitCode === null && s.child.signalCode === null);
    for (const s of live) s.child!.kill('SIGTERM');
    await Promise.all(
      live.map(async (s) => {
        let timer: NodeJS.Timeout | undefined;
        const killed = new Promise<void>((r) => {
          timer = setTimeout(() => {
            s.child!.kill('SIGKILL');
            r();
          }, graceMs);
        });
        await Promise.race([s.exit, killed]);
        clearTimeout(timer);
        await s.exit;
      }),
    );
    if (this.exitGuard) process.off('exit', this.exitGuard);
    this.exitGuard = null;
  }
}

/** Prepare the files of `spec` and start every node. Does not wait for a leader (see waitForLeader). */
export async function startCluster(spec: ClusterSpec, opts: LaunchOptions = {}): Promise<LocalCluster> {
  // On stderr: the benchmarks print their JSON on stdout.
  buildIfStale((l) => process.stderr.write(`[build] ${l}\n`));
  const prepared = await prepareCluster(spec);
  const cluster = new LocalCluster(spec, prepared, opts);
  for (const n of spec.nodes) cluster.launch(n.id);
  return cluster;
}
