// The node's process model (DESIGN "Process model"):
//
//  - The primary process owns the node: LevelDB (single-process), the raft driver, the transport
//    and the apply loop — whatever `nodeFactory` builds. It never serves HTTP when it has workers.
//  - HTTP workers (node:cluster; http.workers of them) serve the HTTP API on one shared listening
//    socket, reach the node over IPC (ipc.ts) and keep the read cache the primary pushes
//    (read-cache.ts). With http.workers = 0 the primary serves HTTP itself through the same app,
//    calling the node directly.
//  - Supervision: a worker that exits while the server is not stopping is restarted, at most
//    `restartLimit.maxRestarts` times per `restartLimit.windowMs` (a worker that crashes at start
//    would otherwise be forked in a tight loop); past the limit the primary logs an error and goes
//    on with fewer workers. When the primary exits, its workers see the IPC channel close and exit.
//  - Graceful stop (stop(), or SIGTERM/SIGINT): stop accepting HTTP, let in-flight requests finish
//    (bounded by drainMs), stop the workers (killed if they outlive the bound), stop the node, and
//    (on a signal) exit 0.
//  - The `status` read-cache table is pushed on every change of leader, term, role or membership,
//    seen either through the node's optional onStatusChange or by polling status() every
//    statusPollMs.
//  - Metrics: the node's metrics live here, the HTTP metrics in whichever process serves HTTP.
//    A worker's /metrics asks this process (IPC `metrics`), which asks every worker for its HTTP
//    and process metrics (`metrics.collect`, answered within METRICS_COLLECT_TIMEOUT_MS or left
//    out) and merges them with the node's and its own process metrics (src/ops/metrics.ts; each
//    process's default metrics carry a `process` label, so they stay apart in the merge).
//  - Logs: every line of this process carries the node's id (a base binding) and its current
//    term (src/ops/log-context.ts), once the node is up.
import cluster from 'node:cluster';
import type { Worker } from 'node:cluster';
import type { AddressInfo } from 'node:net';
import { dirname, extname, join } from 'node:path';
import { isSea } from 'node:sea';
import { fileURLToPath } from 'node:url';
import { NodeError } from '../node/api.ts';
import type { NodeApi, NodeStatus } from '../node/api.ts';
import type { HostPort, NodeConfig } from './config.ts';
import { IpcBatcher, IpcConnection, WORKER_CONFIG_ENV, decodeWorkerMessage, encodeIpc, ipcMessages } from './ipc.ts';
import { createLogger } from './log.ts';
import type { Logger } from './log.ts';
import { CachePublisher, STATUS_KEY, STATUS_TABLE } from './read-cache.ts';
import { Preforked } from './prefork.ts';
import { closeHttp } from './shutdown.ts';
import { HttpMetrics, ProcessMetrics, isMetricsJson, metricsText } from '../ops/metrics.ts';
import { VERSION } from '../version.ts';
import type { MetricsJson } from '../ops/metrics.ts';
import { withTerm } from '../ops/log-context.ts';
import { bootMark, bootMarks } from '../ops/boot-marks.ts';
import { OAuthPrimary, loadMasterKey, oauthConfigOf } from './oauth-node.ts';
import type { OAuthNodeHooks } from './oauth-node.ts';

/** What the primary runs: the node API plus its lifecycle. */
export interface ServedNode extends NodeApi {
  stop(): Promise<void>;
  /**
   * Optional: call `listener` whenever role, leader, term or membership change; returns the
   * unsubscribe function. Without it the status is polled every statusPollMs.
   */
  onStatusChange?(listener: (s: NodeStatus) => void): () => void;
  /** Optional: the node's current term, added to every log line of this process. */
  currentTerm?(): number;
  /**
   * Optional: the node is about to stop. It keeps serving but reports not-ready (/readyz 503) so
   * load balancers take it out of rotation before its listeners close.
   */
  beginDrain?(): void;
  /** Optional, with the rest of OAuthNodeHooks: what the OAuth duties of the primary need (RaftNode has them). */
  onStateChange?: OAuthNodeHooks['onStateChange'];
  scanState?: OAuthNodeHooks['scanState'];
  isLeader?: OAuthNodeHooks['isLeader'];
  housekeeping?: OAuthNodeHooks['housekeeping'];
}

