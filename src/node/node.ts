// A replicated raftauth node: the Raft core, the durable store, the transport and the state
// machine wired together (the primary process of DESIGN's process model).
import { randomInt } from 'node:crypto';
import { RawNode } from '../raft/raw-node.ts';
import type { ConfChange, ConfState, MsgSnap, NodeId, SoftState } from '../raft/types.ts';
import { NONE } from '../raft/types.ts';
import { DurableStorage } from '../storage/durable-storage.ts';
import type { StorageConfig } from '../storage/config.ts';
import type { WrapWrites } from '../storage/durable-storage.ts';
import { Transport } from '../transport/transport.ts';
import { reconnectBackoffFor } from '../transport/limits.ts';
import type { TlsMaterial, TransportHandler, TransportLogger } from '../transport/types.ts';
import type { Applier, ApplierFactory } from './applier.ts';
import { WriteBehind } from './write-behind.ts';
import { RaftDriver } from './driver.ts';
import type { ProposeOutcome, ReadOutcome, SnapshotNowOutcome } from './driver.ts';
import type { IterateOptions, SnapshotChunkStream, StateRecord } from '../storage/durable-storage.ts';
import { ProposalRouter } from './router.ts';
import { ReadService } from './reads.ts';
import { NodeError } from './api.ts';
import type { ApplyResult, EncodedWriteRequest, HealthRequest, NodeApi, NodeHealth, NodeStatus, ReadRequest, WriteRequest, MemberStatus } from './api.ts';
import { NodeMetrics } from './metrics.ts';
import type { MetricsJson, ProposalOutcome } from './metrics.ts';
import { withTerm } from './log-context.ts';
import { MEMBERS_KEYSPACE, encodeMembersContext, memberRecord, parseMemberRecord } from './members.ts';
import type { ConfChangeAudit, MemberAddress } from './members.ts';

export interface RaftNodeOptions {
  readonly id: NodeId;
  readonly dataDir: string;
  /** The founding members (bootstrap) or, for a node joining a running cluster, members to contact. */
  readonly initialMembers: ReadonlyMap<NodeId, MemberAddress>;
  /** True for a node added to a running cluster: it starts empty and waits for a snapshot. */
  readonly join: boolean;
  readonly raftListen: { readonly host: string; readonly port: number };
  readonly tls: TlsMaterial;
  readonly tickMs: number;
  readonly electionTick: number;
  readonly heartbeatTick: number;
  readonly preVote?: boolean;
  readonly checkQuorum?: boolean;
  readonly readOnly?: 'safe' | 'leaseBased';
  readonly maxSizePerMsg?: number;
  readonly maxInflightMsgs?: number;
  /** Storage writes in flight at once (the driver's; DEFAULT_MAX_WRITES_IN_FLIGHT when absent). */
  readonly maxWritesInFlight?: number;
  readonly storage?: Partial<StorageConfig>;
  /** Crash injection for tests (wraps the store's batch writes). Never in production. */
  readonly wrapStorageWrites?: WrapWrites;
  readonly logger: TransportLogger;
  /**
   * Builds the state machine the node applies to (node/applier.ts). The node does not construct
   * it: the server composes them (src/state/applier.ts stateApplier).
   */
  readonly applier: ApplierFactory;
  /** Debug-only switches for negative controls. Never in production. */
  readonly unsafe?: { readonly ackBeforeCommit?: boolean; readonly readWithoutReadIndex?: boolean };
  /** Called when the node stops on a fatal error (default: log and exit the process). */
  readonly onFatal?: (err: unknown) => void;
}

/** How often the leader sweeps expired client sessions. */
export const SESSION_SWEEP_INTERVAL_MS = 60_000;

/** Longest a client may ask to wait. */
export const MAX_TIMEOUT_MS = 60_000;

export class RaftNode implements NodeApi {
  readonly id: NodeId;
  private readonly storage: DurableStorage;
  private readonly sm: Applier;
  private readonly driver: RaftDriver;
  readonly transport: Transport;
  private readonly router: ProposalRouter;
  private readonly reads: ReadService;
  private readonly opts: RaftNodeOptions;
  /** This node's Prometheus metrics (raft, proposals, storage, snapshots, peers). */
  readonly metrics: NodeMetrics;
  private leaderWaiters: (() => void)[] = [];
  private tickTimer: NodeJS.Timeout | null = null;
  /** The scrub of the state started after the start (every record's checksum), and how to stop it. */
  private scrubbing: Promise<void> = Promise.resolve();
  private readonly scrubAbort = new AbortController();
  private sweepTimer: NodeJS.Timeout | null = null;
  private stopping = false;
  private readonly stateListeners = new Set<(keyspaces: ReadonlySet<string> | null) => void>();

