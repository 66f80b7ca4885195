// The simulated cluster: nodes, network, clients and the nemesis on one virtual clock, driven by a
// discrete-event loop. Every random choice comes from streams forked off one seeded PRNG, so a
// run is a pure function of (seed, options).
import { allMembers, isJoint } from '../../src/raft/confchange.ts';
import type { ConfChange, ConfState, Message, NodeId } from '../../src/raft/types.ts';
import { emptyConfState } from '../../src/raft/util.ts';
import { leaderLossDelayMs } from '../../src/node/leader-loss.ts';
import { SafetyChecker, type ViolationKind } from './checks.ts';
import { SimClient, type ClientHost, type ClientParams, type KvOperation } from './client.ts';
import { EventQueue } from './event-queue.ts';
import { FAST_DISK, type FaultMix } from './faults.ts';
import { CALM_NETWORK, Network } from './network.ts';
import { SimNode, type ClientReply, type ClientRequest, type DiskProfile, type NodeHost, type NodeSettings } from './node.ts';
import type { Rng } from './rng.ts';

type SimEvent =
  | { readonly k: 'tick'; readonly node: NodeId; readonly inc: number }
  | { readonly k: 'deliver'; readonly msg: Message }
  | { readonly k: 'disk'; readonly node: NodeId; readonly inc: number }
  | { readonly k: 'request'; readonly node: NodeId; readonly req: ClientRequest }
  | { readonly k: 'reply'; readonly node: NodeId; readonly req: ClientRequest; readonly reply: ClientReply }
  | { readonly k: 'timer'; readonly clientId: number; readonly token: number }
  | { readonly k: 'partition' }
  | { readonly k: 'healPartition'; readonly generation: number }
  | { readonly k: 'crash' }
  | { readonly k: 'crashNode'; readonly node: NodeId; readonly downUs: number }
  | { readonly k: 'restart'; readonly node: NodeId }
  | { readonly k: 'membership' }
  | { readonly k: 'transfer' }
  | { readonly k: 'stop'; readonly node: NodeId }
  /** Transport feedback to a sender's core: a snapshot sent (or lost), a peer unreachable. */
  | { readonly k: 'snapStatus'; readonly node: NodeId; readonly to: NodeId; readonly ok: boolean }
  | { readonly k: 'unreachable'; readonly node: NodeId; readonly to: NodeId }
  /** The driver's leader-loss delay ran out (src/node/driver.ts leaderLost). */
  | { readonly k: 'campaignIfLeaderless'; readonly node: NodeId; readonly inc: number; readonly term: number };

export interface ClusterConfig {
  readonly initialNodes: number;
  /** At most this many nodes are ever created (initial ones plus learners added later). */
  readonly maxNodes: number;
  readonly tickUs: number;
  readonly mix: FaultMix;
  readonly settings: NodeSettings;
  /** One-way client<->node latency range. */
  readonly clientDelayUs: readonly [number, number];
  /** A removed node keeps running this long after its removal is applied, then stops for good. */
  readonly removalGraceUs: number;
  readonly maxEvents: number;
  readonly maxInFlightMessages: number;
  readonly maxTraceLines: number;
  readonly trace: boolean;
  readonly ignoredChecks: ReadonlySet<ViolationKind>;
}

export interface ClusterStats {
  events: number;
  crashes: number;
  restarts: number;
  partitions: number;
  confChangesProposed: number;
  confChangesApplied: number;
  transfers: number;
  snapshotsSent: number;
  maxTerm: number;
}

export class Cluster {
  private readonly cfg: ClusterConfig;
  private readonly rng: Rng;
  nowUs = 0;
  readonly nodes = new Map<NodeId, SimNode>();
  readonly checker: SafetyChecker;
  readonly network: Network;
  readonly history: KvOperation[] = [];
  readonly clients = new Map<number, SimClient>();
  readonly stats: ClusterStats = { events: 0, crashes: 0, restarts: 0, partitions: 0, confChangesProposed: 0, confChangesApplied: 0, transfers: 0, snapshotsSent: 0, maxTerm: 0 };
  readonly traceLines: string[] | null;
  private traceDropped = 0;
  private readonly queue: EventQueue<SimEvent>;
  private readonly tickUsOf = new Map<NodeId, number>();
  private partitionGeneration = 0;
  private faultsActive = true;
  private nextNodeId: number;
  private latestConf: { index: number; cs: ConfState };
  /** Nodes that have been in an applied configuration (so leaving it means removal). */
  private readonly everMember = new Set<NodeId>();
  private readonly nodeHost: NodeHost;
  private readonly clientHost: ClientHost;
  readonly trace: ((line: string) => void) | null;

