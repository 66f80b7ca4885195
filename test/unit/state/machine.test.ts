import { test } from 'node:test';
import assert from 'node:assert/strict';
import { StateMachine, DomainError } from '../../../src/state/machine.ts';
import type { AppliedBatch, Domain, StateReader } from '../../../src/state/machine.ts';
import { SESSION_LIMITS } from '../../../src/state/sessions.ts';
import { kvDomain } from '../../../src/state/kv.ts';
import { encodeCommand } from '../../../src/state/command.ts';
import type { Command } from '../../../src/state/command.ts';
import type { ConfChange, Entry } from '../../../src/raft/types.ts';
import { encodeConfChange } from '../../../src/raft/confchange.ts';
import { MAX_CONF_CHANGE_CONTEXT_BYTES, MEMBERS_KEYSPACE, encodeMembersContext } from '../../../src/node/members.ts';
import { AUDIT_KEYSPACE, auditDomain, auditSeqKey, readAuditHead } from '../../../src/state/audit.ts';
import type { AuditRecord } from '../../../src/state/audit-ops.ts';
import { verifyChain } from '../../../src/audit/chain.ts';
import { unpackValue } from '../../../src/state/command.ts';
import { prepareEntries } from '../../../src/node/applier.ts';

/** Durable state stand-in: applies a batch's changes the way storage does. */
class MapState implements StateReader {
  readonly m = new Map<string, Uint8Array>();
  get(ks: string, key: string): Uint8Array | undefined {
    return this.m.get(`${ks}/${key}`);
  }
  commit(b: AppliedBatch): void {
    for (const [ks, key, v] of b.changes.puts) this.m.set(`${ks}/${key}`, v);
    for (const [ks, key] of b.changes.dels) this.m.delete(`${ks}/${key}`);
  }
}

let index = 10;
const entry = (c: Partial<Command> & Pick<Command, 'domain' | 'op'>): Entry => ({
  term: 2,
  index: ++index,
  type: 'normal',
  data: encodeCommand({ v: 1, sid: null, seq: 0, ack: 0, ts: 1_000_000, args: null, ...c }),
});

function setup(): { sm: StateMachine; st: MapState; run: (...es: Entry[]) => AppliedBatch } {
  const st = new MapState();
  const sm = new StateMachine(st, { ...SESSION_LIMITS, maxPendingResults: 3 });
  sm.register(kvDomain);
  const run = (...es: Entry[]) => {
    const b = sm.applyEntries(prepareEntries(es));
    st.commit(b);
    return b;
  };
  return { sm, st, run };
}

const open = (sid: string, ts = 1_000_000) => entry({ domain: 'session', op: 'open', sid, ts, args: { ttlMs: 60_000 } });

test('kv operations apply in order within one batch and report per-index results', () => {
  const { run } = setup();
  const a = entry({ domain: 'kv', op: 'put', args: { key: 'k', value: 'a' } });
  const b = entry({ domain: 'kv', op: 'append', args: { key: 'k', value: 'b' } });
  const c = entry({ domain: 'kv', op: 'cas', args: { key: 'k', expected: 'ab', value: 'z' } });
  const d = entry({ domain: 'kv', op: 'cas', args: { key: 'k', expected: 'ab', value: 'y' } });
  const g = entry({ domain: 'kv', op: 'get', args: { key: 'k' } });
  const r = run(a, b, c, d, g);
  assert.deepEqual(r.results.get(b.index)?.[0], { ok: true, value: { value: 'ab' } });
  assert.deepEqual(r.results.get(c.index)?.[0], { ok: true, value: { ok: true, actual: 'ab' } });
  assert.deepEqual(r.results.get(d.index)?.[0], { ok: true, value: { ok: false, actual: 'z' } });
  assert.deepEqual(r.results.get(g.index)?.[0], { ok: true, value: { value: 'z' } });
  assert.equal(r.applied, g.index);
});

test('a retried (sid, seq) is answered with its first result and applied once', () => {
  const { run } = setup();
  run(open('session-1'));
  const cmd = { domain: 'kv', op: 'append', sid: 'session-1', seq: 1, args: { key: 'k', value: 'x' } } as const;
  const first = run(entry(cmd));
  const again = run(entry(cmd)); // the same command, committed again at a later index (a retry)
  assert.deepEqual([...first.results.values()].flat(), [{ ok: true, value: { value: 'x' } }]);
  assert.deepEqual([...again.results.values()].flat(), [{ ok: true, value: { value: 'x' } }]);
  const read = run(entry({ domain: 'kv', op: 'get', args: { key: 'k' } }));
  assert.deepEqual([...read.results.values()].flat(), [{ ok: true, value: { value: 'x' } }]);
});

