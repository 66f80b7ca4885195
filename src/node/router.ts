// The proposal router: turns a client write into a replicated command, gets it applied exactly
// once, and answers with its result, wherever the leader is.
//
// - Each node process owns one client session (sid) in the state machine and numbers its
//   commands. A write keeps its (sid, seq) across every retry, so a command that did commit
//   before a leader change or a lost answer is not applied twice (Raft dissertation §6.3).
// - On the leader the command is proposed locally; elsewhere it is forwarded over the transport.
//   NOT_LEADER, a lost entry, an unreachable leader or a timeout of one attempt are retried
//   inside the request's deadline (clients see latency, not errors, during a leader change).
// - The command's payload ([domain, op, args], msgpack) is encoded once per write; each attempt
//   sends the same bytes (node/command.ts). The leader stamps its own clock (`ts`) into the header
//   when it puts the command in a batch entry: apply never reads a node's clock, and nobody between
//   here and apply decodes the payload.
import { randomBytes } from 'node:crypto';
import { packValue, unpackValue } from '../codec/msgpack.ts';
import { CommandFormatError, encodeCommandBytes, readHeader } from './command.ts';
import type { ApplyResult } from './api.ts';
import type { NodeId } from '../raft/types.ts';
import { NONE } from '../raft/types.ts';
import type { ProposeOutcome } from './driver.ts';
import { NodeError } from './api.ts';
import type { IncomingProposeRequest, ProposeRequest, ProposeResult } from '../transport/types.ts';

/** Session time-to-live: a node that disappears for longer loses its session (and reopens one). */
export const SESSION_TTL_MS = 10 * 60_000;
/** Most writes this node has in flight at once; more are refused rather than queued without bound. */
export const MAX_WRITES_IN_FLIGHT = 10_000;
/** Longest single attempt before retrying (a leader that went silent is abandoned after this). */
const ATTEMPT_TIMEOUT_MS = 1_000;
/** Pause between attempts while no leader is known: short, since elections take ~1 s. */
const RETRY_BACKOFF_MS = [5, 10, 20, 40, 80, 100];

export interface RouterDeps {
  readonly id: NodeId;
  /** Propose encoded command bytes on this node (only succeeds on the leader). */
  proposeLocal(data: Uint8Array): Promise<ProposeOutcome>;
  /** The leader as this node knows it (NONE if unknown). */
  leader(): NodeId;
  /** Resolves when the known leader changes, or after `ms`. */
  leaderChange(ms: number): Promise<void>;
  forward(to: NodeId, req: ProposeRequest): Promise<ProposeResult>;
  now(): number;
}

/** One client session: its id, its sequence numbers and which of them are still open. */
class Session {
  readonly sid: string;
  seq = 0;
  acked = 0;
  /** Sequence numbers not yet completed (answered, or abandoned with an ambiguous outcome). */
  readonly open = new Set<number>();
  ready: Promise<void> | null = null;

  constructor(nodeId: NodeId) {
    this.sid = `n${nodeId}-${randomBytes(12).toString('base64url')}`;
  }

  /** All seqs at or below this have completed: the state machine may forget their results. */
  ackFloor(): number {
    let a = this.acked;
    while (a < this.seq && !this.open.has(a + 1)) a++;
    this.acked = a;
    return a;
  }
}

export class ProposalRouter {
  private readonly deps: RouterDeps;
  private session: Session;
  private inFlight = 0;

  constructor(deps: RouterDeps) {
    this.deps = deps;
    this.session = new Session(deps.id);
  }

  get sid(): string {
    return this.session.sid;
  }

  private ensureSession(s: Session, deadline: number): Promise<void> {
    if (!s.ready) {
      const open = encodeCommandBytes({ sid: s.sid, seq: 0, ack: 0 }, packValue(['session', 'open', { ttlMs: SESSION_TTL_MS }]));
      const ready = this.submit(open, s.sid, 0, deadline).then((r) => {
        if (!r.ok) throw new NodeError('UNAVAILABLE', `could not open a session: ${r.code} ${r.message}`);
      });
      s.ready = ready;
      ready.catch(() => {
        if (s.ready === ready) s.ready = null;
      });
    }
    return s.ready;
  }

  /** Apply a write exactly once; resolves with the domain's result. */
  write(domain: string, op: string, args: unknown, timeoutMs: number): Promise<ApplyResult> {
    // The payload is encoded here, once; retries and forwarding carry these bytes.
    return this.writePayload(packValue([domain, op, args]), timeoutMs);
  }

  /** Apply a write whose payload its creator encoded ([domain, op, args]); the bytes go to apply as they are. */
  async writePayload(payload: Uint8Array, timeoutMs: number): Promise<ApplyResult> {
    if (this.inFlight >= MAX_WRITES_IN_FLIGHT) throw new NodeError('UNAVAILABLE', `more than ${MAX_WRITES_IN_FLIGHT} writes in flight on this node`);
    const deadline = this.deps.now() + timeoutMs;
    this.inFlight++;
    try {
      for (let attempt = 0; ; attempt++) {
        const s = this.session;
        await this.ensureSession(s, deadline);
        const seq = ++s.seq;
        s.open.add(seq);
        let r: ApplyResult;
        try {
          r = await this.submit(commandOrInvalid(s.sid, seq, s.ackFloor(), payload), s.sid, seq, deadline);
        } finally {
          // A timed-out attempt stays ambiguous, but retrying it is safe with the same (sid, seq);
          // once we stop waiting we acknowledge it so the state machine can forget it.
          s.open.delete(seq);
        }
        if (!r.ok && (r.code === 'SESSION_EXPIRED' || r.code === 'SESSION_UNKNOWN') && attempt === 0) {
          // This node was idle longer than the session TTL (or the session was swept). The command
          // was refused, not applied: open a fresh session and send it again under it.
          if (this.session === s) this.session = new Session(this.deps.id);
          continue;
        }
        return r;
      }
    } finally {
      this.inFlight--;
    }
  }

