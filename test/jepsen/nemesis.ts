// The nemesis: a schedule of faults drawn from the run's seeded RNG, then carried out against the
// live cluster. The schedule (kinds, durations, quiet periods, which node or half) is a pure
// function of (seed, duration, kinds): `--seed S` replays it. What it resolves at run time (who
// the leader is at that moment) is recorded in the history.
//
// Every fault is undone at its end (heal the network, restart a killed node, SIGCONT a paused one)
// and the schedule's last step is always a full heal, whatever happened before.
import type { Rng } from '../sim/rng.ts';
import type { NodeCluster } from './cluster.ts';
import type { History } from './history.ts';
import { kvGet, kvPut, KV_PREFIX } from './kv.ts';
import { HTTP_PORT, RAFT_PORT } from './cluster.ts';
import { nodeIp } from './hosts.ts';
import { waitFor } from '../../scripts/lib/wait.ts';
import { applyCuts, cutAllBut, cutBetween, heal } from './net.ts';
import type { Cuts } from './net.ts';

export const FAULT_KINDS = [
  'partition-halves',
  'partition-leader',
  'partition-ring',
  'partition-bridge',
  'partition-oneway',
  'kill',
  'kill-leader',
  'pause',
  'pause-leader',
  'transfer-storm',
  'membership',
  'membership-partition',
] as const;
export type FaultKind = (typeof FAULT_KINDS)[number];

/** Named groups for --nemesis (plural names: a kind's own name selects that kind alone). */
export const NEMESIS_GROUPS: Record<string, readonly FaultKind[]> = {
  all: FAULT_KINDS,
  partitions: ['partition-halves', 'partition-leader', 'partition-ring', 'partition-bridge', 'partition-oneway'],
  kills: ['kill', 'kill-leader'],
  pauses: ['pause', 'pause-leader'],
  transfers: ['transfer-storm'],
};

/** Parse a --nemesis value: group names and fault kinds, comma-separated. */
export function parseNemesis(spec: string): FaultKind[] {
  const out = new Set<FaultKind>();
  for (const part of spec.split(',').map((s) => s.trim()).filter(Boolean)) {
    const group = Object.hasOwn(NEMESIS_GROUPS, part) ? NEMESIS_GROUPS[part] : undefined;
    if (group) group.forEach((k) => out.add(k));
    else if ((FAULT_KINDS as readonly string[]).includes(part)) out.add(part as FaultKind);
    else throw new Error(`unknown nemesis ${JSON.stringify(part)}: use ${[...Object.keys(NEMESIS_GROUPS), ...FAULT_KINDS].join(', ')}`);
  }
  if (out.size === 0) throw new Error('--nemesis names no fault');
  return [...out];
}

export interface Step {
  readonly fault: FaultKind;
  /** Quiet time before the fault starts. */
  readonly quietMs: number;
  readonly durationMs: number;
  /** The node ids in a random order: halves, ring order, bridge, the victim of a random-node fault. */
  readonly order: readonly number[];
}

export interface ScheduleOptions {
  readonly ids: readonly number[];
  readonly kinds: readonly FaultKind[];
  /** Total time of faults and quiet periods (the final quiet period comes after). */
  readonly timeMs: number;
  readonly quietMs: readonly [number, number];
  readonly faultMs: readonly [number, number];
}

/**
 * The schedule: quiet, fault, quiet, fault, … within timeMs. The kinds are dealt in shuffled
 * rounds so each appears before any repeats.
 */
export function makeSchedule(rng: Rng, o: ScheduleOptions): Step[] {
  const steps: Step[] = [];
  let t = 0;
  let deck: FaultKind[] = [];
  for (;;) {
    if (deck.length === 0) deck = rng.shuffle(o.kinds);
    const fault = deck.pop()!;
    const quietMs = rng.range(o.quietMs[0], o.quietMs[1]);
    const durationMs = rng.range(o.faultMs[0], o.faultMs[1]);
    const order = rng.shuffle(o.ids);
    if (t + quietMs + durationMs > o.timeMs && steps.length > 0) break;
    steps.push({ fault, quietMs, durationMs, order });
    t += quietMs + durationMs;
    if (t >= o.timeMs) break;
  }
  return steps;
}

