// IPC between an HTTP worker and its primary: the worker calls the primary's NodeApi by
// request/response, and the primary pushes read-cache tables and the shutdown order.
//
// Encoding: every message is one msgpackr-encoded Uint8Array handed to process.send / worker.send,
// and the cluster is set up with `serialization: 'advanced'` (V8 structured clone). Why both:
//  - 'advanced' passes a Uint8Array as bytes; the default 'json' serialization would turn it into
//    `{ type: 'Buffer', data: [1, 2, …] }` (several bytes of text per byte), and base64 would cost
//    a third more bytes plus an encode and a decode copy on each side.
//  - msgpackr, not structured clone of the objects themselves: one explicit codec, the same one the
//    rest of the node uses for commands and values, whose output has a size we can check against
//    a limit before sending, and whose decoder is the only place a malformed message is caught.
//    Binary values inside (Uint8Array in an ApplyResult) survive as binary.
// Our messages are the only Uint8Array messages on the channel; node:cluster's own messages are
// objects, so each side ignores anything that is not a Uint8Array or an array of them.
//
// Batching: each side sends through an IpcBatcher, which hands everything sent during one turn of
// the event loop to the channel as ONE message, an array of the encoded messages, in order. A
// channel message costs a serialization, a write system call, a read and an event on the other
// side; under load a worker has dozens of requests in flight and the primary answers many of them
// from one Ready, so this divides that cost by the batch size. It adds no timer: the batch leaves
// at the end of the current turn (setImmediate), and at once when it reaches
// MAX_IPC_BATCH_MESSAGES messages or MAX_IPC_MESSAGE_BYTES bytes.
//
// Limits (all explicit, all enforced): at most `maxOutstanding` requests in flight per worker —
// enforced by the worker before sending and again by the primary per connection; every request
// has a deadline on the worker side (the request's own timeoutMs plus a grace period, so the node's
// own TIMEOUT, with its better message, normally arrives first); every message is at most
// MAX_IPC_MESSAGE_BYTES.
//
// Health and metrics: a worker's /readyz calls `health` (the node's readiness facts) and its
// /metrics calls `metrics`, which the primary answers with the Prometheus text of the whole node.
// To build it the primary sends each worker `metrics.collect` and merges the `metrics.report`
// answers (each worker's HTTP metrics, prom-client JSON) with its own (src/server/process.ts).
import { Packr } from 'msgpackr';
import { NodeError } from '../node/api.ts';
import type { ApplyResult, EncodedWriteRequest, HealthRequest, NodeApi, NodeErrorCode, NodeHealth, NodeStatus, ReadRequest, WriteRequest } from '../node/api.ts';
import { packValue, unpackValue } from '../state/command.ts';
import type { Logger } from './log.ts';
import type { CacheUpdate } from './read-cache.ts';

/** Largest encoded IPC message. Commands are at most 1 MiB (state/command.ts); this leaves room for the envelope. */
/**
 * Environment variable through which the primary hands the resolved NodeConfig (JSON) to a worker.
 * Here, not in worker.ts, so the primary can fork a worker without loading the worker's HTTP app
 * (docs/operations.md, "Boot time").
 */
export const WORKER_CONFIG_ENV = 'RAFTAUTH_WORKER_CONFIG';

export const MAX_IPC_MESSAGE_BYTES = 4 * 1024 * 1024;

/** Most messages in one channel write (IpcBatcher). */
export const MAX_IPC_BATCH_MESSAGES = 256;

export type IpcMethod = 'write' | 'read' | 'status' | 'health' | 'metrics';
const IPC_METHODS: readonly IpcMethod[] = ['write', 'read', 'status', 'health', 'metrics'];

export interface IpcRequest {
  readonly t: 'req';
  readonly id: number;
  readonly method: IpcMethod;
  readonly params: unknown;
}

