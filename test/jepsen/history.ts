// The run's history: every client operation with its invocation and completion times, and every
// nemesis event. Written to history.jsonl (one JSON object per line, in completion order) as the run
// goes, so a run that dies still leaves what it recorded.
//
// Outcomes follow Jepsen: `ok` (it happened, with this output), `fail` (it definitely did not
// happen, or for a read: it returned nothing), `info` (indeterminate: timed out or the connection
// was lost after the request may have been sent; it may have happened at any time after its call,
// or never).
import { createWriteStream } from 'node:fs';
import type { WriteStream } from 'node:fs';

export type Workload = 'kv' | 'refresh' | 'code' | 'totp' | 'audit';
export type Outcome = 'ok' | 'fail' | 'info';

export interface OpRecord {
  readonly kind: 'op';
  /** Sequence number in invocation order. */
  readonly index: number;
  readonly workload: Workload;
  /** The logical client (Jepsen's process); a client whose operation ended `info` takes a new one. */
  readonly process: number;
  /** The operation: kv get/put/cas, refresh, authorize, redeem. */
  readonly f: string;
  /** The node the request was sent to. */
  readonly node: number;
  /** Milliseconds since the start of the run. */
  readonly call: number;
  readonly ret: number;
  readonly outcome: Outcome;
  readonly input: Record<string, unknown>;
  readonly output: Record<string, unknown> | null;
  /** HTTP status, error code or failure reason, for `fail` and `info`. */
  readonly error?: string;
}

export interface NemesisRecord {
  readonly kind: 'nemesis';
  readonly index: number;
  /** start, stop, or a step inside a fault (a kill, a transfer). */
  readonly phase: 'start' | 'stop' | 'event';
  /** The fault kind (see nemesis.ts). */
  readonly fault: string;
  readonly time: number;
  readonly detail: Record<string, unknown>;
}

export type HistoryRecord = OpRecord | NemesisRecord;

export class History {
  readonly ops: OpRecord[] = [];
  readonly nemesis: NemesisRecord[] = [];
  /** A clear secret an operation returned (a refresh token), kept in memory only, never written. */
  readonly secrets = new WeakMap<OpRecord, string>();
  private next = 0;
  private nextProcess = 1000;
  private readonly out: WriteStream | null;
  private t0 = performance.now();
  /**
   * Wall-clock time (ms since the epoch) of time zero: what relates the history's times to the
   * leader times the nodes write into audit records (same machine, same clock).
   */
  epochMs = Date.now();

  constructor(file: string | null) {
    this.out = file === null ? null : createWriteStream(file);
  }

  /** Time zero of the history: when the workloads start (the cluster's start-up is not plotted). */
  begin(): void {
    if (this.next === 0) {
      this.t0 = performance.now();
      this.epochMs = Date.now();
      this.lastStamp = -Infinity;
    }
  }

  /**
   * Milliseconds since begin(), strictly increasing across calls. The checkers order A before B
   * only if A returned strictly before B was called (test/support/linearizability.ts); stamps
   * rounded to 0.1 ms gave a sequential "put, then get" equal stamps, so the checker had to treat
   * them as concurrent and the negative control's stale read passed as linearizable. Every stamp
   * comes from this one clock, so a later stamp is a later event.
   */
  now(): number {
    const t = performance.now() - this.t0;
    this.lastStamp = t > this.lastStamp ? t : this.lastStamp + 1e-6;
    return this.lastStamp;
  }
  private lastStamp = -Infinity;

  /** A fresh logical process id (after an indeterminate operation, Jepsen's "crashed" process). */
  newProcess(): number {
    return this.nextProcess++;
  }

  /** Run `fn`, recording it as one operation. `fn` returns the outcome and output; a throw is `info`. */
  async op(
    w: { workload: Workload; process: number; f: string; node: number; input: Record<string, unknown> },
    fn: () => Promise<{ outcome: Outcome; output: Record<string, unknown> | null; error?: string; secret?: string }>,
  ): Promise<OpRecord> {
    const index = this.next++;
    const call = this.now();
    let r: { outcome: Outcome; output: Record<string, unknown> | null; error?: string; secret?: string };
    try {
      r = await fn();
    } catch (e) {
      r = { outcome: 'info', output: null, error: (e as Error).message.slice(0, 300) };
    }
    const rec: OpRecord = { kind: 'op', index, ...w, call, ret: this.now(), outcome: r.outcome, output: r.output, ...(r.error !== undefined ? { error: r.error } : {}) };
    this.ops.push(rec);
    if (r.secret !== undefined) this.secrets.set(rec, r.secret);
    this.out?.write(JSON.stringify(rec) + '\n');
    return rec;
  }

  event(phase: NemesisRecord['phase'], fault: string, detail: Record<string, unknown> = {}): NemesisRecord {
    const rec: NemesisRecord = { kind: 'nemesis', index: this.next++, phase, fault, time: this.now(), detail };
    this.nemesis.push(rec);
    this.out?.write(JSON.stringify(rec) + '\n');
    return rec;
  }

  close(): Promise<void> {
    const out = this.out;
    if (out === null) return Promise.resolve();
    return new Promise((r) => out.end(r));
  }
}

/** Parse a history.jsonl back (for the checkers run on a saved history). */
export function parseHistory(text: string): { ops: OpRecord[]; nemesis: NemesisRecord[] } {
  const ops: OpRecord[] = [];
  const nemesis: NemesisRecord[] = [];
  for (const line of text.split('\n')) {
    if (line.trim() === '') continue;
    const r = JSON.parse(line) as HistoryRecord;
    if (r.kind === 'op') ops.push(r);
    else nemesis.push(r);
  }
  return { ops, nemesis };
}