/** Nodes that are up and can talk both ways with enough others to form a quorum. */
export function majoritySide(ids: readonly number[], cuts: Cuts, down: ReadonlySet<number>): number[] {
  const quorum = Math.floor(ids.length / 2) + 1;
  const cut = new Set(cuts.map(([a, b]) => `${a}>${b}`));
  const up = ids.filter((id) => !down.has(id));
  return up.filter((x) => 1 + up.filter((y) => y !== x && !cut.has(`${x}>${y}`) && !cut.has(`${y}>${x}`)).length >= quorum);
}

export interface FaultWindow {
  readonly fault: FaultKind;
  readonly start: number;
  readonly end: number;
  readonly majority: readonly number[];
  readonly detail: Record<string, unknown>;
}

export class Nemesis {
  private readonly cluster: NodeCluster;
  private readonly history: History;
  private readonly rng: Rng;
  private readonly log: (line: string) => void;
  /** Told every KV key the nemesis writes (the final reads cover them too). */
  private readonly onKey: (key: string) => void;
  readonly windows: FaultWindow[] = [];
  private probes = 0;
  /** Nodes removed by the membership fault and not voters again yet (a failed re-add is retried at the heal). */
  private readonly removed = new Set<number>();
  private stopped = false;
  private wake: (() => void) | null = null;

  constructor(
    cluster: NodeCluster,
    history: History,
    rng: Rng,
    log: (line: string) => void,
    onKey: (key: string) => void,
  ) {
    this.cluster = cluster;
    this.history = history;
    this.rng = rng;
    this.log = log;
    this.onKey = onKey;
  }

  /** Cut the remaining sleep short (SIGINT): the schedule stops, the finally still heals. */
  abort(): void {
    this.stopped = true;
    this.wake?.();
  }

  private sleep(ms: number): Promise<void> {
    return new Promise((resolve) => {
      const t = setTimeout(() => {
        this.wake = null;
        resolve();
      }, ms);
      this.wake = () => {
        clearTimeout(t);
        resolve();
      };
    });
  }

  async run(steps: readonly Step[]): Promise<void> {
    try {
      for (const step of steps) {
        await this.sleep(step.quietMs);
        if (this.stopped) break;
        await this.fault(step);
        if (this.stopped) break;
      }
    } finally {
      await this.healAll();
    }
  }

  /** Everything back: no rules, every node running and resumed. */
  async healAll(): Promise<void> {
    await heal(this.cluster.hosts);
    for (const id of this.cluster.ids) {
      if (this.cluster.isPaused(id)) this.cluster.resume(id);
      if (!this.cluster.isRunning(id)) this.cluster.start(id);
    }
    for (const id of [...this.removed]) await this.readd(id);
    // The schedule ends with every node a voter again, on every node: checked, not assumed.
    const ids = this.cluster.ids;
    const voters = await waitFor(
      'every node a voter on every node',
      async () => {
        const sts = await Promise.all(ids.map((i) => this.cluster.status(i)));
        return sts.every((s) => ids.every((i) => s.voters.includes(i))) ? sts.map((s) => ({ node: s.id, voters: s.voters })) : null;
      },
      60_000,
      200,
    ).catch((e: Error) => {
      this.log(`  nemesis: after the heal: ${e.message}`);
      return null;
    });
    this.healed = voters !== null;
    this.history.event('event', 'heal-all', { allVoters: this.healed });
  }

  /** Whether the final heal left every node running, connected and a voter on every node. */
  healed = false;

  /**
   * An admin call on the leader that `nodes` agree on, retried until `timeoutMs` while there is
   * none, the answer is 409 NOT_LEADER, a 5xx, or no answer. A node cut off from its peers may
   * still say it leads (until check-quorum makes it step down): asking the nodes that can reach a
   * quorum keeps a request from waiting out its deadline there.
   */
  private async onLeaderOf(nodes: readonly number[], method: string, path: string, body: unknown, timeoutMs: number): Promise<{ status: number; leader: number }> {
    const deadline = performance.now() + timeoutMs;
    let last = { status: 0, leader: 0 };
    while (performance.now() < deadline && !this.stopped) {
      const leader = await this.cluster.waitLeader(nodes, Math.min(10_000, Math.max(1, deadline - performance.now()))).catch(() => 0);
      if (leader !== 0) {
        const r = await this.cluster.admin(leader, method, path, body).catch(() => ({ status: 0 }));
        last = { status: r.status, leader };
        if (r.status !== 409 && r.status !== 0 && r.status < 500) return last;
      }
      await this.sleep(200);
    }
    return last;
  }