  constructor(
    cfg: ClusterConfig,
    rng: Rng,
  ) {
    this.cfg = cfg;
    this.rng = rng;
    this.queue = new EventQueue<SimEvent>(cfg.maxEvents);
    this.checker = new SafetyChecker(() => this.nowUs, cfg.ignoredChecks);
    this.network = new Network(rng.fork(), cfg.mix.network, cfg.maxInFlightMessages);
    this.traceLines = cfg.trace ? [] : null;
    this.trace = cfg.trace ? (line) => this.addTrace(line) : null;
    const voters = Array.from({ length: cfg.initialNodes }, (_, i) => i + 1);
    const initialConf: ConfState = { voters, learners: [], votersOutgoing: [], learnersNext: [], autoLeave: false };
    this.latestConf = { index: 0, cs: initialConf };
    voters.forEach((v) => this.everMember.add(v));
    this.nextNodeId = cfg.initialNodes + 1;
    this.nodeHost = {
      nowUs: () => this.nowUs,
      scheduleDiskDone: (node, inc, atUs) => this.queue.push(atUs, { k: 'disk', node, inc }),
      sendPeer: (msg) => this.sendPeer(msg),
      reply: (node, req, reply) => this.queue.push(this.nowUs + this.clientDelay(), { k: 'reply', node, req, reply }),
      onConfChangeApplied: (node, index, cc, cs) => this.onConfChangeApplied(node, index, cc, cs),
      onVoteCast: (node) => this.onVoteCast(node),
      checker: this.checker,
      trace: this.trace,
    };
    this.clientHost = {
      nowUs: () => this.nowUs,
      contactable: () => this.contactable(),
      send: (node, req) => this.queue.push(this.nowUs + this.clientDelay(), { k: 'request', node, req }),
      setTimer: (clientId, atUs, token) => this.queue.push(atUs, { k: 'timer', clientId, token }),
      record: (op) => this.history.push(op),
      violation: (kind, detail) => this.checker.report(kind, detail),
      trace: this.trace,
    };
    for (const id of voters) this.createNode(id, initialConf);
  }

  private addTrace(line: string): void {
    const lines = this.traceLines!;
    if (lines.length >= this.cfg.maxTraceLines) {
      // Keep the most recent half: the end of a run is where a violation shows.
      const drop = Math.floor(this.cfg.maxTraceLines / 2);
      lines.splice(0, drop);
      this.traceDropped += drop;
      lines.unshift(`... ${this.traceDropped} earlier trace lines dropped (limit ${this.cfg.maxTraceLines})`);
    }
    lines.push(`${(this.nowUs / 1000).toFixed(3)} ${line}`);
  }

  private clientDelay(): number {
    const [lo, hi] = this.cfg.clientDelayUs;
    return lo + this.rng.int(hi - lo + 1);
  }

  private createNode(id: NodeId, conf: ConfState): SimNode {
    const disk: DiskProfile = this.cfg.mix.disk;
    const node = new SimNode(id, conf, this.cfg.settings, this.nodeHost, this.rng.fork(), disk);
    this.nodes.set(id, node);
    const skew = this.cfg.mix.clockSkew;
    this.tickUsOf.set(id, Math.max(1, Math.round(this.cfg.tickUs * (1 + skew * (2 * this.rng.float() - 1)))));
    node.start();
    // Ticks start at a random phase so nodes are not in lock step.
    this.queue.push(this.nowUs + 1 + this.rng.int(this.tickUsOf.get(id)!), { k: 'tick', node: id, inc: node.incarnation });
    return node;
  }

  /** Nodes a client may contact: every node not removed from the cluster. */
  contactable(): NodeId[] {
    const out: NodeId[] = [];
    for (const [id, n] of this.nodes) if (!n.removed) out.push(id);
    return out;
  }

