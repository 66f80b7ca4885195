// Reading and checking a node's copy of the audit chain: paging through the `audit` keyspace, the
// verification walk (`raftauth audit verify`), and the signed retention checkpoint.
//
// Verification recomputes every record's hash (SHA-256 over its RFC 8785 canonical form without
// `hash`, src/state/audit.ts), checks that each record's `prev` is its predecessor's hash (the
// checkpoint's hash for the first record after a compaction, 64 zeros for the very first record),
// that seqs follow one another with no gap, that the last record is the head apply recorded, and
// that the checkpoint carries a valid signature by one of the cluster's signing keys.
import { createLocalJWKSet, compactVerify } from 'jose';
import type { JSONWebKeySet } from 'jose';
import { signJwt } from '../crypto/jws.ts';
import type { SigningKey } from '../crypto/jws.ts';
import { unpackValue } from '../state/command.ts';
import type { AuditRecord } from '../state/audit-ops.ts';
import type { SigningKeyRing } from '../state/oauth-ops.ts';
import { AUDIT_KEYSPACE, GENESIS_HASH, auditSeqKey, canonicalJson, recordHash } from '../state/audit.ts';
import type { AuditCheckpoint, AuditHead } from '../state/audit.ts';

/** JWS `typ` of a checkpoint (RFC 7515 §4.1.9: a media type, "application/" implied). */
export const CHECKPOINT_TYP = 'audit-checkpoint+jwt';
/** Records read per storage page. */
export const SCAN_PAGE = 1_000;

/** What reading the chain needs of the node (RaftNode and the tests' MemoryNode adapter). */
export type ScanState = (keyspace: string, opts: { gte?: string; lt?: string; limit: number }) => Promise<{ key: Uint8Array; value: Uint8Array }[]>;

const dec = new TextDecoder();

export interface StoredRecord {
  /** The key it is stored under (the seq as 16 digits). */
  readonly key: string;
  readonly record: AuditRecord;
}

/** The records with fromSeq <= seq <= toSeq (toSeq null: to the end), in seq order, page by page. */
export async function* scanAudit(scan: ScanState, fromSeq: number, toSeq: number | null): AsyncGenerator<StoredRecord> {
  let gte = auditSeqKey(Math.max(1, fromSeq));
  const lt = toSeq === null ? undefined : auditSeqKey(toSeq + 1);
  for (;;) {
    const page = await scan(AUDIT_KEYSPACE, { gte, ...(lt !== undefined ? { lt } : {}), limit: SCAN_PAGE });
    for (const r of page) yield { key: dec.decode(r.key), record: unpackValue<AuditRecord>(r.value) };
    if (page.length < SCAN_PAGE) return;
    gte = `${dec.decode(page[page.length - 1]!.key)}\u0000`;
  }
}

/** One exported line: the record as RFC 8785 canonical JSON (hash included), newline-terminated. */
export function recordLine(r: AuditRecord): string {
  return `${canonicalJson({ ...r })}\n`;
}

// ---------------------------------------------------------------------------------------------
// Checkpoints

/** Sign a checkpoint over { seq, hash, signedAt } with the cluster's active signing key. */
export function signCheckpoint(key: SigningKey, seq: number, hash: string, signedAt: number): AuditCheckpoint {
  return { seq, hash, signedAt, jws: signJwt(key, { seq, hash, signedAt }, CHECKPOINT_TYP) };
}

/** The kid in a checkpoint's protected header, or null if it has none. */
export function checkpointKid(cp: AuditCheckpoint): string | null {
  try {
    const h = JSON.parse(Buffer.from(cp.jws.split('.')[0] ?? '', 'base64url').toString('utf8')) as { kid?: unknown };
    return typeof h.kid === 'string' ? h.kid : null;
  } catch {
    return null;
  }
}

/** The JWKS of every key in the ring (retired ones too: an old checkpoint stays checkable while its key is in the ring). */
export function ringJwks(ring: SigningKeyRing | null): JSONWebKeySet {
  return { keys: (ring?.keys ?? []).map((k) => ({ ...k.publicJwk, kid: k.kid, alg: k.alg, use: 'sig' }) as JSONWebKeySet['keys'][number]) };
}

