import { test } from 'node:test';
import assert from 'node:assert/strict';
import { ProposalRouter, SESSION_TTL_MS } from '../../../src/node/router.ts';
import type { ProposeOutcome } from '../../../src/node/driver.ts';
import { StateMachine } from '../../../src/state/machine.ts';
import type { AppliedBatch } from '../../../src/state/machine.ts';
import { SESSION_LIMITS } from '../../../src/state/sessions.ts';
import { kvDomain } from '../../../src/state/kv.ts';
import { encodeBatchEntry } from '../../../src/node/command.ts';
import { prepareEntries } from '../../../src/node/applier.ts';

/** A one-node "leader": proposeLocal applies at once through a real state machine. */
function fakeLeader(opts: { loseAnswerOnce?: boolean } = {}) {
  const state = new Map<string, Uint8Array>();
  const sm = new StateMachine({ get: (ks, k) => state.get(`${ks}/${k}`) }, SESSION_LIMITS);
  sm.register(kvDomain);
  let index = 1;
  let clock = 1_000_000;
  let lose = opts.loseAnswerOnce ?? false;
  const commit = (b: AppliedBatch) => {
    for (const [ks, k, v] of b.changes.puts) state.set(`${ks}/${k}`, v);
    for (const [ks, k] of b.changes.dels) state.delete(`${ks}/${k}`);
  };
  const proposeLocal = (data: Uint8Array): Promise<ProposeOutcome> => {
      const i = ++index;
      // As the driver does: the command goes into a batch entry stamped with the leader's clock.
      const b = sm.applyEntries(prepareEntries([{ term: 2, index: i, type: 'normal', data: encodeBatchEntry([data], clock) }]));
      commit(b);
      const result = b.results.get(i)![0]!;
      if (lose && !(result.ok && (result.value as { sid?: string } | null)?.sid)) {
        // Applied, but the answer never comes back (a leader that crashed after applying).
        lose = false;
        return new Promise<ProposeOutcome>(() => undefined);
      }
      return Promise.resolve({ kind: 'applied', result });
  };
  const router = new ProposalRouter({
    id: 1,
    leader: () => 1,
    leaderChange: (ms) => new Promise((r) => setTimeout(r, Math.min(ms, 5))),
    forward: () => Promise.reject(new Error('no forwarding in this test')),
    now: () => clock,
    proposeLocal,
  });
  return { router, state, proposeLocal, advance: (ms: number) => (clock += ms) };
}

test('an applied write whose answer was lost is retried with the same (sid, seq) and applied once', async () => {
  const { router } = fakeLeader({ loseAnswerOnce: true });
  const r = await router.write('kv', 'append', { key: 'k', value: 'x' }, 5_000);
  assert.deepEqual(r, { ok: true, value: { value: 'x' } }, 'the retry got the first result, not "xx"');
  const again = await router.write('kv', 'append', { key: 'k', value: 'y' }, 5_000);
  assert.deepEqual(again, { ok: true, value: { value: 'xy' } });
});

test('after the TTL passes, the expired session is replaced and the write still succeeds', async () => {
  const { router, advance } = fakeLeader();
  await router.write('kv', 'put', { key: 'k', value: 'a' }, 5_000);
  const first = router.sid;
  advance(SESSION_TTL_MS + 1);
  const r = await router.write('kv', 'append', { key: 'k', value: 'b' }, 5_000);
  assert.deepEqual(r, { ok: true, value: { value: 'ab' } }, 'applied exactly once under the new session');
  assert.notEqual(router.sid, first);
});

test('a dropped proposal stops the write only when its code says the node is stopping, whatever its text', async () => {
  const { NodeError } = await import('../../../src/node/api.ts');
  const routerWith = (outcomes: ProposeOutcome[]): { router: ProposalRouter; calls: () => number } => {
    const leader = fakeLeader();
    let calls = 0;
    const router = new ProposalRouter({
      id: 1,
      leader: () => 1,
      leaderChange: (ms) => new Promise((r) => setTimeout(r, Math.min(ms, 5))),
      forward: () => Promise.reject(new Error('no forwarding in this test')),
      now: () => Date.now(),
      proposeLocal: (data) => {
        calls++;
        const o = outcomes.shift();
        if (o) return Promise.resolve(o);
        return leader.proposeLocal(data); // the fake leader applies it
      },
    });
    return { router, calls: () => calls };
  };
  const stopping = routerWith([{ kind: 'dropped', code: 'STOPPING', reason: 'any words at all' }]);
  await assert.rejects(stopping.router.write('kv', 'put', { key: 'k', value: 'v' }, 5_000), (e: unknown) => e instanceof NodeError && e.code === 'STOPPING');
  assert.equal(stopping.calls(), 1, 'not retried');
  // The old check matched the text: an overload whose reason happens to say "stopping" was taken
  // for a stopping node. It is retried, and the write goes through.
  const busy = routerWith([{ kind: 'dropped', code: 'OVERLOADED', reason: 'node stopping (not really)' }]);
  const r = await busy.router.write('kv', 'put', { key: 'k', value: 'v' }, 5_000);
  assert.equal(r.ok, true);
  assert.ok(busy.calls() >= 2, 'retried after the overload');
});
