// `npm run bench:scale`: a local 3-node raftauth cluster whose state grows to each of --sizes
// records (issue 15), filled through the replicated write path with the record mix of an auth
// server (scripts/lib/fill-records.ts: users with sealed password hashes, confirmed TOTP factors,
// refresh-token families, audit events), and at each size:
//   - sustained writes (the same mix) at --concurrency in flight for --measure-seconds: writes/s,
//     p50/p99, leader and term changes (the admin status API, polled every 200 ms), timeouts and
//     other failures;
//   - RSS of every node process (primaries and HTTP workers, /proc, sampled every second), bytes
//     of every node's data dir, the snapshot/compaction lines the nodes log and their /metrics;
//   - a new learner (node 4, empty data dir, cluster.join) added through the admin API: the time
//     until it has applied the leader's commit index; then it is removed;
//   - a follower stopped while --behind entries are written, restarted: the time until it has
//     applied the leader's commit index;
//   - --sweep-records authorization codes that expire at once, after all are written: the time from
//     their expiry until the leader's sweep (its "swept expired OAuth records" lines) has deleted as many.
// Then issue 15's targets at the largest size against the smallest (scripts/bench-scale/targets.ts).
//
// One JSON document goes to stdout (and --out FILE); progress goes to stderr. Each phase has a
// deadline (--phase-timeout-seconds): a phase over it fails the run with a message naming it. Every
// node process (and its workers: each node is its own process group) and the temp dir are removed
// at the end, on failure, on Ctrl-C and when the run outlives its overall deadline.
import { randomBytes } from 'node:crypto';
import { writeFileSync } from 'node:fs';
import { loadavg } from 'node:os';
import { performance } from 'node:perf_hooks';
import { parseScaleArgs, USAGE, UsageError } from './bench-scale/args.ts';
import type { ScaleArgs } from './bench-scale/args.ts';
import { ScaleCluster, killScaleClusterSync, LEARNER_ID } from './bench-scale/cluster.ts';
import { RssSampler, StatusWatcher, dirBytes, snapshotEventOf, snapshotMetricLines, sweptOf } from './bench-scale/observe.ts';
import type { SnapshotEvent } from './bench-scale/observe.ts';
import { computeTargets } from './bench-scale/targets.ts';
import type { SizeFacts } from './bench-scale/targets.ts';
import { cleanupAllSync, makeTempDir, runBenchmark, setKeepTemp, withTimeout } from './bench/procs.ts';
import { machineInfo } from './bench/report.ts';
import { AUDIT_EVENTS_PER_UNIT, BEHIND_KEYS, BEHIND_VALUE_BYTES, FAMILIES_PER_UNIT, RECORDS_PER_UNIT, WRITES_PER_UNIT, unitsFor } from './lib/fill-records.ts';
import type { FillContext } from './lib/fill-records.ts';
import { FILL_WRITE_TIMEOUT_MS, ForwardingClient, clusterSealer, fillBehind, fillExpiring, fillPasswordPhc, fillUnits, fillerTls } from './lib/state-filler.ts';
import type { FillStats } from './lib/state-filler.ts';
import { WaitAborted, waitFor } from './lib/wait.ts';

const say = (line: string): void => void process.stderr.write(`[bench:scale] ${line}\n`);
const CLIENT_ID = 'bench-scale-client';
/** Allowance for the cluster's start and stop. */
const START_STOP_S = 300;
/** Phases per size that have a deadline: fill, measure, learner, follower, sweep. */
const PHASES_PER_SIZE = 5;

const round = (x: number, d = 1): number => Math.round(x * 10 ** d) / 10 ** d;

/** Run `p` under the phase deadline; over it, the run fails naming the phase. */
function phase<T>(a: ScaleArgs, what: string, p: () => Promise<T>): Promise<T> {
  return withTimeout(p(), a.phaseTimeoutSeconds * 1000, `${what} (--phase-timeout-seconds ${a.phaseTimeoutSeconds})`);
}

