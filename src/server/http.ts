// The HTTP API (fastify). The same app runs in every HTTP worker (node = IpcNodeApi) and in the
// primary when http.workers is 0 (node = the node itself): one code path either way.
//
// Routes:
//   GET    /v1/kv/:key            linearizable read (ReadIndex, dissertation §6.4); ?consistency=local for a possibly stale local read
//   PUT    /v1/kv/:key            { "value": "…" }
//   POST   /v1/kv/:key/cas        { "expected": "…" | null, "value": "…" } → { ok, actual }
//   POST   /v1/kv/:key/append     { "value": "…" } → { value }
//   DELETE /v1/kv/:key            → { existed }
//   GET    /v1/status             node.status() and `version` (src/version.ts); ?cached=1 answers from the read cache (no IPC): the status
//                                  as of the last change of role, leader, term or membership (commit and
//                                  applied indexes in it may be behind); x-raftauth-cache: hit|miss
//   GET    /healthz, /readyz[?deep=1]   liveness and readiness (src/ops/health.ts)
//   GET    /metrics               Prometheus text of the whole node: the node's metrics and the HTTP
//                                  metrics of every process serving HTTP (src/ops/metrics.ts)
// Every response is counted in raftauth_http_requests_total{route,method,status} and timed in
// raftauth_http_request_duration_seconds, by route pattern (never the raw URL: bounded labels).
// Errors are JSON `{ error: CODE, message }`: a domain's refusal → 400 with its code; NodeError
// UNAVAILABLE/STOPPING → 503, TIMEOUT → 504 (writes add `indeterminate: true`: the write may or may
// not have been applied; retrying is safe because proposals are exactly-once, DESIGN principle 4),
// INVALID_REQUEST → 400; body over http.bodyLimitBytes → 413; a body that is not JSON → 415;
// malformed JSON → 400; unknown route → 404.
//
// Every request has a deadline: http.requestTimeoutMs, or less if the client sends
// `x-request-timeout-ms`. It is passed to the node, and the call is also cut off here a little
// later in case the node does not honour it, so no request can hang.
import Fastify, { LogController } from 'fastify';
import type { FastifyError, FastifyInstance, FastifyReply, FastifyRequest } from 'fastify';
import { NodeError } from '../node/api.ts';
import type { NodeApi, NodeStatus } from '../node/api.ts';
import { VERSION } from '../version.ts';
import { KV_MAX_KEY_BYTES, kv } from '../state/kv.ts';
import type { Outcome } from '../state/contract.ts';
import type { NodeConfig } from './config.ts';
import type { Logger } from './log.ts';
import type { ReadCache } from './read-cache.ts';
import { DEFAULT_READY_MAX_APPLY_LAG, registerHealthRoutes } from '../ops/health.ts';
import { HttpMetrics, METRICS_CONTENT_TYPE, UNMATCHED_ROUTE, isMetricsJson, metricsText } from '../ops/metrics.ts';
import type { MasterKeyRing } from '../crypto/seal.ts';
import type { OAuthConfig } from '../oauth/config.ts';
import { registerOAuth } from '../oauth/index.ts';

import { STATUS_KEY, STATUS_TABLE } from './read-cache.ts';

export { STATUS_KEY, STATUS_TABLE };

/** Extra time after a request's deadline before this layer gives up on the node itself. */
const NODE_GRACE_MS = 1_000;
/** Longest URL parameter: a key of KV_MAX_KEY_BYTES, every byte percent-encoded. Longer keys get 404 from the router, never reach the node. */
const MAX_PARAM_CHARS = KV_MAX_KEY_BYTES * 3;

export interface HttpOptions {
  readonly node: NodeApi;
  readonly cache: ReadCache;
  readonly http: Pick<NodeConfig['http'], 'bodyLimitBytes' | 'requestTimeoutMs'> & Partial<Pick<NodeConfig['http'], 'readyMaxApplyLag'>>;
  readonly nodeId: number;
  /** cluster worker id, or 0 when the primary serves HTTP itself. Sent as x-raftauth-worker. */
  readonly workerId: number;
  readonly logger: Logger;
  /** Where this app counts its requests. Default: a fresh HttpMetrics (see app.httpMetrics). */
  readonly httpMetrics?: HttpMetrics;
  /**
   * The /metrics text. Default: the node's own metrics (node.metricsJson) merged with this app's
   * HTTP metrics, right when the node is in this process. A worker passes a function that asks
   * the primary, which merges every process's metrics (src/server/process.ts).
   */
  readonly metricsText?: () => Promise<string>;
  /** The OAuth server (src/oauth/): registered when given. */
  readonly oauth?: { readonly master: MasterKeyRing; readonly config: OAuthConfig; readonly now?: () => number };
}

class HttpError extends Error {
  readonly statusCode: number;
  readonly code: string;

  constructor(
    statusCode: number,
    code: string,
    message: string,
  ) {
    super(message);
    this.statusCode = statusCode;
    this.code = code;
  }
}

type KvParams = { key: string };

