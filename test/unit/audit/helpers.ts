// Shared by the audit unit tests: a MemoryNode with the OAuth domains, a storage-like scan over its
// state, an independent RFC 8785 implementation to check hashes against, and event builders.
import { createHash } from 'node:crypto';
import { MemoryNode } from '../../support/memory-node.ts';
import { oauthDomains } from '../../../src/state/oauth-domains.ts';
import { packValue, unpackValue } from '../../../src/state/command.ts';
import type { AuditEvent, AuditRecord } from '../../../src/state/audit-ops.ts';
import type { ScanState } from '../../../src/audit/chain.ts';

export const T0 = Date.parse('2026-11-23T12:00:00Z');

export function auditNode(clock: { now: number } = { now: T0 }): MemoryNode {
  return new MemoryNode(oauthDomains(), () => clock.now);
}

/** What DurableStorage.iterate gives: keys in order, gte inclusive, lt exclusive, at most limit. */
export function scanOf(node: MemoryNode): ScanState {
  const enc = new TextEncoder();
  return async (ks, o) =>
    node
      .entries(ks)
      .filter(([k]) => (o.gte === undefined || k >= o.gte) && (o.lt === undefined || k < o.lt))
      .slice(0, o.limit)
      .map(([k, v]) => ({ key: enc.encode(k), value: v }));
}

export function ev(over: Partial<AuditEvent> = {}): AuditEvent {
  return { type: 'login.failed', sub: 'user-1', clientId: 'app', ip: '127.0.0.1', details: { reason: 'bad_password' }, ...over };
}

/** Append through the `append` op, 256 events per command. */
export async function append(node: MemoryNode, events: AuditEvent[]): Promise<number[]> {
  const seqs: number[] = [];
  for (let i = 0; i < events.length; i += 256) {
    const r = await node.write({ domain: 'audit', op: 'append', args: { events: events.slice(i, i + 256) }, timeoutMs: 1000 });
    if (!r.ok) throw new Error(`${r.code} ${r.message}`);
    seqs.push(...(r.value as { seqs: number[] }).seqs);
  }
  return seqs;
}

export function records(node: MemoryNode): AuditRecord[] {
  return node.entries('audit').map(([, v]) => unpackValue<AuditRecord>(v));
}

/** Replace the stored record `seq` (tampering with one node's disk). */
export function tamper(node: MemoryNode, seq: number, change: (r: AuditRecord) => AuditRecord): void {
  const key = String(seq).padStart(16, '0');
  const m = node.state.get('audit')!;
  m.set(key, packValue(change(unpackValue<AuditRecord>(m.get(key)!))));
}

/**
 * RFC 8785 written independently of src/state/audit.ts (what an outside auditor would write):
 * members sorted by UTF-16 code units, ECMAScript string and integer serialization.
 */
export function jcs(v: unknown): string {
  if (Array.isArray(v)) return `[${v.map(jcs).join(',')}]`;
  if (v !== null && typeof v === 'object') {
    const entries = Object.entries(v as Record<string, unknown>).sort(([a], [b]) => (a < b ? -1 : a > b ? 1 : 0));
    return `{${entries.map(([k, x]) => `${JSON.stringify(k)}:${jcs(x)}`).join(',')}}`;
  }
  return JSON.stringify(v);
}

/** The outside verifier's hash of an exported line: drop `hash`, canonicalize, SHA-256. */
export function outsideHash(r: Record<string, unknown>): string {
  const { hash: _h, ...rest } = r;
  return createHash('sha256').update(jcs(rest), 'utf8').digest('hex');
}
