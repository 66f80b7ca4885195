// The HTTP worker process (node:cluster worker). It serves the HTTP API, reaches the node in the
// primary over IPC (IpcNodeApi) and keeps the read cache the primary pushes. It owns no state of
// its own that matters: if it dies, the primary starts another.
//
// It lives exactly as long as its primary: when the IPC channel closes (the primary exited or was
// killed) it exits at once — without a primary it can answer nothing, and a worker left holding
// the port would keep a dead node looking alive to a load balancer.
//
// The program's entry module (src/main.ts) runs runWorker() when it is loaded in a cluster worker:
// the primary forks that same module (src/server/process.ts), or the single binary itself.
import cluster from 'node:cluster';
import type { NodeConfig } from './config.ts';
import { buildHttpApp } from './http.ts';
import { HttpMetrics, ProcessMetrics } from '../ops/metrics.ts';
import { withTerm } from '../node/log-context.ts';
import { DEFAULT_IPC_CLIENT_LIMITS, IpcBatcher, IpcNodeApi, WORKER_CONFIG_ENV, decodePrimaryMessage, encodeIpc, ipcMessages } from './ipc.ts';
import { createLogger } from './log.ts';
import { ReadCache, STATUS_KEY, STATUS_TABLE } from './read-cache.ts';
import { closeHttp } from './shutdown.ts';
import { loadMasterKey, oauthConfigOf } from './oauth-node.ts';
import { bootMark, bootMarks } from '../ops/boot-marks.ts';
import { preloadWebAuthn } from '../mfa/webauthn.ts';
import { guardWorkerChannel, peerGone } from './channel-guard.ts';
import type { WorkerChannelGuard } from './channel-guard.ts';

export { WORKER_CONFIG_ENV } from './ipc.ts';