export function buildHttpApp(opts: HttpOptions): FastifyInstance {
  const { node, cache, http, logger } = opts;
  const httpMetrics = opts.httpMetrics ?? new HttpMetrics(opts.nodeId);
  const app = Fastify({
    loggerInstance: logger,
    // One line per request is logged below at debug; fastify's two info lines per request would
    // dominate the log of a busy node.
    logController: new LogController({ disableRequestLogging: true }),
    bodyLimit: http.bodyLimitBytes,
    routerOptions: { maxParamLength: MAX_PARAM_CHARS },
    // Receiving the request (headers and body) must fit in the request deadline too (slowloris).
    requestTimeout: http.requestTimeoutMs,
    // While closing, idle keep-alive connections are closed and new requests get 503.
    forceCloseConnections: 'idle',
    // The node is still up while HTTP drains: serve requests on connections already accepted
    // rather than refusing them with 503 (readiness already sends new traffic elsewhere).
    return503OnClosing: false,
  }) as unknown as FastifyInstance;

  // JSON bodies only: fastify also parses text/plain by default.
  app.removeContentTypeParser('text/plain');

  app.addHook('onRequest', async (_req, reply) => {
    reply.header('x-raftauth-node', String(opts.nodeId));
    reply.header('x-raftauth-worker', String(opts.workerId));
  });
  app.addHook('onResponse', async (req, reply) => {
    httpMetrics.request(req.routeOptions.url ?? UNMATCHED_ROUTE, req.method, reply.statusCode, reply.elapsedTime / 1000);
    req.log.debug({ method: req.method, url: req.url, status: reply.statusCode, ms: Math.round(reply.elapsedTime) }, 'request');
  });

  app.setNotFoundHandler((req, reply) => {
    void reply.code(404).send({ error: 'NOT_FOUND', message: `no route ${req.method} ${req.url.split('?')[0]}` });
  });

  app.setErrorHandler((err: FastifyError | Error, req, reply) => {
    const { status, body } = errorResponse(err, req.method !== 'GET');
    if (status >= 500 && !(err instanceof NodeError)) req.log.error({ err }, 'request failed');
    void reply.code(status).send(body);
  });

  /** The request's deadline: the configured one, or less if the client asks. */
  const deadlineMs = (req: FastifyRequest): number => {
    const h = req.headers['x-request-timeout-ms'];
    if (h === undefined) return http.requestTimeoutMs;
    if (typeof h !== 'string' || !/^[0-9]{1,9}$/.test(h) || Number(h) < 1) {
      throw new HttpError(400, 'INVALID_REQUEST', 'x-request-timeout-ms must be a positive integer');
    }
    return Math.min(Number(h), http.requestTimeoutMs);
  };

  const body = (req: FastifyRequest): Record<string, unknown> => {
    const b = req.body;
    if (typeof b !== 'object' || b === null || Array.isArray(b)) throw new HttpError(400, 'INVALID_REQUEST', 'the body must be a JSON object');
    return b as Record<string, unknown>;
  };
  const stringField = (b: Record<string, unknown>, name: string): string => {
    const v = b[name];
    if (typeof v !== 'string') throw new HttpError(400, 'INVALID_REQUEST', `${name} must be a string`);
    return v;
  };

  const answer = (reply: FastifyReply, r: Outcome<unknown>): FastifyReply => {
    if (r.kind === 'ok') return reply.code(200).send(r.value ?? {});
    // The node's own failures keep their statuses (errorResponse); the contract's are the client's: 400.
    if (r.code === 'UNAVAILABLE' || r.code === 'TIMEOUT' || r.code === 'STOPPING' || r.code === 'INVALID_REQUEST') throw new NodeError(r.code, r.message);
    return reply.code(400).send({ error: r.code, message: r.message });
  };
  const client = (req: FastifyRequest): { node: NodeApi; requestTimeoutMs: number } => ({ node, requestTimeoutMs: deadlineMs(req) });

  app.get<{ Params: KvParams; Querystring: Record<string, string | undefined> }>('/v1/kv/:key', async (req, reply) => {
    const c = req.query.consistency ?? 'linearizable';
    if (c !== 'linearizable' && c !== 'local') throw new HttpError(400, 'INVALID_REQUEST', "consistency must be 'linearizable' or 'local'");
    const cl = client(req);
    return answer(reply, await bounded(kv.read.get(cl, { key: req.params.key }, c), cl.requestTimeoutMs));
  });

  app.put<{ Params: KvParams }>('/v1/kv/:key', async (req, reply) => {
    const b = body(req);
    const cl = client(req);
    return answer(reply, await bounded(kv.put(cl, { key: req.params.key, value: stringField(b, 'value') }), cl.requestTimeoutMs));
  });

  app.post<{ Params: KvParams }>('/v1/kv/:key/cas', async (req, reply) => {
    const b = body(req);
    if (!('expected' in b) || (b.expected !== null && typeof b.expected !== 'string')) throw new HttpError(400, 'INVALID_REQUEST', 'expected must be a string or null');
    const cl = client(req);
    return answer(reply, await bounded(kv.cas(cl, { key: req.params.key, expected: b.expected, value: stringField(b, 'value') }), cl.requestTimeoutMs));
  });

  app.post<{ Params: KvParams }>('/v1/kv/:key/append', async (req, reply) => {
    const b = body(req);
    const cl = client(req);
    return answer(reply, await bounded(kv.append(cl, { key: req.params.key, value: stringField(b, 'value') }), cl.requestTimeoutMs));
  });

  app.delete<{ Params: KvParams }>('/v1/kv/:key', async (req, reply) => {
    const cl = client(req);
    return answer(reply, await bounded(kv.delete(cl, { key: req.params.key }), cl.requestTimeoutMs));
  });

  app.get<{ Querystring: Record<string, string | undefined> }>('/v1/status', async (req, reply) => {
    const timeoutMs = deadlineMs(req);
    const cached = req.query.cached;
    if (cached !== undefined && cached !== '0' && cached !== '1') throw new HttpError(400, 'INVALID_REQUEST', 'cached must be 0 or 1');
    if (cached === '1') {
      const s = cache.get(STATUS_TABLE, STATUS_KEY);
      if (s !== undefined) {
        reply.header('x-raftauth-cache', 'hit');
        reply.header('x-raftauth-cache-version', String(cache.version(STATUS_TABLE)));
        return reply.code(200).send({ ...(s as NodeStatus), version: VERSION });
      }
      // Nothing pushed yet (the worker just started): ask the node.
      reply.header('x-raftauth-cache', 'miss');
    }
    return reply.code(200).send({ ...(await bounded(node.status(), timeoutMs)), version: VERSION });
  });

  if (opts.oauth) {
    registerOAuth(app, { node, cache, master: opts.oauth.master, config: opts.oauth.config, logger, requestTimeoutMs: http.requestTimeoutMs, ...(opts.oauth.now ? { now: opts.oauth.now } : {}) });
  }

  registerHealthRoutes(app, { node, nodeId: opts.nodeId, maxApplyLag: http.readyMaxApplyLag ?? DEFAULT_READY_MAX_APPLY_LAG, requestTimeoutMs: http.requestTimeoutMs });

  const localMetricsText = async (): Promise<string> => {
    const own = node.metricsJson ? await node.metricsJson() : [];
    if (!isMetricsJson(own)) throw new Error('the node returned malformed metrics');
    return metricsText([own, await httpMetrics.json()]);
  };
  const text = opts.metricsText ?? localMetricsText;
  app.get('/metrics', async (req, reply) => {
    const body = await bounded(text(), deadlineMs(req));
    return reply.code(200).header('content-type', METRICS_CONTENT_TYPE).header('cache-control', 'no-store').send(body);
  });

  return app;
}