  private constructor(
    id: NodeId,
    storage: DurableStorage,
    sm: Applier,
    driver: RaftDriver,
    transport: Transport,
    router: ProposalRouter,
    reads: ReadService,
    opts: RaftNodeOptions,
    metrics: NodeMetrics,
  ) {
    this.id = id;
    this.storage = storage;
    this.sm = sm;
    this.driver = driver;
    this.transport = transport;
    this.router = router;
    this.reads = reads;
    this.opts = opts;
    this.metrics = metrics;
  }

  /** The port the raft transport listens on (useful with port 0). */
  raftPort = 0;

  static async start(opts: RaftNodeOptions): Promise<RaftNode> {
    // The state is scrubbed after the start (below), not inside open(): at a million records the
    // scrub read every record before the node could serve, seconds at every restart (issue 15).
    const storage = await DurableStorage.open(opts.dataDir, { config: opts.storage ?? {}, verifyState: false, ...(opts.wrapStorageWrites ? { wrapWrites: opts.wrapStorageWrites } : {}) });
    // The driver exists only further down; until then the store's hard state is the truth.
    let driverRef: RaftDriver | null = null;
    const term = (): number => driverRef?.status().hardState.term ?? storage.hardState.term;
    // Every line this node logs carries its current term (and, from the logger's bindings, its id).
    const logger = withTerm(opts.logger, term);
    const metrics = new NodeMetrics(opts.id, {
      term,
      role: () => driverRef?.status().softState.role ?? 'follower',
      leader: () => driverRef?.status().softState.lead ?? NONE,
      commit: () => driverRef?.status().hardState.commit ?? storage.hardState.commit,
      applied: () => driverRef?.appliedIndex() ?? storage.applied,
      logBytes: () => storage.logBytes,
    });
    storage.onBatchWritten = (seconds, synced) => metrics.storageBatch(seconds, synced);
    try {
      const fresh = storage.lastIndex() === 0 && storage.hardState.term === 0 && storage.snapshotMetadata.index === 0;
      if (fresh && !opts.join) {
        if (!opts.initialMembers.has(opts.id)) throw new Error(`node ${opts.id} is not among cluster.initialMembers and cluster.join is false`);
        // The bootstrap snapshot (index 1, term 1) carries the initial configuration and the member
        // table; every founding member writes the same one, so they agree on index 1 without talking.
        const ids = [...opts.initialMembers.keys()].sort((a, b) => a - b);
        const enc = new TextEncoder();
        await storage.bootstrap(
          { voters: ids, learners: [], votersOutgoing: [], learnersNext: [], autoLeave: false },
          ids.map((id) => ({ keyspace: MEMBERS_KEYSPACE, key: enc.encode(String(id)), value: memberRecord(opts.initialMembers.get(id)!) })),
        );
      }
      // Apply reads through the write-behind view: the state of writes still in flight (driver.ts).
      const stateView = new WriteBehind((ks, k) => storage.getSync(ks, k));
      const sm = opts.applier(stateView);

      const rawNode = new RawNode({
        id: opts.id,
        storage,
        applied: storage.applied,
        electionTick: opts.electionTick,
        heartbeatTick: opts.heartbeatTick,
        rng: (bound) => randomInt(bound),
        preVote: opts.preVote ?? true,
        checkQuorum: opts.checkQuorum ?? true,
        readOnlyOption: opts.readOnly ?? 'safe',
        ...(opts.maxSizePerMsg !== undefined ? { maxSizePerMsg: opts.maxSizePerMsg } : {}),
        ...(opts.maxInflightMsgs !== undefined ? { maxInflightMsgs: opts.maxInflightMsgs } : {}),
      });

      // Peers: the replicated member table, plus the configured members (a joiner knows no table yet).
      const peers = new Map<NodeId, string>();
      for (const [id, a] of opts.initialMembers) if (id !== opts.id) peers.set(id, a.raftAddress);
      const cs = storage.confState;
      for (const id of [...cs.voters, ...cs.learners, ...cs.votersOutgoing, ...cs.learnersNext]) {
        const b = storage.getSync(MEMBERS_KEYSPACE, String(id));
        if (b && id !== opts.id) peers.set(id, (JSON.parse(new TextDecoder().decode(b)) as MemberAddress).raftAddress);
      }

      // The transport calls back into the node; `self` is set before the transport starts.
      let self: RaftNode | null = null;
      const handler: TransportHandler = {
        onMessages: (_from, messages) => {
          self?.driver.enqueue({ kind: 'messages', messages });
        },
        onSnapshot: async (header, chunks) => {
          const received = await storage.receiveSnapshot({ index: header.metadata.index, term: header.metadata.term }, chunks);
          metrics.snapshot('received', received.bytes);
          const msg: MsgSnap = { type: 'snap', from: header.from, to: header.to, term: header.term, snapshot: { metadata: header.metadata, data: new Uint8Array(0) } };
          if (!self?.driver.enqueue({ kind: 'snapshotReceived', msg, path: received.path })) throw new Error('node is not accepting snapshots');
        },
        onPropose: async (req) => {
          if (!self) return { ok: false, error: { code: 'UNAVAILABLE', leaderHint: NONE, message: 'starting' } };
          return self.router.onForwarded(req);
        },
        onPeerAddress: (from, address) => {
          self?.driver.enqueue({ kind: 'peerAddress', id: from, address });
        },
        onUnreachable: (id) => {
          self?.driver.enqueue({ kind: 'unreachable', id });
        },
        onSnapshotStatus: (id, status) => {
          self?.driver.enqueue({ kind: 'snapshotStatus', id, ok: status === 'finished' });
        },
      };
      // Our own address as members dial it: the member table's, else the config's.
      const selfRecord = storage.getSync(MEMBERS_KEYSPACE, String(opts.id));
      const advertiseAddress = selfRecord ? (JSON.parse(new TextDecoder().decode(selfRecord)) as MemberAddress).raftAddress : opts.initialMembers.get(opts.id)?.raftAddress;
      // The reconnect backoff follows the election timeout, so the leader dials a restarted node
      // again well before that node's election timer could fire (src/transport/limits.ts).
      const reconnect = reconnectBackoffFor(opts.tickMs * opts.electionTick);
      const transport = new Transport({
        id: opts.id,
        listen: opts.raftListen,
        peers,
        limits: reconnect,
        ...(advertiseAddress !== undefined ? { advertiseAddress } : {}),
        tls: opts.tls,
        handler,
        logger,
        observer: { peerRtt: (peer, seconds) => metrics.peerRtt(peer, seconds), peerSendFailed: (peer) => metrics.peerSendFailed(peer) },
      });

      const leaderChangeWaiters: (() => void)[] = [];
      const now = (): number => Date.now();
      const driver = new RaftDriver({
        id: opts.id,
        node: rawNode,
        storage,
        sm,
        stateView,
        ...(opts.maxWritesInFlight !== undefined ? { maxWritesInFlight: opts.maxWritesInFlight } : {}),
        transport,
        logger,
        onFatal: (err) => {
          if (opts.onFatal) opts.onFatal(err);
          else {
            logger.error({ err: err instanceof Error ? err.message : String(err) }, 'fatal error: stopping the node');
            process.exit(70);
          }
        },
        onSoftState: (_ss: SoftState) => {
          const ws = leaderChangeWaiters.splice(0);
          for (const w of ws) w();
        },
        ...(opts.unsafe?.ackBeforeCommit ? { unsafeAckBeforeCommit: true } : {}),
        // A quarter of the election timeout per rank: room for a loaded machine's message delay
        // between two survivors' turns (docs/operations.md "Failover").
        leaderLossSlotMs: Math.floor((opts.electionTick * opts.tickMs) / 4),
        observer: {
          leaderChanged: () => metrics.leaderChanged(),
          proposedEntry: (commands) => metrics.proposedEntry(commands),
          snapshot: (event, bytes) => metrics.snapshot(event, bytes),
          compacted: (seconds) => metrics.compacted(seconds),
          stateChanged: (keyspaces) => {
            for (const l of self?.stateListeners ?? []) {
              try {
                l(keyspaces);
              } catch (e) {
                logger.error({ err: e instanceof Error ? e.message : String(e) }, 'a state-change listener failed');
              }
            }
          },
        },
        now,
      });
      driverRef = driver;
      driver.setKnownPeers(peers);

      const leaderChange = (ms: number) =>
        new Promise<void>((resolve) => {
          const t = setTimeout(resolve, ms);
          leaderChangeWaiters.push(() => {
            clearTimeout(t);
            resolve();
          });
        });
      const leader = () => driver.status().softState.lead;
      const proposeLocal = (data: Uint8Array) => new Promise<ProposeOutcome>((resolve) => driver.enqueue({ kind: 'propose', data, reply: resolve }));
      const router = new ProposalRouter({ id: opts.id, proposeLocal, leader, leaderChange, forward: (to, req) => transport.forwardPropose(to, req), now });
      const reads = new ReadService({
        id: opts.id,
        readIndex: (context) => new Promise<ReadOutcome>((resolve) => driver.enqueue({ kind: 'readIndex', context, reply: resolve })),
        leader,
        leaderChange,
        now,
      });

      const node = new RaftNode(opts.id, storage, sm, driver, transport, router, reads, opts, metrics);
      self = node;
      node.raftPort = await transport.start();
      driver.start();
      node.tickTimer = setInterval(() => driver.tick(), opts.tickMs);
      // The leader sweeps expired client sessions (deterministically: by its own timestamp in the
      // command), so sessions of processes that went away do not fill the table.
      node.sweepTimer = setInterval(() => {
        if (driver.status().softState.role !== 'leader') return;
        router.housekeeping('session', 'expire', null, SESSION_SWEEP_INTERVAL_MS).catch((e: unknown) => {
          logger.warn({ err: e instanceof Error ? e.message : String(e) }, 'session sweep failed');
        });
      }, SESSION_SWEEP_INTERVAL_MS);
      logger.info({ raftPort: node.raftPort, applied: storage.applied, lastIndex: storage.lastIndex() }, 'node started');
      // Every read verifies its record; the scrub finds damage in the records nobody reads, and
      // stops the node (fatal, as a damaged read does) rather than let it serve on.
      const scrubStartMs = performance.now();
      node.scrubbing = storage.scrubState(node.scrubAbort.signal).then(
        (records) => {
          if (!node.scrubAbort.signal.aborted) logger.info({ records, ms: Math.round(performance.now() - scrubStartMs) }, 'state scrubbed');
        },
        (e: unknown) => {
          if (!node.stopping) driver.failFromStore(e);
        },
      );
      return node;
    } catch (e) {
      await storage.close().catch(() => undefined);
      throw e;
    }
  }

