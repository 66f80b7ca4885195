// The node's process model (DESIGN "Process model"):
//
//  - The primary process owns the node: LevelDB (single-process), the raft driver, the transport
//    and the apply loop — whatever `nodeFactory` builds. It never serves HTTP when it has workers.
//  - HTTP workers (node:cluster; http.workers of them) serve the HTTP API on one shared listening
//    socket, reach the node over IPC (ipc.ts) and keep the read cache the primary pushes
//    (read-cache.ts). With http.workers = 0 the primary serves HTTP itself through the same app,
//    calling the node directly.
//  - Graceful stop (stop(), or SIGTERM/SIGINT): stop accepting HTTP, let in-flight requests finish
//    (bounded by drainMs), stop the workers (killed if they outlive the bound), stop the node, and
//    (on a signal) exit 0.
//  - Logs: every line of this process carries the node's id (a base binding) and its current
//    term (src/ops/log-context.ts), once the node is up.
//
// startServer composes the primary's collaborators, one job each:
//  - worker-pool.ts: forks the HTTP workers, wires their IPC, restarts (within a limit) a worker
//    that dies, stops them;
//  - metrics-aggregator.ts: assembles /metrics from the node's, the primary's and every worker's;
//  - status-publisher.ts: what the primary pushes to the workers' read cache: the node's status on
//    every change (subscribed, or polled every statusPollMs) and every other table;
//  - oauth-duties.ts: the OAuth read-cache tables and what only the leader runs (keys, rotation,
//    expiry sweeps, audit retention).
import cluster from 'node:cluster';
import type { AddressInfo } from 'node:net';
import { dirname, extname, join } from 'node:path';
import { isSea } from 'node:sea';
import { fileURLToPath } from 'node:url';
import type { NodeApi, NodeStatus } from '../node/api.ts';
import type { HostPort, NodeConfig } from './config.ts';
import { WORKER_CONFIG_ENV } from './ipc.ts';
import { killWorkersAtExit } from './channel-guard.ts';
import { Preforked } from './prefork.ts';
import { createLogger } from './log.ts';
import type { Logger } from './log.ts';
import { CachePublisher } from './read-cache.ts';
import { closeHttp } from './shutdown.ts';
import { HttpMetrics, ProcessMetrics } from '../ops/metrics.ts';
import { VERSION } from '../version.ts';
import { withTerm } from '../node/log-context.ts';
import { bootMark, bootMarks } from '../ops/boot-marks.ts';
import type { OAuthNodeHooks } from './oauth-node.ts';
import { MetricsAggregator } from './metrics-aggregator.ts';
import type { MetricsWorker } from './metrics-aggregator.ts';
import { loadOAuthKeys, startOAuthDuties } from './oauth-duties.ts';
import { StatusPublisher } from './status-publisher.ts';
import { WorkerPool } from './worker-pool.ts';
import type { WorkerInfo } from './worker-pool.ts';

export { WORKER_EXIT_GRACE_MS } from './worker-pool.ts';
export type { WorkerInfo } from './worker-pool.ts';

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
/** A worker that has not reported its metrics within this is left out of that scrape. */
export const METRICS_COLLECT_TIMEOUT_MS = 2_000;
/** Scrapes being assembled at once; one more is refused (a scraper cannot pile up collections). */
export const MAX_METRICS_COLLECTIONS = 8;

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
  const argv: string[] = [];
  const own = process.execArgv;
  for (let i = 0; i < own.length; i++) {
    const a = own[i]!;
    if (!a.startsWith('--test') && !a.startsWith('--inspect')) {
      argv.push(a);
      continue;
    }
    // Dropped with its value when that is the next item (`--test-name-pattern x`): in execArgv an
    // item that is not a flag is the value of the one before, and left alone it would be taken for
    // the worker's entry module.
    if (!a.includes('=') && i + 1 < own.length && !own[i + 1]!.startsWith('-')) i++;
  }
  if (entry.endsWith('.ts') && !argv.some((a) => a.includes('tsx'))) argv.push('--import', 'tsx');
  return argv;
}

