// Fault mixes: named recipes of network, disk, crash, partition and membership faults. A run
// draws its schedule from its mix with the seeded PRNG; each mix is aimed at a class of bugs.
import { CALM_NETWORK, type NetworkProfile, type PartitionKind } from './network.ts';
import type { DiskProfile } from './node.ts';
import { DEFAULT_SESSION_LIMITS, type SessionLimits } from './kv-state-machine.ts';

export type Range = readonly [number, number];

export interface FaultMix {
  readonly name: string;
  readonly description: string;
  readonly network: NetworkProfile;
  readonly disk: DiskProfile;
  /** Partitions come and go: each lasts `durationUs`, the next starts after `gapUs`. */
  readonly partitions: { readonly kinds: readonly PartitionKind[]; readonly gapUs: Range; readonly durationUs: Range } | null;
  /** Crash a node after `gapUs`, keep it down for `downUs`. `maxDown` nodes at once at most. */
  readonly crashes: { readonly gapUs: Range; readonly downUs: Range; readonly maxDown: 'minority' | 'majority'; readonly leaderP: number } | null;
  /** Propose a membership change every `gapUs` (learner add, promotion, removal, joint replace). */
  /**
   * Probability of crashing a node right after it made a vote durable and sent it, restarting it
   * after `downUs`: the moment at which a node that forgot its vote would vote twice in one term.
   */
  readonly crashAfterVote: { readonly p: number; readonly downUs: Range } | null;
  readonly membership: { readonly gapUs: Range } | null;
  readonly transfers: { readonly gapUs: Range } | null;
  /** Snapshot every N applied entries, keep M behind: small values force snapshot catch-up. */
  readonly snapshotEveryEntries: Range;
  readonly keepEntries: Range;
  /** Per-node tick rate deviation, as a fraction (0.02 = ±2%). */
  readonly clockSkew: number;
  /** Raft options drawn per run: probability of preVote / checkQuorum being on. */
  readonly preVoteP: number;
  readonly checkQuorumP: number;
  /** Max bytes per MsgApp (small values split batches, exposing commit-rule bugs). */
  readonly maxSizePerMsg: Range;
  /**
   * Tight core limits, drawn per run when set: small committed batches per Ready (apply split over
   * many Readys) and a small uncommitted-bytes budget (proposals refused under load).
   */
  readonly coreLimits?: { readonly maxCommittedSizePerReady: Range; readonly maxUncommittedEntriesSize: Range };
  /** Session table bounds of the state machine (small ones make sessions expire mid-run). */
  readonly sessionLimits: SessionLimits;
  readonly clients: { readonly count: Range; readonly attemptTimeoutUs: Range; readonly opDeadlineUs: Range; readonly keys: number };
}

/** The disk every mix heals to: a fast SSD fsync. */
export const FAST_DISK: DiskProfile = { latencyMinUs: 200, latencyMaxUs: 1_500, slowP: 0, slowMaxUs: 0 };
const SLOW_DISK: DiskProfile = { latencyMinUs: 1_000, latencyMaxUs: 15_000, slowP: 0.1, slowMaxUs: 120_000 };
const LOSSY: NetworkProfile = { dropP: 0.08, duplicateP: 0.05, delayMinUs: 500, delayMaxUs: 8_000, reorderP: 0.1, reorderMaxUs: 40_000 };
const CLIENTS = { count: [3, 5] as Range, attemptTimeoutUs: [150_000, 400_000] as Range, opDeadlineUs: [1_500_000, 3_000_000] as Range, keys: 3 };
const ALL_PARTITIONS: readonly PartitionKind[] = ['halves', 'isolateLeader', 'bridge', 'ring', 'oneWay'];

const base = {
  network: CALM_NETWORK,
  disk: FAST_DISK,
  partitions: null,
  crashes: null,
  crashAfterVote: null,
  membership: null,
  transfers: null,
  snapshotEveryEntries: [50, 200] as Range,
  keepEntries: [5, 50] as Range,
  clockSkew: 0.02,
  preVoteP: 0.7,
  checkQuorumP: 0.7,
  maxSizePerMsg: [256, 64 * 1024] as Range,
  clients: CLIENTS,
  sessionLimits: DEFAULT_SESSION_LIMITS,
} satisfies Partial<FaultMix>;

