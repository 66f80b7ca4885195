// The audit log's contract (issue 6): event shapes, and how apply modules append them.
//
// Every security event is an AuditEvent appended *inside apply*, in the same command as the change
// it describes (a rotation and its `token.refreshed` record commit together or not at all), so an
// acknowledged action always has its audit record. Events with no state change of their own (a
// failed login, a client_credentials token) are appended by the `audit` domain's `append` op,
// which the HTTP workers batch (src/audit/batcher.ts) and await before answering. A membership
// change is a conf-change entry of its own: its `member.changed` record is appended while that
// entry applies, from the audit part of its context (src/node/members.ts, src/state/audit.ts).
//
// Records are hash-chained (keyspace `audit`, key = seq as 16 digits): each record carries the
// SHA-256 of its predecessor's canonical encoding, so `raftauth audit verify` names the first
// record whose link is broken. The chain head is kept in `sys.audit` under `head`.

export const AUDIT_EVENT_TYPES = [
  // authentication
  'login.succeeded',
  'login.failed',
  'logout',
  // factors (issue 6)
  'mfa.enrolled',
  'mfa.verified',
  'mfa.failed',
  'mfa.replay_refused',
  'mfa.counter_regression',
  'mfa.reset',
  'mfa.recovery_used',
  'mfa.recovery_regenerated',
  'user.locked',
  'user.unlocked',
  // tokens
  'token.issued',
  'token.refreshed',
  'token.reuse_detected',
  'token.revoked',
  'code.reuse_detected',
  'device.decided',
  // administration
  'client.created',
  'client.updated',
  'client.deleted',
  'user.created',
  'user.updated',
  'user.deleted',
  'keys.rotated',
  'keys.rewrapped',
  'member.changed',
  'audit.compacted',
] as const;
export type AuditEventType = (typeof AUDIT_EVENT_TYPES)[number];

/** What a caller supplies; apply adds seq, ts, prev and hash. */
export interface AuditEvent {
  readonly type: AuditEventType;
  /** The user concerned (sub), if any. */
  readonly sub: string | null;
  /** The OAuth client concerned, if any. */
  readonly clientId: string | null;
  /** The client IP as seen by the node that served the request (x-forwarded-for is not trusted). */
  readonly ip: string | null;
  /** Small, non-secret details (grant type, factor type, reason, family id, kid…). Never tokens, codes or secrets. */
  readonly details: Readonly<Record<string, string | number | boolean | null>>;
}

/** A stored record. */
export interface AuditRecord extends AuditEvent {
  readonly seq: number;
  /** Leader time of the command that appended it. */
  readonly ts: number;
  /** hex SHA-256 of the previous record's canonical encoding; 64 zeros for the first record (or the checkpoint's hash after compaction). */
  readonly prev: string;
  /** hex SHA-256 of this record's canonical encoding (every field but `hash`). */
  readonly hash: string;
}

// The audit domain's operations (append, compact; reads head, checkpoint, get) are the table
// AUDIT_WRITES / AUDIT_READS in src/state/audit.ts (src/state/contract.ts).

/**
 * How an apply module appends an event (implemented in src/state/audit.ts):
 *   appendAudit(ctx.tx, ctx.ts, event): AuditRecord
 * It reads the head from `sys.audit`, writes the record and the new head in the same transaction.
 */
export type AppendAudit = (tx: { get(ks: string, k: string): Uint8Array | undefined; put(ks: string, k: string, v: Uint8Array): void }, ts: number, event: AuditEvent) => AuditRecord;
