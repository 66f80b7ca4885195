// The audit domain: a hash-chained, replicated log of security events (issue 6; contract in
// audit-ops.ts, format for outside verifiers in docs/audit.md).
//
// Records live in keyspace `audit`, key = seq as 16 digits (so key order is seq order); the chain
// head { seq, hash } and the last retention checkpoint live in `sys.audit`. Apply modules append
// their event with appendAudit() in the same transaction as the change it describes; events with
// no change of their own come through the `append` op (batched by the workers). A membership change
// is a conf-change entry, not a command: its `member.changed` record comes from the audit part of
// the entry's context, through the domain's confChange hook (memberChangedHook below).
//
// The hash of a record is SHA-256 over the RFC 8785 (JSON Canonicalization Scheme) serialization
// of the record without its `hash` member. JCS because an auditor's tool in any language can
// reproduce it from an exported JSON line: drop `hash`, canonicalize, hash. The record's values are
// restricted (strings without lone surrogates, safe integers, booleans, null) so that JCS reduces
// to ECMAScript JSON.stringify with sorted member names, which is what canonicalJson() does.
// node:crypto's SHA-256 is a pure function, so apply stays deterministic.
import { createHash } from 'node:crypto';
import { DomainError } from './machine.ts';
import type { ApplyContext, Domain, StateReader } from './machine.ts';
import type { ConfChangeContext } from '../node/members.ts';
import { packValue, unpackValue } from './command.ts';
import { AUDIT_EVENT_TYPES } from './audit-ops.ts';
import type { AuditEvent, AuditEventType, AuditRecord } from './audit-ops.ts';
import { MAX_ID_CHARS, int, invalid, isPlainObject, obj, str, time } from './validate.ts';
import { check, housekeepingStubs, object, read, readStubs, tableDomain, unknownValue, write, writeStubs } from './contract.ts';
import type { Refuse } from './contract.ts';

export const AUDIT_KEYSPACE = 'audit';
export const AUDIT_SYS_KEYSPACE = 'sys.audit';
const HEAD_KEY = 'head';
const CHECKPOINT_KEY = 'checkpoint';

/** `prev` of the first record of a chain that never was compacted. */
export const GENESIS_HASH = '0'.repeat(64);
/** Largest canonical encoding of a record; a bigger one has its details replaced (see boundDetails). */
export const MAX_RECORD_BYTES = 4 * 1024;
/** Events in one `append` command (the workers' batch size). */
export const MAX_APPEND_EVENTS = 256;
/** Records one `compact` command may delete (the leader's work per command is bounded). */
export const MAX_COMPACT_RECORDS = 1_000;
export const MAX_DETAIL_KEYS = 16;
/** Longest string detail, in code points; longer ones are cut and end with '…'. */
export const MAX_DETAIL_CHARS = 256;
export const MAX_IP_CHARS = 64;
/** A compact JWS over { seq, hash, signedAt } with an ES256 or EdDSA key is far smaller. */
export const MAX_CHECKPOINT_JWS_CHARS = 4 * 1024;
/** seq as a key: 16 digits cover every safe integer below 10^16. */
const SEQ_DIGITS = 16;
const MAX_SEQ = Number.MAX_SAFE_INTEGER;

const DETAIL_KEY_RE = /^[A-Za-z][A-Za-z0-9_.]{0,31}$/;
const LONE_SURROGATE_RE = /[\uD800-\uDBFF](?![\uDC00-\uDFFF])|(?<![\uD800-\uDBFF])[\uDC00-\uDFFF]/;
const HEX64_RE = /^[0-9a-f]{64}$/;
/** Printable ASCII: IPv4, IPv6 (with a zone id) as the socket reports them. */
const IP_RE = /^[\x21-\x7e]+$/;

export interface AuditHead {
  readonly seq: number;
  readonly hash: string;
}

export interface AuditCheckpoint {
  /** The last compacted record's seq and hash: the next record's prev is this hash. */
  readonly seq: number;
  readonly hash: string;
  readonly signedAt: number;
  /** Compact JWS (typ "audit-checkpoint+jwt") over { seq, hash, signedAt }, signed by the cluster's active signing key. */
  readonly jws: string;
}