function fillReport(s: FillStats): Record<string, unknown> {
  return { units: s.units, writes: s.writes, failed: s.failed, failures: s.failures, seconds: s.seconds, writesPerSec: s.writesPerSec, recordsPerSec: round((s.units * RECORDS_PER_UNIT) / Math.max(s.seconds, 1e-9)), latency: s.latency };
}

async function main(): Promise<number> {
  let a: ScaleArgs;
  try {
    a = parseScaleArgs(process.argv.slice(2));
  } catch (e) {
    if (!(e instanceof UsageError)) throw e;
    process.stderr.write(`${e.message ? `${e.message}\n` : ''}${USAGE}`);
    return e.message ? 2 : 0;
  }
  setKeepTemp(a.keepTemp);
  const overallS = START_STOP_S + a.sizes.length * PHASES_PER_SIZE * a.phaseTimeoutSeconds;
  const watchdog = setTimeout(() => {
    say(`the run outlived its overall deadline of ${overallS} s: stopping every process`);
    killScaleClusterSync();
    cleanupAllSync();
    process.exit(1);
  }, overallS * 1000);
  watchdog.unref();

  const startedAt = new Date().toISOString();
  // The machine, with the filesystem of the data dirs (fsync on tmpfs costs nothing) and the load at the start.
  const { etcd: _etcd, ...machine } = machineInfo(a.dir, null);
  const notes: string[] = [];
  const dir = await makeTempDir('raftauth-bench-scale-', a.dir);
  say(`starting a 3-node cluster in ${dir}`);
  const cluster = await ScaleCluster.start(dir, a.workers, say);
  let client: ForwardingClient | null = null;
  try {
    // The client the families belong to, through the admin API (503 until the leader's OAuth state is bootstrapped).
    const clientBody = { client_id: CLIENT_ID, client_name: 'bench:scale client', token_endpoint_auth_method: 'none', redirect_uris: ['https://app.example.com/cb'], grant_types: ['authorization_code', 'refresh_token'], scopes: ['openid', 'profile', 'offline_access'], first_party: true };
    await waitFor(
      'the admin API to create the OAuth client',
      async () => {
        const r = await cluster.admin((await cluster.leader()).adminUrl, 'POST', '/admin/v1/clients', clientBody);
        // 409: an earlier attempt that answered 5xx had created it after all.
        if (r.status === 201 || r.status === 409) return true;
        if (r.status >= 500) return false;
        throw new WaitAborted(`creating the OAuth client: HTTP ${r.status} ${JSON.stringify(r.json)}`);
      },
      60_000,
      500,
    );
    const sealer = await clusterSealer({ adminUrls: cluster.adminUrls, token: cluster.token, masterKeyText: await cluster.masterKeyText(), timeoutMs: 60_000 });
    const ctx: FillContext = { sealer, clientId: CLIENT_ID, passwordPhc: await fillPasswordPhc(), runId: randomBytes(4).toString('hex'), now: Date.now };
    client = new ForwardingClient({ members: cluster.members, tls: await fillerTls(await cluster.ca()) });
    await client.findLeader();

    // Log lines of every node: snapshot/compaction events, the sweep's deletions.
    const snapshots: SnapshotEvent[] = [];
    const swept: { atMs: number; deleted: number }[] = [];
    /** The snapshots node `node` logged as installed since event `from`: index 1 is the bootstrap snapshot a joiner gets before the log. */
    const installedBy = (from: number, node: number): { index: number | null; bytes: number | null }[] => snapshots.slice(from).filter((e) => e.node === node && /install/i.test(e.msg)).map((e) => ({ index: e.index, bytes: e.bytes }));
    cluster.onLogLine((node, rec) => {
      const s = snapshotEventOf(node, rec);
      if (s) snapshots.push(s);
      const w = sweptOf(rec);
      if (w) swept.push(w);
    });

    let unitsDone = 0;
    let expiringDone = 0;
    let behindDone = 0;
    const sizes: Record<string, unknown>[] = [];
    const facts: SizeFacts[] = [];
    const fillOpts = (what: string): { concurrency: number; deadlineMs: number; progress: (d: number, t: number) => void } => ({
      concurrency: a.fillConcurrency,
      deadlineMs: a.phaseTimeoutSeconds * 1000,
      progress: (d, t) => say(`${what}: ${d} of ${t} units`),
    });

    for (const size of a.sizes) {
      const rss = new RssSampler(() => cluster.primaries());
      rss.start();
      const snapFrom = snapshots.length;
      const report: Record<string, unknown> = { targetRecords: size };

      // Fill to the size.
      const need = Math.max(0, unitsFor(size) - unitsDone);
      say(`size ${size}: filling ${need} units (${need * RECORDS_PER_UNIT} records, ${need * WRITES_PER_UNIT} writes), ${a.fillConcurrency} chains in flight`);
      const fill = need > 0 ? await phase(a, `filling to ${size} records`, () => fillUnits(client!, ctx, unitsDone, need, fillOpts(`fill ${size}`))) : null;
      if (fill) unitsDone += fill.units;
      report.fill = fill ? fillReport(fill) : null;
      // The records written so far (every phase writes the same mix): a size smaller than what the
      // earlier phases already wrote is measured at the larger state, and says so.
      report.records = unitsDone * RECORDS_PER_UNIT;
      if ((report.records as number) > size + RECORDS_PER_UNIT) report.exceededTarget = `the earlier phases had already written ${report.records as number} records: this size is measured at that state (choose sizes further apart, or a shorter --measure-seconds and --behind)`;
      if (fill) say(`size ${size}: filled in ${fill.seconds} s (${fill.writesPerSec} writes/s, ${fill.failed} failed)`);

      // Sustained writes.
      say(`size ${size}: sustained writes at ${a.concurrency} in flight for ${a.measureSeconds} s`);
      const watcher = new StatusWatcher(() => cluster.statuses());
      await watcher.start();
      const endAt = performance.now() + a.measureSeconds * 1000;
      const m = await phase(a, `sustained writes at ${size} records`, () =>
        fillUnits(client!, ctx, unitsDone, Number.MAX_SAFE_INTEGER - unitsDone - 1, { concurrency: a.concurrency, deadlineMs: a.measureSeconds * 1000 + FILL_WRITE_TIMEOUT_MS * 4, stop: () => performance.now() >= endAt }),
      );
      const terms = await watcher.stop();
      unitsDone += m.units;
      report.recordsAfterMeasurement = unitsDone * RECORDS_PER_UNIT;
      const timeouts = m.failures.TIMEOUT ?? 0;
      const sustained = { concurrency: a.concurrency, seconds: m.seconds, writes: m.writes, writesPerSec: m.writesPerSec, latency: m.latency, p50Ms: m.latency.p50Ms, p99Ms: m.latency.p99Ms, timeouts, errors: m.failed, failures: m.failures, ...terms };
      report.sustained = sustained;
      say(`size ${size}: ${m.writesPerSec} writes/s, p50 ${m.latency.p50Ms} ms, p99 ${m.latency.p99Ms} ms, ${timeouts} timeouts, ${m.failed} failed, term ${terms.termAtStart}→${terms.termAtEnd}, ${terms.leaderChanges} leader changes`);

      // Learner from empty.
      let learnerS: number | null = null;
      if (!a.skip.includes('learner')) {
        say(`size ${size}: adding node ${LEARNER_ID} as a learner from an empty data dir`);
        const t0 = performance.now();
        const learnerFrom = snapshots.length;
        try {
          const { adminUrl } = await phase(a, `adding learner ${LEARNER_ID}`, () => cluster.addLearner());
          const added = performance.now();
          const target = (await cluster.leader()).status.commit;
          await phase(a, `learner ${LEARNER_ID} catching up at ${size} records`, () =>
            waitFor(
              `learner ${LEARNER_ID} to apply index ${target}`,
              async () => {
                if (!cluster.learnerRunning()) throw new WaitAborted(`learner ${LEARNER_ID} exited:\n${cluster.learnerLogTail()}`);
                const st = await cluster.status(adminUrl);
                return st !== null && st.applied >= target;
              },
              a.phaseTimeoutSeconds * 1000,
              100,
            ),
          );
          learnerS = round((performance.now() - t0) / 1000, 2);
          report.learner = { catchUpSeconds: learnerS, fromAddSeconds: round((performance.now() - added) / 1000, 2), leaderCommitAtAdd: target, dataDirBytes: dirBytes(cluster.dataDir(LEARNER_ID)), snapshotsInstalled: installedBy(learnerFrom, LEARNER_ID), measuredFrom: 'the start of the empty node 4 process (its boot included) until its admin status shows applied >= the leader commit index read right after the add' };
          say(`size ${size}: learner caught up in ${learnerS} s`);
        } finally {
          await cluster.removeLearner();
        }
      } else report.learner = null;

      // Restarted follower.
      if (!a.skip.includes('follower')) {
        const leaderId = (await cluster.leader()).id;
        const follower = cluster.spec.nodes.map((n) => n.id).find((id) => id !== leaderId)!;
        say(`size ${size}: stopping follower ${follower}, writing until the log has ${a.behindEntries} more entries`);
        const installsFrom = snapshots.length;
        await phase(a, `stopping follower ${follower}`, () => cluster.stopNode(follower));
        // Entries, not writes: the leader batches many commands into one log entry, so the writes go
        // on, --behind-concurrency at a time, until the leader's commit index has moved on by
        // --behind entries. KV puts over a fixed set of keys (fill-records.ts behindWrite): the log
        // grows, the state's record count does not, so the sizes stay what they say.
        const commitAtStop = (await cluster.leader()).status.commit;
        const behindStats: FillStats[] = [];
        await phase(a, `writing ${a.behindEntries} entries behind follower ${follower}`, async () => {
          for (;;) {
            const moved = (await cluster.leader()).status.commit - commitAtStop;
            if (moved >= a.behindEntries) return;
            const count = Math.max(1, a.behindEntries - moved);
            const st = await fillBehind(client!, ctx, behindDone, count, { ...fillOpts('behind'), concurrency: a.behindConcurrency });
            behindDone += st.units;
            behindStats.push(st);
          }
        });
        const behindWrites = behindStats.reduce((n, x) => n + x.writes, 0);
        const behindFailed = behindStats.reduce((n, x) => n + x.failed, 0);
        const target = (await cluster.leader()).status.commit;
        const t0 = performance.now();
        cluster.restartNode(follower);
        const adminUrl = cluster.adminUrls[cluster.spec.nodes.findIndex((n) => n.id === follower)]!;
        await phase(a, `follower ${follower} catching up at ${size} records`, () =>
          waitFor(
            `follower ${follower} to apply index ${target}`,
            async () => {
              if (!cluster.nodeRunning(follower)) throw new WaitAborted(`follower ${follower} exited:\n${cluster.nodeLogTail(follower)}`);
              const st = await cluster.status(adminUrl);
              return st !== null && st.applied >= target;
            },
            a.phaseTimeoutSeconds * 1000,
            100,
          ),
        );
        const s = round((performance.now() - t0) / 1000, 2);
        const installed = installedBy(installsFrom, follower);
        report.restartedFollower = { node: follower, entriesBehind: target - commitAtStop, writesBehind: behindWrites, failedWritesBehind: behindFailed, writeConcurrency: a.behindConcurrency, catchUpSeconds: s, leaderCommitAtRestart: target, snapshotsInstalled: installed, measuredFrom: 'the restart of the stopped follower (its boot included) until its admin status shows applied >= the leader commit index after the writes' };
        say(`size ${size}: follower ${follower} caught up in ${s} s${installed.length > 0 ? ` (snapshot at index ${installed.map((x) => x.index).join(', ')})` : ''}`);
      } else report.restartedFollower = null;

      // Expiry sweep.
      if (!a.skip.includes('sweep')) {
        const sweptFrom = swept.length;
        // They expire together once all are written (the sustained rate predicts how long writing
        // takes; twice that, plus 10 s). A record written already expired can sit below the point
        // the leader's sweep has passed (it resumes there, src/server/oauth-node.ts) until its
        // periodic full rescan: that measures the rescan period, not the sweep.
        const expMs = Date.now() + Math.ceil((2 * a.sweepRecords) / Math.max(m.writesPerSec, 1)) * 1000 + 10_000;
        say(`size ${size}: writing ${a.sweepRecords} authorization codes that expire at once, in ${Math.round((expMs - Date.now()) / 1000)} s`);
        const w = await phase(a, `writing ${a.sweepRecords} expiring records`, () => fillExpiring(client!, ctx, expiringDone, a.sweepRecords, expMs, fillOpts('expiring')));
        expiringDone += a.sweepRecords;
        const written = Date.now();
        const deletedSince = (): number => swept.slice(sweptFrom).reduce((s, x) => s + x.deleted, 0);
        const deletedDuringWrites = deletedSince();
        await phase(a, `the sweep of ${a.sweepRecords} expired records at ${size} records`, () => waitFor(`the sweep to delete ${a.sweepRecords} records`, () => deletedSince() >= a.sweepRecords - w.failed, a.phaseTimeoutSeconds * 1000, 200));
        const rounds = swept.slice(sweptFrom);
        const last = rounds[rounds.length - 1]!;
        report.sweep = {
          records: a.sweepRecords,
          writeFailures: w.failed,
          writes: fillReport(w),
          expiredAtMs: expMs,
          deletedDuringWrites,
          deleted: deletedSince(),
          writtenBeforeExpiry: written <= expMs,
          secondsAfterExpiry: round(Math.max(0, last.atMs - Math.max(written, expMs)) / 1000, 2),
          secondsAfterWrites: round(Math.max(0, last.atMs - written) / 1000, 2),
          secondsFromFirstToLastRound: round((last.atMs - rounds[0]!.atMs) / 1000, 2),
          rounds: rounds.map((x) => ({ atSecondsAfterWrites: round((x.atMs - written) / 1000, 2), deleted: x.deleted })),
          measuredFrom: 'secondsAfterExpiry: from the later of their common expiry and the end of the writes, until the leader logged the sweep round that brought the deletions since the phase began to the number written (a round deletes at most 20,000 keys; a round that stops at that bound is followed by another at the next tick: src/server/oauth-node.ts)',
        };
        say(`size ${size}: swept ${deletedSince()} records, last round ${round((last.atMs - Math.max(written, expMs)) / 1000, 1)} s after they expired${written > expMs ? ' (some were written after their expiry)' : ''}`);
      } else report.sweep = null;

      // RSS, disk, snapshots, metrics.
      const r2 = rss.stop();
      const maxOf = (xs: (number | null)[]): number | null => (xs.some((x) => x !== null) ? Math.max(...xs.filter((x): x is number => x !== null)) : null);
      report.rss = {
        maxMb: r2.maxMb,
        maxMbVoters: maxOf(r2.processes.filter((p) => p.node !== LEARNER_ID).map((p) => p.maxMb)),
        maxMbLearner: maxOf(r2.processes.filter((p) => p.node === LEARNER_ID).map((p) => p.maxMb)),
        processes: r2.processes.map((p) => ({ node: p.node, kind: p.kind, pid: p.pid, lastMb: p.lastMb, maxMb: p.maxMb })),
        note: 'sampled every second from /proc/<pid>/status VmRSS during all of this size\'s phases; the learner (node 4) is included while it ran',
      };
      report.disk = Object.fromEntries(cluster.spec.nodes.map((n) => [`node${n.id}`, dirBytes(cluster.dataDir(n.id))]));
      const snaps = snapshots.slice(snapFrom);
      report.snapshots = {
        events: snaps.length,
        byMessage: snaps.reduce<Record<string, number>>((o, e) => ((o[e.msg] = (o[e.msg] ?? 0) + 1), o), {}),
        durationsMs: snaps.filter((e) => e.durationMs !== null).map((e) => ({ node: e.node, msg: e.msg, durationMs: e.durationMs })),
        lastBytes: snaps.filter((e) => e.bytes !== null).map((e) => e.bytes).at(-1) ?? null,
        metrics: Object.fromEntries(await Promise.all(cluster.spec.nodes.map(async (n) => [`node${n.id}`, snapshotMetricLines(await cluster.metrics(n.id))] as const))),
      };
      report.recordsAtEnd = unitsDone * RECORDS_PER_UNIT;
      sizes.push(report);
      facts.push({ records: report.records as number, sustained: { writesPerSec: m.writesPerSec, p99Ms: m.latency.p99Ms, termChanges: terms.termChanges ?? 0, leaderChanges: terms.leaderChanges, timeouts }, learnerCatchUpSeconds: learnerS, maxProcessRssMb: r2.maxMb });
    }

    const t = computeTargets(facts);
    if (!sizes.some((s) => ((s.snapshots as { durationsMs: unknown[] }).durationsMs.length > 0))) {
      notes.push('compaction/snapshot time: no node log line carried a duration and /metrics has no snapshot-duration metric in this build; the report lists the snapshot events the nodes logged (count, bytes) and every snapshot/compaction metric /metrics has');
    }
    notes.push(`writes: contract writes (src/state/contract.ts stubs) from a client with its own session, forwarded to the leader on the peer transport as a follower forwards its workers' writes (scripts/lib/state-filler.ts); the HTTP request and the worker's IPC hop of an OAuth request are not in the path. A write's deadline is ${FILL_WRITE_TIMEOUT_MS} ms; a TIMEOUT is a write not applied within it`);
    notes.push(`records: ${RECORDS_PER_UNIT} per user (1 user, 1 confirmed TOTP factor, ${FAMILIES_PER_UNIT} refresh-token families, ${AUDIT_EVENTS_PER_UNIT} appended audit events) in ${WRITES_PER_UNIT} writes; the records those writes add beside them (username index, redeemed codes, refresh tokens, expiry-index entries, the ops' own audit events) are not counted. The measurement writes the same mix, so each size starts from the records written so far; the follower phase writes KV puts over ${BEHIND_KEYS} keys (${BEHIND_VALUE_BYTES}-byte values), which add log entries and no records`);
    if (a.sizes.length === 1) notes.push('one size only: the ratio targets are not computed');
    if (machine.dataDirFilesystem === 'tmpfs' || machine.dataDirFilesystem === 'ramfs') notes.push(`the data dirs are on ${machine.dataDirFilesystem}: fsync costs nothing there (use --dir on a disk)`);
    if (machine.loadAverageAtStart[0]! > machine.cpus * 0.75) notes.push(`the machine was busy at the start (1-min load ${machine.loadAverageAtStart[0]} on ${machine.cpus} cpus): absolute numbers are low and the size-to-size ratios are noisy`);
    notes.push('the filler (this process: sealing, encoding, the peer transport client) runs on the same cores as the nodes');
    const doc = {
      benchmark: 'scale',
      startedAt,
      finishedAt: new Date().toISOString(),
      args: a,
      machine: { ...machine, loadAverageAtEnd: loadavg().map((x) => round(x, 2)) },
      cluster: { nodes: 3, raft: { tickMs: 50, electionTick: 10, heartbeatTick: 1 }, httpWorkersPerNode: a.workers, fsync: 'on', logLevel: 'info', dataDir: dir },
      recordMix: { recordsPerUser: RECORDS_PER_UNIT, writesPerUser: WRITES_PER_UNIT, familiesPerUser: FAMILIES_PER_UNIT, auditEventsPerUser: AUDIT_EVENTS_PER_UNIT },
      sizes,
      targets: t,
      notes,
    };
    const json = JSON.stringify(doc, null, 2) + '\n';
    process.stdout.write(json);
    if (a.out !== null) writeFileSync(a.out, json);
    for (const x of t.targets) say(`target: ${x.target}: measured ${x.measured ?? 'n/a'} → ${x.met === null ? `not judged (${x.why})` : x.met ? 'met' : 'NOT met'}`);
    return 0;
  } finally {
    clearTimeout(watchdog);
    client?.close();
    say('stopping the cluster');
    await cluster.stop();
  }
}

runBenchmark(main, say, () => {
  killScaleClusterSync();
  cleanupAllSync();
});
