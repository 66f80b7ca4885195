// Group commit of audit events that have no replicated write of their own (a client_credentials
// token, a failed login): the HTTP worker awaits its event's commit before it answers, so an
// acknowledged action always has its record, yet thousands of such requests per second cost a few
// `audit.append` commands, not one each.
//
// The rule (the same as the storage writer's group commit): when no batch is in flight, an event
// is proposed at once, alone; while one is in flight, events accumulate and go together, up to
// MAX_APPEND_EVENTS per command, as soon as it returns. Latency at low load is one round trip; at
// high load the batch grows with the load. The queue is bounded: past maxQueued waiting events,
// append() refuses at once (the caller answers 503) instead of letting latency grow without bound.
import { DomainError } from '../state/machine.ts';
import type { AuditEvent } from '../state/audit-ops.ts';
import { MAX_APPEND_EVENTS, audit, validateAuditEvent } from '../state/audit.ts';
import { ContractError, must } from '../state/contract.ts';
import type { StateClient } from '../state/contract.ts';

/** Events waiting (not yet proposed) before append() refuses; a few batches' worth. */
export const DEFAULT_MAX_QUEUED = 4_096;

/** append() refused: the queue is full (the cluster is slower than the audited load). */
export class AuditQueueFull extends Error {
  readonly limit: number;

  constructor(limit: number) {
    super(`the audit queue holds ${limit} events waiting for the cluster; retry`);
    this.limit = limit;
    this.name = 'AuditQueueFull';
  }
}

export interface AuditBatcherOptions {
  /** Events per command, 1..MAX_APPEND_EVENTS (default MAX_APPEND_EVENTS). */
  readonly maxBatch?: number;
  /** Waiting events before append() refuses (default DEFAULT_MAX_QUEUED). */
  readonly maxQueued?: number;
}

interface Waiter {
  readonly event: AuditEvent;
  readonly resolve: (seq: number) => void;
  readonly reject: (e: unknown) => void;
}

export class AuditBatcher {
  private readonly write: (events: readonly AuditEvent[]) => Promise<{ seqs: readonly number[] }>;
  private readonly queue: Waiter[] = [];
  private flushing = false;
  private readonly maxBatch: number;
  private readonly maxQueued: number;
  /** Commands proposed so far (tests and metrics read it). */
  batches = 0;

  constructor(
    write: (events: readonly AuditEvent[]) => Promise<{ seqs: readonly number[] }>,
    opts: AuditBatcherOptions = {},
  ) {
    this.write = write;
    this.maxBatch = opts.maxBatch ?? MAX_APPEND_EVENTS;
    this.maxQueued = opts.maxQueued ?? DEFAULT_MAX_QUEUED;
    if (!Number.isSafeInteger(this.maxBatch) || this.maxBatch < 1 || this.maxBatch > MAX_APPEND_EVENTS) throw new RangeError(`maxBatch must be 1..${MAX_APPEND_EVENTS}`);
    if (!Number.isSafeInteger(this.maxQueued) || this.maxQueued < 1) throw new RangeError('maxQueued must be a positive integer');
  }

  /** Events waiting for a command. */
  get queued(): number {
    return this.queue.length;
  }

  /**
   * Resolves with the record's seq once the command holding it is committed and applied; rejects
   * with AuditQueueFull at once when the queue is full, with the write's error if the command
   * failed, and with a DomainError if the event itself is malformed (checked here, so one bad
   * event never sinks the batch it would have joined).
   */
  append(event: AuditEvent): Promise<number> {
    let checked: AuditEvent;
    try {
      checked = validateAuditEvent(event);
    } catch (e) {
      return Promise.reject(e);
    }
    if (this.queue.length >= this.maxQueued) return Promise.reject(new AuditQueueFull(this.maxQueued));
    return new Promise<number>((resolve, reject) => {
      this.queue.push({ event: checked, resolve, reject });
      if (!this.flushing) void this.flush();
    });
  }

  private async flush(): Promise<void> {
    this.flushing = true;
    try {
      while (this.queue.length > 0) {
        const batch = this.queue.splice(0, this.maxBatch);
        this.batches++;
        try {
          const { seqs } = await this.write(batch.map((w) => w.event));
          if (!Array.isArray(seqs) || seqs.length !== batch.length) throw new Error(`audit.append answered ${String(seqs?.length)} seqs for ${batch.length} events`);
          batch.forEach((w, i) => w.resolve(seqs[i]!));
        } catch (e) {
          for (const w of batch) w.reject(e);
        }
      }
    } finally {
      this.flushing = false;
    }
  }
}

const batchers = new WeakMap<StateClient, AuditBatcher>();

/** The batcher of an HTTP app (one per state client, i.e. per OAuthContext: per worker), proposing `audit.append` through its stub. */
export function auditBatcher(client: StateClient): AuditBatcher {
  let b = batchers.get(client);
  if (!b) {
    b = new AuditBatcher(async (events) => must(await audit.append(client, { events }), 'audit.append'));
    batchers.set(client, b);
  }
  return b;
}

/**
 * Append an event with no write of its own and wait until it is committed. Fails with
 * AuditQueueFull (the HTTP layer answers temporarily_unavailable, 503 with Retry-After: RFC 6749
 * §5.2 has no code for it, §4.1.2.1 and the token endpoint's practice use this one), or with a
 * ContractError whose code says why (a node failure, or INVALID_ARGUMENT for a malformed event: a
 * bug of the caller, not of the client).
 */
export async function auditAppend(client: StateClient, event: AuditEvent): Promise<number> {
  try {
    return await auditBatcher(client).append(event);
  } catch (e) {
    if (e instanceof DomainError) throw new ContractError('error', e.code, 'audit.append', e.message);
    throw e;
  }
}