  private checkTimeout(ms: number): number {
    if (this.stopping) throw new NodeError('STOPPING', 'node is stopping');
    if (!Number.isFinite(ms) || ms <= 0) throw new NodeError('INVALID_REQUEST', 'timeoutMs must be positive');
    return Math.min(ms, MAX_TIMEOUT_MS);
  }

  write(req: WriteRequest): Promise<ApplyResult> {
    return this.timedWrite(req.timeoutMs, (timeoutMs) => this.router.write(req.domain, req.op, req.args, timeoutMs));
  }

  writeEncoded(req: EncodedWriteRequest): Promise<ApplyResult> {
    return this.timedWrite(req.timeoutMs, (timeoutMs) => this.router.writePayload(req.payload, timeoutMs));
  }

  private async timedWrite(requestedMs: number, run: (timeoutMs: number) => Promise<ApplyResult>): Promise<ApplyResult> {
    const startNs = process.hrtime.bigint();
    const seconds = (): number => Number(process.hrtime.bigint() - startNs) / 1e9;
    try {
      const timeoutMs = this.checkTimeout(requestedMs);
      const r = await run(timeoutMs);
      this.metrics.proposal(r.ok ? 'ok' : 'rejected', seconds());
      return r;
    } catch (e) {
      this.metrics.proposal(proposalOutcomeOf(e), seconds());
      throw e;
    }
  }