/** `guard`: the channel guard src/main.ts installed first thing (one is installed here if none). */
export async function runWorker(guard?: WorkerChannelGuard): Promise<void> {
  const w = cluster.worker;
  const text = process.env[WORKER_CONFIG_ENV];
  if (!w || text === undefined || !process.send) throw new Error(`runWorker must run in a cluster worker with ${WORKER_CONFIG_ENV} set`);
  const channel = guard ?? guardWorkerChannel(w);
  const config = JSON.parse(text) as NodeConfig;
  const cache = new ReadCache();
  // The term on each line is the one the primary last pushed with the status table (a change of
  // term is pushed at once), so a worker's lines line up with the primary's.
  const log = withTerm(createLogger(config.log.level, { node: config.node.id, worker: w.id }), () => {
    const s = cache.get(STATUS_TABLE, STATUS_KEY) as { term?: unknown } | undefined;
    return typeof s?.term === 'number' ? s.term : null;
  });

  // The primary gone (a write failed with EPIPE before 'disconnect' was noticed): the same exit as
  // on 'disconnect' below, without the error's stack (src/server/channel-guard.ts).
  const primaryGone = (e: unknown): void => {
    log.warn({ code: (e as { code?: unknown }).code }, 'IPC channel to the primary closed; worker exiting');
    api.close('the primary is gone');
    process.exit(1);
  };
  channel.onPrimaryGone(primaryGone);
  const batcher = new IpcBatcher(
    (m) => {
      // With a callback, a failed write is answered here rather than emitted as an 'error' event.
      if (process.connected) process.send!(m, undefined, undefined, (e: Error | null) => e && onSendError(e));
    },
    (e) => onSendError(e),
  );
  const onSendError = (e: unknown): void => {
    if (peerGone(e)) primaryGone(e);
    else log.warn({ err: e }, 'cannot send to the primary');
  };
  const send = (bytes: Uint8Array): void => {
    if (!process.connected) throw new Error('IPC channel closed');
    batcher.send(bytes);
  };
  const api = new IpcNodeApi(send, { ...DEFAULT_IPC_CLIENT_LIMITS, statusTimeoutMs: config.http.requestTimeoutMs });
  const httpMetrics = new HttpMetrics(config.node.id);
  // This worker's default process metrics, labelled process="worker-<id>" (the primary's are "primary").
  const processMetrics = ProcessMetrics.of(config.node.id, `worker-${w.id}`);
  // /metrics here asks the primary, which merges its node metrics with every worker's HTTP metrics.
  // The master key is read here too (file or inherited RAFTAUTH_MASTER_KEY): workers unwrap the data keys themselves.
  const master = loadMasterKey(config);
  const app = buildHttpApp({
    node: api,
    cache,
    http: config.http,
    nodeId: config.node.id,
    workerId: w.id,
    logger: log,
    httpMetrics,
    metricsText: () => api.metricsText(),
    ...(master ? { oauth: { master, config: oauthConfigOf(config.oauth, config.mfa) } } : {}),
  });

  bootMark('http app built');

  let stopping = false;
  const shutdown = async (drainMs: number, why: string): Promise<void> => {
    if (stopping) return;
    stopping = true;
    log.info({ drainMs, why }, 'worker stopping');
    await closeHttp(app, drainMs);
    api.close('worker stopped');
    log.info('worker stopped');
    process.exit(0);
  };

  process.on('message', (m: unknown) => {
    let batch: Uint8Array[];
    try {
      batch = ipcMessages(m); // none for node:cluster's own messages
    } catch (e) {
      log.error({ err: e }, 'malformed message from the primary');
      return;
    }
    for (const bytes of batch) onPrimaryMessage(bytes);
  });
  const onPrimaryMessage = (m: Uint8Array): void => {
    let msg;
    try {
      msg = decodePrimaryMessage(m);
    } catch (e) {
      log.error({ err: e }, 'malformed message from the primary');
      return;
    }
    switch (msg.t) {
      case 'res':
        api.onResponse(msg);
        return;
      case 'cache.update':
        try {
          cache.apply(msg);
        } catch (e) {
          log.error({ err: e }, 'refused a cache update');
        }
        return;
      case 'shutdown':
        void shutdown(msg.drainMs, 'primary asked');
        return;
      case 'metrics.collect':
        void Promise.all([httpMetrics.json(), processMetrics.json()]).then(
          ([http, own]) => {
            const metrics = [...http, ...own];
            try {
              send(encodeIpc({ t: 'metrics.report', id: msg.id, metrics }));
            } catch (e) {
              log.warn({ err: e }, 'cannot report metrics to the primary');
            }
          },
          (e: unknown) => log.error({ err: e }, 'cannot collect the HTTP and process metrics'),
        );
        return;
    }
  };
  process.on('disconnect', () => {
    log.warn('IPC channel to the primary closed; worker exiting');
    api.close('the primary is gone');
    process.exit(1);
  });
  // A terminal's Ctrl-C reaches the whole process group: drain like a shutdown order. The primary,
  // which got the signal too, does not restart a worker while it is stopping.
  const drainMs = config.http.requestTimeoutMs + 1_000;
  process.on('SIGTERM', () => void shutdown(drainMs, 'SIGTERM'));
  process.on('SIGINT', () => void shutdown(drainMs, 'SIGINT'));

  // Only now can the primary's messages be received: tell it (messages sent earlier are lost).
  send(encodeIpc({ t: 'ready' }));
  // In a cluster worker, listen() asks the primary for the shared listening socket.
  try {
    await app.listen({ host: config.http.listen.host, port: config.http.listen.port });
  } catch (e) {
    // Exit non-zero: the primary fails its start-up, or counts this against the restart limit.
    log.fatal({ err: e, listen: config.http.listen }, 'worker cannot listen');
    process.exit(1);
  }
  bootMark('listening');
  log.info({ listen: config.http.listen }, 'worker serving HTTP');
  log.debug({ bootMs: bootMarks() }, 'boot phases');
  // Now, off the boot path: the library of the WebAuthn ceremonies (src/mfa/webauthn.ts), so the
  // first ceremony does not wait for it.
  preloadWebAuthn().catch((e: unknown) => log.error({ err: e }, 'cannot load the WebAuthn library'));
}
