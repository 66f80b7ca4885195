// ReadIndex bookkeeping on the leader (Raft dissertation §6.4, etcd's readOnly).
//
// A read request records the commit index at the time it arrived; the leader then broadcasts a
// heartbeat carrying the request's context. Once a majority acknowledges that heartbeat, the
// leader knows it was still the leader when the request arrived, so the recorded index is a
// safe read point, and so is the index of every request queued before it.
import type { NodeId } from './types.ts';

export interface ReadIndexRequest {
  readonly context: string;
  readonly index: number;
  /** The node whose client asked (the leader itself or a follower that forwarded it). */
  readonly from: NodeId;
}

/** Limit on pending read requests; more are refused rather than queued without bound. */
export const MAX_PENDING_READS = 4096;

export class ReadOnly {
  private readonly pending = new Map<string, { req: ReadIndexRequest; acks: Set<NodeId> }>();
  private readonly queue: string[] = [];

  add(req: ReadIndexRequest): boolean {
    if (this.pending.has(req.context)) return true; // duplicate context: already in flight
    if (this.queue.length >= MAX_PENDING_READS) return false;
    this.pending.set(req.context, { req, acks: new Set() });
    this.queue.push(req.context);
    return true;
  }

  /** Record an acknowledgement; returns the set of acknowledgers, or null for an unknown context. */
  recvAck(from: NodeId, context: string): ReadonlySet<NodeId> | null {
    const p = this.pending.get(context);
    if (!p) return null;
    p.acks.add(from);
    return p.acks;
  }

  /** Release `context` and every request queued before it. */
  advance(context: string): ReadIndexRequest[] {
    const i = this.queue.indexOf(context);
    if (i < 0) return [];
    const released = this.queue.splice(0, i + 1);
    return released.map((c) => {
      const p = this.pending.get(c)!;
      this.pending.delete(c);
      return p.req;
    });
  }

  lastPendingContext(): string | null {
    return this.queue.length > 0 ? this.queue[this.queue.length - 1]! : null;
  }

  size(): number {
    return this.queue.length;
  }

  reset(): void {
    this.pending.clear();
    this.queue.length = 0;
  }
}
