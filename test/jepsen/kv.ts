// Workload 1: a linearizable register with compare-and-set, over the KV API (src/server/http.ts).
// Each worker loops: pick a node and an operation (linearizable get, put of a unique value, or
// CAS from a recently seen value), record it. Keys are used for a bounded number of operations
// and then retired (Jepsen's "independent" keys): the WGL search is per key, and its cost grows
// with the indeterminate operations on one key, so no key collects many of them.
//
// Outcome of a write: 200 → ok; 400 → fail (refused by the domain, nothing changed); 503
// UNAVAILABLE → fail (refused before anything was proposed: src/node/router.ts); connection
// refused → fail (never sent); anything else (504 with indeterminate, 503 STOPPING after
// attempts, a lost connection, a client timeout) → info. A read that gets no value is a fail:
// reads change nothing, so a failed read never constrains the history.
import { HttpFailure, httpJson } from '../cluster/harness.ts';
import type { HttpResult } from '../cluster/harness.ts';
import type { Rng } from '../sim/rng.ts';
import { httpAddress } from './cluster.ts';
import type { History, OpRecord, Outcome } from './history.ts';
import { kvModel } from '../support/kv-model.ts';
import type { KvInput, KvOperation, KvOutput } from '../support/kv-model.ts';
import { checkLinearizable } from '../support/linearizability.ts';
import type { CheckResult } from '../support/linearizability.ts';

/** The key prefix: the test keyspace. */
export const KV_PREFIX = 'jepsen/';
/** Operations on one key before it is retired. */
export const OPS_PER_KEY = 120;
/** Keys in use at once. */
export const ACTIVE_KEYS = 3;
/** The node's deadline for one KV request (x-request-timeout-ms). */
export const KV_REQUEST_TIMEOUT_MS = 1_500;
/** Pause of a worker after a connection refused (the node is down). */
export const REFUSED_BACKOFF_MS = 100;

export function pause(ms: number): Promise<void> {
  return new Promise((r) => setTimeout(r, ms));
}

/** The client's own deadline: the node's plus a margin (a paused node never answers). */
const CLIENT_TIMEOUT_MS = KV_REQUEST_TIMEOUT_MS + 1_500;

export interface KvCall {
  readonly outcome: Outcome;
  readonly output: Record<string, unknown> | null;
  readonly error?: string;
}

async function send(node: number, method: string, path: string, body?: unknown): Promise<HttpResult> {
  return httpJson(httpAddress(node), method, path, {
    ...(body !== undefined ? { body } : {}),
    timeoutMs: CLIENT_TIMEOUT_MS,
    headers: { 'x-request-timeout-ms': String(KV_REQUEST_TIMEOUT_MS) },
  });
}

function failure(e: unknown): KvCall {
  if (e instanceof HttpFailure && e.kind === 'refused') return { outcome: 'fail', output: null, error: 'ECONNREFUSED' };
  return { outcome: 'info', output: null, error: e instanceof HttpFailure ? e.code : (e as Error).message };
}

function writeOutcome(r: HttpResult, parse: (b: Record<string, unknown>) => Record<string, unknown> | null): KvCall {
  if (r.status === 200) {
    const out = parse(r.body);
    // A 200 whose body is not the operation's answer (the unsafe ack answers `{unsafe: true}`)
    // says it was acknowledged but not what it returned: indeterminate output.
    return out === null ? { outcome: 'info', output: null, error: `200 without a result: ${JSON.stringify(r.body)}` } : { outcome: 'ok', output: out };
  }
  if (r.status === 400 || (r.status === 503 && r.body.error === 'UNAVAILABLE')) return { outcome: 'fail', output: null, error: `${r.status} ${String(r.body.error)}` };
  return { outcome: 'info', output: null, error: `${r.status} ${String(r.body.error)}` };
}

export async function kvGet(node: number, key: string): Promise<KvCall> {
  try {
    const r = await send(node, 'GET', `/v1/kv/${encodeURIComponent(key)}`);
    if (r.status === 200 && (typeof r.body.value === 'string' || r.body.value === null)) return { outcome: 'ok', output: { value: r.body.value } };
    return { outcome: 'fail', output: null, error: `${r.status} ${String(r.body.error)}` };
  } catch (e) {
    // A read that got nothing back changes nothing: never indeterminate.
    return { outcome: 'fail', output: null, error: failure(e).error! };
  }
}

export async function kvPut(node: number, key: string, value: string): Promise<KvCall> {
  try {
    // A put's answer carries nothing but the acknowledgment itself (the unsafe ack's body differs,
    // and that is the acknowledgment the negative control must catch lying).
    return writeOutcome(await send(node, 'PUT', `/v1/kv/${encodeURIComponent(key)}`, { value }), () => ({}));
  } catch (e) {
    return failure(e);
  }
}

export async function kvCas(node: number, key: string, expected: string | null, value: string): Promise<KvCall> {
  try {
    return writeOutcome(await send(node, 'POST', `/v1/kv/${encodeURIComponent(key)}/cas`, { expected, value }), (b) =>
      typeof b.ok === 'boolean' && (typeof b.actual === 'string' || b.actual === null) ? { ok: b.ok, actual: b.actual } : null,
    );
  } catch (e) {
    return failure(e);
  }
}

