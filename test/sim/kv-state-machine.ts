// The simulator's reference replicated state machine: a key/value map with put, get, cas and
// append, behind client sessions so that a retried proposal is applied once and answered with its
// first result (Raft dissertation §6.3; DESIGN principle 4).
//
// Apply is a pure function of (state, index, command): no clock, no randomness, no node identity.
// Sessions expire by log index, which every replica sees identically, never by the applying
// node's clock.
//
// Commands travel in the product's formats (src/node/command.ts): each is a binary command — the
// fixed header carries the session id (decimal), seq, an acknowledgement floor and the leader's
// time; the payload is the KV command's own msgpack encoding — and a log entry carries a batch of
// them (encodeBatchEntry). Apply reads session and seq from the header, the input from the payload,
// and answers one result per command, in order.
import { pack, unpack } from 'msgpackr';
import { encodeBatchEntry, encodeCommandBytes, payloadOf, readHeader, splitBatchEntry, MAX_COMMANDS_PER_ENTRY } from '../../src/node/command.ts';
import type { KvInput, KvOutput } from '../support/kv-model.ts';

/** A replicated command. */
export type Command =
  /**
   * Opens a session (dissertation §6.3: RegisterClient). Its id is the command's log position:
   * entry index × MAX_COMMANDS_PER_ENTRY + its place in the batch, unique and the same on every replica.
   */
  | { readonly type: 'register' }
  | { readonly type: 'kv'; readonly sessionId: number; readonly seq: number; readonly input: KvInput };

export type ApplyResult =
  | { readonly type: 'registered'; readonly sessionId: number }
  | { readonly type: 'kv'; readonly output: KvOutput }
  /** The session is unknown or expired: the client cannot know whether its command ran. */
  | { readonly type: 'sessionExpired' }
  /** seq below the session's last applied seq: its answer is no longer kept (the client moved on). */
  | { readonly type: 'staleSeq'; readonly lastSeq: number };

export interface SessionLimits {
  /** At most this many sessions; registering one more evicts the least recently used (§6.3). */
  readonly maxSessions: number;
  /** A session idle for more than this many log entries expires. */
  readonly ttlEntries: number;
}

export const DEFAULT_SESSION_LIMITS: SessionLimits = { maxSessions: 64, ttlEntries: 1_000_000 };

/** Keys and values are short strings in the simulation; larger ones are a workload bug. */
export const MAX_KEY_BYTES = 64;
export const MAX_VALUE_BYTES = 64 * 1024;

interface Session {
  lastSeq: number;
  lastOutput: KvOutput | null;
  /** Log index of the session's last activity (registration or command). */
  lastIndex: number;
}

/**
 * One command in the product's binary format. The header's ack is seq - 1: a simulated client has
 * one command outstanding, so every lower seq is acknowledged (the simulated session table keeps
 * only the last seq and output, and does not read it).
 */
export function encodeCommand(c: Command): Uint8Array {
  if (c.type === 'register') return encodeCommandBytes({ sid: null, seq: 0, ack: 0 }, pack({ type: 'register' }));
  return encodeCommandBytes({ sid: String(c.sessionId), seq: c.seq, ack: Math.max(0, c.seq - 1) }, pack({ type: 'kv', input: c.input }));
}

export function decodeCommand(data: Uint8Array): Command {
  let h: ReturnType<typeof readHeader>;
  let p: { type?: unknown; input?: unknown } | null;
  try {
    h = readHeader(data);
    p = unpack(payloadOf(data)) as { type?: unknown; input?: unknown } | null;
  } catch (e) {
    throw new Error(`kv state machine: undecodable command (${data.length} bytes): ${(e as Error).message}`, { cause: e });
  }
  if (p !== null && typeof p === 'object' && p.type === 'register' && h.sid === null) return { type: 'register' };
  if (p !== null && typeof p === 'object' && p.type === 'kv' && h.sid !== null && /^[0-9]+$/.test(h.sid) && typeof p.input === 'object' && p.input !== null) {
    return { type: 'kv', sessionId: Number(h.sid), seq: h.seq, input: p.input as KvInput };
  }
  throw new Error(`kv state machine: undecodable command (${data.length} bytes)`);
}