function oauthHooks(node: ServedNode): OAuthNodeHooks | null {
  const { onStateChange, scanState, isLeader, housekeeping } = node;
  if (!onStateChange || !scanState || !isLeader || !housekeeping) return null;
  return {
    onStateChange: onStateChange.bind(node),
    scanState: scanState.bind(node),
    isLeader: isLeader.bind(node),
    housekeeping: housekeeping.bind(node),
    read: (req) => node.read(req),
  };
}

export type NodeFactory = (config: NodeConfig, logger: Logger) => ServedNode | Promise<ServedNode>;

export interface StartOptions {
  /** Primary's logger. Default: pino to stdout at config.log.level, with the node id. */
  readonly logger?: Logger;
  /** Worker entry module. Default: defaultWorkerEntry(). */
  readonly workerEntry?: string;
  /** Install SIGTERM/SIGINT handlers that stop gracefully and exit. Default true. */
  readonly handleSignals?: boolean;
  /** Worker restarts allowed per window. Default 5 per 10 s. */
  readonly restartLimit?: { readonly maxRestarts: number; readonly windowMs: number };
  /** Time in-flight HTTP requests get to finish on stop. Default http.requestTimeoutMs + 1 s. */
  readonly drainMs?: number;
  /** Workers must all be listening within this, or startServer fails. Default 30 s. */
  readonly startTimeoutMs?: number;
  /** Status poll interval when the node has no onStatusChange. Default raft.tickMs. */
  readonly statusPollMs?: number;
  /** Requests one worker may have in flight to the node. Default 1024. */
  readonly maxOutstandingPerWorker?: number;
}

export interface WorkerInfo {
  readonly id: number;
  readonly pid: number;
}

export interface ServerHandle {
  /** Where HTTP is served (the real port when http.listen's port was 0). */
  readonly address: HostPort;
  readonly node: ServedNode;
  readonly cache: CachePublisher;
  /** Live workers that are serving HTTP. */
  workers(): WorkerInfo[];
  /** Workers restarted so far. */
  restarts(): number;
  /** Graceful stop; idempotent. Does not exit the process. */
  stop(): Promise<void>;
}

const DEFAULT_RESTART_LIMIT = { maxRestarts: 5, windowMs: 10_000 };
const DEFAULT_START_TIMEOUT_MS = 30_000;
const DEFAULT_MAX_OUTSTANDING_PER_WORKER = 1024;
/** After drainMs a worker still alive gets this long to exit before SIGKILL. */
export const WORKER_EXIT_GRACE_MS = 2_000;
/** A worker that has not reported its metrics within this is left out of that scrape. */
export const METRICS_COLLECT_TIMEOUT_MS = 2_000;
/** Scrapes being assembled at once; one more is refused (a scraper cannot pile up collections). */
export const MAX_METRICS_COLLECTIONS = 8;

interface Slot {
  readonly worker: Worker;
  readonly conn: IpcConnection;
  unsubscribe: (() => void) | null;
  listening: boolean;
  exited: boolean;
  readonly exitedPromise: Promise<void>;
}

/**
 * What a worker runs: the program's entry module (src/main.ts), which serves HTTP when loaded in a
 * cluster worker. From dist/ that is dist/main.js; from source (tests under tsx) src/main.ts, so
 * the name takes this module's own extension. In the single binary it is the binary itself.
 */
export function defaultWorkerEntry(): string {
  if (isSea()) return process.execPath;
  const here = fileURLToPath(import.meta.url);
  return join(dirname(here), '..', `main${extname(here)}`);
}

