// The expiry sweep costs what it touches (issue 15): sweeping N expired records among M live ones
// reads O(N) index entries and records, never the live ones; each command carries at most the
// batch bound; a backlog larger than one round converges over the following rounds (one tick
// apart, not sweepEveryMs); and two replicas applying the same sweep commands end in the same state.
//
// Costs are counted, not timed: every index row the scanner hands out (what a LevelDB range read of
// [gte, lt) with a limit reads) and every record apply reads, per keyspace.
import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import pino from 'pino';
import { OAuthPrimary, SWEEP_FULL_RESCAN_MS } from '../../../src/server/oauth-node.ts';
import type { OAuthNodeHooks } from '../../../src/server/oauth-node.ts';
import { MasterKeyRing } from '../../../src/crypto/seal.ts';
import { oauthDomains } from '../../../src/state/oauth-domains.ts';
import { StateMachine } from '../../../src/state/machine.ts';
import { SESSION_LIMITS } from '../../../src/state/sessions.ts';
import { encodeCommand } from '../../../src/state/command.ts';
import { prepareEntries } from '../../../src/node/applier.ts';
import type { ApplyResult } from '../../../src/node/api.ts';
import { CODES_KEYSPACE, EXPIRY_KEYSPACE, LOGIN_SESSIONS_KEYSPACE, MAX_SWEEP_KEYS } from '../../../src/state/tokens.ts';

const enc = new TextEncoder();
const T0 = Date.parse('2026-12-01T00:00:00Z');

/** A one-node replica: the real state machine and domains over a map, counting what is read. */
class CountingReplica {
  readonly state = new Map<string, Map<string, Uint8Array>>();
  readonly sm: StateMachine;
  /** Records apply read, by keyspace. */
  readonly gets = new Map<string, number>();
  /** Rows the scanner returned, by keyspace. */
  readonly scanned = new Map<string, number>();
  /**
   * Deleted keys, by keyspace: what LevelDB keeps as tombstones until a compaction (never, here),
   * and a range read steps over before the first live row it returns.
   */
  readonly tombstones = new Map<string, Set<string>>();
  /** Tombstones the scanner stepped over, by keyspace. */
  readonly steppedOver = new Map<string, number>();
  private index = 1;

  constructor() {
    this.sm = new StateMachine(
      {
        get: (ks, k) => {
          this.gets.set(ks, (this.gets.get(ks) ?? 0) + 1);
          return this.state.get(ks)?.get(k);
        },
      },
      SESSION_LIMITS,
    );
    for (const d of oauthDomains()) this.sm.register(d);
  }

  apply(domain: string, op: string, args: unknown, ts: number): ApplyResult {
    const data = encodeCommand({ v: 1, sid: null, seq: 0, ack: 0, ts, domain, op, args });
    const index = ++this.index;
    const batch = this.sm.applyEntries(prepareEntries([{ term: 1, index, type: 'normal', data }]));
    for (const [ks, k, v] of batch.changes.puts) {
      let m = this.state.get(ks);
      if (!m) this.state.set(ks, (m = new Map()));
      m.set(k, v);
      this.tombstones.get(ks)?.delete(k);
    }
    for (const [ks, k] of batch.changes.dels) {
      if (this.state.get(ks)?.delete(k)) {
        let t = this.tombstones.get(ks);
        if (!t) this.tombstones.set(ks, (t = new Set()));
        t.add(k);
      }
    }
    return batch.results.get(index)![0]!;
  }

  scan(keyspace: string, o: { gte?: string; lt?: string; limit: number }): { key: Uint8Array; value: Uint8Array }[] {
    const rows = [...(this.state.get(keyspace) ?? new Map<string, Uint8Array>())]
      .filter(([k]) => (o.gte === undefined || k >= o.gte) && (o.lt === undefined || k < o.lt))
      .sort(([a], [b]) => (a < b ? -1 : a > b ? 1 : 0))
      .slice(0, o.limit);
    this.scanned.set(keyspace, (this.scanned.get(keyspace) ?? 0) + rows.length);
    // Tombstones in [gte, the last row returned] (or up to lt when the page is not full).
    const end = rows.length === o.limit ? rows[rows.length - 1]![0] : o.lt;
    let stepped = 0;
    for (const k of this.tombstones.get(keyspace) ?? []) if ((o.gte === undefined || k >= o.gte) && (end === undefined || k < end || (rows.length === o.limit && k === end))) stepped++;
    this.steppedOver.set(keyspace, (this.steppedOver.get(keyspace) ?? 0) + stepped);
    return rows.map(([k, v]) => ({ key: enc.encode(k), value: v }));
  }