  /** The current term (for log correlation by the process that serves this node). */
  currentTerm(): number {
    return this.driver.status().hardState.term;
  }

  /**
   * Readiness facts (src/ops/health.ts decides). With req.deep, first a real linearizable round
   * trip: a ReadIndex barrier (dissertation §6.4) — the leader confirms it still leads a majority
   * and this node applies up to the read index — bounded by req.timeoutMs.
   */
  async health(req: HealthRequest): Promise<NodeHealth> {
    let deep: NodeHealth['deep'] = null;
    if (req.deep) {
      const t0 = Date.now();
      try {
        await this.reads.barrier(this.checkTimeout(req.timeoutMs));
        deep = { ok: true, ms: Date.now() - t0, error: null };
      } catch (e) {
        deep = { ok: false, ms: Date.now() - t0, error: e instanceof NodeError ? `${e.code}: ${e.message}` : String(e) };
      }
    }
    // Read after the deep check, so the facts are as fresh as the answer.
    const s = this.driver.status();
    return {
      id: this.id,
      role: s.softState.role,
      leader: s.softState.lead,
      term: s.hardState.term,
      commit: s.hardState.commit,
      applied: this.driver.appliedIndex(),
      leaderContactAgeMs: this.driver.leaderContactAgeMs(),
      electionTimeoutMs: this.opts.electionTick * this.opts.tickMs,
      stopping: this.stopping || this.draining,
      deep,
    };
  }

