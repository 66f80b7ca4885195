// A closed-loop write load for the cluster tests: `writers` concurrent clients, each appending its
// own sequence numbers to its own key (`load-w<i>`), spread over the nodes it may use. A client
// sends one request at a time; a connection refused (never sent) goes to the next node.
//
// Appends make the final check both cheap and strict: reading one key per writer shows every write
// that was applied, in order, so "every acknowledged write is present" and "no write was applied
// twice" (exactly-once, DESIGN principle 4) are checked on every node from a handful of reads.
import { HttpFailure } from './harness.ts';
import type { HttpResult, ProcessCluster } from './harness.ts';

export const LOAD_KEY_PREFIX = 'load-w';
/** Separator of the appended tokens: a token is `<seq>;`. */
const SEP = ';';

export interface FailedWrite {
  readonly writer: number;
  readonly seq: number;
  readonly node: number;
  /** HTTP status, or the network error code (ECONNRESET, TIMEOUT, …). */
  readonly what: string;
  readonly atMs: number;
}

export interface LoadOptions {
  readonly writers: number;
  /** Nodes a writer may send to (read at each request: a test may change it while the load runs). */
  readonly targets: () => readonly number[];
  /** Per-request deadline (x-request-timeout-ms). */
  readonly requestTimeoutMs: number;
  /**
   * 'round-robin' (default): spread writes over the targets. 'first': always try the targets in
   * the order given, so every writer hits the first one until it refuses connections.
   */
  readonly pick?: 'round-robin' | 'first';
  /**
   * Route like a load balancer with health checks: poll each target's GET /readyz every
   * `healthCheckMs` and send only to nodes that answered 200 (all targets if none did). A node
   * that is stopping reports not-ready and keeps serving for http.shutdownDelayMs before it closes
   * its listeners, so a balancer checking faster than that never sends it a request it will drop.
   * Off (0) by default: then every target is used.
   */
  readonly healthCheckMs?: number;
}

export class WriteLoad {
  private readonly cluster: ProcessCluster;
  private readonly opts: LoadOptions;
  /** acked[w] = sequence numbers node answered 200 for, in order. */
  readonly acked: number[][];
  /** Every sequence number a writer sent (acked or not): a token outside this set is a phantom. */
  readonly attempted: Set<number>[];
  readonly failures: FailedWrite[] = [];
  /** Requests refused at connect (never sent) and retried on the next node. */
  refusedConnects = 0;
  private running = true;
  private readonly loops: Promise<void>[] = [];
  private readonly t0 = performance.now();
  /** Time of the last acknowledgement, for "first ack after an event". */
  private readonly ackTimes: number[] = [];

  constructor(
    cluster: ProcessCluster,
    opts: LoadOptions,
  ) {
    this.cluster = cluster;
    this.opts = opts;
    this.acked = Array.from({ length: opts.writers }, () => []);
    this.attempted = Array.from({ length: opts.writers }, () => new Set<number>());
  }

  static key(writer: number): string {
    return `${LOAD_KEY_PREFIX}${writer}`;
  }

  /** Nodes whose last /readyz answered 200 (health-checked routing). */
  private readonly ready = new Set<number>();

  start(): this {
    if (this.opts.healthCheckMs) this.loops.push(this.healthLoop(this.opts.healthCheckMs));
    for (let w = 0; w < this.opts.writers; w++) this.loops.push(this.loop(w));
    return this;
  }

  private async healthLoop(everyMs: number): Promise<void> {
    while (this.running) {
      await Promise.all(
        this.opts.targets().map(async (id) => {
          try {
            const r = await this.cluster.readyz(id, everyMs * 2);
            if (r) this.ready.add(id);
            else this.ready.delete(id);
          } catch {
            this.ready.delete(id);
          }
        }),
      );
      await new Promise((r) => setTimeout(r, everyMs));
    }
  }

  /** The targets a writer may use now: the ready ones under health-checked routing. */
  private routable(): readonly number[] {
    const all = this.opts.targets();
    if (!this.opts.healthCheckMs) return all;
    const ready = all.filter((id) => this.ready.has(id));
    return ready.length > 0 ? ready : all;
  }

