// What the primary pushes to its HTTP workers (one of startServer's collaborators, process.ts).
//
// Workers answer from a read cache (read-cache.ts) that only the primary writes: the `status`
// table (role, leader, term, membership: what /readyz and a worker's routing read) and the tables
// the OAuth duties publish (signing keys, data keys, clients; oauth-duties.ts). This publisher
//  - keeps the status table current: on every change of leader, term, role or membership, seen
//    through the node's optional onStatusChange or, without it, by polling status() every pollMs;
//    an unchanged status is not published again;
//  - pushes every table, its current version first, to each worker once that worker reports ready
//    (IPC `ready`), and then every update, until the worker exits.
import type { NodeStatus } from '../node/api.ts';
import { STATUS_KEY, STATUS_TABLE } from './read-cache.ts';
import { encodeIpc } from './ipc.ts';
import type { Logger } from './log.ts';
import type { CachePublisher } from './read-cache.ts';

/** What the publisher needs of the node. */
export interface StatusSource {
  status(): Promise<NodeStatus>;
  /** Optional: call `listener` on every change of role, leader, term or membership; returns the unsubscribe function. */
  onStatusChange?(listener: (s: NodeStatus) => void): () => void;
}

export interface StatusPublisherOptions {
  readonly node: StatusSource;
  readonly cache: CachePublisher;
  /** Status poll interval when the node has no onStatusChange. */
  readonly pollMs: number;
  readonly log: Logger;
}

export class StatusPublisher {
  private readonly o: StatusPublisherOptions;
  private lastStatusKey = '';
  private polling = false;
  private unsubscribeStatus: (() => void) | null = null;
  private pollTimer: NodeJS.Timeout | null = null;
  /** Each ready worker's subscription to the cache, by worker id. */
  private readonly workers = new Map<number, () => void>();

  constructor(o: StatusPublisherOptions) {
    this.o = o;
  }

  /** Publishes the node's status now, then on every change (subscribed or polled). */
  async start(): Promise<void> {
    this.unsubscribeStatus = this.o.node.onStatusChange?.((s) => this.push(s)) ?? null;
    await this.poll();
    this.pollTimer = this.unsubscribeStatus ? null : setInterval(() => void this.poll(), this.o.pollMs);
  }

  /** Stops following the node's status. Workers already attached keep receiving what is published. */
  stop(): void {
    if (this.pollTimer) clearInterval(this.pollTimer);
    this.pollTimer = null;
    this.unsubscribeStatus?.();
    this.unsubscribeStatus = null;
  }

  /**
   * A worker reported ready: from now on it receives every table (the latest version of each at
   * once) through `send`. A second `ready` from the same worker replaces its subscription.
   */
  attachWorker(workerId: number, send: (bytes: Uint8Array) => void): void {
    this.detachWorker(workerId);
    this.workers.set(
      workerId,
      this.o.cache.subscribe((u) => {
        try {
          send(encodeIpc({ t: 'cache.update', ...u }));
        } catch (e) {
          this.o.log.error({ err: e, worker: workerId, table: u.table }, 'cannot push a cache update');
        }
      }),
    );
  }

  /** The worker is gone: nothing more is pushed to it. */
  detachWorker(workerId: number): void {
    this.workers.get(workerId)?.();
    this.workers.delete(workerId);
  }

  private push(s: NodeStatus): void {
    const key = JSON.stringify([s.role, s.leader, s.term, s.voters, s.learners]);
    if (key === this.lastStatusKey) return;
    this.lastStatusKey = key;
    try {
      this.o.cache.publish(STATUS_TABLE, [[STATUS_KEY, s]]);
    } catch (e) {
      this.o.log.error({ err: e }, 'cannot publish the status table');
    }
  }

  private async poll(): Promise<void> {
    if (this.polling) return;
    this.polling = true;
    try {
      this.push(await this.o.node.status());
    } catch (e) {
      this.o.log.debug({ err: e }, 'status poll failed');
    } finally {
      this.polling = false;
    }
  }
}
