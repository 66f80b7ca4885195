// The simulated peer network: per-message drop, duplication, delay with jitter (which reorders),
// and a directed link matrix for partitions (symmetric, one-way, non-transitive "bridge", ring).
// The network decides a message's fate; the cluster's event queue carries it.
import type { Message, NodeId } from '../../src/raft/types.ts';
import type { Rng } from './rng.ts';

export interface NetworkProfile {
  readonly dropP: number;
  readonly duplicateP: number;
  readonly delayMinUs: number;
  readonly delayMaxUs: number;
  /** Probability that a message takes a long detour (up to reorderMaxUs more), overtaking later ones. */
  readonly reorderP: number;
  readonly reorderMaxUs: number;
}

export const CALM_NETWORK: NetworkProfile = { dropP: 0, duplicateP: 0, delayMinUs: 1_000, delayMaxUs: 3_000, reorderP: 0, reorderMaxUs: 0 };

export type PartitionKind = 'halves' | 'isolateLeader' | 'bridge' | 'ring' | 'oneWay';

export interface NetworkStats {
  sent: number;
  dropped: number;
  duplicated: number;
  blocked: number;
  overflow: number;
}

/** A delivery the cluster must schedule. */
export interface Delivery {
  readonly atUs: number;
  readonly msg: Message;
}

export class Network {
  private readonly rng: Rng;
  /** Messages in flight at once; more are dropped (a full socket buffer). */
  private readonly maxInFlight: number;
  /** Blocked directed links, as "from>to". */
  private readonly blocked = new Set<string>();
  private inFlight = 0;
  readonly stats: NetworkStats = { sent: 0, dropped: 0, duplicated: 0, blocked: 0, overflow: 0 };
  profile: NetworkProfile;

  constructor(
    rng: Rng,
    profile: NetworkProfile,
    maxInFlight: number,
  ) {
    this.rng = rng;
    this.maxInFlight = maxInFlight;
    this.profile = profile;
  }

  /**
   * Decide the fate of a message sent at nowUs: zero, one or two deliveries. `unreachable` is set
   * when the link is cut: a real transport notices a broken connection (and the driver reports it
   * to the core), whereas a randomly lost packet goes unnoticed.
   */
  send(msg: Message, nowUs: number): { deliveries: Delivery[]; unreachable: boolean } {
    this.stats.sent++;
    if (this.isBlocked(msg.from, msg.to)) {
      this.stats.blocked++;
      return { deliveries: [], unreachable: true };
    }
    if (this.rng.chance(this.profile.dropP)) {
      this.stats.dropped++;
      return { deliveries: [], unreachable: false };
    }
    const copies = this.rng.chance(this.profile.duplicateP) ? 2 : 1;
    if (copies === 2) this.stats.duplicated++;
    const out: Delivery[] = [];
    for (let i = 0; i < copies; i++) {
      if (this.inFlight >= this.maxInFlight) {
        this.stats.overflow++;
        break;
      }
      this.inFlight++;
      out.push({ atUs: nowUs + this.delayUs(), msg });
    }
    return { deliveries: out, unreachable: false };
  }

  /**
   * Called when a scheduled delivery comes due. A link cut while the message was in flight loses
   * it, as a real partition would.
   */
  arrive(msg: Message): boolean {
    this.inFlight--;
    if (this.isBlocked(msg.from, msg.to)) {
      this.stats.blocked++;
      return false;
    }
    return true;
  }

  private delayUs(): number {
    const p = this.profile;
    let d = p.delayMinUs + this.rng.int(Math.max(1, p.delayMaxUs - p.delayMinUs + 1));
    if (p.reorderP > 0 && this.rng.chance(p.reorderP)) d += this.rng.int(Math.max(1, p.reorderMaxUs));
    return d;
  }

  isBlocked(from: NodeId, to: NodeId): boolean {
    return this.blocked.size > 0 && this.blocked.has(`${from}>${to}`);
  }

  get blockedLinks(): number {
    return this.blocked.size;
  }

  heal(): void {
    this.blocked.clear();
  }

  blockOneWay(from: NodeId, to: NodeId): void {
    if (from !== to) this.blocked.add(`${from}>${to}`);
  }

  block(a: NodeId, b: NodeId): void {
    this.blockOneWay(a, b);
    this.blockOneWay(b, a);
  }

  /** Only links inside each group stay up. Nodes in no group are cut from everyone. */
  partition(groups: readonly (readonly NodeId[])[], all: readonly NodeId[]): void {
    const groupOf = new Map<NodeId, number>();
    groups.forEach((g, i) => g.forEach((n) => groupOf.set(n, i)));
    for (const a of all) {
      for (const b of all) {
        if (a === b) continue;
        const ga = groupOf.get(a);
        if (ga === undefined || ga !== groupOf.get(b)) this.blockOneWay(a, b);
      }
    }
  }

  /**
   * Apply a named partition to `nodes` (the current members), returning a description for the trace.
   * `leader` is the current leader if known (0 otherwise).
   */
  applyPartition(kind: PartitionKind, nodes: readonly NodeId[], leader: NodeId): string {
    const rng = this.rng;
    const shuffled = rng.shuffle(nodes);
    switch (kind) {
      case 'halves': {
        const cut = Math.floor(shuffled.length / 2);
        const a = shuffled.slice(0, cut);
        const b = shuffled.slice(cut);
        this.partition([a, b], nodes);
        return `halves [${a}] | [${b}]`;
      }
      case 'isolateLeader': {
        const victim = leader !== 0 && nodes.includes(leader) ? leader : shuffled[0]!;
        for (const n of nodes) if (n !== victim) this.block(victim, n);
        return `isolate ${victim}`;
      }
      case 'bridge': {
        // Non-transitive: the bridge sees both sides, the sides do not see each other.
        const bridge = shuffled[0]!;
        const rest = shuffled.slice(1);
        const cut = Math.floor(rest.length / 2);
        const a = rest.slice(0, cut);
        const b = rest.slice(cut);
        for (const x of a) for (const y of b) this.block(x, y);
        return `bridge ${bridge}: [${a}] x [${b}]`;
      }
      case 'ring': {
        // Each node talks only to its two neighbours in a random ring order.
        const n = shuffled.length;
        for (let i = 0; i < n; i++) {
          for (let j = 0; j < n; j++) {
            const dist = Math.min((i - j + n) % n, (j - i + n) % n);
            if (i !== j && dist > 1) this.blockOneWay(shuffled[i]!, shuffled[j]!);
          }
        }
        return `ring [${shuffled}]`;
      }
      case 'oneWay': {
        // A node that can send but not hear (or hear but not send): the classic asymmetric fault.
        const victim = leader !== 0 && rng.chance(0.5) && nodes.includes(leader) ? leader : shuffled[0]!;
        const inbound = rng.chance(0.5);
        for (const n of nodes) {
          if (n === victim) continue;
          if (inbound) this.blockOneWay(n, victim);
          else this.blockOneWay(victim, n);
        }
        return `oneWay ${inbound ? 'into' : 'out of'} ${victim}`;
      }
    }
  }
}
