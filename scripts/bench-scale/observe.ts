// What bench:scale reads of the node processes from outside: RSS from /proc, bytes of the data
// dirs, the nodes' log lines about snapshots and the sweep, the snapshot/compaction lines of
// /metrics, and the terms and leaders the admin status API reports.
import { readdirSync, readFileSync, lstatSync } from 'node:fs';
import { join } from 'node:path';
import { childrenOf } from '../lib/proc.ts';
import type { NodeStatus } from '../../src/node/api.ts';

/** Resident set of a process in MB (VmRSS of /proc/<pid>/status); null if it is gone or there is no /proc. */
export function rssMb(pid: number): number | null {
  try {
    const m = /^VmRSS:\s+(\d+)\s+kB$/m.exec(readFileSync(`/proc/${pid}/status`, 'utf8'));
    return m ? Math.round((Number(m[1]) / 1024) * 10) / 10 : null;
  } catch {
    return null;
  }
}

/** Apparent bytes of every file under `dir` (0 if it does not exist); symlinks are not followed. */
export function dirBytes(dir: string): number {
  let total = 0;
  let names: string[];
  try {
    names = readdirSync(dir);
  } catch {
    return 0;
  }
  for (const n of names) {
    const p = join(dir, n);
    try {
      const st = lstatSync(p);
      if (st.isDirectory()) total += dirBytes(p);
      else if (st.isFile()) total += st.size;
    } catch {
      // removed while we looked (a compaction)
    }
  }
  return total;
}

export interface ProcessRss {
  readonly node: number;
  readonly kind: 'primary' | 'worker';
  readonly pid: number;
  /** At the last sample. */
  lastMb: number | null;
  /** Largest seen. */
  maxMb: number | null;
}

/**
 * Samples the RSS of every node primary and its HTTP workers (children of the primary) once a
 * second, keeping the largest value per process.
 */
export class RssSampler {
  private readonly procs = new Map<number, ProcessRss>();
  private timer: NodeJS.Timeout | null = null;
  private readonly primaries: () => readonly { node: number; pid: number | undefined }[];

  constructor(primaries: () => readonly { node: number; pid: number | undefined }[]) {
    this.primaries = primaries;
  }

  sample(): void {
    for (const p of this.primaries()) {
      if (p.pid === undefined) continue;
      const pids: [number, 'primary' | 'worker'][] = [[p.pid, 'primary'], ...childrenOf(p.pid).map((c): [number, 'worker'] => [c, 'worker'])];
      for (const [pid, kind] of pids) {
        const mb = rssMb(pid);
        let r = this.procs.get(pid);
        if (!r) {
          r = { node: p.node, kind, pid, lastMb: null, maxMb: null };
          this.procs.set(pid, r);
        }
        r.lastMb = mb;
        if (mb !== null && (r.maxMb === null || mb > r.maxMb)) r.maxMb = mb;
      }
    }
  }

  start(everyMs = 1_000): void {
    this.sample();
    this.timer = setInterval(() => this.sample(), everyMs);
    this.timer.unref();
  }

  /** Stop sampling; returns every process seen (node order, primary first) and the largest RSS of any. */
  stop(): { processes: ProcessRss[]; maxMb: number | null } {
    if (this.timer) clearInterval(this.timer);
    this.timer = null;
    this.sample();
    const processes = [...this.procs.values()].sort((a, b) => a.node - b.node || (a.kind === b.kind ? a.pid - b.pid : a.kind === 'primary' ? -1 : 1));
    const all = processes.map((p) => p.maxMb).filter((x): x is number => x !== null);
    return { processes, maxMb: all.length > 0 ? Math.max(...all) : null };
  }
}

/** A pino JSON line of a node's output, or null. */
export function parseLogLine(line: string): Record<string, unknown> | null {
  if (!line.startsWith('{')) return null;
  try {
    const v = JSON.parse(line) as unknown;
    return typeof v === 'object' && v !== null && !Array.isArray(v) ? (v as Record<string, unknown>) : null;
  } catch {
    return null;
  }
}

export interface SnapshotEvent {
  readonly node: number;
  /** Log time (ms since the epoch). */
  readonly atMs: number;
  readonly msg: string;
  readonly index: number | null;
  readonly bytes: number | null;
  /** A duration the line carries (durationMs, ms, tookMs, elapsedMs), if any. */
  readonly durationMs: number | null;
}

