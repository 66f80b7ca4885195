// The one HTTP client both systems are driven through, so the comparison measures the servers and
// not two different clients: node:http with a keep-alive Agent per endpoint, one request in flight
// per virtual client (closed loop), the same retry policy for both.
//
// Retry policy (same code for both systems): a write that fails — no connection, connection reset,
// attempt timeout, or any non-2xx answer — is sent again to the *next* endpoint (round robin),
// after RETRY_PAUSE_MS, until the request's deadline (requestTimeoutMs) has passed; then it counts
// as a failed request. A put of the same key and value is idempotent in both systems, so sending it
// again is safe (raftauth would also deduplicate it, DESIGN principle 4).
//
// The one per-system knob is the attempt timeout in the failover phase, because the two servers
// differ in what a request stuck on a dead leader does. (In the steady-state levels an attempt may
// always use the whole deadline: a slow answer there is latency to measure, not a failure to
// retry.) raftauth waits and retries inside the request's deadline on the server (it gets the
// remaining deadline in x-request-timeout-ms), so its client gives one attempt the whole remaining
// deadline. An etcd follower that forwarded a proposal to a leader that died never hears of it
// again and answers only at its own request timeout (5 s + 2 election timeouts = 7 s by default),
// so an etcd client — like a clientv3 user with a per-call context — must time the attempt out
// itself and try another member; its attempt timeout defaults to etcd's election timeout (1 s),
// well above an ordinary write's latency at the failover concurrency.
import { Agent, request } from 'node:http';

/** Largest response body read (both systems answer a put with well under 1 KiB). */
const MAX_RESPONSE_BYTES = 64 * 1024;
/** Pause before a retry: long enough not to spin on an endpoint that refuses at once, short next to the 500 ms failover target. */
export const RETRY_PAUSE_MS = 5;

export interface Endpoint {
  /** The member's id in its own system (raftauth node id, or etcd member name). */
  readonly member: string;
  readonly host: string;
  readonly port: number;
}

/** A request as the system under test wants it; built per attempt (the deadline header shrinks). */
export interface HttpCall {
  readonly method: string;
  readonly path: string;
  readonly headers: Record<string, string>;
  readonly body: Buffer;
}

export interface Answer {
  readonly status: number;
  readonly body: string;
}

/** Why an attempt got no answer: a network error code (ECONNREFUSED, ECONNRESET, …) or ATTEMPT_TIMEOUT. */
export class AttemptError extends Error {
  readonly code: string;

  constructor(code: string) {
    super(code);
    this.code = code;
  }
}

/** Keep-alive agents, one per endpoint, sized for `concurrency` sockets each. */
export class Pool {
  readonly endpoints: readonly Endpoint[];
  private readonly agents: Agent[];
  constructor(
    endpoints: readonly Endpoint[],
    concurrency: number,
  ) {
    this.endpoints = endpoints;
    if (endpoints.length === 0) throw new Error('no endpoints');
    // Every client may end up on one endpoint (the others dead): allow `concurrency` sockets on each.
    this.agents = endpoints.map(() => new Agent({ keepAlive: true, maxSockets: concurrency, maxFreeSockets: concurrency, scheduling: 'lifo' }));
  }

  /** One attempt at endpoint `i`, bounded by timeoutMs. Resolves with any HTTP answer; rejects with AttemptError. */
  attempt(i: number, call: HttpCall, timeoutMs: number): Promise<Answer> {
    const ep = this.endpoints[i]!;
    return new Promise<Answer>((resolve, reject) => {
      let done = false;
      const finish = (f: () => void) => {
        if (done) return;
        done = true;
        clearTimeout(timer);
        f();
      };
      const req = request(
        {
          host: ep.host,
          port: ep.port,
          method: call.method,
          path: call.path,
          agent: this.agents[i],
          headers: { 'content-type': 'application/json', 'content-length': String(call.body.length), ...call.headers },
        },
        (res) => {
          const chunks: Buffer[] = [];
          let size = 0;
          res.on('data', (c: Buffer) => {
            size += c.length;
            if (size > MAX_RESPONSE_BYTES) req.destroy(Object.assign(new Error('response too large'), { code: 'RESPONSE_TOO_LARGE' }));
            else chunks.push(c);
          });
          res.on('end', () => finish(() => resolve({ status: res.statusCode ?? 0, body: Buffer.concat(chunks).toString('utf8') })));
          res.on('error', (e: NodeJS.ErrnoException) => finish(() => reject(new AttemptError(e.code ?? 'ERR'))));
        },
      );
      const timer = setTimeout(() => {
        req.destroy();
        finish(() => reject(new AttemptError('ATTEMPT_TIMEOUT')));
      }, timeoutMs);
      req.on('error', (e: NodeJS.ErrnoException) => finish(() => reject(new AttemptError(e.code ?? 'ERR'))));
      req.end(call.body);
    });
  }

  close(): void {
    for (const a of this.agents) a.destroy();
  }
}

export interface WriteOutcome {
  readonly ok: boolean;
  /** Attempts that failed before the outcome, each with the endpoint index and what went wrong. */
  readonly errors: readonly { readonly endpoint: number; readonly what: string; readonly atMs: number }[];
  /** Endpoint that answered the successful attempt (or the last one tried). */
  readonly endpoint: number;
}

/**
 * One write with the retry policy of the header comment. `startAt` is the first endpoint tried;
 * `build(budgetMs)` makes the call for one attempt that has budgetMs (the smaller of the attempt
 * timeout and what is left of the deadline). `isOk` judges an HTTP answer.
 */
export async function writeWithRetry(
  pool: Pool,
  startAt: number,
  build: (remainingMs: number) => HttpCall,
  isOk: (a: Answer) => boolean,
  requestTimeoutMs: number,
  attemptTimeoutMs: number,
): Promise<WriteOutcome> {
  const deadline = performance.now() + requestTimeoutMs;
  const errors: { endpoint: number; what: string; atMs: number }[] = [];
  let i = startAt % pool.endpoints.length;
  for (;;) {
    const budgetMs = Math.min(Math.floor(deadline - performance.now()), attemptTimeoutMs);
    if (budgetMs < 1) return { ok: false, errors, endpoint: i };
    let what: string;
    try {
      const a = await pool.attempt(i, build(budgetMs), budgetMs);
      if (isOk(a)) return { ok: true, errors, endpoint: i };
      what = `HTTP ${a.status} ${errorCodeOf(a.body)}`.trim();
    } catch (e) {
      if (!(e instanceof AttemptError)) throw e;
      what = e.code;
    }
    errors.push({ endpoint: i, what, atMs: performance.now() });
    i = (i + 1) % pool.endpoints.length;
    if (deadline - performance.now() <= RETRY_PAUSE_MS) return { ok: false, errors, endpoint: i };
    await new Promise((r) => setTimeout(r, RETRY_PAUSE_MS));
  }
}

/** A short error code from a JSON error body (raftauth `error`, etcd gateway `error`/`message`), for counting. */
function errorCodeOf(body: string): string {
  try {
    const o = JSON.parse(body) as Record<string, unknown>;
    const e = o.error ?? o.message;
    return typeof e === 'string' ? e.slice(0, 80) : '';
  } catch {
    return '';
  }
}
