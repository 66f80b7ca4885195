// The interface between a replicated node (primary process: raft, storage, apply) and whatever
// serves clients (the HTTP layer, in the primary or in node:cluster workers over IPC).
// Everything here is plain data so it crosses the IPC boundary unchanged (msgpackr).

/**
 * The outcome of a write or a read: a value, or a refusal with its code (the state machine's
 * DomainError, or MALFORMED_COMMAND / UNKNOWN_DOMAIN for what it cannot apply). Defined here, by
 * the node that carries it; the state machine produces it (src/node/applier.ts).
 */
export type ApplyResult = { readonly ok: true; readonly value: unknown } | { readonly ok: false; readonly code: string; readonly message: string };

/** Errors a client of the node can see, beyond a domain's own (ApplyResult with ok: false). */
export type NodeErrorCode =
  /** No leader could be reached before the deadline (election in progress, minority side). */
  | 'UNAVAILABLE'
  /** The deadline passed; a write may or may not have been applied (retrying is safe: exactly-once). */
  | 'TIMEOUT'
  /** The request is malformed or too large. */
  | 'INVALID_REQUEST'
  /** The node is shutting down. */
  | 'STOPPING';

export class NodeError extends Error {
  readonly code: NodeErrorCode;

  constructor(
    code: NodeErrorCode,
    message: string,
  ) {
    super(message);
    this.code = code;
    this.name = 'NodeError';
  }
}

export interface WriteRequest {
  readonly domain: string;
  readonly op: string;
  readonly args: unknown;
  /** Relative deadline: the caller waits at most this long (leader changes are retried inside it). */
  readonly timeoutMs: number;
}

/**
 * A write whose payload — `[domain, op, args]`, msgpack (codec/msgpack.ts packValue) — its caller
 * encoded where the request was parsed (an HTTP worker), so the node passes those bytes to apply
 * as they are (DESIGN "Encode once"). Malformed payload bytes fail at apply, alike on every node.
 */
export interface EncodedWriteRequest {
  readonly payload: Uint8Array;
  readonly timeoutMs: number;
}

/** A linearizable read (ReadIndex, §6.4) of named state: the read runs on this node once it is safe. */
export interface ReadRequest {
  readonly domain: string;
  readonly op: string;
  readonly args: unknown;
  readonly timeoutMs: number;
  /** 'linearizable' (default) or 'local' (may be stale: served from this node's applied state). */
  readonly consistency?: 'linearizable' | 'local';
}

export interface MemberStatus {
  readonly id: number;
  readonly role: 'leader' | 'follower' | 'learner' | 'candidate' | 'preCandidate' | 'unknown';
  readonly voter: boolean;
  readonly match: number | null;
}

export interface NodeStatus {
  readonly id: number;
  readonly role: string;
  readonly leader: number;
  readonly term: number;
  readonly commit: number;
  readonly applied: number;
  readonly lastIndex: number;
  readonly voters: readonly number[];
  readonly learners: readonly number[];
  /** Only on the leader: each member's replication progress. */
  readonly members: readonly MemberStatus[] | null;
  /** The raftauth version of the node that answered (src/version.ts), added by the API that serves the status; absent from older nodes. */
  readonly version?: string;
}

/** What /readyz asks (src/ops/health.ts). */
export interface HealthRequest {
  /** Also perform a real linearizable round trip (a ReadIndex barrier, §6.4) within timeoutMs. */
  readonly deep: boolean;
  readonly timeoutMs: number;
}

/**
 * The facts readiness is decided on (the decision and its bounds are the serving side's:
 * src/ops/health.ts). Times are measured by the raft driver with the wall clock, never by the
 * pure core.
 */
export interface NodeHealth {
  readonly id: number;
  readonly role: string;
  /** The leader this node knows, or 0. */
  readonly leader: number;
  readonly term: number;
  readonly commit: number;
  readonly applied: number;
  /**
   * How long ago this node last had evidence of a working leader: on a follower, the time since
   * the last message from the leader it knows; on the leader, the time since a majority of voters
   * (itself included) was last heard from (the quorum contact that check-quorum, §6.2, relies on).
   * null when there is none (no leader known, or never heard from it).
   */
  readonly leaderContactAgeMs: number | null;
  /** This node's election timeout (electionTick × tickMs): the scale a "recent" contact is judged on. */
  readonly electionTimeoutMs: number;
  readonly stopping: boolean;
  /** The deep check's outcome, when asked for. */
  readonly deep: { readonly ok: boolean; readonly ms: number; readonly error: string | null } | null;
}

/** What the serving side may ask of a node. Implemented by the node in the primary, and by an IPC proxy in workers. */
export interface NodeApi {
  write(req: WriteRequest): Promise<ApplyResult>;
  /** The same write with its payload already encoded. Optional: a serving-side stand-in may lack it. */
  writeEncoded?(req: EncodedWriteRequest): Promise<ApplyResult>;
  read(req: ReadRequest): Promise<ApplyResult>;
  status(): Promise<NodeStatus>;
  /**
   * Readiness facts. Optional so a serving-side stand-in (tests, a node without raft) may lack it;
   * /readyz then answers 503 "node reports no health".
   */
  health?(req: HealthRequest): Promise<NodeHealth>;
  /** The node's own metrics (prom-client JSON, see src/node/metrics.ts); optional like health. */
  metricsJson?(): Promise<unknown[]>;
}

/** Bounds of a scan of applied state: keys within the keyspace, `gte` inclusive, `lt` exclusive. */
export interface StateScanOptions {
  readonly gte?: string;
  readonly lt?: string;
  /** Required (the store caps it, storage config maxIterateLimit): page with gte = last key + "\0". */
  readonly limit: number;
}

export interface ScannedRecord {
  readonly key: Uint8Array;
  readonly value: Uint8Array;
}

/**
 * Pages through this node's applied state in key order (RaftNode.scanState). Local: a caller that
 * needs a linearizable page first passes a ReadIndex barrier. The state layer reads through it with
 * typed helpers (src/state/listing.ts), so nothing above the node reads the store directly.
 */
export interface StateScanner {
  scanState(keyspace: string, opts: StateScanOptions): Promise<ScannedRecord[]>;
}
