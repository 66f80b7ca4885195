// The session table caches decoded records for the length of one applied batch and writes each
// changed record once at its end (SessionTable.begin/flush). A batch must still mean exactly what
// its entries mean one by one: the same result per index and the same stored state, whatever
// the batch boundaries. Seeded; a failure prints its seed (SEED=n replays it).
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { StateMachine } from '../../../src/state/machine.ts';
import type { AppliedBatch, ApplyResult, StateReader } from '../../../src/state/machine.ts';
import { SESSION_LIMITS } from '../../../src/state/sessions.ts';
import { kvDomain } from '../../../src/state/kv.ts';
import { encodeCommand } from '../../../src/state/command.ts';
import type { Command } from '../../../src/state/command.ts';
import type { Entry } from '../../../src/raft/types.ts';
import { mulberry32 as rng } from './helpers.ts';
import { prepareEntries } from '../../../src/node/applier.ts';

class MapState implements StateReader {
  readonly m = new Map<string, string>();
  readonly raw = new Map<string, Uint8Array>();
  get(ks: string, key: string): Uint8Array | undefined {
    return this.raw.get(`${ks}/${key}`);
  }
  commit(b: AppliedBatch): void {
    for (const [ks, key, v] of b.changes.puts) {
      this.raw.set(`${ks}/${key}`, v);
      this.m.set(`${ks}/${key}`, Buffer.from(v).toString('hex'));
    }
    for (const [ks, key] of b.changes.dels) {
      this.raw.delete(`${ks}/${key}`);
      this.m.delete(`${ks}/${key}`);
    }
  }
}

/** A random history of three clients: opens, writes, retries (of pending and acknowledged seqs), acks, closes, expiry sweeps, time jumps. */
function history(seed: number, n: number): Entry[] {
  const r = rng(seed);
  const sids = ['sessAAAA', 'sessBBBB', 'sessCCCC'];
  const seq = new Map<string, number>(sids.map((s) => [s, 0]));
  const ack = new Map<string, number>(sids.map((s) => [s, 0]));
  let ts = 1_000_000;
  const out: Entry[] = [];
  const push = (c: Omit<Command, 'v' | 'ts'>): void => {
    out.push({ term: 1, index: out.length + 1, type: 'normal', data: encodeCommand({ v: 1, ts, ...c }) });
  };
  for (const s of sids) push({ sid: s, seq: 0, ack: 0, domain: 'session', op: 'open', args: { ttlMs: 10_000 } });
  while (out.length < n) {
    ts += r() < 0.02 ? 11_000 : Math.floor(r() * 50);
    const s = sids[Math.floor(r() * sids.length)]!;
    const x = r();
    if (x < 0.6) {
      const q = seq.get(s)! + 1;
      seq.set(s, q);
      if (r() < 0.3) ack.set(s, Math.max(ack.get(s)!, q - 1 - Math.floor(r() * 4)));
      push({ sid: s, seq: q, ack: ack.get(s)!, domain: 'kv', op: 'append', args: { key: `k${Math.floor(r() * 3)}`, value: `${s[4]}${q}` } });
    } else if (x < 0.8 && seq.get(s)! > 0) {
      // a retry of an earlier seq: pending (answered from the table), acknowledged (refused) or lost
      const q = Math.max(1, seq.get(s)! - Math.floor(r() * 6));
      push({ sid: s, seq: q, ack: ack.get(s)!, domain: 'kv', op: 'append', args: { key: 'k0', value: 'retry' } });
    } else if (x < 0.85) push({ sid: null, seq: 0, ack: 0, domain: 'session', op: 'expire', args: null });
    else if (x < 0.88) {
      push({ sid: s, seq: 0, ack: 0, domain: 'session', op: 'close', args: null });
    } else if (x < 0.93) {
      push({ sid: s, seq: 0, ack: 0, domain: 'session', op: 'open', args: { ttlMs: 10_000 } });
      seq.set(s, 0);
      ack.set(s, 0);
    } else push({ sid: s, seq: seq.get(s)! + 1, ack: ack.get(s)!, domain: 'kv', op: 'get', args: { key: 'k1' } });
  }
  return out;
}

function applyAll(entries: readonly Entry[], cut: (i: number) => boolean): { results: Map<number, ApplyResult>; state: Map<string, string> } {
  const st = new MapState();
  const sm = new StateMachine(st, { ...SESSION_LIMITS, maxPendingResults: 5 });
  sm.register(kvDomain);
  const results = new Map<number, ApplyResult>();
  let batch: Entry[] = [];
  const run = (): void => {
    if (batch.length === 0) return;
    const b = sm.applyEntries(prepareEntries(batch));
    st.commit(b);
    for (const [i, res] of b.results) results.set(i, res[0]!);
    batch = [];
  };
  entries.forEach((e, i) => {
    batch.push(e);
    if (cut(i)) run();
  });
  run();
  return { results, state: st.m };
}

test('applying a history in batches of any size gives the same results and state as one entry at a time', () => {
  const base = process.env.SEED ? Number(process.env.SEED) : 20261123;
  const seeds = process.env.SEED ? 1 : 40;
  for (let k = 0; k < seeds; k++) {
    const seed = base + k;
    const entries = history(seed, 400);
    const one = applyAll(entries, () => true);
    const r = rng(seed ^ 0x5eed);
    const many = applyAll(entries, () => r() < 0.08);
    const all = applyAll(entries, () => false);
    try {
      assert.deepEqual(many.results, one.results);
      assert.deepEqual(all.results, one.results);
      assert.deepEqual(many.state, one.state);
      assert.deepEqual(all.state, one.state);
    } catch (e) {
      console.error(`sessions-batch: seed ${seed} (replay: SEED=${seed})`);
      throw e;
    }
    // The history exercises what it claims to: retries answered from the table, refusals, expiry.
    if (k === 0) {
      const codes = new Set([...one.results.values()].map((x) => (x.ok ? 'ok' : x.code)));
      for (const c of ['ok', 'STALE_SEQUENCE', 'SESSION_BACKLOG']) assert.ok(codes.has(c), `history of seed ${seed} has no ${c}: ${[...codes].join(',')}`);
    }
  }
});
