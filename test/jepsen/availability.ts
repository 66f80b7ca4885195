// Availability (issue 7, item 6): during each fault, the share of operations sent to nodes on the
// majority side that got an answer (an `ok`, or a definite refusal such as invalid_grant or a
// failed CAS: the system decided); and after each fault, how long until the first operation
// invoked after the heal succeeded (recovery time, to its return), and the same per node (a node
// that was on the minority side or down may take much longer than the cluster as a whole).
import type { OpRecord } from './history.ts';
import type { FaultWindow } from './nemesis.ts';

export interface WindowAvailability {
  readonly fault: string;
  readonly start: number;
  readonly end: number;
  readonly majority: readonly number[];
  /** Operations sent to the majority side during the window. */
  readonly operations: number;
  readonly answered: number;
  /** answered / operations, or null without operations. */
  readonly availability: number | null;
  /** ms from the end of the fault to the return of the first later-invoked operation that succeeded; null if none. */
  readonly recoveryMs: number | null;
  /**
   * Per node: ms from the end of the fault to the first success of an operation sent to that node
   * and invoked after it (a node that was cut off, killed or paused serves again). null: none.
   */
  readonly nodeRecoveryMs: Record<string, number | null>;
  /** The slowest node's recovery; null if some node never served again. */
  readonly allNodesRecoveryMs: number | null;
}

export interface AvailabilityVerdict {
  readonly checker: 'availability';
  readonly windows: readonly WindowAvailability[];
  /** Over every window: answered / operations on the majority side. */
  readonly overall: number | null;
  readonly maxRecoveryMs: number | null;
  /** The slowest recovery of every node after any fault; null if after some fault a node never served again. */
  readonly maxAllNodesRecoveryMs: number | null;
}

/** Whether an operation was answered by the system (not unavailable). */
export function answered(o: OpRecord): boolean {
  return o.outcome === 'ok' || (o.outcome === 'fail' && typeof o.error === 'string' && o.error.startsWith('400'));
}

export function checkAvailability(ops: readonly OpRecord[], windows: readonly FaultWindow[]): AvailabilityVerdict {
  const out: WindowAvailability[] = [];
  const byCall = [...ops].sort((a, b) => a.call - b.call);
  const nodes = [...new Set(ops.map((o) => o.node))].sort((a, b) => a - b);
  let total = 0;
  let good = 0;
  for (const w of windows) {
    const inside = byCall.filter((o) => o.call >= w.start && o.call < w.end && w.majority.includes(o.node) && o.f !== 'authorize');
    const a = inside.filter(answered).length;
    total += inside.length;
    good += a;
    const after = byCall.filter((o) => o.call >= w.end && o.outcome === 'ok' && o.f !== 'authorize');
    const firstRet = after.length === 0 ? null : Math.min(...after.map((o) => o.ret));
    const nodeRecoveryMs: Record<string, number | null> = {};
    for (const n of nodes) {
      const mine = after.filter((o) => o.node === n);
      nodeRecoveryMs[n] = mine.length === 0 ? null : Math.round(Math.min(...mine.map((o) => o.ret)) - w.end);
    }
    const per = Object.values(nodeRecoveryMs);
    out.push({
      fault: w.fault,
      start: w.start,
      end: w.end,
      majority: w.majority,
      operations: inside.length,
      answered: a,
      availability: inside.length === 0 ? null : a / inside.length,
      recoveryMs: firstRet === null ? null : Math.round(firstRet - w.end),
      nodeRecoveryMs,
      allNodesRecoveryMs: per.includes(null) ? null : Math.max(...(per as number[])),
    });
  }
  const recoveries = out.map((w) => w.recoveryMs).filter((r): r is number => r !== null);
  const all = out.map((w) => w.allNodesRecoveryMs);
  return {
    checker: 'availability',
    windows: out,
    overall: total === 0 ? null : good / total,
    maxRecoveryMs: recoveries.length === 0 ? null : Math.max(...recoveries),
    maxAllNodesRecoveryMs: all.length === 0 || all.includes(null) ? null : Math.max(...(all as number[])),
  };
}