/** A log entry carrying `commands` (already encoded), stamped with the leader's time in ms. */
export function encodeEntry(commands: readonly Uint8Array[], tsMs: number): Uint8Array {
  return encodeBatchEntry(commands, tsMs);
}

/** The commands of a batch entry. Anything else is a simulator bug: it throws. */
export function decodeEntry(data: Uint8Array): Command[] {
  const cmds = splitBatchEntry(data);
  if (cmds === null) throw new Error(`kv state machine: entry of ${data.length} bytes is not a batch entry`);
  return cmds.map(decodeCommand);
}

/** What a KV input does to a value, without side effects: shared by apply and by read-only peeks. */
export function evaluate(current: string | null, input: KvInput): { output: KvOutput; next: string | null } {
  switch (input.op) {
    case 'get':
      return { output: { op: 'get', value: current }, next: current };
    case 'put':
      return { output: { op: 'put' }, next: input.value };
    case 'cas':
      if (current === input.expected) return { output: { op: 'cas', ok: true, actual: current }, next: input.value };
      return { output: { op: 'cas', ok: false, actual: current }, next: current };
    case 'append': {
      const next = (current ?? '') + input.value;
      return { output: { op: 'append', value: next }, next };
    }
  }
}

export class KvStateMachine {
  private readonly limits: SessionLimits;
  /** Deliberate bug (applyRetryTwice): skip the session dedupe and apply a retried command again. */
  private readonly dedupe: boolean;
  /** Deliberate bug (refuseRetryAsStale): refuse a retry of the last command as stale instead of answering it again. */
  private readonly refuseRetry: boolean;
  private readonly kv = new Map<string, string>();
  private readonly sessions = new Map<number, Session>();
  private appliedIndex = 0;

  constructor(
    limits: SessionLimits = DEFAULT_SESSION_LIMITS,
    dedupe = true,
    refuseRetry = false,
  ) {
    this.limits = limits;
    this.dedupe = dedupe;
    this.refuseRetry = refuseRetry;
  }

  get applied(): number {
    return this.appliedIndex;
  }

  get sessionCount(): number {
    return this.sessions.size;
  }

  /** Local, possibly stale value: for reads served after a ReadIndex, or by the deliberate bug. */
  read(key: string): string | null {
    return this.kv.get(key) ?? null;
  }

  /** Apply an entry holding one command (a batch of one). */
  apply(index: number, cmd: Command): ApplyResult {
    return this.applyBatch(index, [cmd])[0]!;
  }

  /**
   * Apply the commands of the committed batch entry at `index`, in order, one result per command.
   * Indices must arrive strictly in order. Each command is deduplicated by its own session and seq,
   * so a retry that shares an entry with its first attempt is answered, not applied again.
   */
  applyBatch(index: number, cmds: readonly Command[]): ApplyResult[] {
    if (index <= this.appliedIndex) throw new Error(`kv state machine: apply(${index}) at or below applied ${this.appliedIndex}`);
    if (cmds.length === 0 || cmds.length > MAX_COMMANDS_PER_ENTRY) throw new Error(`kv state machine: a batch holds 1..${MAX_COMMANDS_PER_ENTRY} commands, not ${cmds.length}`);
    this.appliedIndex = index;
    return cmds.map((cmd, i) => this.applyOne(index, i, cmd, this.dedupe));
  }

  /**
   * Deliberate bug (applyBatchTwice): apply the commands of the entry at `index` — already applied
   * — again, past the session table. Nothing else may call this.
   */
  reapplyWithoutDedupe(index: number, cmds: readonly Command[]): void {
    cmds.forEach((cmd, i) => this.applyOne(index, i, cmd, false));
  }