export type IpcResponse =
  | { readonly t: 'res'; readonly id: number; readonly ok: true; readonly value: unknown }
  | { readonly t: 'res'; readonly id: number; readonly ok: false; readonly error: { readonly code: NodeErrorCode; readonly message: string } };

/** A worker's answer to `metrics.collect`: its HTTP metrics as prom-client JSON (checked by the primary). */
export interface MetricsReport {
  readonly t: 'metrics.report';
  readonly id: number;
  readonly metrics: unknown;
}

/** Worker → primary. `ready`: the worker's message listener is attached (messages sent before it are lost). */
export type WorkerMessage = { readonly t: 'ready' } | IpcRequest | MetricsReport;

/** Primary → worker. */
export type PrimaryMessage =
  | IpcResponse
  | ({ readonly t: 'cache.update' } & CacheUpdate)
  | { readonly t: 'shutdown'; readonly drainMs: number }
  | { readonly t: 'metrics.collect'; readonly id: number };

export class IpcError extends Error {
  constructor(message: string) {
    super(message);
    this.name = 'IpcError';
  }
}

// Records off: plain maps, so a message decodes without any structure shared between processes.
const packr = new Packr({ useRecords: false, bundleStrings: false });

export function encodeIpc(msg: WorkerMessage | PrimaryMessage): Uint8Array {
  const bytes = packr.pack(msg);
  if (bytes.length > MAX_IPC_MESSAGE_BYTES) throw new IpcError(`IPC message of ${bytes.length} bytes exceeds ${MAX_IPC_MESSAGE_BYTES}`);
  return bytes;
}

function decodeMap(bytes: unknown): Record<string, unknown> {
  if (!(bytes instanceof Uint8Array)) throw new IpcError('IPC message is not bytes');
  if (bytes.length > MAX_IPC_MESSAGE_BYTES) throw new IpcError(`IPC message of ${bytes.length} bytes exceeds ${MAX_IPC_MESSAGE_BYTES}`);
  let m: unknown;
  try {
    m = packr.unpack(bytes);
  } catch (e) {
    throw new IpcError(`IPC message is not msgpack: ${(e as Error).message}`);
  }
  if (typeof m !== 'object' || m === null || Array.isArray(m)) throw new IpcError('IPC message is not a map');
  return m as Record<string, unknown>;
}

const isId = (v: unknown): v is number => typeof v === 'number' && Number.isSafeInteger(v) && v > 0;

export function decodeWorkerMessage(bytes: unknown): WorkerMessage {
  const m = decodeMap(bytes);
  if (m.t === 'ready') return { t: 'ready' };
  if (m.t === 'req') {
    if (!isId(m.id)) throw new IpcError('IPC request without a valid id');
    if (!IPC_METHODS.includes(m.method as IpcMethod)) throw new IpcError(`IPC request ${m.id}: unknown method ${String(m.method)}`);
    return { t: 'req', id: m.id, method: m.method as IpcMethod, params: m.params };
  }
  if (m.t === 'metrics.report') {
    if (!isId(m.id)) throw new IpcError('metrics report without a valid id');
    return { t: 'metrics.report', id: m.id, metrics: m.metrics };
  }
  throw new IpcError(`unknown worker message type ${String(m.t)}`);
}

const NODE_ERROR_CODES: readonly NodeErrorCode[] = ['UNAVAILABLE', 'TIMEOUT', 'INVALID_REQUEST', 'STOPPING'];

