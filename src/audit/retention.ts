// Retention (leader duty, src/server/oauth-node.ts): records older than audit.retentionDays are
// first exported to `<audit.exportDir>/audit-<fromSeq>-<toSeq>.jsonl` (written to a temporary
// file, fsynced, renamed, directory fsynced: the file is complete on disk before anything is
// deleted), then removed by one `audit.compact` command that leaves a checkpoint { seq, hash,
// signedAt } signed by the active signing key, so the remaining chain stays verifiable from it.
//
// Work per round is bounded (MAX_COMPACT_RECORDS per command, maxBatches commands per round). A
// segment whose chain does not verify is not compacted: deleting it would destroy the evidence.
// A checkpoint signed by a key that is no longer active is re-signed with the active one (retired
// keys leave the ring, and a checkpoint must stay checkable with the JWKS).
import { closeSync, fsyncSync, mkdirSync, openSync, renameSync, writeSync } from 'node:fs';
import { join } from 'node:path';
import type { NodeApi } from '../node/api.ts';
import { must } from '../state/contract.ts';
import type { HousekeepingNode } from '../state/contract.ts';
import type { SigningKey } from '../crypto/jws.ts';
import { GENESIS_HASH, MAX_COMPACT_RECORDS, audit, recordHash } from '../state/audit.ts';
import type { AuditRecord } from '../state/audit-ops.ts';
import type { Logger } from 'pino';
import { checkpointKid, recordLine, scanAudit, signCheckpoint } from './chain.ts';
import type { ScanState } from './chain.ts';

export const DAY_MS = 86_400_000;
/** Compaction commands per leader round. */
export const DEFAULT_MAX_BATCHES_PER_ROUND = 10;
const TIMEOUT_MS = 10_000;

export interface RetentionNode extends HousekeepingNode, Pick<NodeApi, 'read'> {
  scanState: ScanState;
}

export interface RetentionOptions {
  readonly retentionDays: number;
  readonly exportDir: string;
  readonly now: number;
  /** The active signing key (unsealed), or null when the cluster has none yet (nothing is done). */
  readonly signingKey: SigningKey | null;
  readonly log: Logger;
  readonly maxBatches?: number;
}

export interface RetentionOutcome {
  readonly compacted: number;
  readonly files: readonly string[];
  readonly resigned: boolean;
}


/** Write `text` to `file` durably: temporary file, fsync, rename, fsync the directory. */
export function writeFileDurably(dir: string, name: string, text: string): string {
  mkdirSync(dir, { recursive: true, mode: 0o700 });
  const file = join(dir, name);
  const tmp = `${file}.tmp`;
  const fd = openSync(tmp, 'w', 0o600);
  try {
    const buf = Buffer.from(text, 'utf8');
    let off = 0;
    while (off < buf.length) off += writeSync(fd, buf, off, buf.length - off);
    fsyncSync(fd);
  } finally {
    closeSync(fd);
  }
  renameSync(tmp, file);
  const dfd = openSync(dir, 'r');
  try {
    fsyncSync(dfd);
  } finally {
    closeSync(dfd);
  }
  return file;
}

/** One retention round on the leader. */
export async function auditRetentionRound(node: RetentionNode, o: RetentionOptions): Promise<RetentionOutcome> {
  if (o.signingKey === null) return { compacted: 0, files: [], resigned: false };
  const client = { node, requestTimeoutMs: TIMEOUT_MS };
  const cutoff = o.now - o.retentionDays * DAY_MS;
  const files: string[] = [];
  let compacted = 0;
  let resigned = false;
  for (let i = 0; i < (o.maxBatches ?? DEFAULT_MAX_BATCHES_PER_ROUND); i++) {
    // Linearizable: a new leader must not compact from a stale view of the chain.
    const cp = must(await audit.read.checkpoint(client, {}), 'reading the audit checkpoint');
    const head = must(await audit.read.head(client, {}), 'reading the audit head');
    if (head === null) break;
    const from = (cp?.seq ?? 0) + 1;
    const batch: AuditRecord[] = [];
    let prev = cp?.hash ?? GENESIS_HASH;
    let expected = from;
    for await (const { record } of scanAudit((ks, opts) => node.scanState(ks, opts), from, Math.min(head.seq, from + MAX_COMPACT_RECORDS - 1))) {
      if (record.ts >= cutoff) break;
      if (record.seq !== expected || record.prev !== prev || recordHash(record) !== record.hash) {
        o.log.error({ seq: expected }, 'audit retention: the chain does not verify at this record; not compacting (run raftauth audit verify)');
        return { compacted, files, resigned };
      }
      batch.push(record);
      prev = record.hash;
      expected++;
    }
    if (batch.length === 0) {
      if (cp !== null && checkpointKid(cp) !== o.signingKey.kid) {
        const next = signCheckpoint(o.signingKey, cp.seq, cp.hash, o.now);
        must(await audit.leader.compact(node, { throughSeq: cp.seq, checkpoint: next }, TIMEOUT_MS), 're-signing the audit checkpoint');
        resigned = true;
        o.log.info({ seq: cp.seq, kid: o.signingKey.kid }, 'audit checkpoint re-signed with the active signing key');
      }
      break;
    }
    const first = batch[0]!.seq;
    const last = batch[batch.length - 1]!;
    const file = writeFileDurably(o.exportDir, `audit-${first}-${last.seq}.jsonl`, batch.map(recordLine).join(''));
    const checkpoint = signCheckpoint(o.signingKey, last.seq, last.hash, o.now);
    const r = must(await audit.leader.compact(node, { throughSeq: last.seq, checkpoint }, TIMEOUT_MS), 'compacting the audit log');
    compacted += r.compacted;
    files.push(file);
    o.log.info({ fromSeq: first, toSeq: last.seq, file }, 'expired audit records exported and compacted');
    if (batch.length < MAX_COMPACT_RECORDS) break;
  }
  return { compacted, files, resigned };
}