  private applyOne(index: number, position: number, cmd: Command, dedupe: boolean): ApplyResult {
    if (cmd.type === 'register') {
      this.expireIdle(index);
      while (this.sessions.size >= this.limits.maxSessions) this.evictLeastRecentlyUsed();
      const sessionId = index * MAX_COMMANDS_PER_ENTRY + position;
      this.sessions.set(sessionId, { lastSeq: 0, lastOutput: null, lastIndex: index });
      return { type: 'registered', sessionId };
    }
    const s = this.sessions.get(cmd.sessionId);
    if (s === undefined || index - s.lastIndex > this.limits.ttlEntries) {
      this.sessions.delete(cmd.sessionId);
      return { type: 'sessionExpired' };
    }
    s.lastIndex = index;
    if (dedupe) {
      if (cmd.seq === s.lastSeq && s.lastOutput !== null && !this.refuseRetry) return { type: 'kv', output: s.lastOutput };
      if (cmd.seq <= s.lastSeq) return { type: 'staleSeq', lastSeq: s.lastSeq };
    }
    checkInput(cmd.input);
    const { output, next } = evaluate(this.read(cmd.input.key), cmd.input);
    if (next === null) this.kv.delete(cmd.input.key);
    else this.kv.set(cmd.input.key, next);
    s.lastSeq = Math.max(s.lastSeq, cmd.seq);
    s.lastOutput = output;
    return { type: 'kv', output };
  }

  /** Record that a no-op or configuration entry at `index` was applied (it changes no state). */
  skip(index: number): void {
    if (index <= this.appliedIndex) throw new Error(`kv state machine: skip(${index}) at or below applied ${this.appliedIndex}`);
    this.appliedIndex = index;
  }

  /** A deterministic image: keys and sessions sorted, so equal states give equal bytes. */
  serialize(): Uint8Array {
    const kv = [...this.kv.entries()].sort((x, y) => (x[0] < y[0] ? -1 : x[0] > y[0] ? 1 : 0));
    const sessions = [...this.sessions.entries()].sort((x, y) => x[0] - y[0]).map(([id, s]) => [id, s.lastSeq, s.lastOutput, s.lastIndex]);
    return pack({ applied: this.appliedIndex, kv, sessions });
  }

  static deserialize(data: Uint8Array, limits: SessionLimits = DEFAULT_SESSION_LIMITS, dedupe = true, refuseRetry = false): KvStateMachine {
    const sm = new KvStateMachine(limits, dedupe, refuseRetry);
    if (data.length === 0) return sm;
    const img = unpack(data) as { applied: number; kv: [string, string][]; sessions: [number, number, KvOutput | null, number][] };
    sm.appliedIndex = img.applied;
    for (const [k, v] of img.kv) sm.kv.set(k, v);
    for (const [id, lastSeq, lastOutput, lastIndex] of img.sessions) sm.sessions.set(id, { lastSeq, lastOutput, lastIndex });
    return sm;
  }

  /** Make the image carry a given applied index (the snapshot's, which may follow no-op entries). */
  setApplied(index: number): void {
    if (index < this.appliedIndex) throw new Error(`kv state machine: setApplied(${index}) below ${this.appliedIndex}`);
    this.appliedIndex = index;
  }

  private expireIdle(index: number): void {
    for (const [id, s] of this.sessions) if (index - s.lastIndex > this.limits.ttlEntries) this.sessions.delete(id);
  }

  private evictLeastRecentlyUsed(): void {
    let victim = -1;
    let oldest = Infinity;
    for (const [id, s] of this.sessions) {
      if (s.lastIndex < oldest || (s.lastIndex === oldest && id < victim)) {
        oldest = s.lastIndex;
        victim = id;
      }
    }
    this.sessions.delete(victim);
  }
}

function checkInput(input: KvInput): void {
  if (input.key.length > MAX_KEY_BYTES) throw new Error(`kv state machine: key longer than ${MAX_KEY_BYTES}`);
  if ('value' in input && input.value.length > MAX_VALUE_BYTES) throw new Error(`kv state machine: value longer than ${MAX_VALUE_BYTES}`);
}