/** null if the checkpoint's JWS verifies with a key of `jwks` and says exactly { seq, hash, signedAt }; else why not. */
export async function checkCheckpoint(cp: AuditCheckpoint, jwks: JSONWebKeySet): Promise<string | null> {
  let payload: unknown;
  try {
    const r = await compactVerify(cp.jws, createLocalJWKSet(jwks), { algorithms: ['ES256', 'EdDSA'] });
    if (r.protectedHeader.typ !== CHECKPOINT_TYP) return `its JWS typ is ${String(r.protectedHeader.typ)}, not ${CHECKPOINT_TYP}`;
    payload = JSON.parse(new TextDecoder().decode(r.payload));
  } catch (e) {
    return `its signature does not verify with the cluster's signing keys (${(e as Error).message}; kid ${checkpointKid(cp) ?? 'none'})`;
  }
  const p = payload as Record<string, unknown>;
  if (p.seq !== cp.seq || p.hash !== cp.hash || p.signedAt !== cp.signedAt) return 'its signed payload does not match its seq, hash and signedAt';
  return null;
}

// ---------------------------------------------------------------------------------------------
// Verification

export type VerifyResult =
  | { readonly ok: true; readonly records: number; readonly head: AuditHead | null; readonly checkpoint: { readonly seq: number; readonly signedAt: number; readonly kid: string | null } | null }
  | { readonly ok: false; readonly firstBroken: number; readonly why: string; readonly records: number };

export interface ChainCopy {
  readonly head: AuditHead | null;
  readonly checkpoint: AuditCheckpoint | null;
  /** The records after the checkpoint, in key order. */
  readonly records: AsyncIterable<StoredRecord> | Iterable<StoredRecord>;
  /** Checks the checkpoint's signature: null when good, else why not. */
  readonly checkCheckpoint: (cp: AuditCheckpoint) => Promise<string | null>;
}

/** Walk the chain and name the first record that does not hold. */
export async function verifyChain(c: ChainCopy): Promise<VerifyResult> {
  const cp = c.checkpoint;
  let records = 0;
  const broken = (firstBroken: number, why: string): VerifyResult => ({ ok: false, firstBroken, why, records });
  if (cp !== null) {
    const why = await c.checkCheckpoint(cp);
    if (why !== null) return broken(cp.seq, `the checkpoint at record ${cp.seq}: ${why}`);
  }
  let expected = (cp?.seq ?? 0) + 1;
  let prev = cp?.hash ?? GENESIS_HASH;
  const prevName = (): string => (expected === (cp?.seq ?? 0) + 1 ? (cp ? `the checkpoint's hash (record ${cp.seq})` : 'the genesis hash (64 zeros)') : `record ${expected - 1}'s hash`);
  for await (const { key, record } of c.records) {
    const seq = Number(key);
    if (c.head !== null && seq > c.head.seq) break;
    if (record?.seq !== seq) return broken(seq, `the record stored under ${key} says seq ${String(record?.seq)}`);
    if (seq < expected) continue; // at or below the checkpoint: left over, not part of the chain
    if (seq > expected) return broken(expected, seq === expected + 1 ? `record ${expected} is missing` : `records ${expected}..${seq - 1} are missing`);
    if (record.prev !== prev) return broken(seq, `its prev is not ${prevName()}: this record or the one before it was altered`);
    let h: string;
    try {
      h = recordHash(record);
    } catch (e) {
      return broken(seq, `it cannot be encoded canonically (${(e as Error).message}): it was altered`);
    }
    if (h !== record.hash) return broken(seq, 'its hash does not match its content: it was altered');
    prev = record.hash;
    expected++;
    records++;
  }
  const last = expected - 1;
  if (c.head === null) {
    if (records > 0 || cp !== null) return broken(1, 'there is no chain head, yet there are records');
    return { ok: true, records, head: null, checkpoint: null };
  }
  if (last < c.head.seq) return broken(expected, c.head.seq === expected ? `record ${expected} (the head) is missing` : `records ${expected}..${c.head.seq} are missing (the head is ${c.head.seq})`);
  if (prev !== c.head.hash) return broken(c.head.seq, 'the head hash does not match the last record');
  return { ok: true, records, head: c.head, checkpoint: cp === null ? null : { seq: cp.seq, signedAt: cp.signedAt, kid: checkpointKid(cp) } };
}
