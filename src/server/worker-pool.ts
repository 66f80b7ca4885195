// The primary's HTTP workers (one of startServer's collaborators, process.ts): forks them
// (node:cluster, one shared listening socket), wires each one's IPC (ipc.ts) to the node, restarts
// a worker that exits while the server is not stopping, and stops them all on the way out.
//
//  - IPC: requests a worker sends reach the node through its IpcConnection; its `ready` attaches it
//    to the status publisher (status-publisher.ts), its `metrics.report` answers the metrics
//    aggregator (metrics-aggregator.ts).
//  - Start: every worker listening within startTimeoutMs, or the first to die fails the start.
//  - Supervision: at most restartLimit.maxRestarts restarts per restartLimit.windowMs (a worker
//    that crashes at start would otherwise be forked in a tight loop); past the limit the primary
//    logs an error and goes on with fewer workers. When the primary exits, its workers see the IPC
//    channel close and exit.
//  - Stop: each worker is told to shut down (finishing its requests within drainMs) and is killed
//    if it outlives drainMs + WORKER_EXIT_GRACE_MS.
import cluster from 'node:cluster';
import type { Worker } from 'node:cluster';
import type { NodeApi } from '../node/api.ts';
import type { HostPort, NodeConfig } from './config.ts';
import { IpcBatcher, IpcConnection, WORKER_CONFIG_ENV, decodeWorkerMessage, encodeIpc, ipcMessages } from './ipc.ts';
import type { Logger } from './log.ts';
import type { MetricsAggregator, MetricsWorker } from './metrics-aggregator.ts';
import type { StatusPublisher } from './status-publisher.ts';
import type { Preforked } from './prefork.ts';
import { peerGone } from './channel-guard.ts';

/** After drainMs a worker still alive gets this long to exit before SIGKILL. */
export const WORKER_EXIT_GRACE_MS = 2_000;

export interface WorkerInfo {
  readonly id: number;
  readonly pid: number;
}

export interface WorkerPoolOptions {
  readonly config: NodeConfig;
  readonly node: NodeApi;
  readonly log: Logger;
  /** The worker entry module (process.ts defaultWorkerEntry) and node's options for it. */
  readonly entry: string;
  readonly execArgv: string[];
  /** Workers forked before the node was built (prefork.ts): fork() adopts these first. */
  readonly preforked?: Preforked | null;
  readonly maxOutstandingPerWorker: number;
  readonly restartLimit: { readonly maxRestarts: number; readonly windowMs: number };
  /** Time a stopping worker gets to finish its requests. */
  readonly drainMs: number;
  readonly metrics: Pick<MetricsAggregator, 'text' | 'report' | 'workerExited'>;
  readonly publisher: Pick<StatusPublisher, 'attachWorker' | 'detachWorker'>;
  /** True once the server is stopping: a worker that exits then is not restarted. */
  readonly stopping: () => boolean;
}

interface Slot {
  readonly worker: Worker;
  readonly conn: IpcConnection;
  listening: boolean;
  exited: boolean;
  readonly exitedPromise: Promise<void>;
}

export class WorkerPool {
  private readonly o: WorkerPoolOptions;
  private readonly slots = new Map<number, Slot>();
  private started = false;
  private restartCount = 0;
  private readonly restartTimes: number[] = [];
  private addr: HostPort | undefined;
  // Start-up: all initial workers listening, or the first failure.
  private onWorkerListening = (): void => {};
  private onWorkerDied = (_id: number, _code: number | null, _signal: string | null): void => {};

  constructor(o: WorkerPoolOptions) {
    this.o = o;
  }

  /** Where the workers serve HTTP (the first one's listening address); set once start() resolved. */
  address(): HostPort | undefined {
    return this.addr;
  }

  /** Live workers that are serving HTTP. */
  workers(): WorkerInfo[] {
    return this.live().map((s) => ({ id: s.worker.id, pid: s.worker.process.pid! }));
  }

  /** Workers restarted so far. */
  restarts(): number {
    return this.restartCount;
  }

  /** The live workers serving HTTP, as the metrics aggregator asks them. */
  metricsWorkers(): MetricsWorker[] {
    return this.live().map((s) => ({
      id: s.worker.id,
      requestMetrics: (requestId: number) => {
        if (!s.worker.isConnected()) throw new Error('not connected');
        s.worker.send(encodeIpc({ t: 'metrics.collect', id: requestId }));
      },
    }));
  }