  /**
   * Membership fault, first half: remove `id` (Raft §4.2.2), stop it and delete its data. `among`:
   * the nodes that must see the new configuration (not one that is cut off or down). Returns
   * false, leaving the node alone, when the removal could not be confirmed: a node whose data is
   * deleted while it is still a voter is a lost vote and a lost log, which no Raft survives — the
   * nemesis must never do that.
   */
  private async remove(id: number, among: readonly number[] = this.cluster.ids): Promise<boolean> {
    const rest = among.filter((i) => i !== id);
    const gone = async (): Promise<boolean> => (await Promise.all(rest.map((i) => this.cluster.status(i)))).every((s) => !s.voters.includes(id) && !s.learners.includes(id));
    const deadline = performance.now() + 45_000;
    let status = 0;
    let confirmed = false;
    while (!confirmed && performance.now() < deadline && !this.stopped) {
      // `among`, not `rest`: the member to remove may be the one the others elected.
      const leader = await this.cluster.waitLeader(among, 10_000).catch(() => 0);
      if (leader === id) {
        // The member to remove leads (it was elected after the fault began): hand over first.
        await this.cluster.admin(id, 'POST', '/admin/v1/leader/transfer', { to: rest[0] }).catch(() => undefined);
      } else if (leader !== 0) {
        status = (await this.cluster.admin(leader, 'DELETE', `/admin/v1/members/${id}`).catch(() => ({ status: 0 }))).status;
      }
      confirmed = await waitFor(`voters without ${id}`, gone, 5_000, 100).then(
        () => true,
        () => false,
      );
    }
    this.history.event('event', confirmed ? 'member-removed' : 'member-remove-failed', { node: id, status });
    if (!confirmed) {
      this.log(`  nemesis: removing node ${id} was not confirmed; it stays a member`);
      return false;
    }
    this.removed.add(id);
    await this.cluster.kill(id);
    await this.cluster.wipeForJoin(id);
    return true;
  }

  /**
   * Second half: start `id` empty, add it as a learner (§4.2.1), wait until it has caught up,
   * promote it. Retried inside its deadlines; a failure is recorded, retried at the final heal,
   * and the `healed` verdict fails if the node is not a voter everywhere in the end.
   */
  private async readd(id: number, among: readonly number[] = this.cluster.ids): Promise<void> {
    const rest = among.filter((i) => i !== id);
    try {
      if (!this.cluster.isRunning(id)) this.cluster.start(id);
      await this.cluster.waitServing(id, 60_000);
      const voter = async (): Promise<boolean> => (await Promise.all(rest.map((i) => this.cluster.status(i)))).every((s) => s.voters.includes(id));
      if (!(await voter().catch(() => false))) {
        const add = await this.onLeaderOf(rest, 'POST', '/admin/v1/members', { id, raftAddress: `${nodeIp(id)}:${RAFT_PORT}`, httpAddress: `${nodeIp(id)}:${HTTP_PORT}` }, 30_000);
        this.history.event('event', 'learner-added', { node: id, status: add.status });
        await waitFor(
          `node ${id} to catch up as a learner`,
          async () => {
            const leader = await this.cluster.waitLeader(rest, 2_000);
            const [l, me] = await Promise.all([this.cluster.status(leader), this.cluster.status(id)]);
            return (l.learners.includes(id) || l.voters.includes(id)) && me.applied >= l.commit - 5;
          },
          60_000,
          200,
        );
        const promote = await this.onLeaderOf(rest, 'POST', `/admin/v1/members/${id}/promote`, undefined, 30_000);
        this.history.event('event', 'member-promoted', { node: id, status: promote.status });
      }
      await waitFor(`node ${id} to be a voter on nodes ${among.join(',')}`, async () => (await Promise.all(among.map((i) => this.cluster.status(i)))).every((s) => s.voters.includes(id)), 30_000, 200);
      this.removed.delete(id);
    } catch (e) {
      this.history.event('event', 'member-readd-failed', { node: id, error: (e as Error).message });
      this.log(`  nemesis: re-adding node ${id} failed: ${(e as Error).message}`);
    }
  }

