// The workload, identical for both systems: N closed-loop clients, each with one put in flight at
// a time, the k-th put of client c sent to endpoint (c + k) mod members so that requests spread
// evenly over leader and followers (a follower forwards to the leader in both systems). Keys cycle
// over KEYS_PER_CLIENT per client, so the store stays small; every value is the same `valueBytes`
// ASCII string.
import { LatencyHistogram } from './histogram.ts';
import type { LatencySummary } from './histogram.ts';
import { Pool, writeWithRetry } from './client.ts';
import type { SystemUnderTest } from './system.ts';

/** Distinct keys each client cycles over. */
const KEYS_PER_CLIENT = 100;
/** The failover phase runs on after every client has resumed, to show writes flow again. */
const AFTER_RESUME_MS = 500;
/** Leader lookup before the kill. */
const LEADER_TIMEOUT_MS = 10_000;
/**
 * The probe of the failover phase sends a fresh put this often from the kill until one succeeds,
 * so that the gap measures the cluster, not the load clients' retry timing (a client stuck in a
 * 1 s attempt cannot notice a leader elected 0.2 s into it).
 */
const PROBE_INTERVAL_MS = 20;
/** Probe puts in flight at most: a bound on what the probe adds to the load (and on its sockets). */
const MAX_PROBES_IN_FLIGHT = 256;

export interface WorkloadOptions {
  readonly requestTimeoutMs: number;
  readonly value: string;
}

export interface LevelResult {
  readonly concurrency: number;
  readonly measuredSeconds: number;
  /** Successful puts completed inside the measured window. */
  readonly writes: number;
  readonly writesPerSec: number;
  /** Latency of those puts (retries included in a put's latency). */
  readonly latency: LatencySummary;
  /** Puts that had not succeeded by their deadline. */
  readonly failedRequests: number;
  /** Failed attempts that were retried (or ended a failed request), by what went wrong. */
  readonly erroredAttempts: Record<string, number>;
  /** The leader when the level started. */
  readonly leaderMember: string;
  /** Latency by the member that answered the successful attempt: shows what forwarding from a follower costs. */
  readonly byMember: Record<string, { readonly count: number; readonly p50Ms: number; readonly p99Ms: number }>;
  /**
   * CPU milliseconds the system's processes used per successful put in the measured window (every
   * member, every process, user + system; the benchmark client excluded). null without /proc.
   */
  cpuMsPerWrite: number | null;
  /**
   * The same by process kind: `primary` (a raftauth node's primary process, an etcd member) and
   * `workers` (a raftauth node's HTTP workers; 0 for etcd). null without /proc.
   */
  cpuMsPerWriteByKind: { readonly primary: number; readonly workers: number } | null;
  /** The highest raft term before the warm-up and after the level (filled in by the caller); equal: no election. */
  termAtStart?: number;
  termAtEnd?: number;
}

function key(client: number, seq: number): string {
  return `bench/c${client}/${seq % KEYS_PER_CLIENT}`;
}

function bump(m: Record<string, number>, k: string): void {
  m[k] = (m[k] ?? 0) + 1;
}

/** CPU ms per write of each process kind between two readings; null without both readings or writes. */
function perWriteByKind(a: { primary: number; workers: number } | null, b: { primary: number; workers: number } | null, writes: number): { primary: number; workers: number } | null {
  if (a === null || b === null || writes === 0) return null;
  const per = (x: number, y: number): number => Math.round((((y - x) * 1000) / writes) * 1000) / 1000;
  return { primary: per(a.primary, b.primary), workers: per(a.workers, b.workers) };
}

