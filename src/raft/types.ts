// Types of the pure Raft core. Everything the core consumes or produces is plain data defined here.
//
// The shape follows etcd-io/raft's RawNode/Ready: the driver feeds the core ticks and messages,
// and collects a Ready batch of work (persist, send, apply). The core does no I/O, reads no clock
// and draws no randomness except through the injected Rng.

/** A node's id: a positive integer. 0 means "none" (no vote, no leader). */
export type NodeId = number;
export const NONE: NodeId = 0;

export type EntryType = 'normal' | 'confChange';

export interface Entry {
  readonly term: number;
  readonly index: number;
  readonly type: EntryType;
  /** Opaque command bytes. Empty data is the leader's no-op (appended on election, §5.4.2). */
  readonly data: Uint8Array;
}

/** Persistent state on all servers (Raft paper, figure 2), plus the commit index. */
export interface HardState {
  readonly term: number;
  /** Candidate voted for in `term`, or NONE. */
  readonly vote: NodeId;
  readonly commit: number;
}

/**
 * The membership configuration. In a joint configuration (§4.3 joint consensus) `votersOutgoing`
 * is non-empty and decisions need a majority of `voters` AND of `votersOutgoing`.
 * `learnersNext` holds voters of the outgoing config that become learners when the joint config
 * is left (a node may not be a voter and a learner at once).
 */
export interface ConfState {
  readonly voters: readonly NodeId[];
  readonly learners: readonly NodeId[];
  readonly votersOutgoing: readonly NodeId[];
  readonly learnersNext: readonly NodeId[];
  /** When true the leader leaves the joint config by itself once it is applied. */
  readonly autoLeave: boolean;
}

export interface SnapshotMetadata {
  readonly index: number;
  readonly term: number;
  readonly confState: ConfState;
}

export interface Snapshot {
  readonly metadata: SnapshotMetadata;
  /** Opaque state-machine image. Chunking it on the wire is the transport's job. */
  readonly data: Uint8Array;
}

export type ConfChangeOp =
  | { readonly type: 'addVoter'; readonly nodeId: NodeId }
  | { readonly type: 'addLearner'; readonly nodeId: NodeId }
  | { readonly type: 'removeNode'; readonly nodeId: NodeId };

/**
 * A membership change. A change that alters at most one voter is applied directly (a "simple"
 * change, §4.1, made safe by the leader committing an entry of its own term first). Any larger
 * change goes through a joint configuration that the leader leaves by itself (autoLeave).
 * `changes: []` is the explicit "leave joint" change.
 */
export interface ConfChange {
  readonly changes: readonly ConfChangeOp[];
  /** Opaque bytes for the application (e.g. the new node's address). */
  readonly context?: Uint8Array;
}

/**
 * Messages between peers. A discriminated union: every message has type, from, to and term.
 * Terms: a message with term 0 is "local" and is never used on the wire.
 */
interface MessageBase {
  readonly from: NodeId;
  readonly to: NodeId;
  readonly term: number;
}

/** AppendEntries (§5.3). `index`/`logTerm` identify the entry preceding `entries`. */
export interface MsgApp extends MessageBase {
  readonly type: 'app';
  readonly logTerm: number;
  readonly index: number;
  readonly entries: readonly Entry[];
  readonly commit: number;
}

/**
 * Reply to MsgApp. On success `index` is the last index now known to match the leader.
 * On rejection `index` echoes the rejected MsgApp's index, and `rejectHint`/`logTerm` carry the
 * conflict hint: the follower's largest index <= rejectHint whose term <= the probed logTerm
 * (etcd's findConflictByTerm), so the leader can skip a whole term per round trip.
 */
export interface MsgAppResp extends MessageBase {
  readonly type: 'appResp';
  readonly index: number;
  readonly reject: boolean;
  readonly rejectHint: number;
  readonly logTerm: number;
}

/** RequestVote (§5.2) or PreVote (§9.6). For PreVote, `term` is the term the sender would use. */
export interface MsgVote extends MessageBase {
  readonly type: 'vote' | 'preVote';
  readonly logTerm: number;
  readonly index: number;
  /** Set when the campaign was started by a leadership transfer: it may disrupt a live leader. */
  readonly transfer: boolean;
}

