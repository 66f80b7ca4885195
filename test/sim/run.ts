// One simulation run: (seed, options) -> result. The run is a pure function of its inputs: all
// randomness comes from one seeded PRNG, time is virtual, and nothing reads the wall clock.
//
// Phases: (1) fault phase: clients run a concurrent workload while the mix's nemesis injects
// faults, safety invariants checked after every event; (2) heal: every fault is lifted and every
// crashed node restarted; (3) liveness: a leader must be elected and a fresh write must commit
// within a bound of virtual time; (4) convergence: every live member reaches the same applied
// index with an identical state-machine image; (5) the client history must be linearizable.
import type { UnsafeBugs } from '../../src/raft/types.ts';
import { checkLinearizable } from '../support/linearizability.ts';
import { kvModel } from '../support/kv-model.ts';
import type { Violation, ViolationKind } from './checks.ts';
import { Cluster } from './cluster.ts';
import { mixByName } from './faults.ts';
import type { SimBugs } from './node.ts';
import { Rng } from './rng.ts';

export const CORE_BUGS = ['commitPriorTermByCounting', 'skipLogUpToDateCheck'] as const;
export const SIM_BUGS = [
  'forgetVote',
  'sendBeforePersist',
  'ackBeforeCommit',
  'readWithoutReadIndex',
  'applyRetryTwice',
  'corruptEntryOnDisk',
  'skipFirstCommitted',
  'refuseRetryAsStale',
  'tickerLostOnRestart',
  'snapshotsLostReportedSent',
  'applyBatchTwice',
  'ackBeforeMajorityFsync',
  'splitBatchAcrossLeaderChange',
  'sendAheadOfWrites',
] as const;
export type BugName = (typeof CORE_BUGS)[number] | (typeof SIM_BUGS)[number];
export const BUG_NAMES: readonly BugName[] = [...CORE_BUGS, ...SIM_BUGS];

export interface SimOptions {
  readonly seed: number;
  readonly nodes: 3 | 5;
  readonly mix: string;
  /** Length of the fault phase, in ticks of virtual time (tickMs each). */
  readonly steps: number;
  readonly bugs?: readonly BugName[];
  /** Collect a trace of every event (slower; for replaying a failure). */
  readonly trace?: boolean;
  /** After healing, a write must commit within this much virtual time. */
  readonly livenessBoundMs?: number;
  /** Violation kinds not reported: only for exploring what a later check would see. */
  readonly ignoreChecks?: readonly ViolationKind[];
  /** Search budget of the linearizability checker; beyond it the verdict is 'unknown'. */
  readonly linearizabilityMaxSteps?: number;
  /** False: leaders persist before sending anything (the old driver); default true, as src/node/driver.ts. */
  readonly parallelLeaderAppend?: boolean;
  /** False: followers wait out the election timeout after losing the leader (the driver before leaderLost); default true. */
  readonly leaderLossCampaign?: boolean;
  /**
   * Storage writes in flight at once (asynchronous writes, as src/node/driver.ts); 1 is the
   * synchronous driver. Default: drawn per seed from 1..MAX_SIM_WRITES_IN_FLIGHT, from a stream of
   * its own.
   */
  readonly maxWritesInFlight?: number;
}

/** The most storage writes in flight a run draws (the driver's default is DEFAULT_MAX_WRITES_IN_FLIGHT). */
export const MAX_SIM_WRITES_IN_FLIGHT = 4;

export const DEFAULT_STEPS = 300;
export const TICK_MS = 10;
export const DEFAULT_LIVENESS_BOUND_MS = 5_000;
export const CONVERGENCE_BOUND_MS = 3_000;
export const DEFAULT_LINEARIZABILITY_MAX_STEPS = 2_000_000;

export interface SimResult {
  readonly seed: number;
  readonly mix: string;
  readonly nodes: number;
  readonly steps: number;
  readonly bugs: readonly BugName[];
  readonly ok: boolean;
  readonly violations: readonly Violation[];
  readonly linearizability: { readonly verdict: 'ok' | 'illegal' | 'unknown' | 'skipped'; readonly steps: number; readonly reason?: string };
  readonly stats: Record<string, number>;
  /** The Raft and workload settings this seed drew. */
  readonly settings: Record<string, number | boolean | null>;
  readonly replay: string;
  readonly trace: readonly string[] | null;
}

export function replayCommand(o: SimOptions, traceFile?: string): string {
  const bugs = (o.bugs ?? []).map((b) => ` --bug ${b}`).join('');
  const noLeaderLoss = o.leaderLossCampaign === false ? ' --no-leader-loss-campaign' : '';
  return `npm run sim -- --seed ${o.seed} --mix ${o.mix} --nodes ${o.nodes} --steps ${o.steps}${bugs}${noLeaderLoss} --trace ${traceFile ?? `sim-${o.seed}.trace`}`;
}