export function decodePrimaryMessage(bytes: unknown): PrimaryMessage {
  const m = decodeMap(bytes);
  switch (m.t) {
    case 'res': {
      if (!isId(m.id)) throw new IpcError('IPC response without a valid id');
      if (m.ok === true) return { t: 'res', id: m.id, ok: true, value: m.value };
      const e = m.error as Record<string, unknown> | null | undefined;
      if (m.ok !== false || typeof e !== 'object' || e === null) throw new IpcError(`IPC response ${m.id}: malformed`);
      const code = NODE_ERROR_CODES.includes(e.code as NodeErrorCode) ? (e.code as NodeErrorCode) : 'UNAVAILABLE';
      return { t: 'res', id: m.id, ok: false, error: { code, message: String(e.message) } };
    }
    case 'cache.update':
      // Shape and limits are checked by ReadCache.apply.
      return m as unknown as PrimaryMessage;
    case 'shutdown': {
      const drainMs = m.drainMs;
      if (typeof drainMs !== 'number' || !Number.isSafeInteger(drainMs) || drainMs < 0) throw new IpcError('shutdown message without a valid drainMs');
      return { t: 'shutdown', drainMs };
    }
    case 'metrics.collect':
      if (!isId(m.id)) throw new IpcError('metrics.collect without a valid id');
      return { t: 'metrics.collect', id: m.id };
    default:
      throw new IpcError(`unknown primary message type ${String(m.t)}`);
  }
}

/**
 * The messages of one channel message, in order: ours are a Uint8Array or an array of them (a
 * batch, see IpcBatcher); anything else (node:cluster's own objects) gives none. A batch longer
 * than MAX_IPC_BATCH_MESSAGES is refused whole.
 */
export function ipcMessages(m: unknown): Uint8Array[] {
  if (m instanceof Uint8Array) return [m];
  if (!Array.isArray(m) || m.length === 0 || !(m[0] instanceof Uint8Array)) return [];
  if (m.length > MAX_IPC_BATCH_MESSAGES) throw new IpcError(`IPC batch of ${m.length} messages exceeds ${MAX_IPC_BATCH_MESSAGES}`);
  for (const x of m) if (!(x instanceof Uint8Array)) throw new IpcError('IPC batch holds something else than bytes');
  return m as Uint8Array[];
}

/** Coalesces the messages sent during one event-loop turn into one channel message (see the top of this file). */
export class IpcBatcher {
  private readonly write: (m: Uint8Array | Uint8Array[]) => void;
  private readonly onError: (e: unknown) => void;
  private queue: Uint8Array[] = [];
  private bytes = 0;
  private scheduled = false;

  /**
   * @param write hands one channel message (one encoded message, or an array of them) to the
   * channel; an error it throws goes to onError (the requests it carried then time out, or fail
   * when the channel's close is noticed).
   */
  constructor(
    write: (m: Uint8Array | Uint8Array[]) => void,
    onError: (e: unknown) => void,
  ) {
    this.write = write;
    this.onError = onError;
  }

  send(bytes: Uint8Array): void {
    if (this.queue.length > 0 && (this.queue.length >= MAX_IPC_BATCH_MESSAGES || this.bytes + bytes.length > MAX_IPC_MESSAGE_BYTES)) this.flush();
    this.queue.push(bytes);
    this.bytes += bytes.length;
    if (!this.scheduled) {
      this.scheduled = true;
      setImmediate(() => {
        this.scheduled = false;
        this.flush();
      });
    }
  }

  /** Send what is queued now. */
  flush(): void {
    if (this.queue.length === 0) return;
    const q = this.queue;
    this.queue = [];
    this.bytes = 0;
    try {
      this.write(q.length === 1 ? q[0]! : q);
    } catch (e) {
      this.onError(e);
    }
  }
}

// ---------------------------------------------------------------------------------------------
// Worker side.

export interface IpcClientLimits {
  /** Requests in flight to the primary; one more is refused at once with UNAVAILABLE (load shedding, not queueing). */
  readonly maxOutstanding: number;
  /** Added to a request's timeoutMs for the worker's own deadline, so the node answers TIMEOUT itself first. */
  readonly graceMs: number;
  /** Deadline of status(), which carries no timeoutMs of its own. */
  readonly statusTimeoutMs: number;
}

export const DEFAULT_IPC_CLIENT_LIMITS: IpcClientLimits = { maxOutstanding: 1024, graceMs: 1_000, statusTimeoutMs: 5_000 };