test('acknowledged results are forgotten; a late duplicate of an acknowledged seq is refused', () => {
  const { run, st } = setup();
  run(open('session-2'));
  run(entry({ domain: 'kv', op: 'put', sid: 'session-2', seq: 1, args: { key: 'a', value: '1' } }));
  run(entry({ domain: 'kv', op: 'put', sid: 'session-2', seq: 2, ack: 1, args: { key: 'a', value: '2' } }));
  assert.equal([...st.m.keys()].filter((k) => k.startsWith('sys.results/session-2/')).length, 1);
  const late = run(entry({ domain: 'kv', op: 'put', sid: 'session-2', seq: 1, args: { key: 'a', value: '1' } }));
  assert.equal([...late.results.values()].flat()[0]!.ok, false);
  assert.deepEqual([...late.results.values()].flat()[0], { ok: false, code: 'STALE_SEQUENCE', message: 'seq 1 was acknowledged already' });
});

test('a session with too many unacknowledged results refuses more commands', () => {
  const { run } = setup();
  run(open('session-3'));
  for (let seq = 1; seq <= 3; seq++) run(entry({ domain: 'kv', op: 'put', sid: 'session-3', seq, args: { key: 'a', value: `${seq}` } }));
  const r = run(entry({ domain: 'kv', op: 'put', sid: 'session-3', seq: 4, args: { key: 'a', value: '4' } }));
  assert.equal((([...r.results.values()].flat()[0]) as { code: string }).code, 'SESSION_BACKLOG');
  const ok = run(entry({ domain: 'kv', op: 'put', sid: 'session-3', seq: 4, ack: 3, args: { key: 'a', value: '4' } }));
  assert.equal([...ok.results.values()].flat()[0]!.ok, true);
});

test('sessions expire by leader time carried in commands, identically on every node', () => {
  const a = setup();
  const b = setup();
  const es = [
    open('session-4', 1_000_000),
    entry({ domain: 'kv', op: 'put', sid: 'session-4', seq: 1, ts: 1_030_000, args: { key: 'a', value: '1' } }),
    // 61 s after the last use: expired.
    entry({ domain: 'kv', op: 'put', sid: 'session-4', seq: 2, ts: 1_091_001, args: { key: 'a', value: '2' } }),
    entry({ domain: 'kv', op: 'put', sid: 'session-4', seq: 3, ts: 1_091_002, args: { key: 'a', value: '3' } }),
  ];
  const ra = a.run(...es);
  const rb = b.run(...es);
  assert.deepEqual([...ra.results.values()].flat().map((r) => (r.ok ? 'ok' : r.code)), ['ok', 'ok', 'SESSION_EXPIRED', 'SESSION_UNKNOWN']);
  assert.deepEqual(ra.changes, rb.changes, 'two nodes applying the same entries produce the same writes');
});

test('the expire sweep drops idle sessions', () => {
  const { run, st } = setup();
  run(open('session-5', 1_000_000), open('session-6', 1_050_000));
  const r = run(entry({ domain: 'session', op: 'expire', ts: 1_100_000 }));
  assert.deepEqual([...r.results.values()].flat(), [{ ok: true, value: { expired: 1 } }]);
  assert.equal(st.get('sys.sessions', 'session-5'), undefined);
  assert.ok(st.get('sys.sessions', 'session-6'));
});

test('a rejected command changes nothing, even if it wrote before failing', () => {
  const { sm, run, st } = setup();
  const partial: Domain = {
    name: 'partial',
    keyspaces: ['partial'],
    apply(ctx, _op, args) {
      ctx.tx.put('partial', 'written', new Uint8Array([1]));
      if ((args as { fail: boolean }).fail) throw new DomainError('REFUSED', 'no');
      return 'done';
    },
  };
  sm.register(partial);
  const r = run(entry({ domain: 'partial', op: 'x', args: { fail: true } }));
  assert.deepEqual([...r.results.values()].flat(), [{ ok: false, code: 'REFUSED', message: 'no' }]);
  assert.equal(st.get('partial', 'written'), undefined);
  run(entry({ domain: 'partial', op: 'x', args: { fail: false } }));
  assert.ok(st.get('partial', 'written'));
});

test('an unexpected exception in apply is a bug and propagates (the node stops)', () => {
  const { sm, run } = setup();
  sm.register({ name: 'buggy', keyspaces: [], apply: () => { throw new TypeError('boom'); } });
  assert.throws(() => run(entry({ domain: 'buggy', op: 'x' })), /boom/);
});

