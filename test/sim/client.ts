// A simulated client: one session, one outstanding operation at a time, random key and operation,
// sent to a random node; on a timeout or a "not leader" answer it retries on another node with the
// SAME (sessionId, seq) until the operation's deadline, after which the operation is recorded as
// indeterminate (return: Infinity). Everything it sees goes into the history for the
// linearizability check, stamped with virtual time in milliseconds.
import type { NodeId } from '../../src/raft/types.ts';
import type { Operation } from '../support/linearizability.ts';
import type { KvInput, KvOutput } from '../support/kv-model.ts';
import type { Command } from './kv-state-machine.ts';
import type { ClientReply, ClientRequest } from './node.ts';
import type { Rng } from './rng.ts';
import type { ViolationKind } from './checks.ts';

export type KvOperation = Operation<KvInput, KvOutput>;

export interface ClientHost {
  nowUs(): number;
  /** Nodes a client may contact (members that have not been removed). */
  contactable(): readonly NodeId[];
  send(node: NodeId, req: ClientRequest): void;
  setTimer(clientId: number, atUs: number, token: number): void;
  record(op: KvOperation): void;
  violation(kind: ViolationKind, detail: string): void;
  readonly trace: ((line: string) => void) | null;
}

export interface ClientParams {
  readonly attemptTimeoutUs: number;
  readonly opDeadlineUs: number;
  readonly keys: readonly string[];
  /** Pause between operations. */
  readonly thinkMaxUs: number;
  /** No new operation starts at or after this time. */
  readonly stopAtUs: number;
  /** 'workload': random operations until stopAtUs; 'oneWrite': a single put (the liveness probe). */
  readonly plan: 'workload' | 'oneWrite';
}

type TimerKind = 'think' | 'timeout' | 'backoff';

interface Op {
  readonly opId: number;
  readonly cmd: Command;
  /** Null for session registration (not part of the KV history). */
  readonly input: KvInput | null;
  readonly callUs: number;
  readonly deadlineUs: number;
  attempt: number;
  node: NodeId;
}

export class SimClient {
  readonly id: number;
  private readonly host: ClientHost;
  private readonly rng: Rng;
  private readonly params: ClientParams;
  private sessionId = 0;
  private seq = 0;
  private op: Op | null = null;
  private opCounter = 0;
  private valueCounter = 0;
  private timerToken = 0;
  private timerKind: TimerKind | null = null;
  /** The last value this client saw per key, to make CAS operations that can succeed. */
  private readonly lastSeen = new Map<string, string | null>();
  private writesPlanned = 0;
  /** Where the next attempt goes after a "not leader, try X" answer (0: anywhere else). */
  private pendingHint: NodeId = 0;
  /** For the liveness probe: when its write was answered, or null. */
  answeredAtUs: number | null = null;
  opsCompleted = 0;
  opsIndeterminate = 0;
  sessionsExpired = 0;

  constructor(
    id: number,
    host: ClientHost,
    rng: Rng,
    params: ClientParams,
  ) {
    this.id = id;
    this.host = host;
    this.rng = rng;
    this.params = params;
  }

  get busy(): boolean {
    return this.op !== null;
  }

  start(): void {
    this.beginRegister();
  }

  private setTimer(kind: TimerKind, atUs: number): void {
    this.timerKind = kind;
    this.host.setTimer(this.id, atUs, ++this.timerToken);
  }

  private beginRegister(): void {
    this.sessionId = 0;
    this.begin({ type: 'register' }, null);
  }

  private begin(cmd: Command, input: KvInput | null): void {
    const now = this.host.nowUs();
    const opId = ++this.opCounter;
    // The liveness probe's deadline is its whole budget; workload ops get their own deadline.
    const deadlineUs = this.params.plan === 'oneWrite' ? this.params.stopAtUs : now + this.params.opDeadlineUs;
    this.op = { opId, cmd, input, callUs: now, deadlineUs, attempt: 0, node: 0 };
    this.attempt(0);
  }

  private nextOp(): void {
    const now = this.host.nowUs();
    if (this.params.plan === 'oneWrite') {
      if (this.writesPlanned > 0 || now >= this.params.stopAtUs) return;
      this.writesPlanned++;
      this.startKv({ op: 'put', key: this.params.keys[0]!, value: this.freshValue() });
      return;
    }
    if (now >= this.params.stopAtUs) return;
    this.setTimer('think', now + this.rng.int(this.params.thinkMaxUs + 1));
  }

  private freshValue(): string {
    return `${this.id}.${++this.valueCounter}`;
  }

  private randomInput(): KvInput {
    const key = this.rng.pick(this.params.keys);
    const r = this.rng.int(100);
    if (r < 35) return { op: 'get', key };
    if (r < 60) return { op: 'put', key, value: this.freshValue() };
    if (r < 80) {
      const seen = this.lastSeen.get(key);
      const expected = seen !== undefined && this.rng.chance(0.8) ? seen : null;
      return { op: 'cas', key, expected, value: this.freshValue() };
    }
    return { op: 'append', key, value: `${this.id}.${++this.valueCounter};` };
  }

  private startKv(input: KvInput): void {
    const seq = input.op === 'get' ? 0 : ++this.seq;
    this.begin({ type: 'kv', sessionId: this.sessionId, seq, input }, input);
  }