export const MIXES: Readonly<Record<string, FaultMix>> = {
  calm: { ...base, name: 'calm', description: 'no faults: the baseline every other mix is measured against' },
  lossy: {
    ...base,
    name: 'lossy',
    description: 'drop, duplicate, delay and reorder messages; a small session table, so sessions expire',
    network: LOSSY,
    sessionLimits: { maxSessions: 64, ttlEntries: 15 },
    coreLimits: { maxCommittedSizePerReady: [1, 300], maxUncommittedEntriesSize: [50, 250] },
  },
  partitions: {
    ...base,
    name: 'partitions',
    description: 'halves, isolated leader, bridge, ring and one-way partitions that come and go',
    network: { ...CALM_NETWORK, delayMaxUs: 5_000 },
    partitions: { kinds: ALL_PARTITIONS, gapUs: [50_000, 400_000], durationUs: [100_000, 800_000] },
  },
  crashes: {
    ...base,
    name: 'crashes',
    description: 'crash and restart (losing un-fsynced writes) on slow, stalling disks',
    disk: SLOW_DISK,
    crashes: { gapUs: [100_000, 500_000], downUs: [20_000, 400_000], maxDown: 'majority', leaderP: 0.4 },
  },
  snapshots: {
    ...base,
    name: 'snapshots',
    description: 'aggressive compaction with crashes and partitions, so lagging nodes catch up by snapshot',
    snapshotEveryEntries: [3, 12],
    keepEntries: [0, 3],
    network: { ...LOSSY, dropP: 0.03 },
    partitions: { kinds: ['isolateLeader', 'halves', 'oneWay'], gapUs: [100_000, 400_000], durationUs: [200_000, 800_000] },
    crashes: { gapUs: [100_000, 400_000], downUs: [100_000, 600_000], maxDown: 'minority', leaderP: 0.3 },
  },
  membership: {
    ...base,
    name: 'membership',
    description: 'learners added and promoted, followers and leaders removed, joint changes, leadership transfers, amid faults',
    network: { ...LOSSY, dropP: 0.03 },
    membership: { gapUs: [80_000, 250_000] },
    transfers: { gapUs: [150_000, 500_000] },
    partitions: { kinds: ALL_PARTITIONS, gapUs: [200_000, 600_000], durationUs: [100_000, 500_000] },
    crashes: { gapUs: [200_000, 600_000], downUs: [50_000, 400_000], maxDown: 'minority', leaderP: 0.3 },
    snapshotEveryEntries: [10, 40],
    keepEntries: [0, 10],
  },
  chaos: {
    ...base,
    name: 'chaos',
    description: 'everything at once',
    network: LOSSY,
    disk: SLOW_DISK,
    partitions: { kinds: ALL_PARTITIONS, gapUs: [50_000, 400_000], durationUs: [100_000, 600_000] },
    crashes: { gapUs: [150_000, 500_000], downUs: [20_000, 400_000], maxDown: 'majority', leaderP: 0.3 },
    membership: { gapUs: [150_000, 500_000] },
    transfers: { gapUs: [200_000, 600_000] },
    snapshotEveryEntries: [5, 50],
    keepEntries: [0, 10],
    clockSkew: 0.05,
    coreLimits: { maxCommittedSizePerReady: [1, 2_000], maxUncommittedEntriesSize: [200, 4_000] },
  },
  // Quick crash-restart cycles in the middle of elections: a node that forgets its vote across a
  // restart can grant a second vote in the same term.
  restarts: {
    ...base,
    name: 'restarts',
    description: 'fast crash/restart cycles, including right after a vote, during frequent elections',
    network: { ...LOSSY, dropP: 0.05 },
    partitions: { kinds: ['isolateLeader', 'halves', 'oneWay'], gapUs: [50_000, 250_000], durationUs: [50_000, 250_000] },
    crashes: { gapUs: [100_000, 400_000], downUs: [1_000, 20_000], maxDown: 'minority', leaderP: 0.2 },
    crashAfterVote: { p: 0.5, downUs: [500, 5_000] },
    preVoteP: 0.2,
    checkQuorumP: 0.5,
  },
  // Aimed at the figure-8 commit rule: leaders crash right after replicating old-term entries,
  // one entry per MsgApp, so a prior-term entry can be counted onto a majority alone.
  figure8: {
    ...base,
    name: 'figure8',
    description: 'leader crashes with one entry per MsgApp and slow disks (figure 8 of the Raft paper)',
    disk: { latencyMinUs: 500, latencyMaxUs: 8_000, slowP: 0.05, slowMaxUs: 60_000 },
    network: { ...LOSSY, dropP: 0.1, duplicateP: 0 },
    partitions: { kinds: ['isolateLeader', 'halves', 'oneWay'], gapUs: [30_000, 200_000], durationUs: [50_000, 300_000] },
    crashes: { gapUs: [60_000, 250_000], downUs: [20_000, 200_000], maxDown: 'majority', leaderP: 0.6 },
    maxSizePerMsg: [1, 1],
    preVoteP: 0.3,
    checkQuorumP: 0.3,
  },
  // Aimed at write batching (node.ts): many clients on slow, stalling disks, so a leader gathers
  // several commands per entry, and its batches are in flight when it crashes, is cut off or hands
  // leadership over.
  batches: {
    ...base,
    name: 'batches',
    description: 'many clients on slow disks (several commands per entry) with leader crashes, partitions and transfers',
    disk: SLOW_DISK,
    clients: { ...CLIENTS, count: [10, 16] },
    partitions: { kinds: ['isolateLeader', 'halves', 'oneWay'], gapUs: [100_000, 400_000], durationUs: [100_000, 500_000] },
    crashes: { gapUs: [150_000, 500_000], downUs: [20_000, 300_000], maxDown: 'minority', leaderP: 0.6 },
    transfers: { gapUs: [200_000, 600_000] },
  },
};

export const MIX_NAMES: readonly string[] = Object.keys(MIXES);

export function mixByName(name: string): FaultMix {
  const m = MIXES[name];
  if (m === undefined) throw new Error(`unknown fault mix '${name}' (known: ${MIX_NAMES.join(', ')})`);
  return m;
}