test('malformed entries, unknown domains and bad arguments answer with errors and change nothing', () => {
  const { run, st } = setup();
  const before = st.m.size;
  const bad: Entry = { term: 2, index: ++index, type: 'normal', data: new Uint8Array([0xc1]) };
  const r = run(bad, entry({ domain: 'nope', op: 'x' }), entry({ domain: 'kv', op: 'put', args: { key: 'k', value: 7 } }), entry({ domain: 'kv', op: 'put', args: { key: '', value: 'v' } }));
  assert.deepEqual([...r.results.values()].flat().map((x) => (x.ok ? 'ok' : x.code)), ['MALFORMED_COMMAND', 'UNKNOWN_DOMAIN', 'INVALID_ARGUMENT', 'INVALID_ARGUMENT']);
  // Only the monotonic clock record may have been written.
  assert.ok(st.m.size - before <= 1);
});

test('time never goes backwards across leaders', () => {
  const { sm, run } = setup();
  const seen: number[] = [];
  sm.register({ name: 'clock', keyspaces: [], apply: (ctx) => seen.push(ctx.ts) });
  run(entry({ domain: 'clock', op: 'x', ts: 5_000 }), entry({ domain: 'clock', op: 'x', ts: 4_000 }), entry({ domain: 'clock', op: 'x', ts: 6_000 }));
  assert.deepEqual(seen, [5_000, 5_000, 6_000]);
});

test('opening a session when the table is full first drops the expired ones', () => {
  const st = new MapState();
  const sm = new StateMachine(st, { ...SESSION_LIMITS, maxSessions: 2 });
  const run = (...es: Entry[]) => {
    const b = sm.applyEntries(prepareEntries(es));
    st.commit(b);
    return b;
  };
  run(open('session-a', 1_000_000), open('session-b', 1_000_000));
  const full = run(open('session-c', 1_010_000));
  assert.equal(([...full.results.values()].flat()[0] as { code: string }).code, 'SESSION_LIMIT');
  // 61 s later both are expired: the open succeeds by dropping them.
  const later = run(open('session-c', 1_061_001));
  assert.deepEqual([...later.results.values()].flat(), [{ ok: true, value: { sid: 'session-c', reopened: false } }]);
  assert.equal(st.get('sys.sessions', 'session-a'), undefined);
});

// ---------------------------------------------------------------------------------------------
// Conf-change entries (issue 6): the member table and the `member.changed` record are written by
// the entry's own apply, in log order with the commands around it.

const confEntry = (cc: ConfChange): Entry => ({ term: 2, index: ++index, type: 'confChange', data: encodeConfChange(cc) });
const addr5 = { raftAddress: '127.0.0.1:7005', httpAddress: '127.0.0.1:8005' };

function auditSetup() {
  const s = setup();
  s.sm.register(auditDomain);
  const append = (type: 'login.failed' | 'logout', ts: number) =>
    entry({ domain: 'audit', op: 'append', ts, args: { events: [{ type, sub: 'u', clientId: null, ip: '127.0.0.1', details: {} }] } });
  const records = (): AuditRecord[] =>
    [...s.st.m.entries()].filter(([k]) => k.startsWith(`${AUDIT_KEYSPACE}/`)).sort(([a], [b]) => (a < b ? -1 : 1)).map(([, v]) => unpackValue<AuditRecord>(v));
  const verify = () =>
    verifyChain({ head: readAuditHead(s.st), checkpoint: null, records: records().map((r) => ({ key: auditSeqKey(r.seq), record: r })), checkCheckpoint: async () => null });
  return { ...s, append, records, verify };
}

test('a conf change with an audit part appends one member.changed in log order, between the records of the commands around it', async () => {
  const { run, append, records, verify, st } = auditSetup();
  const audit = { ts: 2_000_000, ip: '192.0.2.7', details: { action: 'add_learner', node: 5 } };
  const before = append('login.failed', 1_999_000);
  const cc = confEntry({ changes: [{ type: 'addLearner', nodeId: 5 }], context: encodeMembersContext(new Map([[5, addr5]]), audit) });
  const after = append('logout', 2_001_000);
  const b = run(before, cc, after);
  // The conf change's answer is the driver's (it holds the core's new ConfState): none here.
  assert.deepEqual([...b.results.keys()], [before.index, after.index]);
  const rs = records();
  assert.deepEqual(rs.map((r) => [r.seq, r.type]), [[1, 'login.failed'], [2, 'member.changed'], [3, 'logout']]);
  assert.deepEqual({ ts: rs[1]!.ts, ip: rs[1]!.ip, sub: rs[1]!.sub, clientId: rs[1]!.clientId, details: rs[1]!.details }, { ts: 2_000_000, ip: '192.0.2.7', sub: null, clientId: null, details: { action: 'add_learner', node: 5 } });
  assert.deepEqual(await verify(), { ok: true, records: 3, head: { seq: 3, hash: rs[2]!.hash }, checkpoint: null });
  // The member table is written by the same apply.
  assert.deepEqual(JSON.parse(new TextDecoder().decode(st.get(MEMBERS_KEYSPACE, '5'))), addr5);
});