/** Request metadata an audited op may carry (`meta`): RequestMeta's ip, plus who the event concerns when apply cannot tell. */
export interface AuditMeta {
  readonly ip: string | null;
  readonly sub: string | null;
  readonly clientId: string | null;
}

export const NO_META: AuditMeta = { ip: null, sub: null, clientId: null };

export function auditSeqKey(seq: number): string {
  return String(seq).padStart(SEQ_DIGITS, '0');
}

// ---------------------------------------------------------------------------------------------
// Canonical encoding (RFC 8785) and the record hash

/**
 * RFC 8785 serialization of the values a record may hold. §3.2.2.3: strings are serialized as
 * ECMAScript JSON.stringify does (lone surrogates are refused before this point); §3.2.2.3
 * numbers as ECMAScript Number-to-String (our integers print as plain digits); §3.2.3 object
 * members sorted by their names' UTF-16 code units, which is Array.prototype.sort's default order.
 */
export function canonicalJson(v: unknown): string {
  if (v === null) return 'null';
  switch (typeof v) {
    case 'string':
      return JSON.stringify(v);
    case 'boolean':
      return v ? 'true' : 'false';
    case 'number':
      if (!Number.isSafeInteger(v)) throw new TypeError(`canonicalJson: ${v} is not a safe integer`);
      return Object.is(v, -0) ? '0' : String(v);
    case 'object': {
      if (Array.isArray(v)) return `[${v.map(canonicalJson).join(',')}]`;
      const o = v as Record<string, unknown>;
      const keys = Object.keys(o)
        .filter((k) => o[k] !== undefined)
        .sort();
      return `{${keys.map((k) => `${JSON.stringify(k)}:${canonicalJson(o[k])}`).join(',')}}`;
    }
    default:
      throw new TypeError(`canonicalJson: cannot encode a ${typeof v}`);
  }
}

/** The canonical bytes of a record: JCS of every member but `hash`. */
export function canonicalRecordBytes(r: Omit<AuditRecord, 'hash'> | AuditRecord): Buffer {
  return Buffer.from(canonicalRecordJson(r), 'utf8');
}

const strOrNull = (v: unknown): v is string | null => v === null || typeof v === 'string';
const jsonStrOrNull = (v: string | null): string => (v === null ? 'null' : JSON.stringify(v));

/**
 * canonicalJson of the record's members but `hash`, written out for the record's fixed shape:
 * every node hashes every record it applies (each token it issues, cluster-wide), and the generic
 * encoder spent most of that time sorting and joining. Member names in RFC 8785 §3.2.3 order
 * (clientId, details, ip, prev, seq, sub, ts, type); details' names sorted. Anything of another
 * shape (an exported record an auditor altered) goes through the generic encoder, so the result
 * is canonicalJson's in every case, errors included (test/unit/state/audit-canonical.test.ts).
 */
export function canonicalRecordJson(r: Omit<AuditRecord, 'hash'> | AuditRecord): string {
  const { seq, ts, type, sub, clientId, ip, details, prev } = r;
  if (
    Number.isSafeInteger(seq) && Number.isSafeInteger(ts) && !Object.is(seq, -0) && !Object.is(ts, -0) &&
    typeof type === 'string' && typeof prev === 'string' && strOrNull(sub) && strOrNull(clientId) && strOrNull(ip) &&
    typeof details === 'object' && details !== null && !Array.isArray(details)
  ) {
    const d = details as Record<string, unknown>;
    const keys = Object.keys(d).sort();
    let body = '';
    let simple = true;
    for (const k of keys) {
      const v = d[k];
      if (v === undefined) continue;
      let enc: string;
      if (v === null) enc = 'null';
      else if (typeof v === 'string') enc = JSON.stringify(v);
      else if (typeof v === 'boolean') enc = v ? 'true' : 'false';
      else if (typeof v === 'number' && Number.isSafeInteger(v) && !Object.is(v, -0)) enc = String(v);
      else {
        simple = false;
        break;
      }
      body += `${body.length === 0 ? '' : ','}${JSON.stringify(k)}:${enc}`;
    }
    if (simple) {
      return `{"clientId":${jsonStrOrNull(clientId)},"details":{${body}},"ip":${jsonStrOrNull(ip)},"prev":${JSON.stringify(prev)},"seq":${seq},"sub":${jsonStrOrNull(sub)},"ts":${ts},"type":${JSON.stringify(type)}}`;
    }
  }
  return canonicalJson({ seq, ts, type, sub, clientId, ip, details, prev });
}