/**
 * node's own options reach the worker (--enable-source-maps; a tsx loader when the entry is
 * TypeScript), but not the test runner's or a debugger's port. From dist/ the entry is JavaScript
 * and no loader is added.
 */
export function workerExecArgv(entry: string): string[] {
  const argv = process.execArgv.filter((a) => !a.startsWith('--test') && !a.startsWith('--inspect'));
  if (entry.endsWith('.ts') && !argv.some((a) => a.includes('tsx'))) argv.push('--import', 'tsx');
  return argv;
}

export async function startServer(config: NodeConfig, nodeFactory: NodeFactory, options: StartOptions = {}): Promise<ServerHandle> {
  if (!cluster.isPrimary) throw new Error('startServer runs in the primary process only');
  let termOf: () => number | null = () => null;
  const log = withTerm(options.logger ?? createLogger(config.log.level, { node: config.node.id }), () => termOf());
  const drainMs = options.drainMs ?? config.http.requestTimeoutMs + 1_000;
  const restartLimit = options.restartLimit ?? DEFAULT_RESTART_LIMIT;
  const statusPollMs = options.statusPollMs ?? config.raft.tickMs;
  const handleSignals = options.handleSignals ?? true;
  let signalsInstalled = false;

  // A bad master key file fails the start here, before the node opens its store.
  const master = loadMasterKey(config);
  const oauthConfig = master ? oauthConfigOf(config.oauth, config.mfa) : null;
  // The HTTP workers are forked before the node is built, so that their start (mostly loading the
  // HTTP app) overlaps the node's; fork() below adopts them (src/server/prefork.ts).
  const entry = options.workerEntry ?? defaultWorkerEntry();
  let preforked: Preforked | null = null;
  if (config.http.workers > 0) {
    cluster.setupPrimary({ exec: entry, execArgv: workerExecArgv(entry), serialization: 'advanced' });
    preforked = new Preforked(config.http.workers, { [WORKER_CONFIG_ENV]: JSON.stringify(config) });
    bootMark('workers forked');
  }
  const node = await Promise.resolve()
    .then(() => nodeFactory(config, log))
    .catch(async (e: unknown) => {
      await preforked?.discard();
      throw e;
    });
  bootMark('node started');
  if (node.currentTerm) termOf = () => node.currentTerm!();
  const cache = new CachePublisher();

  // --- OAuth: read-cache tables, and the leader's keys, rotation and sweep -------------------------
  let oauthPrimary: OAuthPrimary | null = null;
  const hooks = oauthHooks(node);
  if (master && oauthConfig && hooks) {
    oauthPrimary = new OAuthPrimary({ node: hooks, publish: (t, e) => void cache.publish(t, e), master, config: oauthConfig, log, audit: config.audit });
    await oauthPrimary.start();
    bootMark('oauth duties started');
  } else if (!master) {
    log.warn('no master key (crypto.masterKeyFile or RAFTAUTH_MASTER_KEY): this node serves no OAuth endpoints');
  }

  // --- status table -------------------------------------------------------------------------
  let lastStatusKey = '';
  const pushStatus = (s: NodeStatus): void => {
    const key = JSON.stringify([s.role, s.leader, s.term, s.voters, s.learners]);
    if (key === lastStatusKey) return;
    lastStatusKey = key;
    try {
      cache.publish(STATUS_TABLE, [[STATUS_KEY, s]]);
    } catch (e) {
      log.error({ err: e }, 'cannot publish the status table');
    }
  };
  let polling = false;
  const poll = async (): Promise<void> => {
    if (polling) return;
    polling = true;
    try {
      pushStatus(await node.status());
    } catch (e) {
      log.debug({ err: e }, 'status poll failed');
    } finally {
      polling = false;
    }
  };
  const unsubscribeStatus = node.onStatusChange?.(pushStatus) ?? null;
  await poll();
  const pollTimer = unsubscribeStatus ? null : setInterval(() => void poll(), statusPollMs);

  // --- HTTP in the primary ------------------------------------------------------------------
  let started = false;
  let stopping = false;
  let stopPromise: Promise<void> | null = null;
  const slots = new Map<number, Slot>();
  let restarts = 0;
  const restartTimes: number[] = [];
  let address: HostPort;
  // This process's default metrics and the build info; each worker reports its own (worker.ts).
  const processMetrics = ProcessMetrics.of(config.node.id, 'primary', { version: VERSION });
  const primaryHttpMetrics = config.http.workers === 0 ? new HttpMetrics(config.node.id) : null;
  // The HTTP app (fastify, every OAuth route) is loaded only when this process serves HTTP itself:
  // with workers, only they load it, and the primary's boot is shorter (docs/operations.md, "Boot time").
  const app =
    config.http.workers === 0
      ? (await import('./http.ts')).buildHttpApp({
          node,
          cache: cache.local,
          http: config.http,
          nodeId: config.node.id,
          workerId: 0,
          logger: log,
          httpMetrics: primaryHttpMetrics!,
          metricsText: () => collectMetricsText(),
          ...(master && oauthConfig ? { oauth: { master, config: oauthConfig } } : {}),
        })
      : null;

  // --- metrics from the workers ---------------------------------------------------------------
  let nextCollectId = 1;
  let collections = 0;
  /** Outstanding metrics.collect requests: (worker id, request id) → resolver. */
  const collectWaiters = new Map<string, (m: MetricsJson | null) => void>();
  const collectFrom = (slot: Slot): Promise<MetricsJson | null> => {
    const id = nextCollectId++;
    const key = `${slot.worker.id}:${id}`;
    return new Promise((resolve) => {
      const timer = setTimeout(() => {
        collectWaiters.delete(key);
        log.warn({ worker: slot.worker.id, timeoutMs: METRICS_COLLECT_TIMEOUT_MS }, 'worker did not report its metrics in time; left out of this scrape');
        resolve(null);
      }, METRICS_COLLECT_TIMEOUT_MS);
      collectWaiters.set(key, (m) => {
        clearTimeout(timer);
        collectWaiters.delete(key);
        resolve(m);
      });
      try {
        if (!slot.worker.isConnected()) throw new Error('not connected');
        slot.worker.send(encodeIpc({ t: 'metrics.collect', id }));
      } catch {
        collectWaiters.get(key)?.(null);
      }
    });
  };
  const collectMetricsText = async (): Promise<string> => {
    if (collections >= MAX_METRICS_COLLECTIONS) throw new NodeError('UNAVAILABLE', `${collections} metrics scrapes in progress, the limit`);
    collections++;
    try {
      const own = node.metricsJson ? await node.metricsJson() : [];
      if (!isMetricsJson(own)) throw new Error('the node returned malformed metrics');
      const primary = [own, await processMetrics.json(), ...(primaryHttpMetrics ? [await primaryHttpMetrics.json()] : [])];
      const live = [...slots.values()].filter((s) => s.listening && !s.exited);
      const reports = await Promise.all(live.map(collectFrom));
      return await metricsText([...primary, ...reports.filter((r): r is MetricsJson => r !== null)]);
    } finally {
      collections--;
    }
  };

  const stop = (): Promise<void> => {
    stopPromise ??= (async () => {
      stopping = true;
      // First turn not-ready while still serving, so a balancer that checks /readyz stops sending
      // new requests here; only then close the listeners. Closing a listener resets connections
      // still waiting in the kernel's accept queue: the delay keeps that queue empty.
      const shutdownDelayMs = config.http.shutdownDelayMs;
      node.beginDrain?.();
      log.info({ shutdownDelayMs, drainMs, phase: 'not ready, draining' }, 'stopping');
      if (shutdownDelayMs > 0) await new Promise((r) => setTimeout(r, shutdownDelayMs));
      if (pollTimer) clearInterval(pollTimer);
      unsubscribeStatus?.();
      oauthPrimary?.stop();
      if (app) await closeHttp(app, drainMs);
      await stopWorkers();
      try {
        await node.stop();
      } finally {
        removeSignalHandlers();
        log.info('stopped');
      }
    })();
    return stopPromise;
  };

  // --- workers ------------------------------------------------------------------------------
  const maxOutstanding = options.maxOutstandingPerWorker ?? DEFAULT_MAX_OUTSTANDING_PER_WORKER;

  const fork = (): Slot => {
    const adopted = preforked?.take() ?? null;
    const worker = adopted?.worker ?? cluster.fork({ [WORKER_CONFIG_ENV]: JSON.stringify(config) });
    const batcher = new IpcBatcher(
      (m) => {
        if (worker.isConnected()) worker.send(m);
      },
      (e) => log.debug({ err: e, worker: worker.id }, 'could not send to a worker: channel closed'),
    );
    const send = (bytes: Uint8Array): void => batcher.send(bytes);
    const conn = new IpcConnection(node, send, { maxOutstandingPerWorker: maxOutstanding, maxTimeoutMs: config.http.requestTimeoutMs }, log.child({ worker: worker.id }), collectMetricsText);
    let onExit!: () => void;
    const slot: Slot = { worker, conn, unsubscribe: null, listening: false, exited: false, exitedPromise: new Promise((r) => (onExit = r)) };
    slots.set(worker.id, slot);
    worker.on('message', (m: unknown) => {
      let batch: Uint8Array[];
      try {
        batch = ipcMessages(m); // none for node:cluster's own messages
      } catch (e) {
        log.error({ err: e, worker: worker.id }, 'malformed message from a worker');
        return;
      }
      for (const bytes of batch) onWorkerMessage(bytes);
    });
    const onWorkerMessage = (m: Uint8Array): void => {
      let msg;
      try {
        msg = decodeWorkerMessage(m);
      } catch (e) {
        log.error({ err: e, worker: worker.id }, 'malformed message from a worker');
        return;
      }
      if (msg.t === 'metrics.report') {
        const waiter = collectWaiters.get(`${worker.id}:${msg.id}`);
        if (!waiter) return; // too late: the scrape went on without it
        if (isMetricsJson(msg.metrics)) waiter(msg.metrics);
        else {
          log.error({ worker: worker.id }, 'malformed metrics report from a worker');
          waiter(null);
        }
      } else if (msg.t === 'ready') {
        slot.unsubscribe?.();
        slot.unsubscribe = cache.subscribe((u) => {
          try {
            send(encodeIpc({ t: 'cache.update', ...u }));
          } catch (e) {
            log.error({ err: e, worker: worker.id, table: u.table }, 'cannot push a cache update');
          }
        });
      } else {
        void conn.handle(msg);
      }
    };
    worker.on('listening', (a: { address: string; port: number }) => {
      slot.listening = true;
      address ??= { host: a.address, port: a.port };
      log.info({ worker: worker.id, pid: worker.process.pid, port: a.port }, 'worker listening');
      onWorkerListening();
    });
    worker.on('error', (e) => log.warn({ err: e, worker: worker.id }, 'worker channel error'));
    worker.on('exit', (code: number | null, signal: string | null) => {
      slot.exited = true;
      // A scrape waiting for this worker's metrics goes on without them at once.
      for (const [key, waiter] of [...collectWaiters]) if (key.startsWith(`${worker.id}:`)) waiter(null);
      slot.unsubscribe?.();
      conn.close();
      slots.delete(worker.id);
      onExit();
      if (stopping) {
        log.info({ worker: worker.id, code, signal }, 'worker exited');
        return;
      }
      log.error({ worker: worker.id, code, signal }, 'worker exited unexpectedly');
      onWorkerDied(worker.id, code, signal);
      restart();
    });
    // A preforked worker: what it reported before it was adopted, now that the handlers are on.
    adopted?.replay();
    return slot;
  };

  const restart = (): void => {
    if (!started) return; // during start-up a death fails startServer instead
    const now = Date.now();
    while (restartTimes.length > 0 && restartTimes[0]! <= now - restartLimit.windowMs) restartTimes.shift();
    if (restartTimes.length >= restartLimit.maxRestarts) {
      log.error(
        { maxRestarts: restartLimit.maxRestarts, windowMs: restartLimit.windowMs, workers: slots.size },
        'worker restart limit reached: not restarting; serving with fewer workers',
      );
      return;
    }
    restartTimes.push(now);
    restarts++;
    const s = fork();
    log.info({ worker: s.worker.id }, 'worker restarted');
  };

  const stopWorkers = async (): Promise<void> => {
    const live = [...slots.values()];
    for (const s of live) {
      try {
        if (s.worker.isConnected()) s.worker.send(encodeIpc({ t: 'shutdown', drainMs }));
      } catch (e) {
        log.warn({ err: e, worker: s.worker.id }, 'cannot send shutdown to a worker');
      }
    }
    await Promise.all(
      live.map(async (s) => {
        const timer = setTimeout(() => {
          log.warn({ worker: s.worker.id }, 'worker did not exit in time; killing it');
          s.worker.process.kill('SIGKILL');
        }, drainMs + WORKER_EXIT_GRACE_MS);
        await s.exitedPromise;
        clearTimeout(timer);
      }),
    );
  };

  // Start-up: all initial workers listening, or the first failure.
  let onWorkerListening = (): void => {};
  let onWorkerDied = (_id: number, _code: number | null, _signal: string | null): void => {};

  if (app) {
    try {
      await app.listen({ host: config.http.listen.host, port: config.http.listen.port });
    } catch (e) {
      await stop();
      throw e;
    }
    const a = app.server.address() as AddressInfo;
    address = { host: a.address, port: a.port };
    log.info({ listen: address }, 'primary serving HTTP');
  } else {
    const n = config.http.workers;
    const startTimeoutMs = options.startTimeoutMs ?? DEFAULT_START_TIMEOUT_MS;
    try {
      await new Promise<void>((resolve, reject) => {
        const timer = setTimeout(() => reject(new Error(`HTTP workers not all listening within ${startTimeoutMs} ms`)), startTimeoutMs);
        onWorkerListening = () => {
          if ([...slots.values()].filter((s) => s.listening).length >= n) {
            clearTimeout(timer);
            resolve();
          }
        };
        onWorkerDied = (id, code, signal) => {
          clearTimeout(timer);
          reject(new Error(`HTTP worker ${id} exited during start-up (code ${code}, signal ${signal})`));
        };
        for (let i = 0; i < n; i++) fork();
      });
    } catch (e) {
      await stop();
      throw e;
    }
    onWorkerListening = () => {};
    onWorkerDied = () => {};
  }
  started = true;
  bootMark('serving');
  log.debug({ bootMs: bootMarks() }, 'boot phases');

  // --- signals ------------------------------------------------------------------------------
  const onSignal = (signal: NodeJS.Signals): void => {
    if (stopping) {
      log.warn({ signal }, 'second signal while stopping: exiting now');
      process.exit(1);
    }
    log.info({ signal }, 'signal: stopping gracefully');
    stop().then(
      () => process.exit(0),
      (e: unknown) => {
        log.fatal({ err: e }, 'graceful stop failed');
        process.exit(1);
      },
    );
  };
  function removeSignalHandlers(): void {
    if (!signalsInstalled) return;
    process.off('SIGTERM', onSignal);
    process.off('SIGINT', onSignal);
  }
  if (handleSignals) {
    process.on('SIGTERM', onSignal);
    process.on('SIGINT', onSignal);
    signalsInstalled = true;
  }

  return {
    address: address!,
    node,
    cache,
    workers: () => [...slots.values()].filter((s) => s.listening && !s.exited).map((s) => ({ id: s.worker.id, pid: s.worker.process.pid! })),
    restarts: () => restarts,
    stop,
  };
}