  /** The leader with the highest term among nodes that are up (as last reported by a Ready). */
  currentLeader(): SimNode | null {
    let best: SimNode | null = null;
    for (const n of this.nodes.values()) {
      if (n.up && n.role === 'leader' && (best === null || n.term > best.term)) best = n;
    }
    return best;
  }

  get confState(): ConfState {
    return this.latestConf.cs;
  }

  addClient(id: number, params: ClientParams, rng: Rng): SimClient {
    const c = new SimClient(id, this.clientHost, rng, params);
    this.clients.set(id, c);
    c.start();
    return c;
  }

  /** Schedule the mix's nemesis activities for the fault phase. */
  startNemesis(): void {
    const m = this.cfg.mix;
    if (m.partitions) this.queue.push(this.draw(m.partitions.gapUs), { k: 'partition' });
    if (m.crashes) this.queue.push(this.draw(m.crashes.gapUs), { k: 'crash' });
    if (m.membership) this.queue.push(this.draw(m.membership.gapUs), { k: 'membership' });
    if (m.transfers) this.queue.push(this.draw(m.transfers.gapUs), { k: 'transfer' });
  }

  private draw(r: readonly [number, number]): number {
    return this.nowUs + r[0] + this.rng.int(r[1] - r[0] + 1);
  }

  /** End of the fault phase: heal the network, calm the disks, restart every crashed node. */
  healAll(): void {
    this.faultsActive = false;
    this.partitionGeneration++;
    this.network.heal();
    this.network.profile = CALM_NETWORK;
    for (const n of this.nodes.values()) {
      n.disk = FAST_DISK;
      if (!n.up && !n.removed) this.restart(n);
    }
    this.trace?.('nemesis: heal all');
  }

  private restart(n: SimNode): void {
    n.start();
    this.stats.restarts++;
    // The draw is made with or without the bug, so the bug changes nothing else in the schedule.
    const firstTickUs = this.nowUs + 1 + this.rng.int(this.tickUsOf.get(n.id)!);
    if (this.cfg.settings.simBugs.tickerLostOnRestart) return;
    this.queue.push(firstTickUs, { k: 'tick', node: n.id, inc: n.incarnation });
  }

  private sendPeer(msg: Message): void {
    if (msg.type === 'snap') {
      this.stats.snapshotsSent++;
      // Half the snapshots (chosen by content, so no draw of the schedule moves) go as the node
      // sends them (src/node/snapshots.ts): the sender's state at its applied index, past the
      // snapshot the core named; the others as the core named them (a state file already on disk
      // at the compaction point).
      const from = this.nodes.get(msg.from)!;
      if ((msg.to + msg.snapshot.metadata.index) % 2 === 0 && from.appliedIndex >= msg.snapshot.metadata.index) msg = from.stateSnapshotFor(msg);
    }
    if (msg.type === 'snap' && this.cfg.settings.simBugs.snapshotsLostReportedSent) {
      // The bug: nothing reaches the peer, and the sender is told the stream finished.
      this.queue.push(this.nowUs + this.tickUsOf.get(msg.from)!, { k: 'snapStatus', node: msg.from, to: msg.to, ok: true });
      return;
    }
    const { deliveries, unreachable } = this.network.send(msg, this.nowUs);
    for (const d of deliveries) this.queue.push(d.atUs, { k: 'deliver', msg: d.msg });
    // The transport tells the core what happened to a snapshot (etcd's ReportSnapshot) and that a
    // cut link is down (ReportUnreachable); a silently lost packet is never reported.
    const feedbackUs = this.nowUs + this.tickUsOf.get(msg.from)!;
    if (unreachable) this.queue.push(feedbackUs, { k: 'unreachable', node: msg.from, to: msg.to });
    if (msg.type === 'snap' && deliveries.length === 0) this.queue.push(feedbackUs, { k: 'snapStatus', node: msg.from, to: msg.to, ok: false });
  }

  private onVoteCast(node: NodeId): void {
    const c = this.cfg.mix.crashAfterVote;
    if (c === null || !this.faultsActive || !this.rng.chance(c.p)) return;
    this.queue.push(this.nowUs, { k: 'crashNode', node, downUs: this.draw(c.downUs) - this.nowUs });
  }

