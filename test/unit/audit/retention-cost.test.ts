// Audit retention costs what it touches (issue 15): a round reads from the checkpoint on, the
// oldest records first, in commands of at most MAX_COMPACT_RECORDS, and the records it keeps (the
// recent ones) cost it at most one page, however many there are. Counted, not timed: the rows the
// scanner hands out.
import assert from 'node:assert/strict';
import { generateKeyPairSync } from 'node:crypto';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { test } from 'node:test';
import { pino } from 'pino';
import type { SigningKey } from '../../../src/crypto/jws.ts';
import { SCAN_PAGE } from '../../../src/audit/chain.ts';
import { auditRetentionRound, DAY_MS } from '../../../src/audit/retention.ts';
import { AUDIT_KEYSPACE, MAX_COMPACT_RECORDS } from '../../../src/state/audit.ts';
import { T0, append, auditNode, ev, records, scanOf } from './helpers.ts';

const silent = pino({ level: 'silent' });

function signingKey(): SigningKey {
  const { privateKey } = generateKeyPairSync('ec', { namedCurve: 'P-256' });
  return { kid: 'k1', alg: 'ES256', privateKey } as SigningKey;
}

test('a retention round reads the expired records and at most one page of the kept ones, whatever their number; commands stay bounded', async (t) => {
  const OLD = 1_500;
  const out: { kept: number; scanned: number; compacts: number[] }[] = [];
  for (const KEPT of [1_200, 6_000]) {
    const clock = { now: T0 };
    const node = auditNode(clock);
    await append(node, Array.from({ length: OLD }, (_, i) => ev({ details: { i } })));
    clock.now = T0 + 10 * DAY_MS;
    await append(node, Array.from({ length: KEPT }, (_, i) => ev({ details: { recent: i } })));
    clock.now = T0 + 40 * DAY_MS;
    const dir = mkdtempSync(join(tmpdir(), 'raftauth-audit-cost-'));
    t.after(() => rmSync(dir, { recursive: true, force: true }));
    const scan = scanOf(node);
    let scanned = 0;
    const compacts: number[] = [];
    const rn = {
      scanState: async (ks: string, o: { gte?: string; lt?: string; limit: number }) => {
        const rows = await scan(ks, o);
        if (ks === AUDIT_KEYSPACE) scanned += rows.length;
        return rows;
      },
      read: (req: { domain: string; op: string; args: unknown; timeoutMs: number }) => node.read(req),
      housekeeping: (domain: string, op: string, args: unknown, timeoutMs: number) => {
        if (op === 'compact') compacts.push((args as { throughSeq: number }).throughSeq);
        return node.write({ domain, op, args, timeoutMs });
      },
    };
    const r = await auditRetentionRound(rn, { retentionDays: 35, exportDir: join(dir, 'export'), now: clock.now, signingKey: signingKey(), log: silent });
    assert.equal(r.compacted, OLD);
    // The kept records, and the compaction records appended after them, are all still there.
    assert.equal(records(node).length, KEPT + compacts.length);
    // Each command deleted at most MAX_COMPACT_RECORDS, from the oldest on.
    assert.deepEqual(compacts, [MAX_COMPACT_RECORDS, OLD]);
    // Read: the expired records once, plus at most one page past the last of them.
    assert.ok(scanned >= OLD && scanned <= OLD + SCAN_PAGE, `scanned ${scanned}`);
    out.push({ kept: KEPT, scanned, compacts });
  }
  assert.equal(out[0]!.scanned, out[1]!.scanned, 'five times the kept records, the same reads');
});
