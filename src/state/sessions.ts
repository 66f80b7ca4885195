// Client sessions for exactly-once commands (Raft dissertation §6.3).
//
// A client (a node's proposal router, an HTTP worker) opens a session, then numbers its commands
// 1, 2, 3, … A command retried after a timeout or a leader change carries the same (sid, seq), so
// apply recognises it and answers with the result it recorded the first time instead of applying
// it again. Without this, a refresh-token rotation retried across a leader change would look like
// reuse of a rotated token and revoke the whole family.
//
// Results are kept per session until the client acknowledges them (`ack` in later commands).
// Sessions expire deterministically: by the leader timestamps in the commands, never by the
// applying node's clock, so every node expires the same sessions at the same log index.
//
// These limits are part of the replicated state machine's definition: every node must apply
// with the same values, so they are constants, not node configuration.
import type { Command } from './command.ts';
import { packValue, unpackValue } from './command.ts';
import type { Overlay } from './overlay.ts';
import type { ApplyResult } from '../node/api.ts';

export const SESSION_DOMAIN = 'session';
const SESSIONS = 'sys.sessions';
const RESULTS = 'sys.results';
const META = 'sys.meta';
const INDEX_KEY = 'sessions.index';

export interface SessionConfig {
  /** Most open sessions at once; opening more fails with SESSION_LIMIT. */
  readonly maxSessions: number;
  /** Most unacknowledged results per session; more commands fail with SESSION_BACKLOG. */
  readonly maxPendingResults: number;
  readonly minTtlMs: number;
  readonly maxTtlMs: number;
}

export const SESSION_LIMITS: SessionConfig = {
  maxSessions: 4096,
  maxPendingResults: 4096,
  minTtlMs: 10_000,
  maxTtlMs: 24 * 3600_000,
};

const SID_RE = /^[A-Za-z0-9_-]{8,64}$/;

interface SessionRecord {
  readonly ttlMs: number;
  lastTs: number;
  ack: number;
  /** Sequence numbers whose results are stored, ascending. */
  pending: number[];
}

/** The first position in ascending `xs` whose value is greater than `v` (binary search). */
function firstAbove(xs: readonly number[], v: number): number {
  let lo = 0;
  let hi = xs.length;
  while (lo < hi) {
    const mid = (lo + hi) >>> 1;
    if (xs[mid]! <= v) lo = mid + 1;
    else hi = mid;
  }
  return lo;
}

/** True when ascending `xs` holds `v`. */
function holds(xs: readonly number[], v: number): boolean {
  const i = firstAbove(xs, v);
  return i > 0 && xs[i - 1] === v;
}

function resultKey(sid: string, seq: number): string {
  return `${sid}/${seq.toString(16).padStart(13, '0')}`;
}

export class SessionTable {
  private readonly cfg: SessionConfig;
  /**
   * The session records of the batch being applied (between begin() and flush()), decoded once
   * and encoded once per batch instead of twice and once per command: a batch of a busy node holds
   * dozens of commands of the same few sessions (its HTTP workers and proposal routers). undefined
   * = dropped in this batch. Outside a batch (tests calling check/record directly) every access
   * goes to the store.
   */
  private batch: Map<string, SessionRecord | undefined> | null = null;
  private readonly dirty = new Set<string>();

  constructor(cfg: SessionConfig) {
    this.cfg = cfg;
  }

  /** A batch of commands starts: records are cached until flush(). */
  begin(): void {
    this.batch = new Map();
    this.dirty.clear();
  }

  /** The batch ends: write each changed record once. */
  flush(tx: Overlay): void {
    if (this.batch) for (const sid of this.dirty) {
      const rec = this.batch.get(sid);
      if (rec) tx.put(SESSIONS, sid, packValue(rec));
    }
    this.batch = null;
    this.dirty.clear();
  }

  private load(tx: Overlay, sid: string): SessionRecord | undefined {
    if (this.batch?.has(sid)) return this.batch.get(sid);
    const b = tx.get(SESSIONS, sid);
    const rec = b ? unpackValue<SessionRecord>(b) : undefined;
    this.batch?.set(sid, rec);
    return rec;
  }

  private store(tx: Overlay, sid: string, rec: SessionRecord): void {
    if (this.batch) {
      this.batch.set(sid, rec);
      this.dirty.add(sid);
    } else tx.put(SESSIONS, sid, packValue(rec));
  }

  private index(tx: Overlay): string[] {
    const b = tx.get(META, INDEX_KEY);
    return b ? unpackValue<string[]>(b) : [];
  }

  /** Delete a session's record and results (not its index entry: see drop and expireAll). */
  private dropRecord(tx: Overlay, sid: string, s: SessionRecord): void {
    for (const seq of s.pending) tx.del(RESULTS, resultKey(sid, seq));
    tx.del(SESSIONS, sid);
    if (this.batch) {
      this.batch.set(sid, undefined);
      this.dirty.delete(sid);
    }
  }

  private drop(tx: Overlay, sid: string, s: SessionRecord): void {
    this.dropRecord(tx, sid, s);
    tx.put(META, INDEX_KEY, packValue(this.index(tx).filter((x) => x !== sid)));
  }

  private expired(s: SessionRecord, ts: number): boolean {
    return ts > s.lastTs + s.ttlMs;
  }

