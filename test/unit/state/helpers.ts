// A state machine with every OAuth domain over an in-memory store, for the domain tests: run a
// command of one domain at a chosen leader time, check that a refusal changes nothing, read.
import assert from 'node:assert/strict';
import { StateMachine } from '../../../src/state/machine.ts';
import type { AppliedBatch, ApplyResult, StateReader } from '../../../src/state/machine.ts';
import { SESSION_LIMITS } from '../../../src/state/sessions.ts';
import { encodeCommand } from '../../../src/state/command.ts';
import { oauthDomains } from '../../../src/state/oauth-domains.ts';
import { prepareEntries } from '../../../src/node/applier.ts';

/** Durable state stand-in: applies a batch's changes the way storage does. */
export class MapState implements StateReader {
  readonly m = new Map<string, Uint8Array>();
  get(ks: string, key: string): Uint8Array | undefined {
    return this.m.get(`${ks}\u0000${key}`);
  }
  commit(b: AppliedBatch): void {
    for (const [ks, key, v] of b.changes.puts) this.m.set(`${ks}\u0000${key}`, v);
    for (const [ks, key] of b.changes.dels) this.m.delete(`${ks}\u0000${key}`);
  }
  /** Every domain record (the machine's clock and session tables left out), hex-encoded: equal snapshots = nothing changed. */
  snapshot(): Map<string, string> {
    const out = new Map<string, string>();
    for (const [k, v] of this.m) if (!k.startsWith('sys.meta') && !k.startsWith('sys.sessions') && !k.startsWith('sys.results')) out.set(k, Buffer.from(v).toString('hex'));
    return out;
  }
  /** Keys of one keyspace, sorted. */
  keys(ks: string): string[] {
    return [...this.m.keys()].filter((k) => k.startsWith(ks + '\u0000')).map((k) => k.slice(ks.length + 1)).sort();
  }
}

/** The leader time of commands unless a test gives another. */
export const T0 = 1_700_000_000_000;
let index = 0;

export function domainHarness(domain: string) {
  const st = new MapState();
  const sm = new StateMachine(st, SESSION_LIMITS);
  for (const d of oauthDomains()) sm.register(d);
  const run = (op: string, args: unknown, ts = T0): ApplyResult => {
    const i = ++index;
    const b = sm.applyEntries(prepareEntries([{ term: 1, index: i, type: 'normal', data: encodeCommand({ v: 1, sid: null, seq: 0, ack: 0, ts, domain, op, args }) }]));
    st.commit(b);
    return b.results.get(i)![0]!;
  };
  /** The command is refused with `code` (and a message matching `field`) and changes nothing. */
  const refused = (op: string, args: unknown, code: string, field?: RegExp, ts = T0): void => {
    const before = st.snapshot();
    const r = run(op, args, ts);
    assert.equal(r.ok, false, `${op} should be refused`);
    if (!r.ok) {
      assert.equal(r.code, code, r.message);
      if (field) assert.match(r.message, field);
    }
    assert.deepEqual(st.snapshot(), before, 'a refusal changes nothing');
  };
  const read = (op: string, args: unknown): unknown => {
    const r = sm.read(domain, op, args);
    if (!r.ok) assert.fail(`${r.code} ${r.message}`);
    return r.value;
  };
  return { st, sm, run, refused, read };
}

/** A small deterministic PRNG (mulberry32) in [0, 1), for seeded tests that print and replay their seed. */
export function mulberry32(seed: number): () => number {
  let a = seed >>> 0;
  return () => {
    a = (a + 0x6d2b79f5) >>> 0;
    let t = a;
    t = Math.imul(t ^ (t >>> 15), t | 1);
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61);
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296;
  };
}
