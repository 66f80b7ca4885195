// The inside half of heal.test.ts (started with `ip netns exec <client namespace>`, like runner.ts):
// a 3-node cluster, then rounds of "cut one node off for a few seconds, heal, time how long until
// that node serves again". Every socket this process opens is in the client namespace; the cuts
// are nft rules inside the node namespaces (net.ts).
//
// Served again means both, measured from the heal on the node that was cut off:
//  - readyMs: /readyz?deep=1 answers 200 (a leader known and heard from recently, and a real
//    ReadIndex round trip, dissertation §6.4, finished: a linearizable read would be answered);
//  - writeMs: a PUT through it is applied (forwarded to the leader when it is a follower).
//
// Prints one `HEAL-RESULT <json>` line per round and `HEAL-DONE` at the end; exits 2 when it
// could not run.
import { rm } from 'node:fs/promises';
import { join } from 'node:path';
import { Rng } from '../sim/rng.ts';
import { HttpFailure, httpJson } from '../cluster/harness.ts';
import { waitFor } from '../../scripts/lib/wait.ts';
import { NodeCluster, httpAddress } from './cluster.ts';
import { nodeNs, sh } from './hosts.ts';
import type { Hosts } from './hosts.ts';
import { applyCuts, heal } from './net.ts';
import type { Cuts } from './net.ts';

/**
 * Which node is cut off, and how: both directions, only what reaches it (`in`: its peers' packets
 * are dropped at it), or only what it sends (`out`: its packets are dropped at its peers).
 */
export const HEAL_SCENARIOS = ['follower-both', 'leader-both', 'follower-in', 'follower-out', 'leader-in', 'leader-out'] as const;
export type HealScenario = (typeof HEAL_SCENARIOS)[number];

export interface HealRunOptions {
  readonly hosts: Hosts;
  readonly dir: string;
  readonly seed: number;
  readonly rounds: readonly HealScenario[];
  /** Length of each cut, drawn per round from this range. */
  readonly cutMs: readonly [number, number];
  readonly tickMs: number;
}

export interface HealRound {
  readonly round: number;
  readonly scenario: HealScenario;
  readonly target: number;
  readonly leaderBefore: number;
  readonly cutMs: number;
  /** Wall-clock time of the cut (to find it in the node logs). */
  readonly cutAt: string;
  /** From the heal until /readyz?deep=1 on the target answered 200 (null: not within the deadline). */
  readonly readyMs: number | null;
  /** From the heal until a PUT through the target was applied (null: not within the deadline). */
  readonly writeMs: number | null;
  /** When the target was seen not ready during the cut (ms after the cut; null: never). */
  readonly notReadyAfterMs: number | null;
}

/** How long a round waits for the target to serve again before giving up on it. */
export const RECOVERY_DEADLINE_MS = 30_000;
/** Poll interval of the recovery probes. */
const PROBE_POLL_MS = 20;
/** Deadline of one probe request (the deep readiness check itself is bounded at 1 s by the node). */
const PROBE_TIMEOUT_MS = 2_000;
/** Time the whole cluster gets to be ready on every node between rounds. */
const SETTLE_DEADLINE_MS = 60_000;

const log = (line: string): void => {
  process.stdout.write(`${line}\n`);
};

async function deepReady(id: number): Promise<boolean> {
  try {
    const r = await httpJson(httpAddress(id), 'GET', '/readyz?deep=1', { timeoutMs: PROBE_TIMEOUT_MS });
    return r.status === 200;
  } catch (e) {
    if (e instanceof HttpFailure) return false;
    throw e;
  }
}

async function put(id: number, key: string, value: string): Promise<boolean> {
  try {
    const r = await httpJson(httpAddress(id), 'PUT', `/v1/kv/${encodeURIComponent(key)}`, { body: { value }, timeoutMs: PROBE_TIMEOUT_MS, headers: { 'x-request-timeout-ms': String(PROBE_TIMEOUT_MS - 500) } });
    return r.status === 200;
  } catch (e) {
    if (e instanceof HttpFailure) return false;
    throw e;
  }
}