interface Pending {
  readonly resolve: (v: unknown) => void;
  readonly reject: (e: Error) => void;
  readonly timer: NodeJS.Timeout;
}

/** The node's API in a worker: every call is a request to the primary over IPC. */
export class IpcNodeApi implements NodeApi {
  private readonly send: (bytes: Uint8Array) => void;
  private readonly limits: IpcClientLimits;
  private readonly pending = new Map<number, Pending>();
  private nextId = 1;
  private closedReason: string | null = null;

  /**
   * @param send hands one encoded message to the channel and throws if the channel is closed.
   * (process.send's `false` only means "backlog": the message is still queued, so it is not a failure.)
   */
  constructor(
    send: (bytes: Uint8Array) => void,
    limits: IpcClientLimits = DEFAULT_IPC_CLIENT_LIMITS,
  ) {
    this.send = send;
    this.limits = limits;
  }

  get outstanding(): number {
    return this.pending.size;
  }

  /**
   * The write's payload is encoded here, in the worker that parsed the request: the primary passes
   * the bytes to the router as they are (its only decode is at apply).
   */
  write(req: WriteRequest): Promise<ApplyResult> {
    if (typeof req.domain !== 'string' || typeof req.op !== 'string') return Promise.reject(new NodeError('INVALID_REQUEST', 'domain and op must be strings'));
    let payload: Uint8Array;
    try {
      payload = packValue([req.domain, req.op, req.args]);
    } catch (e) {
      return Promise.reject(new NodeError('INVALID_REQUEST', `cannot encode the write: ${(e as Error).message}`));
    }
    return this.call('write', { payload, timeoutMs: req.timeoutMs }, req.timeoutMs) as Promise<ApplyResult>;
  }

  read(req: ReadRequest): Promise<ApplyResult> {
    return this.call('read', req, req.timeoutMs) as Promise<ApplyResult>;
  }

  status(): Promise<NodeStatus> {
    return this.call('status', null, this.limits.statusTimeoutMs) as Promise<NodeStatus>;
  }

  health(req: HealthRequest): Promise<NodeHealth> {
    return this.call('health', req, req.timeoutMs) as Promise<NodeHealth>;
  }

  /** The Prometheus text of the whole node, built by the primary (deadline: statusTimeoutMs). */
  async metricsText(): Promise<string> {
    const v = await this.call('metrics', null, this.limits.statusTimeoutMs);
    if (typeof v !== 'string') throw new NodeError('UNAVAILABLE', 'the primary answered metrics with something else than text');
    return v;
  }

  /** Deliver a response from the primary. A response after its deadline (or unknown) is dropped. */
  onResponse(res: IpcResponse): void {
    const p = this.pending.get(res.id);
    if (!p) return;
    this.pending.delete(res.id);
    clearTimeout(p.timer);
    if (res.ok) p.resolve(res.value);
    else p.reject(new NodeError(res.error.code, res.error.message));
  }

  /** The channel is gone: fail everything in flight and every later call with STOPPING. */
  close(reason: string): void {
    if (this.closedReason !== null) return;
    this.closedReason = reason;
    for (const [id, p] of this.pending) {
      clearTimeout(p.timer);
      this.pending.delete(id);
      p.reject(new NodeError('STOPPING', reason));
    }
  }