/** One concurrency level: warm-up, then `measureMs` measured; counts what completes inside the window. */
export async function runLevel(sut: SystemUnderTest, concurrency: number, warmupMs: number, measureMs: number, o: WorkloadOptions): Promise<LevelResult> {
  const leader = await sut.leader(LEADER_TIMEOUT_MS);
  const pool = new Pool(sut.endpoints, concurrency);
  const hist = new LatencyHistogram();
  const perMember = sut.endpoints.map(() => new LatencyHistogram());
  const errored: Record<string, number> = {};
  let failed = 0;
  const t0 = performance.now();
  const windowStart = t0 + warmupMs;
  const windowEnd = windowStart + measureMs;
  let cpuAtStart: number | null = null;
  let cpuAtEnd: number | null = null;
  let kindAtStart: { primary: number; workers: number } | null = null;
  let kindAtEnd: { primary: number; workers: number } | null = null;
  const cpuTimers = [
    setTimeout(() => {
      cpuAtStart = sut.cpuSeconds();
      kindAtStart = sut.cpuSecondsByKind();
    }, warmupMs),
    setTimeout(() => {
      cpuAtEnd = sut.cpuSeconds();
      kindAtEnd = sut.cpuSecondsByKind();
    }, warmupMs + measureMs),
  ];
  const client = async (c: number): Promise<void> => {
    for (let seq = 0; performance.now() < windowEnd; seq++) {
      const start = performance.now();
      // No attempt timeout short of the deadline here: in steady state a slow answer is a latency to
      // measure, not a failure to retry (a retry would add load and hide the slow answer).
      const r = await writeWithRetry(pool, c + seq, (rem) => sut.putCall(key(c, seq), o.value, rem), (a) => sut.putOk(a), o.requestTimeoutMs, o.requestTimeoutMs);
      const end = performance.now();
      if (end < windowStart || end > windowEnd) continue;
      for (const e of r.errors) bump(errored, e.what);
      if (r.ok) {
        hist.recordMs(end - start);
        perMember[r.endpoint]!.recordMs(end - start);
      } else failed++;
    }
  };
  try {
    await Promise.all(Array.from({ length: concurrency }, (_, c) => client(c)));
  } finally {
    pool.close();
    for (const t of cpuTimers) clearTimeout(t);
  }
  // The last put may end just before the end timer runs: read the end now (a few ms late at most).
  if (cpuAtStart !== null && cpuAtEnd === null) cpuAtEnd = sut.cpuSeconds();
  if (kindAtStart !== null && kindAtEnd === null) kindAtEnd = sut.cpuSecondsByKind();
  const latency = hist.summary();
  const cpuMs = cpuAtStart !== null && cpuAtEnd !== null ? (cpuAtEnd - cpuAtStart) * 1000 : null;
  return {
    concurrency,
    measuredSeconds: measureMs / 1000,
    writes: latency.count,
    writesPerSec: Math.round((latency.count / (measureMs / 1000)) * 10) / 10,
    cpuMsPerWrite: cpuMs !== null && latency.count > 0 ? Math.round((cpuMs / latency.count) * 1000) / 1000 : null,
    cpuMsPerWriteByKind: perWriteByKind(kindAtStart, kindAtEnd, latency.count),
    latency,
    failedRequests: failed,
    erroredAttempts: errored,
    leaderMember: sut.endpoints[leader]!.member,
    byMember: Object.fromEntries(
      sut.endpoints.map((e, i) => {
        const m = perMember[i]!.summary();
        return [e.member, { count: m.count, p50Ms: m.p50Ms, p99Ms: m.p99Ms }];
      }),
    ),
  };
}

export interface FailoverResult {
  readonly concurrency: number;
  /** The member killed (the leader at the time), by its own name/id. */
  readonly killedMember: string;
  /**
   * The failover gap: kill → the first successful put among puts *sent after* the kill, by the
   * load clients or by the probe (see runFailover). Puts in flight at the kill do not count: one
   * acknowledged just after the kill may have been committed just before it. null if none
   * succeeded before the phase ended.
   */
  readonly gapMs: number | null;
  /** The same, counting the load clients' puts only: what the clients saw, given their retry policy. */
  readonly clientGapMs: number | null;
  /** The same, counting the probe's puts only: when the cluster took writes again, at PROBE_INTERVAL_MS resolution. */
  readonly probeGapMs: number | null;
  /** Probe puts sent (one attempt each, to the surviving members in turn). */
  readonly probesSent: number;
  /** Kill → first successful put of any kind (may include one committed before the kill). */
  readonly firstAckAfterKillMs: number | null;
  /** Kill → the moment the last client had a put sent after the kill succeed (every client resumed). */
  readonly allClientsResumedMs: number | null;
  /** Longest latency of a put in flight across the kill (retries included). */
  readonly maxLatencyAcrossKillMs: number;
  /** Successful puts from the kill to the end of the phase. */
  readonly writesAfterKill: number;
  /** Puts from the kill on that had not succeeded by their deadline. */
  readonly failedRequests: number;
  /** Failed attempts after the kill, by member: the killed one (connections reset/refused) or a live one. */
  readonly erroredAttemptsOnKilledMember: Record<string, number>;
  readonly erroredAttemptsOnLiveMembers: Record<string, number>;
  /** The new leader, once the survivors agreed on one. */
  readonly newLeader: string | null;
}

/**
 * Failover: `concurrency` clients write steadily for warmupMs, then the leader is killed with
 * SIGKILL (with its process group); the clients go on (with the retry policy of client.ts) until
 * every client has had a put sent after the kill succeed, plus AFTER_RESUME_MS, or maxAfterKillMs.
 * From the kill until the first success, a probe also sends one fresh put every PROBE_INTERVAL_MS
 * (one attempt each, with the system's failover attempt timeout, to the surviving members in turn).
 */
