// A tiny synchronous cluster for unit tests of the core: every node persists its Ready at once
// (MemoryStorage), delivers messages through a filterable in-memory network, and applies
// committed entries to a log of applied data. Deterministic: a seeded RNG, no clock.
import { RawNode } from '../../../src/raft/raw-node.ts';
import { MemoryStorage } from '../../../src/raft/memory-storage.ts';
import { decodeConfChange } from '../../../src/raft/confchange.ts';
import type { Config, ConfState, Entry, Message, NodeId, ReadState } from '../../../src/raft/types.ts';

export function seededRng(seed: number): (bound: number) => number {
  let s = seed >>> 0 || 1;
  return (bound: number) => {
    // xorshift32: enough for election jitter in unit tests.
    s ^= s << 13;
    s >>>= 0;
    s ^= s >>> 17;
    s ^= s << 5;
    s >>>= 0;
    return s % bound;
  };
}

export function confOf(voters: NodeId[], learners: NodeId[] = []): ConfState {
  return { voters, learners, votersOutgoing: [], learnersNext: [], autoLeave: false };
}

export interface TestNode {
  id: NodeId;
  node: RawNode;
  storage: MemoryStorage;
  applied: Entry[];
  readStates: ReadState[];
  conf: ConfState;
}

/** Return false to drop a message, true to deliver it, or a (rewritten) message to deliver instead. */
export type Filter = (m: Message) => boolean | Message;

export class TestCluster {
  private readonly opts: Partial<Config>;
  readonly nodes = new Map<NodeId, TestNode>();
  /** Messages in flight, delivered by deliver(). */
  inflight: Message[] = [];
  /** Return false to drop a message. */
  filter: Filter = () => true;
  readonly sent: Message[] = [];

  constructor(
    ids: NodeId[],
    opts: Partial<Config> = {},
    seed = 1,
  ) {
    this.opts = opts;
    const conf = confOf(ids);
    for (const id of ids) this.add(id, new MemoryStorage(conf), seed);
  }

  add(id: NodeId, storage: MemoryStorage, seed = 1): TestNode {
    const node = new RawNode({ id, electionTick: 10, heartbeatTick: 1, storage, rng: seededRng(seed * 7919 + id), ...this.opts });
    const tn: TestNode = { id, node, storage, applied: [], readStates: [], conf: storage.initialState().confState };
    this.nodes.set(id, tn);
    return tn;
  }

  get(id: NodeId): TestNode {
    const n = this.nodes.get(id);
    if (!n) throw new Error(`no node ${id}`);
    return n;
  }

  /** Persist, queue messages and apply for every node with a Ready, until none has one. */
  processReadies(): void {
    for (;;) {
      let any = false;
      for (const tn of this.nodes.values()) {
        if (!tn.node.hasReady()) continue;
        any = true;
        const rd = tn.node.ready();
        if (rd.snapshot) {
          tn.storage.applySnapshot(rd.snapshot);
          tn.conf = rd.snapshot.metadata.confState;
        }
        tn.storage.append(rd.entries);
        if (rd.hardState) tn.storage.setHardState(rd.hardState);
        for (const m of rd.messages) {
          this.sent.push(m);
          this.inflight.push(m);
        }
        for (const e of rd.committedEntries) {
          if (e.type === 'confChange') tn.conf = tn.node.applyConfChange(decodeConfChange(e.data));
          tn.applied.push(e);
        }
        tn.readStates.push(...rd.readStates);
        tn.node.advance();
      }
      if (!any) return;
    }
  }

  /** Deliver messages until the network is quiet (bounded). */
  stabilize(maxRounds = 1000): void {
    for (let round = 0; round < maxRounds; round++) {
      this.processReadies();
      if (this.inflight.length === 0) return;
      const batch = this.inflight;
      this.inflight = [];
      for (const m of batch) {
        const f = this.filter(m);
        if (f === false) continue;
        const msg = f === true ? m : f;
        const to = this.nodes.get(msg.to);
        if (to) to.node.step(msg);
      }
    }
    throw new Error('stabilize: network did not go quiet');
  }

  tick(id: NodeId, n = 1): void {
    for (let i = 0; i < n; i++) this.get(id).node.tick();
  }

  tickAll(n = 1): void {
    for (let i = 0; i < n; i++) for (const tn of this.nodes.values()) tn.node.tick();
  }

  leader(): TestNode | undefined {
    const leaders = [...this.nodes.values()].filter((t) => t.node.status().softState.role === 'leader');
    if (leaders.length > 1) {
      const terms = leaders.map((l) => l.node.status().hardState.term);
      if (new Set(terms).size !== terms.length) throw new Error('two leaders in one term');
      return leaders.sort((a, b) => b.node.status().hardState.term - a.node.status().hardState.term)[0];
    }
    return leaders[0];
  }

  /** Campaign on `id` and stabilize: it should become leader. */
  elect(id: NodeId): TestNode {
    this.get(id).node.campaign();
    this.stabilize();
    return this.get(id);
  }

  /** Propose `text` on the leader `id` and return the entry's index. */
  propose(id: NodeId, text: string): number {
    const { index } = this.get(id).node.propose(new TextEncoder().encode(text));
    return index;
  }

  /** Texts of applied normal, non-empty entries of a node. */
  appliedTexts(id: NodeId): string[] {
    return this.get(id)
      .applied.filter((e) => e.type === 'normal' && e.data.length > 0)
      .map((e) => new TextDecoder().decode(e.data));
  }
}