  private call(method: IpcMethod, params: unknown, timeoutMs: number): Promise<unknown> {
    if (this.closedReason !== null) return Promise.reject(new NodeError('STOPPING', this.closedReason));
    if (typeof timeoutMs !== 'number' || !Number.isSafeInteger(timeoutMs) || timeoutMs < 1) {
      return Promise.reject(new NodeError('INVALID_REQUEST', `timeoutMs must be a positive integer (got ${String(timeoutMs)})`));
    }
    if (this.pending.size >= this.limits.maxOutstanding) {
      return Promise.reject(new NodeError('UNAVAILABLE', `${this.pending.size} requests to the primary are in flight, the limit`));
    }
    const id = this.nextId++;
    let bytes: Uint8Array;
    try {
      bytes = encodeIpc({ t: 'req', id, method, params });
    } catch (e) {
      return Promise.reject(new NodeError('INVALID_REQUEST', (e as Error).message));
    }
    return new Promise((resolve, reject) => {
      // status and metrics carry no deadline of their own for the primary to honour: theirs is exact.
      const deadlineMs = method === 'status' || method === 'metrics' ? timeoutMs : timeoutMs + this.limits.graceMs;
      const timer = setTimeout(() => {
        if (this.pending.delete(id)) reject(new NodeError('TIMEOUT', `no answer from the primary within ${deadlineMs} ms`));
      }, deadlineMs);
      this.pending.set(id, { resolve, reject, timer });
      try {
        this.send(bytes);
      } catch (e) {
        if (this.pending.delete(id)) {
          clearTimeout(timer);
          reject(new NodeError('UNAVAILABLE', `cannot reach the primary: ${(e as Error).message}`));
        }
      }
    });
  }
}

// ---------------------------------------------------------------------------------------------
// Primary side.

export interface IpcServerLimits {
  /** Requests one worker may have in flight; beyond it the primary answers UNAVAILABLE (a misbehaving worker cannot queue without bound). */
  readonly maxOutstandingPerWorker: number;
  /** Largest timeoutMs a request may carry (the HTTP layer caps it at http.requestTimeoutMs). */
  readonly maxTimeoutMs: number;
}

/** Serves one worker's requests against the node. */
export class IpcConnection {
  private readonly node: NodeApi;
  private readonly send: (bytes: Uint8Array) => void;
  private readonly limits: IpcServerLimits;
  private readonly log: Logger;
  /** Builds the node's whole /metrics text (the primary's own metrics and every worker's). */
  private readonly metricsText: (() => Promise<string>) | null;
  private inFlight = 0;
  private closed = false;

  constructor(
    node: NodeApi,
    send: (bytes: Uint8Array) => void,
    limits: IpcServerLimits,
    log: Logger,
    metricsText: (() => Promise<string>) | null = null,
  ) {
    this.node = node;
    this.send = send;
    this.limits = limits;
    this.log = log;
    this.metricsText = metricsText;
  }

  get outstanding(): number {
    return this.inFlight;
  }

  /** The worker is gone: answers still in flight are dropped. */
  close(): void {
    this.closed = true;
  }

  async handle(req: IpcRequest): Promise<void> {
    if (this.inFlight >= this.limits.maxOutstandingPerWorker) {
      this.reply({ t: 'res', id: req.id, ok: false, error: { code: 'UNAVAILABLE', message: `worker has ${this.inFlight} requests in flight, the limit` } });
      return;
    }
    this.inFlight++;
    let res: IpcResponse;
    try {
      const value = await this.dispatch(req);
      res = { t: 'res', id: req.id, ok: true, value };
    } catch (e) {
      if (e instanceof NodeError) {
        res = { t: 'res', id: req.id, ok: false, error: { code: e.code, message: e.message } };
      } else {
        // Not a NodeError: a bug in the node or here. Log it with its stack; the worker sees 503.
        this.log.error({ err: e, method: req.method }, 'node call failed unexpectedly');
        res = { t: 'res', id: req.id, ok: false, error: { code: 'UNAVAILABLE', message: 'internal error in the primary' } };
      }
    } finally {
      this.inFlight--;
    }
    this.reply(res);
  }