  private onConfChangeApplied(_node: NodeId, index: number, cc: ConfChange, cs: ConfState): void {
    if (index <= this.latestConf.index) return;
    this.stats.confChangesApplied++;
    this.latestConf = { index, cs };
    const members = new Set(allMembers(cs));
    members.forEach((m) => this.everMember.add(m));
    for (const [id, n] of this.nodes) {
      if (!n.removed && this.everMember.has(id) && !members.has(id)) {
        this.trace?.(`n${id} removed from the configuration by entry ${index} (${JSON.stringify(cc.changes)}); stopping it soon`);
        this.queue.push(this.nowUs + this.cfg.removalGraceUs, { k: 'stop', node: id });
      }
    }
  }

  /** Run events until `until` returns true, time passes `limitUs`, or a violation is found. */
  run(limitUs: number, until: () => boolean): void {
    while (this.checker.ok && !until()) {
      if (this.queue.peekTimeUs() > limitUs) {
        this.nowUs = limitUs;
        return;
      }
      const ev = this.queue.pop();
      if (ev === undefined) return;
      this.nowUs = ev.timeUs;
      this.stats.events++;
      try {
        this.dispatch(ev.event);
      } catch (e) {
        const err = e as Error;
        this.checker.report('exception', `${err.name}: ${err.message} [${(err.stack ?? '').split('\n').slice(1, 4).map((s) => s.trim()).join(' < ')}]`);
      }
    }
  }

  private dispatch(ev: SimEvent): void {
    switch (ev.k) {
      case 'tick': {
        const n = this.nodes.get(ev.node)!;
        if (ev.inc !== n.incarnation || !n.up) return;
        n.tick();
        if (n.term > this.stats.maxTerm) this.stats.maxTerm = n.term;
        this.queue.push(this.nowUs + this.tickUsOf.get(n.id)!, { k: 'tick', node: n.id, inc: n.incarnation });
        return;
      }
      case 'snapStatus':
        this.nodes.get(ev.node)!.reportSnapshot(ev.to, ev.ok);
        return;
      case 'unreachable': {
        const n = this.nodes.get(ev.node)!;
        const lost = n.reportUnreachable(ev.to);
        if (lost !== null) {
          // As the driver (src/node/node.ts): slots of a quarter of the election timeout.
          const slotUs = Math.max(2, Math.floor((this.cfg.settings.electionTick * this.tickUsOf.get(n.id)!) / 4));
          const delayUs = leaderLossDelayMs(n.id, ev.to, lost.cs, slotUs, () => this.rng.float());
          if (delayUs !== null) this.queue.push(this.nowUs + delayUs, { k: 'campaignIfLeaderless', node: n.id, inc: n.incarnation, term: lost.term });
        }
        return;
      }
      case 'campaignIfLeaderless': {
        const n = this.nodes.get(ev.node)!;
        if (n.up) n.campaignIfLeaderless(ev.inc, ev.term);
        return;
      }
      case 'deliver': {
        const msg = ev.msg;
        const n = this.nodes.get(msg.to);
        const delivered = this.network.arrive(msg) && n !== undefined && n.up;
        if (delivered) {
          this.trace?.(`deliver ${describeMessage(msg)}`);
          n.step(msg);
        } else {
          // The link broke while the message was in flight, or the peer is down (connection
          // refused): a real transport notices and says so.
          this.queue.push(this.nowUs + this.tickUsOf.get(msg.from)!, { k: 'unreachable', node: msg.from, to: msg.to });
        }
        // A snapshot's sender learns whether it got through (the stream completed or broke).
        if (msg.type === 'snap') this.queue.push(this.nowUs, { k: 'snapStatus', node: msg.from, to: msg.to, ok: delivered });
        return;
      }
      case 'disk':
        this.nodes.get(ev.node)!.diskDone(ev.inc);
        return;
      case 'request': {
        const n = this.nodes.get(ev.node);
        if (n !== undefined && n.up) n.handleRequest(ev.req);
        return;
      }
      case 'reply':
        this.clients.get(ev.req.clientId)?.onReply(ev.node, ev.req, ev.reply);
        return;
      case 'timer':
        this.clients.get(ev.clientId)?.onTimer(ev.token);
        return;
      case 'partition':
        return this.nemesisPartition();
      case 'healPartition':
        if (ev.generation === this.partitionGeneration) {
          this.network.heal();
          this.trace?.('nemesis: partition healed');
        }
        return;
      case 'crash':
        return this.nemesisCrash();
      case 'crashNode': {
        const n = this.nodes.get(ev.node)!;
        if (!n.up || n.removed) return;
        n.crash();
        this.stats.crashes++;
        this.trace?.(`nemesis: crash n${n.id} right after its vote, down ${ev.downUs / 1000} ms`);
        this.queue.push(this.nowUs + ev.downUs, { k: 'restart', node: n.id });
        return;
      }
      case 'restart': {
        const n = this.nodes.get(ev.node)!;
        if (!n.up && !n.removed) {
          this.trace?.(`nemesis: restart n${n.id}`);
          this.restart(n);
        }
        return;
      }
      case 'membership':
        return this.nemesisMembership();
      case 'transfer':
        return this.nemesisTransfer();
      case 'stop': {
        const n = this.nodes.get(ev.node)!;
        // Re-check: only stop a node that is still outside the latest configuration.
        if (n.removed || allMembers(this.latestConf.cs).includes(n.id)) return;
        n.crash();
        n.removed = true;
        this.trace?.(`n${n.id} stopped for good (removed)`);
        return;
      }
    }
  }