  /**
   * Be told after applied state changed durably: the keyspaces touched, or null after a snapshot
   * install (anything may have changed). Returns the unsubscribe function.
   */
  onStateChange(listener: (keyspaces: ReadonlySet<string> | null) => void): () => void {
    this.stateListeners.add(listener);
    return () => this.stateListeners.delete(listener);
  }

  /** Records of one keyspace of this node's applied state (a page: see IterateOptions). Not linearizable. */
  scanState(keyspace: string, opts: IterateOptions): Promise<StateRecord[]> {
    return this.storage.iterate(keyspace, opts);
  }

  /** Whether this node is the leader right now. */
  isLeader(): boolean {
    return this.driver.status().softState.role === 'leader';
  }

  /** A leader housekeeping command outside any session (it must be idempotent in apply). */
  housekeeping(domain: string, op: string, args: unknown, timeoutMs: number): Promise<ApplyResult> {
    return this.router.housekeeping(domain, op, args, this.checkTimeout(timeoutMs));
  }

  /** This node's metrics as prom-client JSON (merged with the HTTP side's by the serving process). */
  metricsJson(): Promise<MetricsJson> {
    return this.metrics.json();
  }

  async read(req: ReadRequest): Promise<ApplyResult> {
    const timeoutMs = this.checkTimeout(req.timeoutMs);
    const local = req.consistency === 'local' || this.opts.unsafe?.readWithoutReadIndex === true;
    if (!local) await this.reads.barrier(timeoutMs);
    return this.sm.read(req.domain, req.op, req.args);
  }

  /**
   * A backup of the replicated state (raftauth snapshot save, src/ops/backup.ts): first a ReadIndex
   * barrier (dissertation §6.4), so the state is at least as new as every write acknowledged
   * before the call, then a snapshot file at this node's applied index, opened for streaming.
   */
  async backupSnapshot(timeoutMs: number): Promise<SnapshotChunkStream> {
    await this.reads.barrier(this.checkTimeout(timeoutMs));
    const o = await new Promise<SnapshotNowOutcome>((resolve) => this.driver.enqueue({ kind: 'snapshotNow', reply: resolve }));
    if (o.kind === 'ok') return o.stream;
    throw new NodeError('UNAVAILABLE', `no backup snapshot: ${o.reason}`);
  }

  async status(): Promise<NodeStatus> {
    const s = this.driver.status();
    let members: MemberStatus[] | null = null;
    if (s.progress) {
      members = [...s.progress].map(([id, p]) => ({
        id,
        role: id === this.id ? 'leader' : p.isLearner ? 'learner' : 'follower',
        voter: !p.isLearner,
        match: p.match,
      }));
    }
    return {
      id: this.id,
      role: s.softState.role,
      leader: s.softState.lead,
      term: s.hardState.term,
      commit: s.hardState.commit,
      applied: this.driver.appliedIndex(),
      lastIndex: s.lastIndex,
      voters: [...new Set([...s.confState.voters, ...s.confState.votersOutgoing])].sort((a, b) => a - b),
      learners: [...s.confState.learners, ...s.confState.learnersNext].sort((a, b) => a - b),
      members,
    };
  }

  confState(): ConfState {
    return this.driver.status().confState;
  }