  /** Session operations: open, close, expire (a leader-driven sweep). */
  applySessionOp(tx: Overlay, ts: number, cmd: Command): ApplyResult {
    switch (cmd.op) {
      case 'open': {
        const sid = cmd.sid;
        const ttlMs = (cmd.args as { ttlMs?: unknown } | null)?.ttlMs;
        if (sid === null || !SID_RE.test(sid)) return { ok: false, code: 'INVALID_SESSION', message: 'session id must be 8-64 characters of [A-Za-z0-9_-]' };
        if (typeof ttlMs !== 'number' || !Number.isSafeInteger(ttlMs) || ttlMs < this.cfg.minTtlMs || ttlMs > this.cfg.maxTtlMs) {
          return { ok: false, code: 'INVALID_SESSION', message: `ttlMs must be an integer in [${this.cfg.minTtlMs}, ${this.cfg.maxTtlMs}]` };
        }
        const existing = this.load(tx, sid);
        if (existing && !this.expired(existing, ts)) return { ok: true, value: { sid, reopened: true } };
        if (existing) this.drop(tx, sid, existing);
        if (this.index(tx).length >= this.cfg.maxSessions) this.expireAll(tx, ts);
        const idx = this.index(tx);
        if (idx.length >= this.cfg.maxSessions) return { ok: false, code: 'SESSION_LIMIT', message: `at most ${this.cfg.maxSessions} sessions` };
        const rec: SessionRecord = { ttlMs, lastTs: ts, ack: 0, pending: [] };
        this.store(tx, sid, rec);
        tx.put(META, INDEX_KEY, packValue([...idx, sid]));
        return { ok: true, value: { sid, reopened: false } };
      }
      case 'close': {
        if (cmd.sid === null) return { ok: false, code: 'INVALID_SESSION', message: 'close needs a session id' };
        const s = this.load(tx, cmd.sid);
        if (s) this.drop(tx, cmd.sid, s);
        return { ok: true, value: { closed: s !== undefined } };
      }
      case 'expire':
        return { ok: true, value: { expired: this.expireAll(tx, ts) } };
      default:
        return { ok: false, code: 'UNKNOWN_OPERATION', message: `session has no operation ${cmd.op}` };
    }
  }

  /**
   * Drop every session idle for longer than its TTL at leader time `ts`. Bounded by maxSessions
   * reads, and the index is rewritten once, not once per dropped session (which made a sweep of k
   * sessions decode and encode the whole index k times). The state it leaves is the same.
   */
  private expireAll(tx: Overlay, ts: number): number {
    const idx = this.index(tx);
    const gone = new Set<string>();
    for (const sid of idx) {
      const s = this.load(tx, sid);
      if (s && this.expired(s, ts)) {
        this.dropRecord(tx, sid, s);
        gone.add(sid);
      }
    }
    if (gone.size > 0) tx.put(META, INDEX_KEY, packValue(idx.filter((x) => !gone.has(x))));
    return gone.size;
  }

  /**
   * Before applying `cmd`: the recorded result if it is a retry, an error if its session is
   * unknown, expired or saturated, or null to apply it.
   */
  check(tx: Overlay, ts: number, cmd: Command): ApplyResult | null {
    if (cmd.sid === null) return null;
    const s = this.load(tx, cmd.sid);
    if (!s) return { ok: false, code: 'SESSION_UNKNOWN', message: `no session ${cmd.sid}` };
    if (this.expired(s, ts)) {
      this.drop(tx, cmd.sid, s);
      return { ok: false, code: 'SESSION_EXPIRED', message: `session ${cmd.sid} expired` };
    }
    if (cmd.seq === 0) return { ok: false, code: 'INVALID_SESSION', message: 'seq must start at 1' };
    if (cmd.seq <= s.ack) return { ok: false, code: 'STALE_SEQUENCE', message: `seq ${cmd.seq} was acknowledged already` };
    // `pending` is kept ascending, so each look-up is a binary search, not a scan of up to
    // maxPendingResults numbers per command.
    if (holds(s.pending, cmd.seq)) {
      const b = tx.get(RESULTS, resultKey(cmd.sid, cmd.seq));
      if (b) return unpackValue<ApplyResult>(b);
    }
    const stillPending = s.pending.length - firstAbove(s.pending, Math.max(s.ack, cmd.ack));
    if (stillPending >= this.cfg.maxPendingResults) {
      return { ok: false, code: 'SESSION_BACKLOG', message: `more than ${this.cfg.maxPendingResults} unacknowledged results` };
    }
    return null;
  }

  /** After applying `cmd`: remember its result and forget the acknowledged ones. */
  record(tx: Overlay, ts: number, cmd: Command, result: ApplyResult): void {
    if (cmd.sid === null) return;
    const s = this.load(tx, cmd.sid);
    if (!s) return; // dropped as expired in check()
    s.lastTs = Math.max(s.lastTs, ts);
    if (cmd.ack > s.ack) {
      s.ack = cmd.ack;
      const cut = firstAbove(s.pending, s.ack);
      for (let i = 0; i < cut; i++) tx.del(RESULTS, resultKey(cmd.sid, s.pending[i]!));
      if (cut > 0) s.pending = s.pending.slice(cut);
    }
    if (cmd.seq > s.ack && !holds(s.pending, cmd.seq)) {
      // Sequence numbers mostly arrive in order: append, or insert in place.
      const at = firstAbove(s.pending, cmd.seq);
      if (at === s.pending.length) s.pending.push(cmd.seq);
      else s.pending.splice(at, 0, cmd.seq);
      tx.put(RESULTS, resultKey(cmd.sid, cmd.seq), packValue(result));
    }
    this.store(tx, cmd.sid, s);
  }
}