export class KvWorkload {
  private readonly history: History;
  private readonly nodes: () => readonly number[];
  private opCount = 0;
  private readonly seen = new Map<string, string[]>();
  /** Every key used, for the final read. */
  readonly keys = new Set<string>();

  constructor(
    history: History,
    nodes: () => readonly number[],
  ) {
    this.history = history;
    this.nodes = nodes;
  }

  private nextKey(rng: Rng): string {
    const generation = Math.floor(this.opCount++ / (OPS_PER_KEY * ACTIVE_KEYS));
    const key = `${KV_PREFIX}r${generation}-${rng.int(ACTIVE_KEYS)}`;
    this.keys.add(key);
    return key;
  }

  private remember(key: string, v: unknown): void {
    if (typeof v !== 'string') return;
    const list = this.seen.get(key) ?? [];
    if (!list.includes(v)) list.push(v);
    if (list.length > 4) list.shift();
    this.seen.set(key, list);
  }

  /** One worker: operations until `stop()` says so. */
  async worker(w: number, rng: Rng, stop: () => boolean): Promise<void> {
    let process = w;
    let seq = 0;
    while (!stop()) {
      const key = this.nextKey(rng);
      const node = rng.pick(this.nodes());
      const r = rng.float();
      let rec: OpRecord;
      if (r < 0.4) {
        rec = await this.history.op({ workload: 'kv', process, f: 'get', node, input: { key } }, () => kvGet(node, key));
        if (rec.outcome === 'ok') this.remember(key, rec.output!.value);
      } else if (r < 0.7) {
        const value = `${w}.${++seq}`;
        rec = await this.history.op({ workload: 'kv', process, f: 'put', node, input: { key, value } }, () => kvPut(node, key, value));
        if (rec.outcome === 'ok') this.remember(key, value);
      } else {
        const seen = this.seen.get(key) ?? [];
        const expected = seen.length === 0 || rng.chance(0.1) ? null : rng.pick(seen);
        const value = `${w}.${++seq}`;
        rec = await this.history.op({ workload: 'kv', process, f: 'cas', node, input: { key, expected, value } }, () => kvCas(node, key, expected, value));
        if (rec.outcome === 'ok') {
          this.remember(key, rec.output!.actual);
          if (rec.output!.ok === true) this.remember(key, value);
        }
      }
      if (rec.outcome === 'info') process = this.history.newProcess();
      // A down node refuses at once: pace the retries instead of spinning on it.
      if (rec.error === 'ECONNREFUSED') await pause(REFUSED_BACKOFF_MS);
    }
  }

  /** After healing: a linearizable read of every key used, from every node. */
  async finalReads(nodes: readonly number[]): Promise<OpRecord[]> {
    const out: OpRecord[] = [];
    for (const key of [...this.keys].sort()) {
      for (const node of nodes) out.push(await this.history.op({ workload: 'kv', process: this.history.newProcess(), f: 'get', node, input: { key, final: true } }, () => kvGet(node, key)));
    }
    return out;
  }
}

/** The KV operations of a history as the checker's operations (fail → dropped, info → open-ended). */
export function toKvOperations(ops: readonly OpRecord[]): KvOperation[] {
  const out: KvOperation[] = [];
  for (const o of ops) {
    if (o.workload !== 'kv' || o.outcome === 'fail') continue;
    const key = String(o.input.key);
    let input: KvInput;
    let output: KvOutput | undefined;
    const done = o.outcome === 'ok';
    switch (o.f) {
      case 'get':
        input = { op: 'get', key };
        output = done ? { op: 'get', value: o.output!.value as string | null } : undefined;
        break;
      case 'put':
        input = { op: 'put', key, value: String(o.input.value) };
        output = done ? { op: 'put' } : undefined;
        break;
      case 'cas':
        input = { op: 'cas', key, expected: o.input.expected as string | null, value: String(o.input.value) };
        output = done ? { op: 'cas', ok: o.output!.ok as boolean, actual: o.output!.actual as string | null } : undefined;
        break;
      default:
        continue;
    }
    out.push({ clientId: o.process, input, call: o.call, return: done ? o.ret : Infinity, output });
  }
  return out;
}

export interface LinearizabilityVerdict {
  readonly checker: 'linearizable';
  readonly valid: boolean | 'unknown';
  readonly operations: number;
  readonly indeterminate: number;
  readonly keys: number;
  readonly steps: number;
  readonly ms: number;
  readonly explanation?: string;
  readonly reason?: string;
}

/** WGL over the KV history (per key), bounded by steps and time: 'unknown' if the budget runs out. */
export function checkKv(ops: readonly OpRecord[], budget: { maxSteps: number; deadlineMs: number }): LinearizabilityVerdict {
  const history = toKvOperations(ops);
  const t0 = performance.now();
  const r: CheckResult = checkLinearizable(kvModel, history, { maxSteps: budget.maxSteps, deadlineMs: budget.deadlineMs });
  return {
    checker: 'linearizable',
    valid: r.verdict === 'ok' ? true : r.verdict === 'illegal' ? false : 'unknown',
    operations: history.length,
    indeterminate: history.filter((o) => o.return === Infinity).length,
    keys: new Set(history.map((o) => o.input.key)).size,
    steps: r.steps,
    ms: Math.round(performance.now() - t0),
    ...(r.failure ? { explanation: r.failure.explanation } : {}),
    ...(r.reason ? { reason: r.reason } : {}),
  };
}