/** Poll `probe` until it succeeds; the ms from `t0` to the success, or null past the deadline. */
async function timeUntil(t0: number, probe: () => Promise<boolean>): Promise<number | null> {
  try {
    await waitFor('recovery', probe, RECOVERY_DEADLINE_MS, PROBE_POLL_MS);
    return Math.round(performance.now() - t0);
  } catch {
    return null;
  }
}

function cutsFor(scenario: HealScenario, target: number, ids: readonly number[]): Cuts {
  const others = ids.filter((i) => i !== target);
  const into: [number, number][] = others.map((o) => [o, target]);
  const outOf: [number, number][] = others.map((o) => [target, o]);
  if (scenario.endsWith('-both')) return [...into, ...outOf];
  return scenario.endsWith('-in') ? into : outOf;
}

export async function runHeal(o: HealRunOptions): Promise<HealRound[]> {
  const ids = o.hosts.nodeIds;
  const rng = new Rng(o.seed);
  const cluster = new NodeCluster(o.hosts, join(o.dir, 'nodes'), { oauth: false, tickMs: o.tickMs });
  const results: HealRound[] = [];
  try {
    await cluster.init();
    for (const id of ids) cluster.start(id);
    await Promise.all(ids.map((id) => cluster.waitServing(id, 90_000)));
    for (let round = 0; round < o.rounds.length; round++) {
      const scenario = o.rounds[round]!;
      // Every node serves before the cut: what is measured is the recovery from this cut alone.
      await waitFor('every node ready (deep) before the cut', async () => (await Promise.all(ids.map(deepReady))).every(Boolean), SETTLE_DEADLINE_MS, 100);
      const leader = await cluster.waitLeader(ids, SETTLE_DEADLINE_MS);
      const followers = ids.filter((i) => i !== leader);
      const target = scenario.startsWith('leader') ? leader : followers[rng.int(followers.length)]!;
      const cutMs = rng.range(o.cutMs[0], o.cutMs[1]);
      // A write through the target first: its peer streams are busy (proven) when the cut comes.
      await waitFor('a write through the target before the cut', () => put(target, `heal-pre-${round}`, 'x'), SETTLE_DEADLINE_MS, 50);

      const cutAt = performance.now();
      const cutAtWall = new Date().toISOString();
      await applyCuts(o.hosts, cutsFor(scenario, target, ids));
      // The cut must take the target out of service (else the round measures nothing). Probed
      // while the cut lasts; the cut's length is the fault's duration, not a synchronization.
      let notReadyAfterMs: number | null = null;
      while (performance.now() - cutAt < cutMs) {
        if (notReadyAfterMs === null && !(await deepReady(target))) notReadyAfterMs = Math.round(performance.now() - cutAt);
        await new Promise((r) => setTimeout(r, 50));
      }
      // HEAL_DIAG=1: the target's TCP connections as the cut ends (retransmission backoff, rto).
      const diag = process.env.HEAL_DIAG === '1' ? await sh('ip', ['netns', 'exec', nodeNs(o.hosts, target), 'ss', '-tnio']).catch((e: Error) => e.message) : null;
      await heal(o.hosts);
      const t0 = performance.now();
      const [readyMs, writeMs] = await Promise.all([timeUntil(t0, () => deepReady(target)), timeUntil(t0, () => put(target, `heal-post-${round}`, 'y'))]);
      const r: HealRound = { round, scenario, target, leaderBefore: leader, cutMs, cutAt: cutAtWall, readyMs, writeMs, notReadyAfterMs };
      results.push(r);
      log(`HEAL-RESULT ${JSON.stringify(r)}`);
      if (diag !== null) log(`HEAL-DIAG round ${round}:\n${diag}`);
    }
    return results;
  } finally {
    await cluster.close();
    for (const id of ids) await rm(cluster.dataDir(id), { recursive: true, force: true });
  }
}

// Started by heal.test.ts: `node --import tsx heal-run.ts <options JSON>`.
if (import.meta.url === `file://${process.argv[1]}`) {
  const o = JSON.parse(process.argv[2] ?? '') as HealRunOptions;
  runHeal(o).then(
    () => {
      log('HEAL-DONE');
      process.exit(0);
    },
    (e: Error) => {
      process.stderr.write(`heal runner failed: ${e.stack ?? e.message}\n`);
      process.exit(2);
    },
  );
}