  /** A command outside any session (leader housekeeping: idempotent, so retries are harmless). */
  async housekeeping(domain: string, op: string, args: unknown, timeoutMs: number): Promise<ApplyResult> {
    return this.submit(commandOrInvalid(null, 0, 0, packValue([domain, op, args])), '', 0, this.deps.now() + timeoutMs);
  }

  /** Retry one command (its bytes, the same on every attempt) until it is applied or the deadline passes. */
  private async submit(command: Uint8Array, sid: string, seq: number, deadline: number): Promise<ApplyResult> {
    let attempt = 0;
    for (;;) {
      const left = deadline - this.deps.now();
      if (left <= 0) throw new NodeError('TIMEOUT', 'deadline passed; the write may or may not have been applied');
      const leader = this.deps.leader();
      if (leader === this.deps.id) {
        const o = await withTimeout(this.deps.proposeLocal(command), Math.min(left, ATTEMPT_TIMEOUT_MS));
        if (o && o.kind === 'applied') return o.result;
        if (o && o.kind === 'dropped' && (o.code === 'STOPPING' || o.code === 'FATAL')) throw new NodeError('STOPPING', o.reason);
      } else if (leader !== NONE) {
        const r = await this.deps.forward(leader, { sessionId: sid, seq, command, timeoutMs: Math.min(left, ATTEMPT_TIMEOUT_MS * 2) });
        if (r.ok) return unpackValue<ApplyResult>(r.result);
      }
      // No leader, not the leader any more, lost entry, unreachable leader: wait for a leader change
      // (or a short backoff) and try again with the same (sid, seq).
      const backoff = RETRY_BACKOFF_MS[Math.min(attempt, RETRY_BACKOFF_MS.length - 1)]!;
      attempt++;
      await this.deps.leaderChange(Math.min(backoff, Math.max(0, deadline - this.deps.now())));
    }
  }

  /**
   * The leader's side of a forwarded write: propose its bytes as they came (the driver stamps this
   * node's clock into the header as it batches them). Only the header is read, to check it against
   * the request's session and seq; the payload is not decoded. Answers NOT_LEADER (with a hint) if
   * this node is not the leader.
   */
  async onForwarded(req: IncomingProposeRequest): Promise<ProposeResult> {
    try {
      const h = readHeader(req.command);
      if ((h.sid ?? '') !== req.sessionId || h.seq !== req.seq) {
        return { ok: false, error: { code: 'INTERNAL', leaderHint: NONE, message: 'session id or seq does not match the command' } };
      }
    } catch (e) {
      if (!(e instanceof CommandFormatError)) throw e;
      return { ok: false, error: { code: 'INTERNAL', leaderHint: NONE, message: e.message } };
    }
    const leader = this.deps.leader();
    if (leader !== this.deps.id) return { ok: false, error: { code: 'NOT_LEADER', leaderHint: leader, message: `node ${this.deps.id} is not the leader` } };
    const left = req.deadlineMs - this.deps.now();
    if (left <= 0) return { ok: false, error: { code: 'TIMEOUT', leaderHint: NONE, message: 'deadline passed before proposing' } };
    const o = await withTimeout(this.deps.proposeLocal(req.command), left);
    if (o === null) return { ok: false, error: { code: 'TIMEOUT', leaderHint: NONE, message: 'not applied before the deadline' } };
    switch (o.kind) {
      case 'applied':
        return { ok: true, result: packValue(o.result) };
      case 'notLeader':
        return { ok: false, error: { code: 'NOT_LEADER', leaderHint: o.leader, message: 'not the leader' } };
      case 'lost':
        return { ok: false, error: { code: 'NOT_LEADER', leaderHint: NONE, message: 'the entry was overwritten by a new leader' } };
      case 'dropped':
        return { ok: false, error: { code: 'PROPOSAL_DROPPED', leaderHint: NONE, message: o.reason } };
    }
  }
}

/** The command's bytes; a command too large to propose is the caller's error, not a retryable one. */
function commandOrInvalid(sid: string | null, seq: number, ack: number, payload: Uint8Array): Uint8Array {
  try {
    return encodeCommandBytes({ sid, seq, ack }, payload);
  } catch (e) {
    if (e instanceof CommandFormatError) throw new NodeError('INVALID_REQUEST', e.message);
    throw e;
  }
}

/** The promise's value, or null if it has not settled within `ms`. */
export async function withTimeout<T>(p: Promise<T>, ms: number): Promise<T | null> {
  let timer: NodeJS.Timeout | undefined;
  const t = new Promise<null>((resolve) => {
    timer = setTimeout(() => resolve(null), Math.max(0, ms));
  });
  try {
    return await Promise.race([p, t]);
  } finally {
    clearTimeout(timer);
  }
}