/** Cut a node call off NODE_GRACE_MS after the deadline it was given, if the node has not answered. */
function bounded<T>(p: Promise<T>, timeoutMs: number): Promise<T> {
  let timer: NodeJS.Timeout | undefined;
  const limit = new Promise<never>((_, reject) => {
    timer = setTimeout(() => reject(new NodeError('TIMEOUT', `the node did not answer within ${timeoutMs + NODE_GRACE_MS} ms`)), timeoutMs + NODE_GRACE_MS);
  });
  return Promise.race([p, limit]).finally(() => clearTimeout(timer));
}

const NODE_ERROR_STATUS: Record<NodeError['code'], number> = { UNAVAILABLE: 503, STOPPING: 503, TIMEOUT: 504, INVALID_REQUEST: 400 };

/** Map any error to a status and a JSON body. */
export function errorResponse(err: unknown, isWrite: boolean): { status: number; body: Record<string, unknown> } {
  if (err instanceof NodeError) {
    const status = NODE_ERROR_STATUS[err.code] ?? 503;
    const body: Record<string, unknown> = { error: err.code, message: err.message };
    if (err.code === 'TIMEOUT' && isWrite) body.indeterminate = true;
    return { status, body };
  }
  if (err instanceof HttpError) return { status: err.statusCode, body: { error: err.code, message: err.message } };
  const fe = err as Partial<FastifyError>;
  switch (fe.code) {
    case 'FST_ERR_CTP_BODY_TOO_LARGE':
      return { status: 413, body: { error: 'PAYLOAD_TOO_LARGE', message: fe.message } };
    case 'FST_ERR_CTP_INVALID_MEDIA_TYPE':
    case 'FST_ERR_CTP_INVALID_CONTENT_LENGTH':
      return { status: fe.statusCode ?? 415, body: { error: fe.statusCode === 400 ? 'INVALID_REQUEST' : 'UNSUPPORTED_MEDIA_TYPE', message: fe.message } };
    case 'FST_ERR_CTP_INVALID_JSON_BODY':
    case 'FST_ERR_CTP_EMPTY_JSON_BODY':
      return { status: 400, body: { error: 'INVALID_JSON', message: fe.message } };
  }
  if (typeof fe.statusCode === 'number' && fe.statusCode >= 400 && fe.statusCode < 500) {
    return { status: fe.statusCode, body: { error: 'INVALID_REQUEST', message: fe.message } };
  }
  return { status: 500, body: { error: 'INTERNAL', message: 'internal error' } };
}