  /** Propose a membership change on the leader (this node must be the leader). */
  async changeMembership(cc: ConfChange, timeoutMs: number): Promise<ApplyResult> {
    const deadline = Date.now() + this.checkTimeout(timeoutMs);
    for (;;) {
      const o = await new Promise<ProposeOutcome>((resolve) => this.driver.enqueue({ kind: 'confChange', cc, reply: resolve }));
      if (o.kind === 'applied') return o.result;
      if (o.kind === 'notLeader') throw new NodeError('UNAVAILABLE', `not the leader (leader: ${o.leader})`);
      if (Date.now() > deadline) throw new NodeError('TIMEOUT', `membership change not applied: ${o.kind === 'dropped' ? o.reason : o.kind}`);
      if (o.kind === 'dropped' && o.code === 'INVALID') throw new NodeError('INVALID_REQUEST', o.reason);
      if (o.kind === 'dropped' && (o.code === 'STOPPING' || o.code === 'FATAL')) throw new NodeError('STOPPING', o.reason);
      await new Promise((r) => setTimeout(r, 20));
    }
  }

  // `audit`: the change's audit part (issue 6). It travels in the conf change's own context, so
  // every node appends the `member.changed` record while applying the change (src/state/audit.ts);
  // there is no second write to lose. Without it (kv-only nodes, tests) nothing is recorded.
  // async: a context over its size limit rejects the promise (INVALID_REQUEST) instead of throwing.
  async addLearner(id: NodeId, addr: MemberAddress, timeoutMs = 10_000, audit?: ConfChangeAudit): Promise<ApplyResult> {
    return this.changeMembership({ changes: [{ type: 'addLearner', nodeId: id }], context: encodeMembersContext(new Map([[id, addr]]), audit) }, timeoutMs);
  }

  async promote(id: NodeId, timeoutMs = 10_000, audit?: ConfChangeAudit): Promise<ApplyResult> {
    return this.changeMembership({ changes: [{ type: 'addVoter', nodeId: id }], ...(audit ? { context: encodeMembersContext(new Map(), audit) } : {}) }, timeoutMs);
  }

  async removeMember(id: NodeId, timeoutMs = 10_000, audit?: ConfChangeAudit): Promise<ApplyResult> {
    return this.changeMembership({ changes: [{ type: 'removeNode', nodeId: id }], ...(audit ? { context: encodeMembersContext(new Map(), audit) } : {}) }, timeoutMs);
  }

  transferLeadership(to: NodeId): Promise<void> {
    return new Promise<void>((resolve, reject) =>
      this.driver.enqueue({ kind: 'transfer', to, reply: (err) => (err ? reject(err) : resolve()) }),
    );
  }

  /** The HTTP address of a member, from the replicated member table. */
  memberHttpAddress(id: NodeId): string | undefined {
    return this.driver.memberAddress(id)?.httpAddress;
  }

  /** The addresses of every member of the configuration this node knows (its applied member table; not linearizable). */
  memberAddresses(): Map<NodeId, MemberAddress> {
    const cs = this.driver.status().confState;
    const out = new Map<NodeId, MemberAddress>();
    for (const id of new Set([...cs.voters, ...cs.votersOutgoing, ...cs.learners, ...cs.learnersNext].sort((a, b) => a - b))) {
      const b = this.storage.getSync(MEMBERS_KEYSPACE, String(id));
      const a = b ? parseMemberRecord(b) : undefined;
      if (a) out.set(id, a);
    }
    return out;
  }

  private draining = false;

  /** About to stop: keep serving, but report not ready so balancers move traffic away. */
  beginDrain(): void {
    this.draining = true;
  }

  private readonly stopHooks: (() => Promise<void>)[] = [];

  /** Run `fn` first when the node stops (e.g. close the admin API before the node goes). */
  onStop(fn: () => Promise<void>): void {
    this.stopHooks.push(fn);
  }

  async stop(): Promise<void> {
    if (this.stopping) return;
    this.stopping = true;
    for (const h of this.stopHooks.splice(0)) await h().catch(() => undefined);
    if (this.tickTimer) clearInterval(this.tickTimer);
    if (this.sweepTimer) clearInterval(this.sweepTimer);
    for (const w of this.leaderWaiters.splice(0)) w();
    this.scrubAbort.abort();
    await this.scrubbing;
    await this.driver.stop();
    await this.transport.stop();
    await this.storage.close();
  }
}

/** The proposal metric's outcome label for an error thrown by write(). */
function proposalOutcomeOf(e: unknown): ProposalOutcome {
  if (!(e instanceof NodeError)) return 'error';
  switch (e.code) {
    case 'UNAVAILABLE':
      return 'unavailable';
    case 'TIMEOUT':
      return 'timeout';
    case 'INVALID_REQUEST':
      return 'invalid';
    case 'STOPPING':
      return 'stopping';
  }
}
