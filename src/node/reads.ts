// The read service: linearizable reads with ReadIndex (Raft dissertation §6.4).
//
// Reads are batched: every read that arrives while a ReadIndex round is in flight waits for the
// next round, so one heartbeat round confirms leadership for many reads (etcd's
// linearizableReadLoop). A round resolves once this node's applied index reaches the read index;
// then the reads run against local state. On a follower the core forwards the round to the leader.
import type { NodeId } from '../raft/types.ts';
import { NONE } from '../raft/types.ts';
import type { ReadOutcome } from './driver.ts';
import { NodeError } from './api.ts';
import { withTimeout } from './router.ts';

/** Most reads waiting for a round at once; more are refused. */
export const MAX_PENDING_READS = 50_000;
const ATTEMPT_TIMEOUT_MS = 1_000;

export interface ReadDeps {
  readonly id: NodeId;
  readIndex(context: string): Promise<ReadOutcome>;
  leader(): NodeId;
  leaderChange(ms: number): Promise<void>;
  now(): number;
}

interface Waiter {
  readonly deadline: number;
  readonly resolve: () => void;
  readonly reject: (e: Error) => void;
}

export class ReadService {
  private readonly deps: ReadDeps;
  private waiting: Waiter[] = [];
  private roundInFlight = false;
  private counter = 0;

  constructor(deps: ReadDeps) {
    this.deps = deps;
  }

  /** Resolves when local state reflects every write acknowledged before the call. */
  barrier(timeoutMs: number): Promise<void> {
    if (this.waiting.length >= MAX_PENDING_READS) return Promise.reject(new NodeError('UNAVAILABLE', `more than ${MAX_PENDING_READS} reads waiting`));
    return new Promise<void>((resolve, reject) => {
      this.waiting.push({ deadline: this.deps.now() + timeoutMs, resolve, reject });
      void this.kick();
    });
  }

  private async kick(): Promise<void> {
    if (this.roundInFlight || this.waiting.length === 0) return;
    this.roundInFlight = true;
    let batch = this.waiting;
    this.waiting = [];
    let attempt = 0;
    try {
      while (batch.length > 0) {
        const now = this.deps.now();
        const expired = batch.filter((w) => w.deadline <= now);
        for (const w of expired) w.reject(new NodeError('TIMEOUT', 'no read index before the deadline'));
        batch = batch.filter((w) => w.deadline > now);
        if (batch.length === 0) break;
        const latest = Math.max(...batch.map((w) => w.deadline));
        if (this.deps.leader() !== NONE) {
          const ctx = `${this.deps.id}:${++this.counter}`;
          const o = await withTimeout(this.deps.readIndex(ctx), Math.min(ATTEMPT_TIMEOUT_MS, latest - now));
          if (o && o.kind === 'ready') {
            for (const w of batch) w.resolve();
            batch = [];
            break;
          }
          if (o && o.kind === 'dropped' && (o.code === 'STOPPING' || o.code === 'FATAL')) {
            for (const w of batch) w.reject(new NodeError('STOPPING', o.reason));
            batch = [];
            break;
          }
        }
        attempt++;
        await this.deps.leaderChange(Math.min(5 * 2 ** Math.min(attempt, 5), Math.max(0, latest - this.deps.now())));
      }
    } finally {
      this.roundInFlight = false;
    }
    void this.kick();
  }
}