  /** Forks `n` workers; resolves once all listen, rejects when one dies first or startTimeoutMs passes. */
  async start(n: number, startTimeoutMs: number): Promise<void> {
    const { entry, execArgv } = this.o;
    cluster.setupPrimary({ exec: entry, execArgv, serialization: 'advanced' });
    try {
      await new Promise<void>((resolve, reject) => {
        const timer = setTimeout(() => reject(new Error(`HTTP workers not all listening within ${startTimeoutMs} ms`)), startTimeoutMs);
        this.onWorkerListening = () => {
          if ([...this.slots.values()].filter((s) => s.listening).length >= n) {
            clearTimeout(timer);
            resolve();
          }
        };
        this.onWorkerDied = (id, code, signal) => {
          clearTimeout(timer);
          reject(new Error(`HTTP worker ${id} exited during start-up (code ${code}, signal ${signal})`));
        };
        for (let i = 0; i < n; i++) this.fork();
      });
    } finally {
      this.onWorkerListening = () => {};
      this.onWorkerDied = () => {};
    }
    this.started = true;
  }

  /** Tells every worker to shut down and waits for each to exit (killed past drainMs + WORKER_EXIT_GRACE_MS). */
  async stop(): Promise<void> {
    const { log, drainMs } = this.o;
    const live = [...this.slots.values()];
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
  }

  private live(): Slot[] {
    return [...this.slots.values()].filter((s) => s.listening && !s.exited);
  }

  private fork(): Slot {
    const { config, node, log, metrics, publisher } = this.o;
    const adopted = this.o.preforked?.take() ?? null;
    const worker = adopted?.worker ?? cluster.fork({ [WORKER_CONFIG_ENV]: JSON.stringify(config) });
    const batcher = new IpcBatcher(
      (m) => {
        if (worker.isConnected()) worker.send(m);
      },
      (e) => log.debug({ err: e, worker: worker.id }, 'could not send to a worker: channel closed'),
    );
    const send = (bytes: Uint8Array): void => batcher.send(bytes);
    const conn = new IpcConnection(node, send, { maxOutstandingPerWorker: this.o.maxOutstandingPerWorker, maxTimeoutMs: config.http.requestTimeoutMs }, log.child({ worker: worker.id }), () => metrics.text());
    let onExit!: () => void;
    const slot: Slot = { worker, conn, listening: false, exited: false, exitedPromise: new Promise((r) => (onExit = r)) };
    this.slots.set(worker.id, slot);
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
        metrics.report(worker.id, msg.id, msg.metrics);
      } else if (msg.t === 'ready') {
        publisher.attachWorker(worker.id, send);
      } else {
        void conn.handle(msg);
      }
    };
    worker.on('listening', (a: { address: string; port: number }) => {
      slot.listening = true;
      this.addr ??= { host: a.address, port: a.port };
      log.info({ worker: worker.id, pid: worker.process.pid, port: a.port }, 'worker listening');
      this.onWorkerListening();
    });
    // A send to a worker that is exiting fails with EPIPE: its 'exit' follows and is what counts
    // (src/server/channel-guard.ts); anything else is worth a warning with its stack.
    worker.on('error', (e) => {
      if (peerGone(e)) log.info({ worker: worker.id, code: (e as { code?: unknown }).code }, 'worker channel closed');
      else log.warn({ err: e, worker: worker.id }, 'worker channel error');
    });
    worker.on('exit', (code: number | null, signal: string | null) => {
      slot.exited = true;
      // A scrape waiting for this worker's metrics goes on without them at once.
      metrics.workerExited(worker.id);
      publisher.detachWorker(worker.id);
      conn.close();
      this.slots.delete(worker.id);
      onExit();
      if (this.o.stopping()) {
        log.info({ worker: worker.id, code, signal }, 'worker exited');
        return;
      }
      log.error({ worker: worker.id, code, signal }, 'worker exited unexpectedly');
      this.onWorkerDied(worker.id, code, signal);
      this.restart();
    });
    // A preforked worker: what it reported before it was adopted, now that the handlers are on.
    adopted?.replay();
    return slot;
  }

  private restart(): void {
    if (!this.started) return; // during start-up a death fails startServer instead
    const { log, restartLimit } = this.o;
    const now = Date.now();
    while (this.restartTimes.length > 0 && this.restartTimes[0]! <= now - restartLimit.windowMs) this.restartTimes.shift();
    if (this.restartTimes.length >= restartLimit.maxRestarts) {
      log.error(
        { maxRestarts: restartLimit.maxRestarts, windowMs: restartLimit.windowMs, workers: this.slots.size },
        'worker restart limit reached: not restarting; serving with fewer workers',
      );
      return;
    }
    this.restartTimes.push(now);
    this.restartCount++;
    const s = this.fork();
    log.info({ worker: s.worker.id }, 'worker restarted');
  }
}