  get ackedCount(): number {
    return this.acked.reduce((n, a) => n + a.length, 0);
  }

  /** Acknowledgements received after performance.now() == `t`. */
  ackedSince(t: number): number {
    let n = 0;
    for (let i = this.ackTimes.length - 1; i >= 0 && this.ackTimes[i]! > t; i--) n++;
    return n;
  }

  /** performance.now() of the first acknowledgement after `t`, or null. */
  firstAckAfter(t: number): number | null {
    let first: number | null = null;
    for (let i = this.ackTimes.length - 1; i >= 0 && this.ackTimes[i]! > t; i--) first = this.ackTimes[i]!;
    return first;
  }

  elapsedMs(): number {
    return performance.now() - this.t0;
  }

  async stop(): Promise<void> {
    this.running = false;
    await Promise.all(this.loops);
  }

  private async loop(w: number): Promise<void> {
    let seq = 0;
    let rr = w;
    while (this.running) {
      seq++;
      this.attempted[w]!.add(seq);
      // One write; on a refused connection (never sent) the next node is tried, like a load
      // balancer would. Every node refusing in a row is a failure too.
      const targets = this.routable();
      let result: HttpResult | HttpFailure | null = null;
      let node = 0;
      if (this.opts.pick === 'first') rr = 0;
      for (let tries = 0; tries < targets.length; tries++) {
        node = targets[rr++ % targets.length]!;
        try {
          result = await this.cluster.append(node, WriteLoad.key(w), `${seq}${SEP}`, this.opts.requestTimeoutMs);
          break;
        } catch (e) {
          if (!(e instanceof HttpFailure)) throw e;
          result = e;
          if (e.kind !== 'refused') break;
          this.refusedConnects++;
        }
      }
      const atMs = Math.round(this.elapsedMs());
      if (result instanceof HttpFailure) this.failures.push({ writer: w, seq, node, what: result.code, atMs });
      else if (result === null) this.failures.push({ writer: w, seq, node, what: 'no target', atMs });
      else if (result.status !== 200) this.failures.push({ writer: w, seq, node, what: `HTTP ${result.status} ${JSON.stringify(result.body)}`, atMs });
      else {
        this.acked[w]!.push(seq);
        this.ackTimes.push(performance.now());
      }
    }
  }

  /**
   * Check one node's view of writer w's key: every acknowledged seq present, none twice, none that
   * was never sent, and no acknowledged one after a write sent later (a writer has one request in
   * flight).
   * Returns a description of what is wrong, or null.
   */
  check(w: number, value: string | null): string | null {
    const tokens = (value ?? '').split(SEP).filter((t) => t !== '').map(Number);
    const ackedSet = new Set(this.acked[w]);
    const seen = new Set<number>();
    let maxBefore = 0;
    for (const t of tokens) {
      if (seen.has(t)) return `seq ${t} applied twice`;
      if (!this.attempted[w]!.has(t)) return `seq ${t} was never sent`;
      // An acknowledged write was applied before the writer sent anything later, so nothing sent
      // later may precede it. (An unacknowledged one, e.g. a 504, may still land after later ones.)
      if (ackedSet.has(t) && maxBefore > t) return `acknowledged seq ${t} applied after seq ${maxBefore}, which was sent later`;
      seen.add(t);
      maxBefore = Math.max(maxBefore, t);
    }
    const missing = this.acked[w]!.filter((s) => !seen.has(s));
    return missing.length > 0 ? `${missing.length} acknowledged writes missing (first ${missing.slice(0, 5).join(',')})` : null;
  }

  /** Check every writer's key on `node` (consistency=local). */
  async checkNode(node: number): Promise<string[]> {
    const problems: string[] = [];
    for (let w = 0; w < this.opts.writers; w++) {
      const p = this.check(w, await this.cluster.localValue(node, WriteLoad.key(w)));
      if (p !== null) problems.push(`node ${node}, writer ${w}: ${p}`);
    }
    return problems;
  }
}