export interface MsgVoteResp extends MessageBase {
  readonly type: 'voteResp' | 'preVoteResp';
  readonly reject: boolean;
}

export interface MsgHeartbeat extends MessageBase {
  readonly type: 'heartbeat';
  readonly commit: number;
  /** ReadIndex round this heartbeat confirms leadership for, if any. */
  readonly context: string | null;
}

export interface MsgHeartbeatResp extends MessageBase {
  readonly type: 'heartbeatResp';
  readonly context: string | null;
}

export interface MsgSnap extends MessageBase {
  readonly type: 'snap';
  readonly snapshot: Snapshot;
}

/** Leadership transfer: the target starts an election at once, ignoring its timer and lease. */
export interface MsgTimeoutNow extends MessageBase {
  readonly type: 'timeoutNow';
}

/** A follower asks the leader for a read index on behalf of its client (§6.4). */
export interface MsgReadIndex extends MessageBase {
  readonly type: 'readIndex';
  readonly context: string;
}

export interface MsgReadIndexResp extends MessageBase {
  readonly type: 'readIndexResp';
  readonly context: string;
  readonly index: number;
}

/** A follower forwards a leadership-transfer request to its leader. */
export interface MsgTransferLeader extends MessageBase {
  readonly type: 'transferLeader';
  readonly transferee: NodeId;
}

export type Message =
  | MsgApp
  | MsgAppResp
  | MsgVote
  | MsgVoteResp
  | MsgHeartbeat
  | MsgHeartbeatResp
  | MsgSnap
  | MsgTimeoutNow
  | MsgReadIndex
  | MsgReadIndexResp
  | MsgTransferLeader;

export type MessageType = Message['type'];

export type Role = 'follower' | 'preCandidate' | 'candidate' | 'leader';

/** Volatile state the application may want to observe (leader id and role). */
export interface SoftState {
  readonly lead: NodeId;
  readonly role: Role;
}

/**
 * A linearizable read point: once the local applied index reaches `index`, a read issued with
 * `context` may be served from local state (ReadIndex, Raft dissertation §6.4).
 */
export interface ReadState {
  readonly index: number;
  readonly context: string;
}

/**
 * A batch of work for the driver. THE PERSISTENCE CONTRACT (the order matters):
 *   1. If `snapshot` is set, install it durably (state machine image + metadata).
 *   2. Append `entries` to stable storage (replacing any entries at or after entries[0].index)
 *      and store `hardState` if set. When `mustSync` is true this write MUST be fsynced before
 *      step 3: it carries a vote, a term or log entries, which the node has promised to remember.
 *   3. Only then send `messages`. (A vote or an append acknowledgement sent before its state is
 *      durable can be forgotten by a crash, breaking election safety or losing a committed entry.)
 *   4. Apply `committedEntries` to the state machine in order (they are all durable on a quorum)
 *      and serve `readStates` once the applied index reaches each one's index. Each conf-change
 *      entry goes to RawNode.applyConfChange, once, in order (the core asserts both ways).
 *   5. Call `advance()`.
 *
 * ASYNCHRONOUS WRITES (etcd's AsyncStorageWrites; src/node/driver.ts and the simulator do this):
 * call acceptReady() right after ready() instead of advance(); ready() may then be called again
 * before this Ready is persisted, and it hands out only newer entries and committed entries. Report
 * each Ready's write with persisted() and its application with appliedTo(), writes completing in
 * the order they were issued. A leader's appends and heartbeats may be sent at once (§10.2.1);
 * every other message only once this Ready's write and every earlier one is durable (a Ready with
 * nothing to write too: its acknowledgements may promise entries of an earlier write).
 *
 * BETWEEN ready() AND advance() (or acceptReady(), or persisted()) the driver may go on calling
 * tick, step, propose, readIndex and the transport reports (etcd's node loop does; so do
 * src/node/driver.ts and the simulator). The core keeps each Ready valid meanwhile: entries
 * appended or replaced now, and their messages, come in a later Ready (a replaced entry is not
 * marked stable by the earlier write, whose term no longer matches, and is handed out again); and
 * a snapshot is not restored while committed entries handed out are being applied. It is ignored
 * and the leader sends it again, since the snapshot's configuration already holds every conf
 * change among those entries and applyConfChange would apply them once more on top of it (sim
 * seed 10670). A snapshot is restored only when no committed entries are out for application; it
 * comes in the next Ready.
 */