test('a conf change takes its record time from the audit part, made monotonic like a command\'s', () => {
  const { run, append, records } = auditSetup();
  const late = append('login.failed', 3_000_000);
  // The leader that proposed the change had a clock behind the previous leader's.
  const cc = confEntry({ changes: [{ type: 'removeNode', nodeId: 5 }], context: encodeMembersContext(new Map(), { ts: 2_500_000, ip: null, details: { action: 'remove', node: 5 } }) });
  run(late, cc);
  assert.deepEqual(records().map((r) => [r.type, r.ts]), [['login.failed', 3_000_000], ['member.changed', 3_000_000]]);
});

test('a conf change without an audit part (an old context, the core\'s leave-joint change) appends nothing and still writes the member table', () => {
  const { run, records, st } = auditSetup();
  const old = new TextEncoder().encode(JSON.stringify({ members: { 5: addr5 } })); // a context from before the audit part
  const b = run(confEntry({ changes: [{ type: 'addLearner', nodeId: 5 }], context: old }), confEntry({ changes: [] }), confEntry({ changes: [{ type: 'addVoter', nodeId: 5 }] }));
  assert.equal(b.applied, index);
  assert.deepEqual(records(), []);
  assert.ok(st.get(MEMBERS_KEYSPACE, '5'));
});

test('a malformed audit part appends nothing, the change still applies, and two nodes write the same', () => {
  const a = auditSetup();
  const b = auditSetup();
  const ctx = (o: unknown) => new TextEncoder().encode(JSON.stringify(o));
  const bad: unknown[] = [
    { members: { 5: addr5 }, audit: { ts: -1, ip: null, details: {} } },
    { members: { 5: addr5 }, audit: { ts: 1.5, ip: null, details: {} } },
    { members: { 5: addr5 }, audit: { ts: 2_000_000, ip: 7, details: {} } },
    { members: { 5: addr5 }, audit: { ts: 2_000_000, ip: null, details: [] } },
    { members: { 5: addr5 }, audit: { ts: 2_000_000, ip: null, details: { x: {} } } },
    { members: { 5: addr5 }, audit: 'yes' },
    // Shape right, but the event format refuses it (the audit domain's own checks): no record either.
    { members: { 5: addr5 }, audit: { ts: 2_000_000, ip: 'a b', details: {} } },
    { members: { 5: addr5 }, audit: { ts: 2_000_000, ip: null, details: { 'bad key': 1 } } },
    { members: { 5: addr5 }, audit: { ts: 2_000_000, ip: null, details: { x: 1.5 } } },
    // Over the size limit: addresses kept, audit part not trusted.
    { members: { 5: addr5 }, audit: { ts: 2_000_000, ip: null, details: { x: 'y'.repeat(MAX_CONF_CHANGE_CONTEXT_BYTES) } } },
  ];
  const entries = bad.flatMap((o) => [confEntry({ changes: [{ type: 'removeNode', nodeId: 5 }] }), confEntry({ changes: [{ type: 'addLearner', nodeId: 5 }], context: ctx(o) })]);
  // Not JSON at all.
  entries.push(confEntry({ changes: [{ type: 'addVoter', nodeId: 5 }], context: new Uint8Array([0xff, 0x00, 0x7b]) }));
  const ra = a.run(...entries);
  const rb = b.run(...entries);
  assert.deepEqual(a.records(), []);
  assert.deepEqual(ra.changes, rb.changes, 'two nodes applying the same entries produce the same writes');
  assert.equal(ra.applied, entries.at(-1)!.index);
  // Each add still wrote the address (the last remove-then-add of the batch leaves it in place).
  assert.deepEqual(JSON.parse(new TextDecoder().decode(a.st.get(MEMBERS_KEYSPACE, '5'))), addr5);
});

test('a node without the audit domain applies an audited conf change as before: member table only', () => {
  const { run, st } = setup();
  run(confEntry({ changes: [{ type: 'addLearner', nodeId: 5 }], context: encodeMembersContext(new Map([[5, addr5]]), { ts: 2_000_000, ip: null, details: { action: 'add_learner', node: 5 } }) }));
  assert.deepEqual([...st.m.keys()].filter((k) => !k.startsWith('sys.meta/')), [`${MEMBERS_KEYSPACE}/5`]);
});

test('a corrupt conf-change entry (the core\'s bytes) stops the node rather than diverge', () => {
  const { run } = setup();
  assert.throws(() => run({ term: 2, index: ++index, type: 'confChange', data: new TextEncoder().encode('{"v":2}') }), /unknown format/);
});
