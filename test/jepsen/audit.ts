// Workload 5 (issue 7): the audit log after healing. Every security action the other workloads
// had acknowledged must have its record, on every node, in one order, on a valid hash chain.
//
// After the final heal, the quiet period and the final reads, the runner reads every node's whole
// chain through its admin API (`GET /admin/v1/audit`, pages of 1000; each page starts with a
// ReadIndex barrier, so it holds every event acknowledged before it, src/ops/admin-audit.ts) and
// asks each node to verify its own copy (`/admin/v1/audit/verify`). The checker then judges, with
// no trust in the nodes' own verdicts alone:
//   (a) each node's copy is a valid chain: seq 1, 2, 3, … without a gap, each record's hash the
//       SHA-256 of its canonical form (src/state/audit.ts recordHash), each `prev` its
//       predecessor's hash (64 zeros for record 1); and the node's own verification says ok;
//   (b) the nodes hold the same sequence: the same record (same hash) at every seq up to the
//       shortest copy's end;
//   (c) every acknowledged action has its record on every node: a token grant (`token.issued`) or
//       rotation (`token.refreshed`, a grace replay answers the same rotation) by the access
//       token's jti; a TOTP code accepted (`mfa.verified`), refused as a replay
//       (`mfa.replay_refused`, by step), or refused as wrong (`mfa.failed`); an enrollment
//       (`mfa.enrolled`); a lock (`user.locked`). Records that name no unique id are matched one
//       per action, each to a record of the same user written while the action was in flight
//       (leader time within its call and return, ± AUDIT_CLOCK_SLACK_MS: nodes and clients share
//       the machine's clock). Refused or indeterminate actions may or may not have records.
import type { NodeCluster } from './cluster.ts';
import type { History, OpRecord } from './history.ts';
import type { InvariantVerdict, Violation } from './auth.ts';
import { waitFor } from '../../scripts/lib/wait.ts';
import { GENESIS_HASH, recordHash } from '../../src/state/audit.ts';
import type { AuditRecord } from '../../src/state/audit-ops.ts';

/** Slack between the client's times and the leader's time stamps (one machine, one clock). */
export const AUDIT_CLOCK_SLACK_MS = 1_000;
/** How long a node gets to answer the final audit reads (a node may take a while to serve after a heal). */
const READ_DEADLINE_MS = 60_000;
const PAGE = 1_000;

export interface AuditCopy {
  readonly node: number;
  /** The node's whole chain, or null when it could not be read. */
  readonly records: readonly AuditRecord[] | null;
  /** The node's own verification answer (/admin/v1/audit/verify), or null. */
  readonly verify: Record<string, unknown> | null;
  readonly error: string | null;
}

/** Read every node's chain and verification, recording each read as an `audit` op. */
export async function collectAudit(cluster: NodeCluster, history: History, ids: readonly number[]): Promise<AuditCopy[]> {
  const out: AuditCopy[] = [];
  for (const node of ids) {
    let records: AuditRecord[] | null = null;
    let verify: Record<string, unknown> | null = null;
    let error: string | null = null;
    await history.op({ workload: 'audit', process: history.newProcess(), f: 'read', node, input: {} }, async () => {
      try {
        records = await waitFor(
          `node ${node}'s audit log`,
          async () => {
            const all: AuditRecord[] = [];
            let after = 0;
            for (;;) {
              const r = await cluster.admin(node, 'GET', `/admin/v1/audit?limit=${PAGE}${after > 0 ? `&after=${after}` : ''}`);
              if (r.status !== 200) return null;
              all.push(...(r.body.records as AuditRecord[]));
              if (typeof r.body.next !== 'number') return all;
              after = r.body.next;
            }
          },
          READ_DEADLINE_MS,
          500,
        );
      } catch (e) {
        error = (e as Error).message;
        return { outcome: 'fail', output: null, error };
      }
      return { outcome: 'ok', output: { records: records.length, last: records.at(-1)?.seq ?? 0 } };
    });
    await history.op({ workload: 'audit', process: history.newProcess(), f: 'verify', node, input: {} }, async () => {
      try {
        verify = await waitFor(
          `node ${node}'s audit verification`,
          async () => {
            const r = await cluster.admin(node, 'GET', `/admin/v1/audit/verify?node=${node}`);
            return r.status === 200 ? r.body : null;
          },
          READ_DEADLINE_MS,
          500,
        );
      } catch (e) {
        error ??= (e as Error).message;
        return { outcome: 'fail', output: null, error: (e as Error).message };
      }
      return { outcome: 'ok', output: { ok: verify.ok ?? null, records: verify.records ?? null } };
    });
    out.push({ node, records, verify, error });
  }
  return out;
}

