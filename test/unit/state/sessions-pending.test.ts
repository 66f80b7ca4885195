// The session table keeps each session's unacknowledged sequence numbers ascending and looks them
// up by binary search. Sequence numbers may be applied out of order (a retry of seq 4 that lands
// after seq 5): retries, acknowledgements and the backlog limit must not depend on the order.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { StateMachine } from '../../../src/state/machine.ts';
import type { ApplyResult } from '../../../src/state/machine.ts';
import { SESSION_LIMITS } from '../../../src/state/sessions.ts';
import { kvDomain } from '../../../src/state/kv.ts';
import { encodeCommand } from '../../../src/state/command.ts';
import { MapState, mulberry32 } from './helpers.ts';
import { prepareEntries } from '../../../src/node/applier.ts';

function machine(maxPendingResults: number) {
  const st = new MapState();
  const sm = new StateMachine(st, { ...SESSION_LIMITS, maxPendingResults });
  sm.register(kvDomain);
  let index = 0;
  const run = (sid: string | null, seq: number, ack: number, domain: string, op: string, args: unknown): ApplyResult => {
    const i = ++index;
    const b = sm.applyEntries(prepareEntries([{ term: 1, index: i, type: 'normal', data: encodeCommand({ v: 1, sid, seq, ack, ts: 1_000_000 + i, domain, op, args }) }]));
    st.commit(b);
    return b.results.get(i)![0]!;
  };
  const results = (sid: string): string[] => st.keys('sys.results').filter((k) => k.startsWith(`${sid}/`));
  return { run, results };
}

test('out-of-order sequence numbers: each retry gets its own recorded result, acks drop exactly the acknowledged ones', () => {
  const { run, results } = machine(64);
  assert.equal(run('sess-ooo1', 0, 0, 'session', 'open', { ttlMs: 60_000 }).ok, true);
  for (const seq of [5, 2, 4, 1, 3]) assert.deepEqual(run('sess-ooo1', seq, 0, 'kv', 'append', { key: 'k', value: String(seq) }).ok, true);
  // Retries answer from the table, in any order, and change nothing.
  assert.deepEqual(run('sess-ooo1', 4, 0, 'kv', 'append', { key: 'k', value: 'again' }), { ok: true, value: { value: '524' } });
  assert.deepEqual(run('sess-ooo1', 5, 0, 'kv', 'append', { key: 'k', value: 'again' }), { ok: true, value: { value: '5' } });
  assert.equal(results('sess-ooo1').length, 5);
  // ack 3 (carried by a new command) drops results 1..3 and keeps 4, 5 and the new 6.
  run('sess-ooo1', 6, 3, 'kv', 'append', { key: 'k', value: '6' });
  assert.equal(results('sess-ooo1').length, 3);
  assert.equal(run('sess-ooo1', 2, 3, 'kv', 'append', { key: 'k', value: 'x' }).ok, false, 'an acknowledged seq is refused');
  assert.deepEqual(run('sess-ooo1', 4, 3, 'kv', 'append', { key: 'k', value: 'again' }), { ok: true, value: { value: '524' } });
});

test('randomized: the backlog limit counts the unacknowledged results above the ack, whatever the order they arrived in', () => {
  const seed = Number(process.env.SEED ?? Date.now() % 1_000_000);
  console.log(`sessions-pending randomized test seed=${seed} (replay with SEED=${seed})`);
  const r = mulberry32(seed);
  for (let round = 0; round < 20; round++) {
    const limit = 1 + Math.floor(r() * 8);
    const { run } = machine(limit);
    const sid = `sess-rand${round}`;
    run(sid, 0, 0, 'session', 'open', { ttlMs: 60_000 });
    const applied = new Set<number>();
    let ack = 0;
    for (let step = 0; step < 60; step++) {
      if (r() < 0.2) ack = Math.min(ack + Math.floor(r() * 3), Math.max(0, ...applied));
      const seq = ack + 1 + Math.floor(r() * (limit + 3));
      const res = run(sid, seq, ack, 'kv', 'put', { key: 'k', value: String(seq) });
      // The model: a pending retry answers; otherwise refused iff `limit` results above the ack are pending.
      const pendingAbove = [...applied].filter((q) => q > ack).length;
      const expectRefused = !applied.has(seq) && pendingAbove >= limit;
      assert.equal(!res.ok && res.code === 'SESSION_BACKLOG', expectRefused, `seed=${seed} round ${round} step ${step}: seq ${seq} ack ${ack} pending ${pendingAbove} limit ${limit}`);
      if (res.ok) applied.add(seq);
      for (const q of [...applied]) if (q <= ack) applied.delete(q);
    }
  }
});