const DURATION_FIELDS = ['durationMs', 'ms', 'tookMs', 'elapsedMs', 'millis'] as const;
const num = (v: unknown): number | null => (typeof v === 'number' && Number.isFinite(v) ? v : null);

/** A snapshot or compaction line ("created snapshot", "installed snapshot", "compacted …"), or null. */
export function snapshotEventOf(node: number, rec: Record<string, unknown>): SnapshotEvent | null {
  const msg = typeof rec.msg === 'string' ? rec.msg : '';
  if (!/snapshot|compact/i.test(msg) || /backup/i.test(msg)) return null;
  let durationMs: number | null = null;
  for (const f of DURATION_FIELDS) if (num(rec[f]) !== null) durationMs = num(rec[f]);
  return { node, atMs: num(rec.time) ?? Date.now(), msg, index: num(rec.index), bytes: num(rec.bytes), durationMs };
}

/** Records the leader's sweep deleted, from its "swept expired OAuth records" line; null for other lines. */
export function sweptOf(rec: Record<string, unknown>): { atMs: number; deleted: number } | null {
  if (rec.msg !== 'swept expired OAuth records') return null;
  const deleted = num(rec.deleted);
  return deleted === null ? null : { atMs: num(rec.time) ?? Date.now(), deleted };
}

/** The sample lines of /metrics text whose metric name mentions snapshots or compaction. */
export function snapshotMetricLines(text: string): Record<string, number> {
  const out: Record<string, number> = {};
  for (const line of text.split('\n')) {
    if (line.startsWith('#') || !/snapshot|compact/i.test(line)) continue;
    const m = /^([a-zA-Z_:][a-zA-Z0-9_:]*(?:\{[^}]*\})?)\s+(\S+)$/.exec(line.trim());
    if (!m) continue;
    const name = m[1]!;
    // Histogram buckets make the report long and say little here: sums and counts are kept.
    if (name.includes('_bucket')) continue;
    const v = Number(m[2]);
    if (Number.isFinite(v)) out[name] = v;
  }
  return out;
}

/** The fields of a node's /admin/v1/status the bench reads. */
export type AdminStatus = Pick<NodeStatus, 'id' | 'role' | 'leader' | 'term' | 'commit' | 'applied'>;

/**
 * Polls every node's /admin/v1/status: the highest term seen, and each change of the leader the
 * nodes name (0 = none counts as a change too), so a measurement can say whether it ran under one
 * leader.
 */
export class StatusWatcher {
  private timer: NodeJS.Timeout | null = null;
  private readonly fetchAll: () => Promise<(AdminStatus | null)[]>;
  firstTerm: number | null = null;
  lastTerm: number | null = null;
  private lastLeader: number | null = null;
  leaderChanges = 0;
  readonly leadersSeen = new Set<number>();
  failedPolls = 0;
  private busy = false;

  constructor(fetchAll: () => Promise<(AdminStatus | null)[]>) {
    this.fetchAll = fetchAll;
  }

  async poll(): Promise<void> {
    if (this.busy) return;
    this.busy = true;
    try {
      const st = (await this.fetchAll()).filter((s): s is AdminStatus => s !== null);
      if (st.length === 0) {
        this.failedPolls++;
        return;
      }
      const term = Math.max(...st.map((s) => s.term));
      this.firstTerm ??= term;
      this.lastTerm = term;
      // The leader named by the node with the highest term.
      const leader = st.find((s) => s.term === term)!.leader;
      if (this.lastLeader !== null && leader !== this.lastLeader) this.leaderChanges++;
      this.lastLeader = leader;
      if (leader !== 0) this.leadersSeen.add(leader);
    } finally {
      this.busy = false;
    }
  }

  async start(everyMs = 200): Promise<void> {
    await this.poll();
    this.timer = setInterval(() => void this.poll(), everyMs);
    this.timer.unref();
  }

  async stop(): Promise<{ termAtStart: number | null; termAtEnd: number | null; termChanges: number | null; leaderChanges: number; leadersSeen: number[]; failedPolls: number }> {
    if (this.timer) clearInterval(this.timer);
    this.timer = null;
    while (this.busy) await new Promise((r) => setTimeout(r, 10));
    await this.poll();
    return {
      termAtStart: this.firstTerm,
      termAtEnd: this.lastTerm,
      termChanges: this.firstTerm === null || this.lastTerm === null ? null : this.lastTerm - this.firstTerm,
      leaderChanges: this.leaderChanges,
      leadersSeen: [...this.leadersSeen].sort((a, b) => a - b),
      failedPolls: this.failedPolls,
    };
  }
}