/** Why a copy is not a valid chain (the first broken record), or null. */
export function chainError(records: readonly AuditRecord[]): { seq: number; why: string } | null {
  let prev = GENESIS_HASH;
  let expected = 1;
  for (const r of records) {
    if (r.seq !== expected) return { seq: expected, why: r.seq > expected ? `records ${expected}..${r.seq - 1} are missing` : `record ${r.seq} comes after ${expected - 1}` };
    if (r.prev !== prev) return { seq: r.seq, why: `its prev is not record ${r.seq - 1}'s hash` };
    let h: string;
    try {
      h = recordHash(r);
    } catch (e) {
      return { seq: r.seq, why: `it cannot be encoded canonically: ${(e as Error).message}` };
    }
    if (h !== r.hash) return { seq: r.seq, why: 'its hash does not match its content' };
    prev = r.hash;
    expected++;
  }
  return null;
}

/** An acknowledged action and what identifies its record. */
interface Expected {
  readonly op: OpRecord;
  readonly type: string;
  /** Matched exactly: the record whose details.jti (or details.step with the sub) is this. */
  readonly key: string | null;
  readonly sub: string | null;
}

/** The acknowledged actions of the history that must each have an audit record. */
export function expectedRecords(ops: readonly OpRecord[]): Expected[] {
  const out: Expected[] = [];
  for (const o of ops) {
    if (o.outcome !== 'ok') continue;
    const jti = typeof o.output?.jti === 'string' ? o.output.jti : null;
    if ((o.workload === 'refresh' && o.f === 'grant') || (o.workload === 'code' && o.f === 'redeem')) out.push({ op: o, type: 'token.issued', key: jti, sub: null });
    else if (o.workload === 'refresh' && o.f === 'refresh') out.push({ op: o, type: 'token.refreshed', key: jti, sub: null });
    else if (o.workload === 'totp') {
      const sub = String(o.input.sub);
      const answer = o.output?.answer;
      if (o.f === 'enroll') out.push({ op: o, type: 'mfa.enrolled', key: null, sub });
      else if (answer === 'accepted') out.push({ op: o, type: 'mfa.verified', key: null, sub });
      else if (answer === 'replay') out.push({ op: o, type: 'mfa.replay_refused', key: `${sub}/${String(o.input.step)}`, sub });
      else if (answer === 'invalid') out.push({ op: o, type: 'mfa.failed', key: null, sub });
      else if (answer === 'locked') out.push({ op: o, type: 'user.locked', key: null, sub });
    }
  }
  return out;
}

function recordKey(r: AuditRecord): string | null {
  if (r.type === 'token.issued' || r.type === 'token.refreshed') return typeof r.details.jti === 'string' ? r.details.jti : null;
  if (r.type === 'mfa.replay_refused') return `${r.sub ?? ''}/${String(r.details.step)}`;
  return null;
}

/**
 * Match the expected actions to the records of one copy; returns the actions without a record.
 * Keyed actions (a jti) need a record with that key; a grace replay shares its rotation's record.
 * The others are matched one record per action among the records of the same type and user whose
 * time falls inside the action's window: intervals against points, assigned greedily by the
 * earliest window end (optimal for this kind of matching).
 */