  size(keyspace: string): number {
    return this.state.get(keyspace)?.size ?? 0;
  }

  resetCounts(): void {
    this.gets.clear();
    this.scanned.clear();
    this.steppedOver.clear();
  }

  /** The whole state, keyspace by keyspace, in key order (for comparing replicas). */
  dump(): [string, [string, string][]][] {
    return [...this.state]
      .sort(([a], [b]) => (a < b ? -1 : 1))
      .map(([ks, m]) => [ks, [...m].sort(([a], [b]) => (a < b ? -1 : 1)).map(([k, v]) => [k, Buffer.from(v).toString('hex')] as [string, string])]);
  }
}

interface Cluster {
  readonly clock: { now: number };
  /** Whether replica a's node is the leader. */
  readonly leader: { is: boolean };
  readonly a: CountingReplica;
  readonly b: CountingReplica;
  readonly primary: OAuthPrimary;
  /** Keys per sweep command the leader proposed, in order. */
  readonly batches: number[];
}

/**
 * Two replicas fed the same commands in the same order (what Raft gives them). The leader's
 * duties run over replica `a`; every housekeeping command is applied to both.
 */
function cluster(sweep: { batch: number; maxBatchesPerRound: number }, sweepEveryMs = 3_600_000): Cluster {
  const clock = { now: T0 };
  const leader = { is: true };
  const a = new CountingReplica();
  const b = new CountingReplica();
  const batches: number[] = [];
  const hooks: OAuthNodeHooks = {
    onStateChange: () => () => {},
    scanState: async (ks, o) => a.scan(ks, o),
    isLeader: () => leader.is,
    housekeeping: async (domain, op, args) => {
      if (domain === 'tokens' && op === 'sweep') batches.push((args as { keys: unknown[] }).keys.length);
      const ra = a.apply(domain, op, args, clock.now);
      const rb = b.apply(domain, op, args, clock.now);
      assert.deepEqual(rb, ra, 'both replicas answer a command alike');
      return ra;
    },
    read: async (req) => a.sm.read(req.domain, req.op, req.args),
  };
  const primary = new OAuthPrimary({
    node: hooks,
    publish: () => {},
    master: MasterKeyRing.parse(MasterKeyRing.generateText(), 'test'),
    config: { signingAlg: 'ES256', keyRotationPeriodS: 365 * 86_400, accessTokenTtlS: 600, idTokenTtlS: 3600 },
    log: pino({ level: 'silent' }),
    now: () => clock.now,
    tickMs: 3_600_000, // rounds are run by the test
    sweepEveryMs,
    sweep,
  });
  return { clock, leader, a, b, primary, batches };
}

const sealed = new Uint8Array([1, 2, 3]);

/** `n` login sessions and `n` codes expiring at T0 + 1 s … (due once the clock passes them), and `m` of each living a day. */
function fill(c: Cluster, n: number, m: number): void {
  for (const r of [c.a, c.b]) {
    for (let i = 0; i < n; i++) {
      assert.ok(r.apply('tokens', 'session.create', { hash: `old-s${i}`, exp: T0 + 1_000 + i, sealed }, T0).ok);
      assert.ok(r.apply('tokens', 'code.create', { hash: `old-c${i}`, exp: T0 + 1_000 + i, sealed }, T0).ok);
    }
    for (let i = 0; i < m; i++) {
      assert.ok(r.apply('tokens', 'session.create', { hash: `live-s${i}`, exp: T0 + 86_400_000, sealed }, T0).ok);
      assert.ok(r.apply('tokens', 'code.create', { hash: `live-c${i}`, exp: T0 + 86_400_000, sealed }, T0).ok);
    }
  }
}