  private async leader(): Promise<number> {
    const l = await this.cluster.currentLeader();
    return l !== 0 ? l : this.rng.pick(this.cluster.ids);
  }

  private async fault(step: Step): Promise<void> {
    const ids = this.cluster.ids;
    const victim = step.order[0]!;
    let cuts: [number, number][] = [];
    const down = new Set<number>();
    let detail: Record<string, unknown> = {};
    let undo: () => Promise<void> | void = () => heal(this.cluster.hosts);
    let during: (() => Promise<void>) | null = null;
    let probeLeader = 0;
    switch (step.fault) {
      case 'partition-halves': {
        const k = Math.floor(ids.length / 2);
        const groups = [step.order.slice(0, k), step.order.slice(k)];
        cuts = cutBetween(groups);
        detail = { groups };
        break;
      }
      case 'partition-leader': {
        probeLeader = await this.leader();
        const rest = ids.filter((i) => i !== probeLeader);
        cuts = cutBetween([[probeLeader], rest]);
        detail = { isolated: probeLeader };
        break;
      }
      case 'partition-ring': {
        // Each node keeps its two ring neighbours: every node sees a majority (itself and two),
        // but no two adjacent nodes see the same one (Jepsen's majorities-ring).
        const o = step.order;
        const links = o.map((a, i) => [a, o[(i + 1) % o.length]!] as const);
        cuts = cutAllBut(ids, links);
        detail = { ring: o };
        break;
      }
      case 'partition-bridge': {
        const k = Math.floor((ids.length - 1) / 2);
        const bridge = step.order[k]!;
        const a = step.order.slice(0, k);
        const b = step.order.slice(k + 1);
        cuts = cutBetween([a, b]);
        detail = { groups: [a, b], bridge };
        break;
      }
      case 'partition-oneway': {
        // The victim hears nobody; everybody still hears it.
        cuts = ids.filter((i) => i !== victim).map((i) => [i, victim] as [number, number]);
        detail = { deaf: victim };
        break;
      }
      case 'kill':
      case 'kill-leader': {
        const t = step.fault === 'kill' ? victim : await this.leader();
        down.add(t);
        detail = { killed: t };
        undo = () => {
          if (!this.cluster.isRunning(t)) this.cluster.start(t);
        };
        break;
      }
      case 'pause':
      case 'pause-leader': {
        const t = step.fault === 'pause' ? victim : await this.leader();
        down.add(t);
        detail = { paused: t };
        undo = () => this.cluster.resume(t);
        break;
      }
      case 'membership': {
        // Remove a follower, run without it for a while, add it back empty (learner, catch-up,
        // promotion) while the workloads go on.
        const leader = await this.leader();
        const t = step.order.find((i) => i !== leader && !this.removed.has(i));
        if (t === undefined) {
          // Every follower is out already (earlier re-adds failed): nothing left to remove.
          detail = { member: null };
          break;
        }
        down.add(t);
        detail = { member: t };
        during = async () => {
          const end = performance.now() + step.durationMs;
          if (await this.remove(t)) {
            await this.sleep(Math.max(0, (end - performance.now()) / 2));
            await this.readd(t);
          }
          await this.sleep(Math.max(0, end - performance.now()));
        };
        undo = () => undefined;
        break;
      }
      case 'membership-partition': {
        // Remove a follower and add it back while another node is cut off (or killed): the
        // configuration changes twice with a minority of the old and new configurations
        // unreachable. With 5 nodes, 3 of the 4 left after the removal are still a majority of
        // it, and 4 of 5 after the re-add. Under 5 nodes nobody else may be lost (2 of 3 less one
        // is no majority of 2), so the fault is then a plain membership change.
        const leader = await this.leader();
        const t = step.order.find((i) => i !== leader && !this.removed.has(i));
        if (t === undefined) {
          detail = { member: null };
          break;
        }
        const other = ids.length >= 5 ? step.order.find((i) => i !== t && !this.removed.has(i)) : undefined;
        const how = other === undefined ? null : this.rng.chance(0.5) ? 'isolated' : 'killed';
        down.add(t);
        if (other !== undefined && how === 'isolated') {
          cuts = cutBetween([[other], ids.filter((i) => i !== other)]);
          detail = { member: t, isolated: other };
        } else if (other !== undefined) {
          down.add(other);
          detail = { member: t, killed: other };
        } else {
          detail = { member: t };
        }
        const among = ids.filter((i) => i !== other);
        during = async () => {
          const end = performance.now() + step.durationMs;
          if (await this.remove(t, among)) {
            await this.sleep(Math.max(0, (end - performance.now()) / 2));
            await this.readd(t, among);
          }
          await this.sleep(Math.max(0, end - performance.now()));
        };
        undo = async () => {
          await heal(this.cluster.hosts);
          if (other !== undefined && !this.cluster.isRunning(other)) this.cluster.start(other);
        };
        break;
      }
      case 'transfer-storm':
        detail = {};
        during = async () => {
          const end = performance.now() + step.durationMs;
          while (performance.now() < end && !this.stopped) {
            const from = await this.cluster.currentLeader();
            if (from !== 0) {
              const to = this.rng.pick(ids.filter((i) => i !== from));
              const r = await this.cluster.admin(from, 'POST', '/admin/v1/leader/transfer', { to }).catch((e: Error) => ({ status: 0, body: { error: e.message } }));
              this.history.event('event', 'transfer', { from, to, status: r.status });
            }
            await this.sleep(this.rng.range(200, 600));
          }
        };
        break;
    }

    const start = this.history.now();
    const majority = majoritySide(ids, cuts, down);
    this.history.event('start', step.fault, { ...detail, majority });
    this.log(`  nemesis: ${step.fault} ${JSON.stringify(detail)} for ${step.durationMs} ms`);
    if (cuts.length > 0) await applyCuts(this.cluster.hosts, cuts);
    if (detail.killed !== undefined) await this.cluster.kill(detail.killed as number);
    if (detail.paused !== undefined) this.cluster.pause(detail.paused as number);
    if (probeLeader !== 0) {
      // Right after the isolation: a write to the old leader, then a read on the majority side
      // once it has a leader of its own. The write cannot commit; a node that acknowledges it
      // anyway (unsafe.ackBeforeCommit) is caught by the checker: the read must not miss it.
      // The negative control relies on this probe: it makes the violation certain, not likely.
      await this.probe(probeLeader, ids.filter((i) => i !== probeLeader));
    }
    if (during) await during();
    else await this.sleep(Math.max(0, step.durationMs - (this.history.now() - start)));
    await undo();
    const end = this.history.now();
    this.history.event('stop', step.fault, detail);
    this.windows.push({ fault: step.fault, start, end, majority, detail });
  }

  private async probe(oldLeader: number, majority: readonly number[]): Promise<void> {
    const key = `${KV_PREFIX}probe-${++this.probes}`;
    this.onKey(key);
    const process = this.history.newProcess();
    await this.history.op({ workload: 'kv', process, f: 'put', node: oldLeader, input: { key, value: 'isolated', probe: true } }, () => kvPut(oldLeader, key, 'isolated'));
    const newLeader = await this.cluster.waitLeader(majority, 10_000).catch(() => 0);
    const reader = newLeader !== 0 ? newLeader : majority[0]!;
    await this.history.op({ workload: 'kv', process: this.history.newProcess(), f: 'get', node: reader, input: { key, probe: true } }, () => kvGet(reader, key));
    // Then the other way round: a write on the majority side, and a linearizable read on the
    // isolated node. It must not answer with its stale state (unsafe.readWithoutReadIndex does).
    await this.history.op({ workload: 'kv', process: this.history.newProcess(), f: 'put', node: reader, input: { key, value: 'majority', probe: true } }, () => kvPut(reader, key, 'majority'));
    await this.history.op({ workload: 'kv', process: this.history.newProcess(), f: 'get', node: oldLeader, input: { key, probe: true } }, () => kvGet(oldLeader, key));
  }
}