/** hex SHA-256 of the record's canonical bytes. */
export function recordHash(r: Omit<AuditRecord, 'hash'> | AuditRecord): string {
  return createHash('sha256').update(canonicalRecordJson(r), 'utf8').digest('hex');
}

// ---------------------------------------------------------------------------------------------
// Validation

function nullableId(v: unknown, name: string): string | null {
  if (v === null || v === undefined) return null;
  return wellFormed(str(v, name, 1, MAX_ID_CHARS), name);
}

function ip(v: unknown, name: string): string | null {
  if (v === null || v === undefined) return null;
  if (typeof v !== 'string' || v.length === 0 || v.length > MAX_IP_CHARS || !IP_RE.test(v)) throw invalid(`${name} must be 1..${MAX_IP_CHARS} printable ASCII characters`);
  return v;
}

function wellFormed(s: string, name: string): string {
  // A lone surrogate has no UTF-8 encoding, so no canonical form (RFC 8785 §3.2.2.2).
  if (LONE_SURROGATE_RE.test(s)) throw invalid(`${name} is not well-formed Unicode`);
  return s;
}

/** Cut a string detail to MAX_DETAIL_CHARS code points (never in the middle of a pair). */
function cut(s: string): string {
  if (s.length <= MAX_DETAIL_CHARS) return s;
  const cps = Array.from(s);
  return cps.length <= MAX_DETAIL_CHARS ? s : `${cps.slice(0, MAX_DETAIL_CHARS - 1).join('')}…`;
}

function details(v: unknown, name: string): Record<string, string | number | boolean | null> {
  const o = obj(v, name);
  const keys = Object.keys(o);
  if (keys.length > MAX_DETAIL_KEYS) throw invalid(`${name} has more than ${MAX_DETAIL_KEYS} entries`);
  const out: Record<string, string | number | boolean | null> = {};
  for (const k of keys.sort()) {
    if (!DETAIL_KEY_RE.test(k)) throw invalid(`${name} key ${JSON.stringify(k.slice(0, 40))} must match ${DETAIL_KEY_RE.source}`);
    const x = o[k];
    if (x === null || typeof x === 'boolean') out[k] = x;
    else if (typeof x === 'number') {
      if (!Number.isSafeInteger(x)) throw invalid(`${name}.${k} must be a safe integer (no fractions: they have no single canonical form)`);
      out[k] = x;
    } else if (typeof x === 'string') out[k] = cut(wellFormed(x, `${name}.${k}`));
    else throw invalid(`${name}.${k} must be a string, an integer, a boolean or null`);
  }
  return out;
}

const EVENT_FIELDS = ['type', 'sub', 'clientId', 'ip', 'details'];

/** Check an event from outside apply (the `append` op); returns a clean copy. */
export function validateAuditEvent(v: unknown, name = 'event'): AuditEvent {
  const o = obj(v, name);
  for (const k of Object.keys(o)) if (!EVENT_FIELDS.includes(k)) throw invalid(`${name} has an unknown field ${k}`);
  if (!AUDIT_EVENT_TYPES.includes(o.type as AuditEventType)) throw invalid(`${name}.type must be one of ${AUDIT_EVENT_TYPES.join(', ')}`);
  return {
    type: o.type as AuditEventType,
    sub: nullableId(o.sub, `${name}.sub`),
    clientId: nullableId(o.clientId, `${name}.clientId`),
    ip: ip(o.ip, `${name}.ip`),
    details: details(o.details ?? {}, `${name}.details`),
  };
}