  /** Send the current operation (attempt n) to a node: the hinted leader, else a random other node. */
  private attempt(hint: NodeId): void {
    const op = this.op!;
    const nodes = this.host.contactable();
    let node = hint;
    if (node === 0 || !nodes.includes(node)) {
      const others = nodes.filter((n) => n !== op.node);
      node = this.rng.pick(others.length > 0 ? others : nodes);
    }
    op.attempt++;
    op.node = node;
    this.host.trace?.(`c${this.id} op${op.opId} attempt ${op.attempt} -> n${node}: ${JSON.stringify(op.cmd)}`);
    this.host.send(node, { clientId: this.id, opId: op.opId, attempt: op.attempt, cmd: op.cmd });
    const now = this.host.nowUs();
    this.setTimer('timeout', Math.min(now + this.params.attemptTimeoutUs, Math.max(op.deadlineUs, now + 1)));
  }

  onTimer(token: number): void {
    if (token !== this.timerToken || this.timerKind === null) return;
    const kind = this.timerKind;
    this.timerKind = null;
    const now = this.host.nowUs();
    if (kind === 'think') {
      if (this.op === null && now < this.params.stopAtUs) this.startKv(this.randomInput());
      return;
    }
    const op = this.op;
    if (op === null) return;
    if (kind === 'backoff') {
      this.attempt(this.pendingHint);
      return;
    }
    // Attempt timed out.
    if (now >= op.deadlineUs) {
      this.giveUp(op, 'deadline');
      return;
    }
    this.attempt(0);
  }


  /** Stop waiting: a write whose fate is unknown is recorded as indeterminate. */
  private giveUp(op: Op, why: string): void {
    this.op = null;
    this.host.trace?.(`c${this.id} op${op.opId} indeterminate (${why})`);
    if (op.input === null) {
      // Registration never answered: try again while the workload runs.
      if (this.host.nowUs() < this.params.stopAtUs) this.beginRegister();
      return;
    }
    this.opsIndeterminate++;
    this.host.record({ clientId: this.id, input: op.input, call: op.callUs / 1000, return: Infinity, output: undefined });
    this.nextOp();
  }

  onReply(node: NodeId, req: ClientRequest, reply: ClientReply): void {
    const op = this.op;
    if (op === null || req.opId !== op.opId) return; // an answer to an operation already finished
    const now = this.host.nowUs();
    this.host.trace?.(`c${this.id} op${op.opId} attempt ${req.attempt} <- n${node}: ${JSON.stringify(reply)}`);
    if (reply.type !== 'result') {
      // Only the latest attempt's refusal matters; an older attempt may still succeed elsewhere.
      if (req.attempt !== op.attempt) return;
      if (now >= op.deadlineUs) {
        this.giveUp(op, 'deadline');
        return;
      }
      this.pendingHint = reply.type === 'notLeader' && reply.leader !== node ? reply.leader : 0;
      const backoffUs = this.pendingHint !== 0 ? 1_000 + this.rng.int(4_000) : 10_000 + this.rng.int(20_000);
      this.setTimer('backoff', now + backoffUs);
      return;
    }
    const r = reply.result;
    if (op.input === null) {
      if (r.type !== 'registered') {
        this.host.violation('session', `c${this.id}: registration answered with ${JSON.stringify(r)}`);
        return;
      }
      this.sessionId = r.sessionId;
      this.op = null;
      this.nextOp();
      return;
    }
    switch (r.type) {
      case 'kv': {
        if (r.output.op !== op.input.op) {
          this.host.violation('session', `c${this.id} op${op.opId}: ${op.input.op} answered with a ${r.output.op} result (another command's output)`);
          return;
        }
        this.op = null;
        this.opsCompleted++;
        this.host.record({ clientId: this.id, input: op.input, call: op.callUs / 1000, return: now / 1000, output: r.output });
        const out = r.output;
        if (out.op === 'get') this.lastSeen.set(op.input.key, out.value);
        else if (out.op === 'append') this.lastSeen.set(op.input.key, out.value);
        else if (out.op === 'cas') this.lastSeen.set(op.input.key, out.ok && op.input.op === 'cas' ? op.input.value : out.actual);
        else if (op.input.op === 'put') this.lastSeen.set(op.input.key, op.input.value);
        if (this.params.plan === 'oneWrite') this.answeredAtUs = now;
        this.nextOp();
        return;
      }
      case 'sessionExpired':
        // The command may or may not have run before the session expired: it is indeterminate,
        // and the client needs a fresh session (dissertation §6.3: it must not guess).
        this.op = null;
        this.opsIndeterminate++;
        this.sessionsExpired++;
        this.host.trace?.(`c${this.id} op${op.opId} indeterminate (session expired)`);
        this.host.record({ clientId: this.id, input: op.input, call: op.callUs / 1000, return: Infinity, output: undefined });
        if (now < this.params.stopAtUs) this.beginRegister();
        return;
      case 'staleSeq':
        this.host.violation('session', `c${this.id} op${op.opId}: seq ${req.cmd.type === 'kv' ? req.cmd.seq : '?'} refused as stale (session's last seq ${r.lastSeq}) although it is the client's only outstanding command`);
        return;
      case 'registered':
        this.host.violation('session', `c${this.id} op${op.opId}: a KV command answered as a registration`);
        return;
    }
  }
}