export function runSim(o: SimOptions): SimResult {
  const mix = mixByName(o.mix);
  const bugs = new Set(o.bugs ?? []);
  for (const b of bugs) if (!BUG_NAMES.includes(b)) throw new Error(`unknown bug switch '${b}' (known: ${BUG_NAMES.join(', ')})`);
  if (o.nodes !== 3 && o.nodes !== 5) throw new Error(`nodes must be 3 or 5, got ${o.nodes}`);
  if (!Number.isInteger(o.steps) || o.steps < 1) throw new Error(`steps must be a positive integer, got ${o.steps}`);
  const rng = new Rng(o.seed);
  const tickUs = TICK_MS * 1000;
  const faultEndUs = o.steps * tickUs;
  const coreBugs: UnsafeBugs = {
    ...(bugs.has('commitPriorTermByCounting') ? { commitPriorTermByCounting: true } : {}),
    ...(bugs.has('skipLogUpToDateCheck') ? { skipLogUpToDateCheck: true } : {}),
  };
  const simBugs: SimBugs = {
    forgetVote: bugs.has('forgetVote'),
    sendBeforePersist: bugs.has('sendBeforePersist'),
    ackBeforeCommit: bugs.has('ackBeforeCommit'),
    readWithoutReadIndex: bugs.has('readWithoutReadIndex'),
    applyRetryTwice: bugs.has('applyRetryTwice'),
    corruptEntryOnDisk: bugs.has('corruptEntryOnDisk'),
    skipFirstCommitted: bugs.has('skipFirstCommitted'),
    refuseRetryAsStale: bugs.has('refuseRetryAsStale'),
    tickerLostOnRestart: bugs.has('tickerLostOnRestart'),
    snapshotsLostReportedSent: bugs.has('snapshotsLostReportedSent'),
    applyBatchTwice: bugs.has('applyBatchTwice'),
    ackBeforeMajorityFsync: bugs.has('ackBeforeMajorityFsync'),
    splitBatchAcrossLeaderChange: bugs.has('splitBatchAcrossLeaderChange'),
    sendAheadOfWrites: bugs.has('sendAheadOfWrites'),
  };
  const draw = (r: readonly [number, number]): number => rng.range(r[0], r[1]);
  // Drawn from a stream of its own so that mixes without core limits keep their schedules.
  const limitsRng = new Rng(o.seed ^ 0x5bd1e995);
  const limits = mix.coreLimits;
  const maxWritesInFlight = o.maxWritesInFlight ?? new Rng(o.seed ^ 0x2545f491).range(1, MAX_SIM_WRITES_IN_FLIGHT);
  if (!Number.isInteger(maxWritesInFlight) || maxWritesInFlight < 1) throw new Error(`maxWritesInFlight must be a positive integer, got ${maxWritesInFlight}`);
  const preVote = rng.chance(mix.preVoteP);
  const settings = {
    electionTick: 10,
    heartbeatTick: rng.range(1, 3),
    preVote,
    checkQuorum: rng.chance(mix.checkQuorumP),
    maxSizePerMsg: draw(mix.maxSizePerMsg),
    maxInflightMsgs: rng.range(1, 64),
    maxCommittedSizePerReady: limits ? limitsRng.range(...limits.maxCommittedSizePerReady) : null,
    maxUncommittedEntriesSize: limits ? limitsRng.range(...limits.maxUncommittedEntriesSize) : null,
    snapshotEveryEntries: draw(mix.snapshotEveryEntries),
    keepEntries: draw(mix.keepEntries),
  };
  const cluster = new Cluster(
    {
      initialNodes: o.nodes,
      maxNodes: o.nodes + 5,
      tickUs,
      mix,
      clientDelayUs: [200, 2_000],
      removalGraceUs: 300_000,
      maxEvents: 1_000_000,
      maxInFlightMessages: 50_000,
      maxTraceLines: 2_000_000,
      trace: o.trace === true,
      ignoredChecks: new Set(o.ignoreChecks ?? []),
      settings: {
        ...settings,
        sessionLimits: mix.sessionLimits,
        maxPendingProposals: 1_024,
        maxPendingReads: 1_024,
        readTimeoutUs: 5_000_000,
        coreBugs,
        simBugs,
        parallelLeaderAppend: o.parallelLeaderAppend !== false,
        maxWritesInFlight,
        leaderLossCampaign: o.leaderLossCampaign !== false,
      },
    },
    rng.fork(),
  );
  const keys = Array.from({ length: mix.clients.keys }, (_, i) => `k${i}`);
  const clientCount = draw(mix.clients.count);
  const attemptTimeoutUs = draw(mix.clients.attemptTimeoutUs);
  const opDeadlineUs = draw(mix.clients.opDeadlineUs);
  for (let c = 1; c <= clientCount; c++) {
    cluster.addClient(c, { attemptTimeoutUs, opDeadlineUs, keys, thinkMaxUs: 30_000, stopAtUs: faultEndUs, plan: 'workload' }, rng.fork());
  }
  cluster.startNemesis();

  // (1) Fault phase.
  cluster.run(faultEndUs, () => false);
  // (2) Heal.
  if (cluster.checker.ok) cluster.healAll();
  // (3) Liveness: a fresh client must get a write committed within the bound.
  const livenessBoundUs = (o.livenessBoundMs ?? DEFAULT_LIVENESS_BOUND_MS) * 1000;
  const healUs = cluster.nowUs;
  const probe = cluster.addClient(clientCount + 1, { attemptTimeoutUs: 200_000, opDeadlineUs: livenessBoundUs, keys, thinkMaxUs: 0, stopAtUs: healUs + livenessBoundUs, plan: 'oneWrite' }, rng.fork());
  // Also let every workload operation run to its deadline, so the history is complete.
  const drainUs = healUs + Math.max(livenessBoundUs, opDeadlineUs) + 100_000;
  const allDone = (): boolean => probe.answeredAtUs !== null && [...cluster.clients.values()].every((c) => !c.busy);
  if (cluster.checker.ok) cluster.run(drainUs, allDone);
  if (cluster.checker.ok && (probe.answeredAtUs === null || probe.answeredAtUs > healUs + livenessBoundUs)) {
    const leader = cluster.currentLeader();
    cluster.checker.report('liveness', `no write committed within ${livenessBoundUs / 1000} ms after healing at ${healUs / 1000} ms (leader now: ${leader ? `n${leader.id} term ${leader.term}` : 'none'})`);
  }
  // (4) Convergence: all live members catch up to the same applied index and state.
  if (cluster.checker.ok) {
    const converged = (): boolean => {
      const live = cluster.liveMembers();
      if (live.length === 0) return false;
      const target = cluster.checker.highestCommitted;
      return live.every((n) => n.appliedIndex === target && !n.isWriting);
    };
    cluster.run(cluster.nowUs + CONVERGENCE_BOUND_MS * 1000, converged);
    if (cluster.checker.ok) {
      const live = cluster.liveMembers();
      if (!converged()) {
        cluster.checker.report('convergence', `live members did not all apply the committed index ${cluster.checker.highestCommitted} within ${CONVERGENCE_BOUND_MS} ms: ${live.map((n) => `n${n.id}@${n.appliedIndex}`).join(' ')}`);
      } else {
        const digests = new Set(live.map((n) => n.stateDigest()));
        if (digests.size > 1) cluster.checker.report('convergence', `live members applied index ${live[0]!.appliedIndex} but their state machines differ`);
      }
    }
  }
  // (5) Linearizability of the client history.
  let lin: SimResult['linearizability'] = { verdict: 'skipped', steps: 0 };
  if (cluster.checker.ok) {
    const r = checkLinearizable(kvModel, cluster.history, { maxSteps: o.linearizabilityMaxSteps ?? DEFAULT_LINEARIZABILITY_MAX_STEPS });
    lin = { verdict: r.verdict, steps: r.steps, ...(r.reason !== undefined ? { reason: r.reason } : {}) };
    if (r.verdict === 'illegal') cluster.checker.report('linearizability', `client history is not linearizable:\n${r.failure?.explanation ?? '(no explanation)'}`);
  }
  const clients = [...cluster.clients.values()];
  const nodes = [...cluster.nodes.values()];
  const ns = cluster.network.stats;
  const st = cluster.stats;
  return {
    seed: o.seed,
    mix: o.mix,
    nodes: o.nodes,
    steps: o.steps,
    bugs: [...bugs],
    ok: cluster.checker.ok,
    violations: cluster.checker.violations,
    linearizability: lin,
    stats: {
      virtualMs: cluster.nowUs / 1000,
      events: st.events,
      ops: cluster.history.length,
      opsCompleted: clients.reduce((a, c) => a + c.opsCompleted, 0),
      opsIndeterminate: clients.reduce((a, c) => a + c.opsIndeterminate, 0),
      sessionsExpired: clients.reduce((a, c) => a + c.sessionsExpired, 0),
      committed: cluster.checker.highestCommitted,
      maxTerm: st.maxTerm,
      crashes: st.crashes,
      restarts: st.restarts,
      partitions: st.partitions,
      confChangesProposed: st.confChangesProposed,
      confChangesApplied: st.confChangesApplied,
      transfers: st.transfers,
      snapshotsSent: st.snapshotsSent,
      messagesSent: ns.sent,
      messagesDropped: ns.dropped + ns.blocked + ns.overflow,
      messagesDuplicated: ns.duplicated,
      // Write batching (node.ts): entries proposed, the commands in them, the largest batch.
      batches: nodes.reduce((a, n) => a + n.batchesProposed, 0),
      batchedCommands: nodes.reduce((a, n) => a + n.commandsProposed, 0),
      maxBatchCommands: nodes.reduce((a, n) => Math.max(a, n.maxBatchCommands), 0),
      maxWritesInFlight: nodes.reduce((a, n) => Math.max(a, n.maxWritesInFlightSeen), 0),
    },
    settings: { ...settings, clients: clientCount, attemptTimeoutMs: attemptTimeoutUs / 1000, opDeadlineMs: opDeadlineUs / 1000 },
    replay: replayCommand(o),
    trace: cluster.traceLines,
  };
}