/**
 * The optional `meta` argument of an audited op: { ip, sub?, clientId? }. Absent means nothing is
 * known (an admin or housekeeping caller). Malformed meta refuses the op, like any bad argument.
 */
export function auditMeta(v: unknown): AuditMeta {
  if (v === undefined || v === null) return NO_META;
  if (!isPlainObject(v)) throw invalid('meta must be an object');
  for (const k of Object.keys(v)) if (k !== 'ip' && k !== 'sub' && k !== 'clientId') throw invalid(`meta has an unknown field ${k}`);
  return { ip: ip(v.ip, 'meta.ip'), sub: nullableId(v.sub, 'meta.sub'), clientId: nullableId(v.clientId, 'meta.clientId') };
}

// ---------------------------------------------------------------------------------------------
// Appending

export function readAuditHead(r: StateReader): AuditHead | null {
  const b = r.get(AUDIT_SYS_KEYSPACE, HEAD_KEY);
  return b === undefined ? null : unpackValue<AuditHead>(b);
}

export function readAuditCheckpoint(r: StateReader): AuditCheckpoint | null {
  const b = r.get(AUDIT_SYS_KEYSPACE, CHECKPOINT_KEY);
  return b === undefined ? null : unpackValue<AuditCheckpoint>(b);
}

export function readAuditRecord(r: StateReader, seq: number): AuditRecord | null {
  const b = r.get(AUDIT_KEYSPACE, auditSeqKey(seq));
  return b === undefined ? null : unpackValue<AuditRecord>(b);
}

/**
 * Append one event to the chain inside the caller's transaction: seq = head.seq + 1, prev =
 * head.hash (GENESIS_HASH for the first record, the checkpoint's hash right after a compaction of
 * everything), ts = the command's leader time. The event is validated (a bad one refuses the whole
 * command: nothing of it is written). A record whose canonical form would exceed MAX_RECORD_BYTES
 * keeps its other fields and gets details { truncated: true }.
 */
export function appendAudit(tx: { get(ks: string, k: string): Uint8Array | undefined; put(ks: string, k: string, v: Uint8Array): void }, ts: number, event: AuditEvent): AuditRecord {
  const record = chainRecord(tx, readAuditHead(tx), ts, validateAuditEvent(event));
  tx.put(AUDIT_SYS_KEYSPACE, HEAD_KEY, packValue({ seq: record.seq, hash: record.hash } satisfies AuditHead));
  return record;
}

/** Write the record that follows `head` for a validated event (the caller writes the new head). */
function chainRecord(tx: { put(ks: string, k: string, v: Uint8Array): void }, head: AuditHead | null, ts: number, e: AuditEvent): AuditRecord {
  const seq = (head?.seq ?? 0) + 1;
  if (seq > MAX_SEQ) throw new DomainError('INVALID_ARGUMENT', 'the audit log is full');
  const base = { seq, ts: time(ts, 'ts'), type: e.type, sub: e.sub, clientId: e.clientId, ip: e.ip, details: e.details, prev: head?.hash ?? GENESIS_HASH };
  // One canonical encoding serves both the size bound and the hash (UTF-8 length = Buffer.byteLength).
  let json = canonicalRecordJson(base);
  let bounded: Omit<AuditRecord, 'hash'> = base;
  if (Buffer.byteLength(json, 'utf8') > MAX_RECORD_BYTES) {
    bounded = { ...base, details: { truncated: true } };
    json = canonicalRecordJson(bounded);
  }
  const record: AuditRecord = { ...bounded, hash: createHash('sha256').update(json, 'utf8').digest('hex') };
  tx.put(AUDIT_KEYSPACE, auditSeqKey(seq), packValue(record));
  return record;
}

