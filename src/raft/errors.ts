// Errors of the Raft core, in two kinds (STYLE.md):
//  - RaftError: an expected condition the caller handles (named by a code from a closed union).
//  - RaftInvariantError: a broken invariant. It is a bug; the node must stop rather than go on
//    with state it can no longer trust. The message names the transition that broke.

export type RaftErrorCode =
  /** The requested index is behind the latest snapshot (storage). */
  | 'COMPACTED'
  /** The requested index is beyond the last index (storage). */
  | 'UNAVAILABLE'
  /** The snapshot is being produced; try again later (storage). */
  | 'SNAPSHOT_TEMPORARILY_UNAVAILABLE'
  /** This node is not the leader; `leader` carries the known leader or NONE. */
  | 'NOT_LEADER'
  /** The proposal was refused (leadership transfer in progress, uncommitted-size limit, removed node). */
  | 'PROPOSAL_DROPPED'
  /** Another configuration change has not been applied yet. */
  | 'CONF_CHANGE_PENDING'
  /** The configuration change is malformed or not allowed from the current configuration. */
  | 'INVALID_CONF_CHANGE'
  /** A leadership transfer was refused. */
  | 'TRANSFER_REFUSED';

export class RaftError extends Error {
  readonly code: RaftErrorCode;
  /** For NOT_LEADER: the leader this node knows of, or 0. */
  readonly leader: number;
  constructor(code: RaftErrorCode, message: string, leader = 0) {
    super(`${code}: ${message}`);
    this.name = 'RaftError';
    this.code = code;
    this.leader = leader;
  }
}

export class RaftInvariantError extends Error {
  constructor(message: string) {
    super(`raft invariant broken: ${message}`);
    this.name = 'RaftInvariantError';
  }
}

/** Assert an invariant. A failure is a bug in the core or in its driver: stop the node. */
export function invariant(cond: unknown, message: string | (() => string)): asserts cond {
  if (!cond) throw new RaftInvariantError(typeof message === 'string' ? message : message());
}
