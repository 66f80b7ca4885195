// A NodeApi over an in-memory state machine, for endpoint tests: write() applies the command at
// once (as a one-node cluster would after commit), read() runs the domain's read on applied state.
// Same StateMachine, same domains, same command codec as a real node; no Raft, no disk.
import type { ApplyResult, NodeApi, NodeStatus, ReadRequest, WriteRequest } from '../../src/node/api.ts';
import { NodeError } from '../../src/node/api.ts';
import { StateMachine } from '../../src/state/machine.ts';
import type { Domain } from '../../src/state/machine.ts';
import { SESSION_LIMITS } from '../../src/state/sessions.ts';
import { encodeCommand } from '../../src/state/command.ts';
import type { StateChangeSet } from '../../src/state/overlay.ts';
import { prepareEntries } from '../../src/node/applier.ts';

export class MemoryNode implements NodeApi {
  readonly now: () => number;
  /** keyspace → key → value: the applied state. */
  readonly state = new Map<string, Map<string, Uint8Array>>();
  readonly sm: StateMachine;
  private index = 1;
  /** Commands applied, in order (domain, op). */
  readonly log: { domain: string; op: string }[] = [];
  /** Called after each applied write with its changes (tests push cache tables from here). */
  onApplied: ((changes: StateChangeSet) => void) | null = null;
  /** Make the next N writes fail with this NodeError code before reaching apply. */
  failNext: { code: 'UNAVAILABLE' | 'TIMEOUT'; count: number } | null = null;

  constructor(
    domains: readonly Domain[],
    now: () => number = Date.now,
  ) {
    this.now = now;
    this.sm = new StateMachine({ get: (ks, k) => this.state.get(ks)?.get(k) }, SESSION_LIMITS);
    for (const d of domains) this.sm.register(d);
  }

  async write(req: WriteRequest): Promise<ApplyResult> {
    if (this.failNext && this.failNext.count > 0) {
      this.failNext.count--;
      throw new NodeError(this.failNext.code, `injected ${this.failNext.code}`);
    }
    const data = encodeCommand({ v: 1, sid: null, seq: 0, ack: 0, ts: this.now(), domain: req.domain, op: req.op, args: req.args });
    const index = ++this.index;
    const batch = this.sm.applyEntries(prepareEntries([{ term: 1, index, type: 'normal', data }]));
    for (const [ks, k, v] of batch.changes.puts) {
      let m = this.state.get(ks);
      if (!m) this.state.set(ks, (m = new Map()));
      m.set(k, v);
    }
    for (const [ks, k] of batch.changes.dels) this.state.get(ks)?.delete(k);
    this.log.push({ domain: req.domain, op: req.op });
    this.onApplied?.(batch.changes);
    return batch.results.get(index)![0]!;
  }

  async read(req: ReadRequest): Promise<ApplyResult> {
    return this.sm.read(req.domain, req.op, req.args);
  }

  async status(): Promise<NodeStatus> {
    return { id: 1, role: 'leader', leader: 1, term: 1, commit: this.index, applied: this.index, lastIndex: this.index, voters: [1], learners: [], members: null };
  }

  /** Every (key, value) of a keyspace, sorted by key (what a storage iteration would give). */
  entries(keyspace: string): [string, Uint8Array][] {
    return [...(this.state.get(keyspace) ?? new Map<string, Uint8Array>())].sort(([a], [b]) => (a < b ? -1 : a > b ? 1 : 0));
  }
}