export async function startServer(config: NodeConfig, nodeFactory: NodeFactory, options: StartOptions = {}): Promise<ServerHandle> {
  if (!cluster.isPrimary) throw new Error('startServer runs in the primary process only');
  let termOf: () => number | null = () => null;
  const log = withTerm(options.logger ?? createLogger(config.log.level, { node: config.node.id }), () => termOf());
  const drainMs = options.drainMs ?? config.http.requestTimeoutMs + 1_000;
  const handleSignals = options.handleSignals ?? true;
  let removeSignalHandlers = (): void => {};

  // A bad master key file fails the start here, before the node opens its store.
  const keys = loadOAuthKeys(config);
  // The HTTP workers are forked before the node is built, so that their start (mostly loading the
  // HTTP app) overlaps the node's; the worker pool adopts them (src/server/prefork.ts).
  const entry = options.workerEntry ?? defaultWorkerEntry();
  let preforked: Preforked | null = null;
  // Until a graceful stop has stopped them: this process exiting (a fatal error of the node, exit
  // 70; a failed start) kills its workers, which would otherwise write into a closed channel
  // (src/server/channel-guard.ts).
  let unhookWorkerKill = (): void => {};
  if (config.http.workers > 0) {
    unhookWorkerKill = killWorkersAtExit(cluster);
    cluster.setupPrimary({ exec: entry, execArgv: workerExecArgv(entry), serialization: 'advanced' });
    preforked = new Preforked(config.http.workers, { [WORKER_CONFIG_ENV]: JSON.stringify(config) });
    bootMark('workers forked');
  }
  const node = await Promise.resolve()
    .then(() => nodeFactory(config, log))
    .catch(async (e: unknown) => {
      await preforked?.discard();
      unhookWorkerKill();
      throw e;
    });
  bootMark('node started');
  if (node.currentTerm) termOf = () => node.currentTerm!();
  const cache = new CachePublisher();

  const oauthDuties = await startOAuthDuties({ keys, node, cache, audit: config.audit, log });
  bootMark('oauth duties started');
  const publisher = new StatusPublisher({ node, cache, pollMs: options.statusPollMs ?? config.raft.tickMs, log });
  await publisher.start();

  let stopping = false;
  let stopPromise: Promise<void> | null = null;
  // This process's default metrics and the build info; each worker reports its own (worker.ts).
  const primaryHttpMetrics = config.http.workers === 0 ? new HttpMetrics(config.node.id) : null;
  // The aggregator asks the pool (built below, since it reports to the aggregator) for its workers
  // only when a scrape runs, which is after both exist.
  const metrics = new MetricsAggregator({
    ...(node.metricsJson ? { nodeMetrics: () => node.metricsJson!() } : {}),
    local: [ProcessMetrics.of(config.node.id, 'primary', { version: VERSION }), ...(primaryHttpMetrics ? [primaryHttpMetrics] : [])],
    workers: (): MetricsWorker[] => pool?.metricsWorkers() ?? [],
    log,
    collectTimeoutMs: METRICS_COLLECT_TIMEOUT_MS,
    maxCollections: MAX_METRICS_COLLECTIONS,
  });
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
          metricsText: () => metrics.text(),
          ...(keys.master && keys.oauthConfig ? { oauth: { master: keys.master, config: keys.oauthConfig } } : {}),
        })
      : null;
  const pool: WorkerPool | null = app
    ? null
    : new WorkerPool({
        config,
        node,
        log,
        entry,
        execArgv: workerExecArgv(entry),
        preforked,
        maxOutstandingPerWorker: options.maxOutstandingPerWorker ?? DEFAULT_MAX_OUTSTANDING_PER_WORKER,
        restartLimit: options.restartLimit ?? DEFAULT_RESTART_LIMIT,
        drainMs,
        metrics,
        publisher,
        stopping: () => stopping,
      });

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
      publisher.stop();
      oauthDuties?.stop();
      if (app) await closeHttp(app, drainMs);
      await pool?.stop();
      try {
        await node.stop();
      } finally {
        unhookWorkerKill();
        removeSignalHandlers();
        log.info('stopped');
      }
    })();
    return stopPromise;
  };

  let address: HostPort;
  try {
    if (app) {
      await app.listen({ host: config.http.listen.host, port: config.http.listen.port });
      const a = app.server.address() as AddressInfo;
      address = { host: a.address, port: a.port };
      log.info({ listen: address }, 'primary serving HTTP');
    } else {
      await pool!.start(config.http.workers, options.startTimeoutMs ?? DEFAULT_START_TIMEOUT_MS);
      address = pool!.address()!;
    }
  } catch (e) {
    await stop();
    throw e;
  }

  bootMark('serving');
  log.debug({ bootMs: bootMarks() }, 'boot phases');

  if (handleSignals) removeSignalHandlers = installSignalHandlers(stop, () => stopping, log);

  return {
    address,
    node,
    cache,
    workers: (): WorkerInfo[] => pool?.workers() ?? [],
    restarts: () => pool?.restarts() ?? 0,
    stop,
  };
}

/**
 * SIGTERM and SIGINT stop the server gracefully and exit 0 (1 if the stop fails); a second signal
 * while stopping exits 1 at once. Returns the function that removes the handlers.
 */
function installSignalHandlers(stop: () => Promise<void>, stopping: () => boolean, log: Logger): () => void {
  const onSignal = (signal: NodeJS.Signals): void => {
    if (stopping()) {
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
  process.on('SIGTERM', onSignal);
  process.on('SIGINT', onSignal);
  return () => {
    process.off('SIGTERM', onSignal);
    process.off('SIGINT', onSignal);
  };
}