  private nemesisPartition(): void {
    const p = this.cfg.mix.partitions!;
    if (!this.faultsActive) return;
    const kind = this.rng.pick(p.kinds);
    const leader = this.currentLeader();
    this.network.heal();
    const desc = this.network.applyPartition(kind, this.contactable(), leader?.id ?? 0);
    this.stats.partitions++;
    const gen = ++this.partitionGeneration;
    const endUs = this.draw(p.durationUs);
    this.trace?.(`nemesis: partition ${desc} until ${(endUs / 1000).toFixed(3)}`);
    this.queue.push(endUs, { k: 'healPartition', generation: gen });
    this.queue.push(endUs + this.draw(p.gapUs) - this.nowUs, { k: 'partition' });
  }

  private nemesisCrash(): void {
    const c = this.cfg.mix.crashes!;
    if (!this.faultsActive) return;
    this.queue.push(this.draw(c.gapUs), { k: 'crash' });
    const voters = new Set([...this.latestConf.cs.voters, ...this.latestConf.cs.votersOutgoing]);
    const n = Math.max(1, voters.size);
    const maxDown = c.maxDown === 'minority' ? Math.floor((n - 1) / 2) : Math.ceil(n / 2);
    let down = 0;
    for (const node of this.nodes.values()) if (!node.up && !node.removed) down++;
    if (down >= maxDown) return;
    const up = [...this.nodes.values()].filter((x) => x.up && !x.removed);
    if (up.length === 0) return;
    const leader = this.currentLeader();
    const victim = leader !== null && this.rng.chance(c.leaderP) ? leader : this.rng.pick(up);
    victim.crash();
    this.stats.crashes++;
    const backUs = this.draw(c.downUs);
    this.trace?.(`nemesis: crash n${victim.id} until ${(backUs / 1000).toFixed(3)}`);
    this.queue.push(backUs, { k: 'restart', node: victim.id });
  }

  private nemesisTransfer(): void {
    const t = this.cfg.mix.transfers!;
    if (!this.faultsActive) return;
    this.queue.push(this.draw(t.gapUs), { k: 'transfer' });
    const leader = this.currentLeader();
    if (leader === null) return;
    const candidates = leader.conf.voters.filter((v) => v !== leader.id);
    if (candidates.length === 0) return;
    const to = this.rng.pick(candidates);
    if (leader.transferLeadership(to)) {
      this.stats.transfers++;
      this.trace?.(`nemesis: transfer leadership n${leader.id} -> n${to}`);
    }
  }