export interface Ready {
  readonly softState: SoftState | null;
  readonly hardState: HardState | null;
  readonly entries: readonly Entry[];
  readonly snapshot: Snapshot | null;
  readonly committedEntries: readonly Entry[];
  readonly messages: readonly Message[];
  readonly readStates: readonly ReadState[];
  readonly mustSync: boolean;
}

/**
 * The core's read-only view of stable storage (etcd's Storage). The driver writes to it as it
 * persists Ready batches; the core only reads. Methods throw RaftError with code COMPACTED,
 * UNAVAILABLE or SNAPSHOT_TEMPORARILY_UNAVAILABLE.
 */
export interface Storage {
  initialState(): { hardState: HardState; confState: ConfState };
  /** Entries in [lo, hi), at most maxBytes in total but always at least one if any exist. */
  entries(lo: number, hi: number, maxBytes: number): Entry[];
  /** Term of entry i; valid for firstIndex()-1 .. lastIndex(). */
  term(i: number): number;
  /** Index of the first entry still available (snapshot index + 1). */
  firstIndex(): number;
  lastIndex(): number;
  /** The most recent snapshot. */
  snapshot(): Snapshot;
}

/** Integer in [0, bound). Seeded and deterministic in simulation. */
export type Rng = (bound: number) => number;

/**
 * Deliberate bugs, for proving that the simulator's checks can fail. Never set in production;
 * the config loader refuses them outside test builds.
 */
export interface UnsafeBugs {
  /** Commit entries of earlier terms by counting replicas (the figure 8 bug, §5.4.2). */
  readonly commitPriorTermByCounting?: boolean;
  /** Grant votes without the up-to-date log check (§5.4.1), breaking leader completeness. */
  readonly skipLogUpToDateCheck?: boolean;
}

export interface Config {
  readonly id: NodeId;
  /** Ticks without hearing from a leader before campaigning; randomized in [et, 2*et). */
  readonly electionTick: number;
  /** Ticks between leader heartbeats. Must be < electionTick. */
  readonly heartbeatTick: number;
  readonly storage: Storage;
  /** Last index applied to the state machine (on restart). Entries after it are re-delivered. */
  readonly applied?: number;
  /** Max bytes of entries in one MsgApp (batching). */
  readonly maxSizePerMsg?: number;
  /** Max MsgApp in flight to one follower (pipelining, flow control). */
  readonly maxInflightMsgs?: number;
  /** Max bytes of committed entries handed out in one Ready. */
  readonly maxCommittedSizePerReady?: number;
  /** Max bytes of proposals not yet committed on the leader; more are refused (PROPOSAL_DROPPED). */
  readonly maxUncommittedEntriesSize?: number;
  /** PreVote (§9.6). Default true. */
  readonly preVote?: boolean;
  /** CheckQuorum (§6.2): a leader that cannot hear a majority for an election timeout steps down. Default true. */
  readonly checkQuorum?: boolean;
  /** 'safe' = ReadIndex with a heartbeat round; 'leaseBased' trusts the lease (requires checkQuorum). */
  readonly readOnlyOption?: 'safe' | 'leaseBased';
  /** Seeded RNG for election timeouts. */
  readonly rng: Rng;
  /** Optional debug logger (the simulator collects traces through it). */
  readonly logger?: (line: string) => void;
  readonly unsafeBugs?: UnsafeBugs;
}

export interface ProgressStatus {
  readonly match: number;
  readonly next: number;
  readonly state: 'probe' | 'replicate' | 'snapshot';
  readonly recentActive: boolean;
  readonly inflight: number;
  readonly isLearner: boolean;
}

export interface Status {
  readonly id: NodeId;
  readonly hardState: HardState;
  readonly softState: SoftState;
  readonly applied: number;
  readonly lastIndex: number;
  readonly confState: ConfState;
  /** Only on the leader. */
  readonly progress: ReadonlyMap<NodeId, ProgressStatus> | null;
  readonly leadTransferee: NodeId;
}
