// `--prefill N` of the partition suite (issue 15): before the run, N records of an auth server's
// state (users with sealed password hashes and confirmed TOTP factors, refresh-token families,
// audit events) written through the replicated write path with the filler bench:scale uses
// (scripts/lib/state-filler.ts), so faults hit a cluster whose snapshots, catch-ups and
// compactions carry real weight. Runs in the client namespace after the OAuth set-up; the filled
// users, families and audit records belong to no workload, so the checkers ignore them.
import { readFile } from 'node:fs/promises';
import { join } from 'node:path';
import { randomBytes } from 'node:crypto';
import { RECORDS_PER_UNIT, unitsFor } from '../../scripts/lib/fill-records.ts';
import { ForwardingClient, clusterSealer, fillPasswordPhc, fillUnits, fillerTls } from '../../scripts/lib/state-filler.ts';
import type { FillStats } from '../../scripts/lib/state-filler.ts';
import { ADMIN_PORT, RAFT_PORT, httpAddress } from './cluster.ts';
import type { NodeCluster } from './cluster.ts';
import { nodeIp } from './hosts.ts';
import { CLIENT_ID } from './oauth-client.ts';

/** Largest --prefill. */
export const MAX_PREFILL_RECORDS = 5_000_000;
/** Chains of writes in flight while filling. */
const PREFILL_CONCURRENCY = 128;
/** The prefill's deadline: a floor, plus a rate it must beat (100 records/s, far below what a healthy cluster does). */
export function prefillDeadlineMs(records: number): number {
  return 120_000 + records * 10;
}

/** What the prefill wrote: the filler's counts without the latency summary, and the records. */
export type PrefillSummary = Omit<FillStats, 'latency'> & { readonly records: number };

/** Fill `records` records (rounded up to whole users) into the running cluster. Throws if a write fails or the deadline passes. */
export async function prefill(cluster: NodeCluster, records: number, log: (line: string) => void): Promise<PrefillSummary> {
  if (!Number.isSafeInteger(records) || records < 1 || records > MAX_PREFILL_RECORDS) throw new RangeError(`prefill must be 1..${MAX_PREFILL_RECORDS} records, got ${records}`);
  const ids = cluster.ids;
  const sealer = await clusterSealer({ adminUrls: ids.map((id) => `http://${nodeIp(id)}:${ADMIN_PORT}`), token: cluster.adminToken, masterKeyText: await readFile(join(cluster.dir, 'master.key'), 'utf8'), timeoutMs: 60_000 });
  const client = new ForwardingClient({ members: ids.map((id) => ({ id, raftAddress: `${nodeIp(id)}:${RAFT_PORT}`, httpUrl: `http://${httpAddress(id)}` })), tls: await fillerTls(cluster.ca) });
  try {
    await client.findLeader();
    const units = unitsFor(records);
    log(`jepsen: prefill: ${units * RECORDS_PER_UNIT} records (${units} users and what hangs off them), ${PREFILL_CONCURRENCY} chains in flight`);
    const ctx = { sealer, clientId: CLIENT_ID, passwordPhc: await fillPasswordPhc(), runId: randomBytes(4).toString('hex'), now: Date.now };
    const s = await fillUnits(client, ctx, 0, units, { concurrency: PREFILL_CONCURRENCY, deadlineMs: prefillDeadlineMs(records), progress: (d, t) => log(`jepsen: prefill: ${d} of ${t} users`) });
    if (s.failed > 0) throw new Error(`prefill: ${s.failed} of ${s.writes} writes failed: ${JSON.stringify(s.failures)}`);
    log(`jepsen: prefill done: ${s.units * RECORDS_PER_UNIT} records in ${s.seconds} s (${s.writesPerSec} writes/s)`);
    return { records: s.units * RECORDS_PER_UNIT, units: s.units, writes: s.writes, failed: s.failed, failures: s.failures, seconds: s.seconds, writesPerSec: s.writesPerSec };
  } finally {
    client.close();
  }
}