  /**
   * Membership changes on the current leader: add a learner (a fresh node that catches up by log
   * or snapshot), promote it, remove a follower or the leader itself, or replace a voter with a
   * learner in one joint change (§4.3).
   */
  private nemesisMembership(): void {
    const m = this.cfg.mix.membership!;
    if (!this.faultsActive) return;
    this.queue.push(this.draw(m.gapUs), { k: 'membership' });
    const leader = this.currentLeader();
    if (leader === null) return;
    const cs = leader.conf;
    if (isJoint(cs)) return;
    const target = this.cfg.initialNodes;
    type Plan = { cc: ConfChange; newNode: NodeId | null };
    const plans: Plan[] = [];
    const followers = cs.voters.filter((v) => v !== leader.id);
    if (cs.learners.length > 0) {
      const l = this.rng.pick(cs.learners);
      plans.push({ cc: { changes: [{ type: 'addVoter', nodeId: l }] }, newNode: null });
      if (followers.length > 0) {
        const v = this.rng.pick(this.rng.chance(0.3) ? cs.voters : followers);
        plans.push({ cc: { changes: [{ type: 'addVoter', nodeId: l }, { type: 'removeNode', nodeId: v }] }, newNode: null });
      }
    } else if (this.nextNodeId <= this.cfg.maxNodes && cs.voters.length <= target) {
      plans.push({ cc: { changes: [{ type: 'addLearner', nodeId: this.nextNodeId }] }, newNode: this.nextNodeId });
    }
    if (cs.voters.length > target) {
      if (followers.length > 0) plans.push({ cc: { changes: [{ type: 'removeNode', nodeId: this.rng.pick(followers) }] }, newNode: null });
      plans.push({ cc: { changes: [{ type: 'removeNode', nodeId: leader.id }] }, newNode: null });
    }
    if (plans.length === 0) return;
    const plan = this.rng.pick(plans);
    if (plan.newNode !== null) {
      this.nextNodeId++;
      const node = this.createNode(plan.newNode, emptyConfState());
      this.trace?.(`nemesis: created n${node.id} (empty storage) to join as a learner`);
    }
    this.stats.confChangesProposed++;
    if (!leader.proposeConfChange(plan.cc) && plan.newNode !== null) {
      // Never proposed: the fresh node will never be a member, retire it.
      const n = this.nodes.get(plan.newNode)!;
      n.crash();
      n.removed = true;
    }
  }

  /** Nodes that are up and in the latest applied configuration. */
  liveMembers(): SimNode[] {
    const members = new Set(allMembers(this.latestConf.cs));
    return [...this.nodes.values()].filter((n) => n.up && !n.removed && members.has(n.id));
  }
}

export function describeMessage(m: Message): string {
  const head = `n${m.from}->n${m.to} ${m.type} t${m.term}`;
  switch (m.type) {
    case 'app':
      return `${head} prev=(${m.index},t${m.logTerm}) ents=${m.entries.length ? `[${m.entries[0]!.index}..${m.entries[m.entries.length - 1]!.index}]` : '[]'} commit=${m.commit}`;
    case 'appResp':
      return `${head} index=${m.index}${m.reject ? ` reject hint=${m.rejectHint} logTerm=${m.logTerm}` : ''}`;
    case 'vote':
    case 'preVote':
      return `${head} last=(${m.index},t${m.logTerm})${m.transfer ? ' transfer' : ''}`;
    case 'voteResp':
    case 'preVoteResp':
      return `${head}${m.reject ? ' reject' : ' grant'}`;
    case 'heartbeat':
      return `${head} commit=${m.commit}${m.context ? ` ctx=${m.context}` : ''}`;
    case 'heartbeatResp':
      return `${head}${m.context ? ` ctx=${m.context}` : ''}`;
    case 'snap':
      return `${head} snap=(${m.snapshot.metadata.index},t${m.snapshot.metadata.term}) conf=${JSON.stringify(m.snapshot.metadata.confState.voters)}`;
    case 'readIndex':
      return `${head} ctx=${m.context}`;
    case 'readIndexResp':
      return `${head} ctx=${m.context} index=${m.index}`;
    case 'transferLeader':
      return `${head} transferee=${m.transferee}`;
    case 'timeoutNow':
      return head;
  }
}

export type { ViolationKind };