/** An event built by an apply module from its op's meta. */
export function auditEvent(type: AuditEventType, meta: AuditMeta, fields: { sub?: string | null; clientId?: string | null; details?: AuditEvent['details'] } = {}): AuditEvent {
  return { type, sub: fields.sub !== undefined ? fields.sub : meta.sub, clientId: fields.clientId !== undefined ? fields.clientId : meta.clientId, ip: meta.ip, details: fields.details ?? {} };
}

// ---------------------------------------------------------------------------------------------
// Operations

/** 1..MAX_APPEND_EVENTS events, each checked, none of them `audit.compacted` (compact's own). */
const appendEvents = check((events, name): readonly AuditEvent[] => {
  if (!Array.isArray(events) || events.length === 0 || events.length > MAX_APPEND_EVENTS) throw invalid(`${name} must be an array of 1..${MAX_APPEND_EVENTS} events`);
  return events.map((e: unknown, i: number) => {
    const ev = validateAuditEvent(e, `${name}[${i}]`);
    if (ev.type === 'audit.compacted') throw invalid(`${name}[${i}].type audit.compacted is written by compact only`);
    return ev;
  });
});

function appendOp(ctx: ApplyContext, events: readonly AuditEvent[]): { seqs: number[] } {
  // All events were checked before any is written (the args schema).
  // The head is read once and written once for the whole batch (the records chain in memory).
  let head = readAuditHead(ctx.tx);
  const seqs = events.map((e) => {
    const r = chainRecord(ctx.tx, head, ctx.ts, e);
    head = { seq: r.seq, hash: r.hash };
    return r.seq;
  });
  ctx.tx.put(AUDIT_SYS_KEYSPACE, HEAD_KEY, packValue(head satisfies AuditHead | null));
  return { seqs };
}

const checkpointArg = check((v, name): AuditCheckpoint => {
  const o = obj(v, name);
  for (const k of Object.keys(o)) if (!['seq', 'hash', 'signedAt', 'jws'].includes(k)) throw invalid(`${name} has an unknown field ${k}`);
  const seq = int(o.seq, `${name}.seq`, 1, MAX_SEQ);
  if (typeof o.hash !== 'string' || !HEX64_RE.test(o.hash)) throw invalid(`${name}.hash must be 64 lower-case hex digits`);
  const signedAt = time(o.signedAt, `${name}.signedAt`);
  const jws = str(o.jws, `${name}.jws`, 1, MAX_CHECKPOINT_JWS_CHARS);
  if (!/^[A-Za-z0-9_-]+\.[A-Za-z0-9_-]+\.[A-Za-z0-9_-]+$/.test(jws)) throw invalid(`${name}.jws must be a compact JWS`);
  return { seq, hash: o.hash, signedAt, jws };
});

/**
 * Delete the records after the current checkpoint up to throughSeq and store the new checkpoint.
 * Apply cannot check the signature (the key ring may change; verification is the verifier's job),
 * but it checks that the checkpoint names the last deleted record exactly, so the remaining chain
 * links to it. throughSeq equal to the current checkpoint's seq re-signs it (same hash), which the
 * leader does when the key that signed it is no longer active (retired keys leave the JWKS).
 */
