// The simulator's plumbing: seeded PRNG, event queue ordering, and the network's fault model.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import type { Message } from '../../src/raft/types.ts';
import { EventQueue } from './event-queue.ts';
import { CALM_NETWORK, Network } from './network.ts';
import { Rng } from './rng.ts';

const hb = (from: number, to: number): Message => ({ type: 'heartbeat', from, to, term: 1, commit: 0, context: null });

test('the PRNG is a pure function of its seed, and its helpers stay in range', () => {
  const a = new Rng(42);
  const b = new Rng(42);
  const c = new Rng(43);
  const xs = Array.from({ length: 100 }, () => a.u32());
  assert.deepEqual(xs, Array.from({ length: 100 }, () => b.u32()));
  assert.notDeepEqual(xs, Array.from({ length: 100 }, () => c.u32()));
  const r = new Rng(7);
  const counts = new Array<number>(6).fill(0);
  for (let i = 0; i < 60_000; i++) counts[r.int(6)]!++;
  for (const n of counts) assert.ok(n > 9_000 && n < 11_000, `int(6) is far from uniform: ${counts}`);
  for (let i = 0; i < 1000; i++) {
    const f = r.float();
    assert.ok(f >= 0 && f < 1);
    const x = r.range(-3, 3);
    assert.ok(x >= -3 && x <= 3 && Number.isInteger(x));
  }
  assert.deepEqual(r.shuffle([1, 2, 3, 4, 5]).sort(), [1, 2, 3, 4, 5]);
  assert.throws(() => r.int(0));
  assert.throws(() => new Rng(1.5));
  // Forks are deterministic too.
  assert.equal(new Rng(9).fork().u32(), new Rng(9).fork().u32());
});

test('the event queue pops by time, then by insertion order, and refuses to grow past its limit', () => {
  const q = new EventQueue<string>(5);
  q.push(30, 'c');
  q.push(10, 'a1');
  q.push(20, 'b');
  q.push(10, 'a2');
  q.push(10, 'a3');
  assert.throws(() => q.push(1, 'overflow'), /more than 5/);
  const out: string[] = [];
  for (let e = q.pop(); e !== undefined; e = q.pop()) out.push(e.event);
  assert.deepEqual(out, ['a1', 'a2', 'a3', 'b', 'c']);
  assert.equal(q.peekTimeUs(), Infinity);
});

test('partitions: halves, bridge (non-transitive), ring and one-way links block exactly what they should', () => {
  const nodes = [1, 2, 3, 4, 5];
  const net = new Network(new Rng(1), CALM_NETWORK, 100);
  net.applyPartition('bridge', nodes, 0);
  // Bridge: some node reaches everyone, yet some pair cannot talk.
  const reach = (a: number, b: number): boolean => !net.isBlocked(a, b);
  const bridge = nodes.find((n) => nodes.every((m) => m === n || (reach(n, m) && reach(m, n))));
  assert.ok(bridge !== undefined, 'a bridge node sees both sides');
  assert.ok(nodes.some((a) => nodes.some((b) => a !== b && !reach(a, b))), 'the sides are cut from each other');
  net.heal();
  assert.equal(net.blockedLinks, 0);
  net.applyPartition('ring', nodes, 0);
  for (const n of nodes) assert.equal(nodes.filter((m) => m !== n && reach(n, m)).length, 2, `n${n} talks to exactly its two ring neighbours`);
  net.heal();
  net.applyPartition('isolateLeader', nodes, 3);
  for (const n of nodes) if (n !== 3) assert.ok(!reach(3, n) && !reach(n, 3) && reach(n, n === 1 ? 2 : 1));
  net.heal();
  net.applyPartition('oneWay', nodes, 0);
  assert.equal(net.blockedLinks, 4, 'one node cut in one direction only');
  net.heal();
  net.applyPartition('halves', nodes, 0);
  assert.equal(net.blockedLinks, 2 * 2 * 3);
});

test('the network drops, duplicates and delays within its profile, and loses in-flight messages on a cut', () => {
  const net = new Network(new Rng(3), { dropP: 0.2, duplicateP: 0.1, delayMinUs: 100, delayMaxUs: 200, reorderP: 0, reorderMaxUs: 0 }, 1_000_000);
  let delivered = 0;
  for (let i = 0; i < 10_000; i++) {
    const { deliveries, unreachable } = net.send(hb(1, 2), 1_000);
    assert.equal(unreachable, false);
    for (const d of deliveries) {
      assert.ok(d.atUs >= 1_100 && d.atUs <= 1_200, `delay out of range: ${d.atUs}`);
      assert.ok(net.arrive(d.msg));
      delivered++;
    }
  }
  assert.ok(net.stats.dropped > 1_700 && net.stats.dropped < 2_300, `drop rate: ${net.stats.dropped}`);
  assert.ok(net.stats.duplicated > 600 && net.stats.duplicated < 1_000, `duplicate rate: ${net.stats.duplicated}`);
  assert.equal(delivered, 10_000 - net.stats.dropped + net.stats.duplicated);
  // A cut link: sends fail visibly, and a message already in flight is lost on arrival.
  const calm = new Network(new Rng(4), CALM_NETWORK, 2);
  const inFlight = calm.send(hb(1, 2), 0).deliveries;
  calm.block(1, 2);
  assert.equal(calm.arrive(inFlight[0]!.msg), false);
  assert.deepEqual(calm.send(hb(1, 2), 0), { deliveries: [], unreachable: true });
  assert.equal(calm.send(hb(2, 1), 0).deliveries.length, 0, 'block() cuts both directions');
  // The in-flight bound holds.
  calm.heal();
  calm.send(hb(1, 3), 0);
  calm.send(hb(1, 3), 0);
  assert.equal(calm.send(hb(1, 3), 0).deliveries.length, 0);
  assert.equal(calm.stats.overflow, 1);
});