  private dispatch(req: IpcRequest): Promise<unknown> {
    switch (req.method) {
      case 'status':
        return this.node.status();
      case 'write': {
        const w = this.checkWriteParams(req.params);
        if (this.node.writeEncoded) return this.node.writeEncoded(w);
        // A node without the encoded form (a stand-in): decode here.
        const p = unpackValue<unknown>(w.payload);
        if (!Array.isArray(p) || p.length !== 3 || typeof p[0] !== 'string' || typeof p[1] !== 'string') throw new NodeError('INVALID_REQUEST', 'payload is not [domain, op, args]');
        return this.node.write({ domain: p[0], op: p[1], args: p[2], timeoutMs: w.timeoutMs });
      }
      case 'read':
        return this.node.read(this.checkParams(req.params, true));
      case 'health': {
        if (!this.node.health) return Promise.reject(new NodeError('UNAVAILABLE', 'the node reports no health'));
        return this.node.health(this.checkHealthParams(req.params));
      }
      case 'metrics':
        if (!this.metricsText) return Promise.reject(new NodeError('UNAVAILABLE', 'no metrics in this primary'));
        return this.metricsText();
    }
  }

  private checkHealthParams(p: unknown): HealthRequest {
    if (typeof p !== 'object' || p === null) throw new NodeError('INVALID_REQUEST', 'params must be a map');
    const o = p as Record<string, unknown>;
    const t = o.timeoutMs;
    if (typeof o.deep !== 'boolean') throw new NodeError('INVALID_REQUEST', 'deep must be a boolean');
    if (typeof t !== 'number' || !Number.isSafeInteger(t) || t < 1 || t > this.limits.maxTimeoutMs) throw new NodeError('INVALID_REQUEST', `timeoutMs must be an integer from 1 to ${this.limits.maxTimeoutMs}`);
    return { deep: o.deep, timeoutMs: t };
  }

  /** A write's params: its encoded payload (bounded by the message size) and its timeout. */
  private checkWriteParams(p: unknown): EncodedWriteRequest {
    if (typeof p !== 'object' || p === null) throw new NodeError('INVALID_REQUEST', 'params must be a map');
    const o = p as Record<string, unknown>;
    if (!(o.payload instanceof Uint8Array)) throw new NodeError('INVALID_REQUEST', 'payload must be bytes');
    const t = o.timeoutMs;
    if (typeof t !== 'number' || !Number.isSafeInteger(t) || t < 1 || t > this.limits.maxTimeoutMs) throw new NodeError('INVALID_REQUEST', `timeoutMs must be an integer from 1 to ${this.limits.maxTimeoutMs}`);
    return { payload: o.payload, timeoutMs: t };
  }

  /** Rebuild the request from checked fields only: nothing unexpected reaches the node. */
  private checkParams(p: unknown, isRead: boolean): ReadRequest {
    const bad = (why: string): never => {
      throw new NodeError('INVALID_REQUEST', why);
    };
    if (typeof p !== 'object' || p === null) bad('params must be a map');
    const o = p as Record<string, unknown>;
    if (typeof o.domain !== 'string' || typeof o.op !== 'string') bad('domain and op must be strings');
    const t = o.timeoutMs;
    if (typeof t !== 'number' || !Number.isSafeInteger(t) || t < 1 || t > this.limits.maxTimeoutMs) bad(`timeoutMs must be an integer from 1 to ${this.limits.maxTimeoutMs}`);
    const base = { domain: o.domain as string, op: o.op as string, args: o.args, timeoutMs: t as number };
    if (!isRead) return base;
    if (o.consistency !== undefined && o.consistency !== null && o.consistency !== 'linearizable' && o.consistency !== 'local') bad(`unknown consistency ${String(o.consistency)}`);
    return o.consistency === 'local' || o.consistency === 'linearizable' ? { ...base, consistency: o.consistency } : base;
  }

  private reply(res: IpcResponse): void {
    if (this.closed) return;
    let bytes: Uint8Array;
    try {
      bytes = encodeIpc(res);
    } catch (e) {
      bytes = encodeIpc({ t: 'res', id: res.id, ok: false, error: { code: 'INVALID_REQUEST', message: (e as Error).message } });
    }
    try {
      this.send(bytes);
    } catch (e) {
      // The worker died between request and answer; its requests die with it.
      this.log.debug({ err: e }, 'could not answer a worker: channel closed');
    }
  }
}