export async function runFailover(sut: SystemUnderTest, concurrency: number, warmupMs: number, maxAfterKillMs: number, o: WorkloadOptions): Promise<FailoverResult> {
  const pool = new Pool(sut.endpoints, concurrency);
  let tKill = Infinity;
  let stopAt = Infinity;
  let killed = -1;
  const resumedAt: (number | null)[] = Array.from({ length: concurrency }, () => null);
  let firstAck: number | null = null;
  let maxAcross = 0;
  let writesAfter = 0;
  let failed = 0;
  const onKilled: Record<string, number> = {};
  const onLive: Record<string, number> = {};
  const client = async (c: number): Promise<void> => {
    for (let seq = 0; performance.now() < stopAt; seq++) {
      const start = performance.now();
      const r = await writeWithRetry(pool, c + seq, (rem) => sut.putCall(key(c, seq), o.value, rem), (a) => sut.putOk(a), o.requestTimeoutMs, sut.attemptTimeoutMs);
      const end = performance.now();
      for (const e of r.errors) if (e.atMs >= tKill) bump(e.endpoint === killed ? onKilled : onLive, e.what);
      if (end < tKill) continue;
      if (start < tKill) maxAcross = Math.max(maxAcross, end - start);
      if (!r.ok) {
        failed++;
        continue;
      }
      writesAfter++;
      if (firstAck === null) firstAck = end;
      if (start >= tKill && resumedAt[c] === null) {
        resumedAt[c] = end;
        if (resumedAt.every((t) => t !== null)) stopAt = Math.min(stopAt, end + AFTER_RESUME_MS);
      }
    }
  };
  const probePool = new Pool(sut.endpoints, MAX_PROBES_IN_FLIGHT);
  let probeSuccess: number | null = null;
  let probesSent = 0;
  const probes: Promise<void>[] = [];
  const probe = async (): Promise<void> => {
    const survivors = sut.endpoints.map((_, i) => i).filter((i) => i !== killed);
    let inFlight = 0;
    while (probeSuccess === null && performance.now() < stopAt) {
      if (inFlight < MAX_PROBES_IN_FLIGHT) {
        const n = probesSent++;
        const start = performance.now();
        inFlight++;
        // The system's failover attempt timeout, as for the clients: raftauth waits in the node,
        // an etcd attempt stuck on a follower is given up after it.
        const budgetMs = Math.min(o.requestTimeoutMs, sut.attemptTimeoutMs);
        probes.push(
          probePool
            .attempt(survivors[n % survivors.length]!, sut.putCall(`bench/probe/${n % KEYS_PER_CLIENT}`, o.value, budgetMs), budgetMs)
            .then(
              (a) => {
                if (sut.putOk(a) && start >= tKill) probeSuccess = Math.min(probeSuccess ?? Infinity, performance.now());
              },
              () => undefined, // a failed probe only means "not yet"
            )
            .finally(() => inFlight--),
        );
      }
      await new Promise((r) => setTimeout(r, PROBE_INTERVAL_MS));
    }
  };
  const running = Promise.all(Array.from({ length: concurrency }, (_, c) => client(c)));
  let newLeader: string | null;
  try {
    await new Promise((r) => setTimeout(r, warmupMs));
    killed = await sut.leader(LEADER_TIMEOUT_MS);
    stopAt = performance.now() + maxAfterKillMs;
    tKill = performance.now();
    const killing = sut.kill(killed); // sends SIGKILL at once, then waits for the exit
    probes.push(probe());
    await killing;
    try {
      newLeader = sut.endpoints[await sut.leader(maxAfterKillMs)]!.member;
    } catch {
      newLeader = null;
    }
  } finally {
    if (stopAt === Infinity) stopAt = 0;
    await running;
    // Probes still in flight end within their deadline; then their agents can go.
    for (let k = 0; k < probes.length; k++) await probes[k]; // the array grows while the probe runs
    pool.close();
    probePool.close();
  }
  const resumed = resumedAt.filter((t): t is number => t !== null);
  const clientGap = resumed.length > 0 ? Math.min(...resumed) : null;
  const gap = clientGap === null ? probeSuccess : probeSuccess === null ? clientGap : Math.min(clientGap, probeSuccess);
  const rel = (t: number | null) => (t === null ? null : Math.round((t - tKill) * 10) / 10);
  return {
    concurrency,
    killedMember: sut.endpoints[killed]!.member,
    gapMs: rel(gap),
    clientGapMs: rel(clientGap),
    probeGapMs: rel(probeSuccess),
    probesSent,
    firstAckAfterKillMs: rel(firstAck),
    allClientsResumedMs: rel(resumed.length === concurrency ? Math.max(...resumed) : null),
    maxLatencyAcrossKillMs: Math.round(maxAcross * 10) / 10,
    writesAfterKill: writesAfter,
    failedRequests: failed,
    erroredAttemptsOnKilledMember: onKilled,
    erroredAttemptsOnLiveMembers: onLive,
    newLeader,
  };
}