export function unmatched(expected: readonly Expected[], records: readonly AuditRecord[], epochMs: number): Expected[] {
  const missing: Expected[] = [];
  const byKey = new Map<string, AuditRecord[]>();
  const byTypeSub = new Map<string, AuditRecord[]>();
  for (const r of records) {
    const k = recordKey(r);
    if (k !== null) byKey.set(`${r.type} ${k}`, [...(byKey.get(`${r.type} ${k}`) ?? []), r]);
    const ts = `${r.type} ${r.sub ?? ''}`;
    byTypeSub.set(ts, [...(byTypeSub.get(ts) ?? []), r]);
  }
  const windowed = new Map<string, Expected[]>();
  for (const e of expected) {
    if (e.type === 'token.issued' || e.type === 'token.refreshed') {
      if (e.key === null || !byKey.has(`${e.type} ${e.key}`)) missing.push(e);
      continue;
    }
    if (e.type === 'user.locked' || e.type === 'mfa.enrolled') {
      // The lock a "locked" answer reports was set before that answer (by this guess or another);
      // an enrollment may have been confirmed by an earlier attempt whose answer was lost.
      const at = epochMs + e.op.ret + AUDIT_CLOCK_SLACK_MS;
      if (!(byTypeSub.get(`${e.type} ${e.sub ?? ''}`) ?? []).some((r) => r.ts <= at)) missing.push(e);
      continue;
    }
    const group = e.type === 'mfa.replay_refused' ? `${e.type} ${e.key ?? ''}` : `${e.type} ${e.sub ?? ''}`;
    windowed.set(group, [...(windowed.get(group) ?? []), e]);
  }
  for (const [group, es] of windowed) {
    const pool = [...(group.startsWith('mfa.replay_refused ') ? (byKey.get(group) ?? []) : (byTypeSub.get(group) ?? []))].sort((a, b) => a.ts - b.ts);
    const used = new Set<AuditRecord>();
    const sorted = [...es].sort((a, b) => a.op.ret - b.op.ret);
    for (const e of sorted) {
      const lo = epochMs + e.op.call - AUDIT_CLOCK_SLACK_MS;
      const hi = epochMs + e.op.ret + AUDIT_CLOCK_SLACK_MS;
      const r = pool.find((x) => !used.has(x) && x.ts >= lo && x.ts <= hi);
      if (r === undefined) missing.push(e);
      else used.add(r);
    }
  }
  return missing;
}

/** The audit verdict: (a) valid chains, (b) one sequence, (c) every acknowledged action recorded on every node. */
export function checkAudit(ops: readonly OpRecord[], copies: readonly AuditCopy[], epochMs: number): InvariantVerdict & { perNode: Record<string, Record<string, unknown>> } {
  const violations: Violation[] = [];
  const perNode: Record<string, Record<string, unknown>> = {};
  const expected = expectedRecords(ops);
  const byType: Record<string, number> = {};
  for (const e of expected) byType[e.type] = (byType[e.type] ?? 0) + 1;
  const readable = copies.filter((c): c is AuditCopy & { records: readonly AuditRecord[] } => c.records !== null);
  for (const c of copies) {
    if (c.records === null) {
      violations.push({ kind: 'unreadable', message: `node ${c.node}: its audit log could not be read after healing: ${c.error ?? ''}`, ops: [] });
      perNode[c.node] = { records: null };
      continue;
    }
    const broken = chainError(c.records);
    if (broken) violations.push({ kind: 'broken-chain', message: `node ${c.node}: record ${broken.seq}: ${broken.why}`, ops: [] });
    if (c.verify === null || c.verify.ok !== true) violations.push({ kind: 'verify-failed', message: `node ${c.node}: its own verification says ${JSON.stringify(c.verify)}`, ops: [] });
    const missing = unmatched(expected, c.records, epochMs);
    for (const m of missing.slice(0, 50)) {
      violations.push({ kind: 'missing-record', message: `node ${c.node}: no ${m.type} record for the acknowledged ${m.op.workload} ${m.op.f} (op ${m.op.index}${m.key !== null ? `, ${m.key}` : ''})`, ops: [m.op.index] });
    }
    if (missing.length > 50) violations.push({ kind: 'missing-record', message: `node ${c.node}: ${missing.length - 50} more acknowledged actions without a record`, ops: [] });
    const types: Record<string, number> = {};
    for (const r of c.records) types[r.type] = (types[r.type] ?? 0) + 1;
    perNode[c.node] = { records: c.records.length, head: c.records.at(-1)?.hash ?? null, missing: missing.length, types };
  }
  // (b) one order: the same record at every seq all the readable copies hold.
  const common = readable.length === 0 ? 0 : Math.min(...readable.map((c) => c.records.length));
  if (readable.length > 1) {
    const ref = readable[0]!;
    for (const c of readable.slice(1)) {
      const at = c.records.slice(0, common).findIndex((r, i) => r.hash !== ref.records[i]!.hash || r.seq !== ref.records[i]!.seq);
      if (at >= 0) violations.push({ kind: 'diverged', message: `nodes ${ref.node} and ${c.node} hold different records at seq ${ref.records[at]!.seq} (${ref.records[at]!.type} vs ${c.records[at]!.type})`, ops: [] });
    }
  }
  const counts = { nodes: copies.length, readable: readable.length, commonRecords: common, expected: expected.length, ...Object.fromEntries(Object.entries(byType).map(([k, v]) => [`expected ${k}`, v])) };
  return { checker: 'audit', valid: violations.length === 0, counts, violations, perNode };
}
