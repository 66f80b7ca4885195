// Audit queries: by time range, user (sub), client and event type, in seq order, page by page.
//
// Records are keyed by seq and apply's time never goes backwards (src/state/machine.ts), so ts is
// non-decreasing in seq: the first record of a time range is found by binary search, and a scan
// stops at the first record past the range. Other filters are checked record by record, with a
// bound on the records one request may look at (a query that matches rarely returns a cursor
// instead of scanning the whole log in one request).
import { AUDIT_EVENT_TYPES } from '../state/audit-ops.ts';
import type { AuditEventType, AuditRecord } from '../state/audit-ops.ts';
import { AUDIT_KEYSPACE, auditSeqKey } from '../state/audit.ts';
import type { AuditHead } from '../state/audit.ts';
import { unpackValue } from '../state/command.ts';
import { scanAudit } from './chain.ts';
import type { ScanState } from './chain.ts';

/** Largest page of a query. */
export const MAX_QUERY_LIMIT = 1_000;
export const DEFAULT_QUERY_LIMIT = 100;
/** Records one query request may examine before it answers with a cursor. */
export const MAX_QUERY_SCAN = 50_000;

export interface AuditFilter {
  /** ts >= from (ms since the epoch). */
  readonly from: number | null;
  /** ts < to. */
  readonly to: number | null;
  readonly sub: string | null;
  readonly clientId: string | null;
  readonly types: ReadonlySet<AuditEventType> | null;
}

export const NO_FILTER: AuditFilter = { from: null, to: null, sub: null, clientId: null, types: null };

export function matches(r: AuditRecord, f: AuditFilter): boolean {
  if (f.from !== null && r.ts < f.from) return false;
  if (f.to !== null && r.ts >= f.to) return false;
  if (f.sub !== null && r.sub !== f.sub) return false;
  if (f.clientId !== null && r.clientId !== f.clientId) return false;
  if (f.types !== null && !f.types.has(r.type)) return false;
  return true;
}

/** A query-string time: milliseconds since the epoch, or an RFC 3339 date-time. null if neither. */
export function parseTime(raw: string): number | null {
  if (/^[0-9]{1,15}$/.test(raw)) return Number(raw);
  // RFC 3339 §5.6 (date-time, or a full-date meaning its midnight UTC).
  if (!/^\d{4}-\d{2}-\d{2}([Tt ]\d{2}:\d{2}(:\d{2}(\.\d+)?)?([Zz]|[+-]\d{2}:\d{2}))?$/.test(raw)) return null;
  const t = Date.parse(raw.length === 10 ? `${raw}T00:00:00Z` : raw);
  return Number.isFinite(t) && t >= 0 ? t : null;
}

/** Event types from a comma-separated list; throws on an unknown one. */
export function parseTypes(raw: string): Set<AuditEventType> {
  const out = new Set<AuditEventType>();
  for (const t of raw.split(',').map((s) => s.trim()).filter(Boolean)) {
    if (!AUDIT_EVENT_TYPES.includes(t as AuditEventType)) throw new RangeError(`unknown event type ${JSON.stringify(t.slice(0, 40))} (known: ${AUDIT_EVENT_TYPES.join(', ')})`);
    out.add(t as AuditEventType);
  }
  return out;
}

/** The smallest seq in [lo, hi] whose record has ts >= t (hi + 1 if none), by binary search over stored records. */
export async function firstSeqAtOrAfter(scan: ScanState, t: number, lo: number, hi: number): Promise<number> {
  let a = lo;
  let b = hi + 1;
  while (a < b) {
    const mid = Math.floor((a + b) / 2);
    // The first stored record at or after mid (a gap would be a broken chain; it must not stall a query).
    const page = await scan(AUDIT_KEYSPACE, { gte: auditSeqKey(mid), lt: auditSeqKey(b), limit: 1 });
    const r = page[0] === undefined ? null : unpackValue<AuditRecord>(page[0].value);
    if (r === null || r.ts >= t) b = mid;
    else a = r.seq + 1;
  }
  return a;
}

export interface QueryPage {
  readonly records: AuditRecord[];
  /** Pass as `after` to continue; null when the range is exhausted. */
  readonly next: number | null;
}

/**
 * Records after seq `after` that match `f`, at most `limit`, looking at no more than `maxScan`
 * records, up to the head read before the scan (so a page is a consistent prefix).
 */
export async function queryAudit(scan: ScanState, head: AuditHead | null, f: AuditFilter, after: number, limit: number, maxScan = MAX_QUERY_SCAN): Promise<QueryPage> {
  if (head === null || after >= head.seq) return { records: [], next: null };
  let start = after + 1;
  if (f.from !== null) start = Math.max(start, await firstSeqAtOrAfter(scan, f.from, start, head.seq));
  const records: AuditRecord[] = [];
  let scanned = 0;
  for await (const { record } of scanAudit(scan, start, head.seq)) {
    if (f.to !== null && record.ts >= f.to) return { records, next: null };
    scanned++;
    if (matches(record, f)) {
      records.push(record);
      if (records.length >= limit) return { records, next: record.seq < head.seq ? record.seq : null };
    }
    if (scanned >= maxScan) return { records, next: record.seq < head.seq ? record.seq : null };
  }
  return { records, next: null };
}

/** Every matching record up to the head, in seq order (the export). */
export async function* exportAudit(scan: ScanState, head: AuditHead | null, f: AuditFilter): AsyncGenerator<AuditRecord> {
  if (head === null) return;
  const start = f.from !== null ? await firstSeqAtOrAfter(scan, f.from, 1, head.seq) : 1;
  for await (const { record } of scanAudit(scan, start, head.seq)) {
    if (f.to !== null && record.ts >= f.to) return;
    if (matches(record, f)) yield record;
  }
}