/** Run leader rounds (each one tick, the clock unchanged) until the sweep finds nothing; returns how many swept something. */
async function sweepToTheEnd(c: Cluster, maxRounds: number): Promise<number> {
  let rounds = 0;
  for (;;) {
    const before = c.batches.length;
    await c.primary.leaderRound();
    const swept = c.batches.slice(before).reduce((x, y) => x + y, 0);
    if (swept === 0) return rounds;
    rounds++;
    assert.ok(rounds <= maxRounds, `the sweep did not converge within ${maxRounds} rounds`);
  }
}

describe('expiry sweep cost', () => {
  it('N expired among M live: reads O(N) index entries and records, whatever M; converges in bounded batches; replicas agree', async () => {
    const N = 600; // of each kind: 1,200 expired records
    const costs: { m: number; scanned: number; gets: number; rounds: number }[] = [];
    for (const M of [0, 3_000]) {
      // sweepEveryMs 0: every round is a due sweep (its bounds are what is under test here).
      const c = cluster({ batch: 100, maxBatchesPerRound: 4 }, 0);
      // Keys first (the round creates them when missing): not part of the sweep's cost.
      await c.primary.leaderRound();
      c.batches.length = 0;
      fill(c, N, M);
      assert.equal(c.a.size(EXPIRY_KEYSPACE), 2 * (N + M));
      c.clock.now = T0 + 1_000 + N + 1; // every old record is due, no live one
      c.a.resetCounts();
      const rounds = await sweepToTheEnd(c, 10);
      // Converged: only the live records and their index entries are left, on both replicas.
      for (const r of [c.a, c.b]) {
        assert.equal(r.size(LOGIN_SESSIONS_KEYSPACE), M);
        assert.equal(r.size(CODES_KEYSPACE), M);
        assert.equal(r.size(EXPIRY_KEYSPACE), 2 * M);
      }
      assert.deepEqual(c.b.dump(), c.a.dump(), 'the replicas hold the same state');
      // Bounded: no command over the batch; a round of at most 4 commands, so 1,200 keys take 3 rounds.
      assert.ok(c.batches.every((k) => k >= 1 && k <= 100), JSON.stringify(c.batches));
      assert.equal(c.batches.reduce((x, y) => x + y, 0), 2 * N);
      assert.equal(rounds, Math.ceil((2 * N) / (100 * 4)));
      // O(touched): the index rows read are the due ones (each once); apply reads each swept record a
      // bounded number of times. Nothing of the live records is read.
      const scanned = c.a.scanned.get(EXPIRY_KEYSPACE) ?? 0;
      assert.equal(scanned, 2 * N, 'each due index entry is read once, no live one');
      assert.deepEqual([...c.a.scanned.keys()].filter((k) => k !== EXPIRY_KEYSPACE && k !== 'sys.keys' && k !== 'sys.dk'), [], 'the sweep scans no record keyspace');
      const gets = [...c.a.gets.entries()].filter(([ks]) => ks === LOGIN_SESSIONS_KEYSPACE || ks === CODES_KEYSPACE).reduce((x, [, n]) => x + n, 0);
      assert.ok(gets <= 3 * 2 * N, `apply read ${gets} records for ${2 * N} swept`);
      costs.push({ m: M, scanned, gets, rounds });
    }
    // The live records change nothing of the cost.
    assert.deepEqual(
      costs.map(({ scanned, gets, rounds }) => ({ scanned, gets, rounds })),
      [costs[0], costs[0]].map(({ scanned, gets, rounds }) => ({ scanned, gets, rounds })),
      JSON.stringify(costs),
    );
  });

  it('a round at its bound is followed by another at the next tick, not after sweepEveryMs', async () => {
    const c = cluster({ batch: 50, maxBatchesPerRound: 2 });
    await c.primary.leaderRound();
    fill(c, 150, 10);
    c.clock.now = T0 + 1_000 + 150 + 1;
    c.batches.length = 0;
    // The due sweep (as the period's round would run it) stops at its bound.
    assert.equal(await c.primary.sweep(), 100);
    assert.deepEqual(c.batches, [50, 50]);
    // sweepEveryMs is an hour and the clock does not move: only being behind makes a round sweep.
    await c.primary.leaderRound();
    await c.primary.leaderRound();
    assert.deepEqual(c.batches, [50, 50, 50, 50, 50, 50]);
    // All 300 swept; the round that found the last full batch at its bound looks once more, finds nothing, and stops.
    await c.primary.leaderRound();
    await c.primary.leaderRound();
    assert.deepEqual(c.batches, [50, 50, 50, 50, 50, 50]);
    assert.equal(c.a.size(EXPIRY_KEYSPACE), 20);
  });

  it('a round starts where the last one stopped, not at the tombstones of the entries it deleted; from the beginning every SWEEP_FULL_RESCAN_MS and in a new term', async () => {
    const c = cluster({ batch: 100, maxBatchesPerRound: 20 }, 0);
    await c.primary.leaderRound();
    fill(c, 500, 50);
    c.clock.now = T0 + 1_000 + 500 + 1;
    c.a.resetCounts();
    await c.primary.leaderRound(); // the first round of the term reads from the beginning
    assert.equal(c.a.size(LOGIN_SESSIONS_KEYSPACE), 50);
    const tombs = c.a.tombstones.get(EXPIRY_KEYSPACE)!.size;
    assert.equal(tombs, 1_000);
    // More records fall due, a few at a time, as time passes: each round reads only those, and steps
    // over no tombstone of the 1,000 entries deleted before.
    for (let i = 0; i < 5; i++) {
      c.clock.now += 1_000;
      for (const r of [c.a, c.b]) assert.ok(r.apply('tokens', 'session.create', { hash: `later-${i}`, exp: c.clock.now - 1, sealed }, c.clock.now - 2).ok);
      c.a.resetCounts();
      await c.primary.leaderRound();
      assert.equal(c.a.scanned.get(EXPIRY_KEYSPACE), 1, `round ${i}: the one due entry`);
      assert.equal(c.a.steppedOver.get(EXPIRY_KEYSPACE) ?? 0, 0, `round ${i}: no tombstone stepped over`);
    }
    assert.equal(c.a.size(LOGIN_SESSIONS_KEYSPACE), 50);
    // An entry stored below the floor after the floor passed it (a worker's slow clock): kept until
    // the next full read of the index, at most SWEEP_FULL_RESCAN_MS later.
    for (const r of [c.a, c.b]) assert.ok(r.apply('tokens', 'session.create', { hash: 'skewed', exp: T0 + 10, sealed }, c.clock.now).ok);
    await c.primary.leaderRound();
    assert.ok(c.a.state.get(LOGIN_SESSIONS_KEYSPACE)!.has('skewed'));
    c.clock.now += SWEEP_FULL_RESCAN_MS;
    c.a.resetCounts();
    await c.primary.leaderRound();
    assert.equal(c.a.state.get(LOGIN_SESSIONS_KEYSPACE)!.has('skewed'), false);
    assert.ok((c.a.steppedOver.get(EXPIRY_KEYSPACE) ?? 0) >= tombs, 'the full read steps over the tombstones (until LevelDB compacts them)');
    // A new term: from the beginning again.
    c.leader.is = false;
    await c.primary.leaderRound();
    c.leader.is = true;
    for (const r of [c.a, c.b]) assert.ok(r.apply('tokens', 'session.create', { hash: 'skewed2', exp: T0 + 20, sealed }, c.clock.now).ok);
    await c.primary.leaderRound();
    assert.equal(c.a.state.get(LOGIN_SESSIONS_KEYSPACE)!.has('skewed2'), false);
    assert.deepEqual(c.b.dump(), c.a.dump());
  });

  it('the batch bound is the one apply enforces', () => {
    assert.throws(() => cluster({ batch: MAX_SWEEP_KEYS + 1, maxBatchesPerRound: 1 }), /sweep.batch must be 1\.\.1000/);
    assert.throws(() => cluster({ batch: 0, maxBatchesPerRound: 1 }), /sweep.batch/);
    assert.throws(() => cluster({ batch: 10, maxBatchesPerRound: 0 }), /maxBatchesPerRound/);
    // And apply refuses more keys than that in one command (so the bound is not only the leader's).
    const r = new CountingReplica().apply('tokens', 'sweep', { keys: Array.from({ length: MAX_SWEEP_KEYS + 1 }, () => 'x') }, T0);
    assert.equal(r.ok, false);
    assert.equal((r as { code: string }).code, 'INVALID_ARGUMENT');
  });
});