function compactOp(ctx: ApplyContext, a: { readonly throughSeq: number; readonly checkpoint: AuditCheckpoint }, refuse: Refuse<'CONFLICT'>): { compacted: number } {
  const { throughSeq, checkpoint: cp } = a;
  if (cp.seq !== throughSeq) throw invalid('checkpoint.seq must equal throughSeq');
  const { tx } = ctx;
  const current = readAuditCheckpoint(tx);
  const head = readAuditHead(tx);
  const from = (current?.seq ?? 0) + 1;
  if (head === null || throughSeq > head.seq) refuse('CONFLICT', `the audit log has no record ${throughSeq}`);
  if (throughSeq < from - 1) refuse('CONFLICT', `records up to ${from - 1} are already compacted`);
  if (throughSeq === from - 1) {
    if (cp.hash !== current!.hash) refuse('CONFLICT', 'checkpoint.hash differs from the current checkpoint');
    if (cp.jws === current!.jws) return { compacted: 0 };
    tx.put(AUDIT_SYS_KEYSPACE, CHECKPOINT_KEY, packValue(cp));
    appendAudit(tx, ctx.ts, auditEvent('audit.compacted', NO_META, { details: { throughSeq, records: 0, resigned: true } }));
    return { compacted: 0 };
  }
  const count = throughSeq - from + 1;
  if (count > MAX_COMPACT_RECORDS) throw invalid(`a compaction deletes at most ${MAX_COMPACT_RECORDS} records (asked ${count})`);
  const last = readAuditRecord(tx, throughSeq);
  if (last === null) refuse('CONFLICT', `record ${throughSeq} is missing`);
  if (last.hash !== cp.hash) refuse('CONFLICT', `checkpoint.hash is not record ${throughSeq}'s hash`);
  for (let s = from; s <= throughSeq; s++) tx.del(AUDIT_KEYSPACE, auditSeqKey(s));
  tx.put(AUDIT_SYS_KEYSPACE, CHECKPOINT_KEY, packValue(cp));
  appendAudit(tx, ctx.ts, auditEvent('audit.compacted', NO_META, { details: { fromSeq: from, throughSeq, records: count } }));
  return { compacted: count };
}

/**
 * A conf-change entry whose context has an audit part appends `member.changed` (ts = the part's
 * leader time, made monotonic) in the entry's own apply, so an applied membership change always has
 * its record. An old context without the part appends nothing; a part whose ip or details the
 * event checks refuse throws a DomainError, which the state machine turns into "no record" while
 * the change itself applies — the same on every node. Leader transfer is no log entry: the admin
 * API audits it with a separate `append`.
 */
function memberChangedHook(ctx: ApplyContext, context: ConfChangeContext): void {
  const a = context.audit;
  if (a === null) return;
  appendAudit(ctx.tx, ctx.ts, { type: 'member.changed', sub: null, clientId: null, ip: a.ip, details: a.details });
}

/** The audit domain's operations (the contract: src/state/contract.ts). */
export const AUDIT_WRITES = {
  /** Events with no state change of their own (batched by the workers, src/audit/batcher.ts), 1..MAX_APPEND_EVENTS per command. Returns { seqs }. */
  append: write({ args: object({ events: appendEvents }), apply: (ctx, a) => appendOp(ctx, a.events) }),
  /**
   * Retention (leader duty, src/audit/retention.ts): delete records with seq <= throughSeq (all
   * older than the retention age, already exported by the leader), leaving a checkpoint { seq,
   * hash, signedAt, jws } signed with the active signing key so the chain stays verifiable from the
   * checkpoint on. CONFLICT: the checkpoint does not name the chain's record (see compactOp).
   */
  compact: write({ args: object({ throughSeq: check((v, n) => int(v, n, 1, MAX_SEQ)), checkpoint: checkpointArg }), refuses: ['CONFLICT'], apply: compactOp }),
};

export const AUDIT_READS = {
  head: read({ args: unknownValue(), read: (r): AuditHead | null => readAuditHead(r) }),
  checkpoint: read({ args: unknownValue(), read: (r): AuditCheckpoint | null => readAuditCheckpoint(r) }),
  get: read({ args: object({ seq: check((v, n) => int(v, n, 1, MAX_SEQ)) }), read: (r, a): AuditRecord | null => readAuditRecord(r, a.seq) }),
};

export const auditDomain: Domain = tableDomain({
  name: 'audit',
  keyspaces: [AUDIT_KEYSPACE, AUDIT_SYS_KEYSPACE],
  writes: AUDIT_WRITES,
  reads: AUDIT_READS,
  confChange(ctx, _cc, context): void {
    memberChangedHook(ctx, context);
  },
});

/** Typed client stubs: `audit.append(client, { events })`, `audit.read.head(client, {})`, `audit.leader.compact(node, args, timeoutMs)`. */
export const audit = { ...writeStubs('audit', AUDIT_WRITES), read: readStubs('audit', AUDIT_READS), leader: housekeepingStubs('audit', AUDIT_WRITES) };
