import { test } from 'node:test';
import assert from 'node:assert/strict';
import { pack } from 'msgpackr';
import { MAX_COMMANDS_PER_ENTRY, encodeCommandBytes, readHeader, splitBatchEntry } from '../../src/node/command.ts';
import { KvStateMachine, decodeCommand, decodeEntry, encodeCommand, encodeEntry, type ApplyResult, type Command } from './kv-state-machine.ts';
import { fnv1a } from './checks.ts';

function kvOut(r: ApplyResult): unknown {
  assert.equal(r.type, 'kv', `expected a kv result, got ${JSON.stringify(r)}`);
  return (r as { output: unknown }).output;
}

function registered(sm: KvStateMachine, index: number): number {
  const r = sm.apply(index, { type: 'register' });
  assert.equal(r.type, 'registered');
  return (r as { sessionId: number }).sessionId;
}

test('put, get, cas and append follow the sequential specification', () => {
  const sm = new KvStateMachine();
  const s = registered(sm, 1);
  assert.deepEqual(kvOut(sm.apply(2, { type: 'kv', sessionId: s, seq: 1, input: { op: 'cas', key: 'a', expected: null, value: 'x' } })), { op: 'cas', ok: true, actual: null });
  assert.deepEqual(kvOut(sm.apply(3, { type: 'kv', sessionId: s, seq: 2, input: { op: 'cas', key: 'a', expected: 'y', value: 'z' } })), { op: 'cas', ok: false, actual: 'x' });
  assert.deepEqual(kvOut(sm.apply(4, { type: 'kv', sessionId: s, seq: 3, input: { op: 'append', key: 'a', value: '1' } })), { op: 'append', value: 'x1' });
  assert.deepEqual(kvOut(sm.apply(5, { type: 'kv', sessionId: s, seq: 4, input: { op: 'append', key: 'b', value: '2' } })), { op: 'append', value: '2' });
  assert.deepEqual(kvOut(sm.apply(6, { type: 'kv', sessionId: s, seq: 5, input: { op: 'put', key: 'a', value: 'p' } })), { op: 'put' });
  assert.equal(sm.read('a'), 'p');
  assert.equal(sm.read('missing'), null);
  assert.equal(sm.applied, 6);
});

test('a retried command (same session and seq) is applied once and answered with its first result', () => {
  const sm = new KvStateMachine();
  const s = registered(sm, 1);
  const cmd: Command = { type: 'kv', sessionId: s, seq: 1, input: { op: 'append', key: 'k', value: 'a' } };
  const first = kvOut(sm.apply(2, cmd));
  // Another session's append lands in between; the retry must still answer 'a', not 'ab'.
  const other = registered(sm, 3);
  kvOut(sm.apply(4, { type: 'kv', sessionId: other, seq: 1, input: { op: 'append', key: 'k', value: 'b' } }));
  const retry = kvOut(sm.apply(5, cmd));
  assert.deepEqual(retry, first);
  assert.deepEqual(first, { op: 'append', value: 'a' });
  assert.equal(sm.read('k'), 'ab', 'the retry must not append again');
  // An older seq than the last one is refused, not applied.
  kvOut(sm.apply(6, { type: 'kv', sessionId: s, seq: 2, input: { op: 'put', key: 'k', value: 'z' } }));
  assert.deepEqual(sm.apply(7, cmd), { type: 'staleSeq', lastSeq: 2 });
  assert.equal(sm.read('k'), 'z');
});

test('with dedupe disabled (the applyRetryTwice bug switch) a retry is applied again', () => {
  const sm = new KvStateMachine(undefined, false);
  const s = registered(sm, 1);
  const cmd: Command = { type: 'kv', sessionId: s, seq: 1, input: { op: 'append', key: 'k', value: 'a' } };
  sm.apply(2, cmd);
  assert.deepEqual(kvOut(sm.apply(3, cmd)), { op: 'append', value: 'aa' });
});

test('with refuseRetry (the refuseRetryAsStale bug switch) a retry of the last command is refused as stale', () => {
  const sm = new KvStateMachine(undefined, true, true);
  const s = registered(sm, 1);
  const cmd: Command = { type: 'kv', sessionId: s, seq: 1, input: { op: 'append', key: 'k', value: 'a' } };
  sm.apply(2, cmd);
  assert.deepEqual(sm.apply(3, cmd), { type: 'staleSeq', lastSeq: 1 });
  assert.equal(sm.read('k'), 'a', 'refused, not applied again');
});

test('sessions expire by log index and are evicted least-recently-used, identically on every replica', () => {
  const limits = { maxSessions: 2, ttlEntries: 10 };
  const a = new KvStateMachine(limits);
  const s1 = registered(a, 1);
  const s2 = registered(a, 2);
  a.apply(3, { type: 'kv', sessionId: s1, seq: 1, input: { op: 'put', key: 'k', value: 'v' } });
  // A third session evicts the least recently used one (s2, last active at index 2).
  const s3 = registered(a, 4);
  assert.equal(a.sessionCount, 2);
  assert.deepEqual(a.apply(5, { type: 'kv', sessionId: s2, seq: 1, input: { op: 'put', key: 'k', value: 'w' } }), { type: 'sessionExpired' });
  assert.equal(a.read('k'), 'v');
  // s3 idles for more than 10 entries: expired.
  for (let i = 6; i <= 15; i++) a.apply(i, { type: 'kv', sessionId: s1, seq: i, input: { op: 'get', key: 'k' } });
  assert.deepEqual(a.apply(16, { type: 'kv', sessionId: s3, seq: 1, input: { op: 'put', key: 'k', value: 'x' } }), { type: 'sessionExpired' });
  assert.equal(a.read('k'), 'v');
});

test('serialize/deserialize round-trips and equal states give byte-identical images', () => {
  const a = new KvStateMachine();
  const b = new KvStateMachine();
  const sa = registered(a, 1);
  const sb = registered(b, 1);
  assert.equal(sa, sb);
  // Same commands in the same log order, keys inserted in a different order in an earlier life.
  a.apply(2, { type: 'kv', sessionId: sa, seq: 1, input: { op: 'put', key: 'x', value: '1' } });
  a.apply(3, { type: 'kv', sessionId: sa, seq: 2, input: { op: 'put', key: 'y', value: '2' } });
  b.apply(2, { type: 'kv', sessionId: sb, seq: 1, input: { op: 'put', key: 'x', value: '1' } });
  b.apply(3, { type: 'kv', sessionId: sb, seq: 2, input: { op: 'put', key: 'y', value: '2' } });
  assert.equal(fnv1a(a.serialize()), fnv1a(b.serialize()));
  const c = KvStateMachine.deserialize(a.serialize());
  assert.equal(c.applied, 3);
  assert.equal(c.read('y'), '2');
  // The session table survives: a retry after restore still gets the remembered answer.
  assert.deepEqual(c.apply(4, { type: 'kv', sessionId: sa, seq: 2, input: { op: 'put', key: 'y', value: '2' } }), { type: 'kv', output: { op: 'put' } });
  assert.deepEqual(fnv1a(c.serialize()) === fnv1a(a.serialize()), false, 'applied index is part of the image');
});

test('indices must be applied strictly in order; commands round-trip through the codec', () => {
  const sm = new KvStateMachine();
  sm.skip(1);
  assert.throws(() => sm.apply(1, { type: 'register' }), /at or below applied/);
  const cmd: Command = { type: 'kv', sessionId: 7, seq: 3, input: { op: 'cas', key: 'k', expected: null, value: 'v' } };
  assert.deepEqual(decodeCommand(encodeCommand(cmd)), cmd);
  assert.deepEqual(decodeCommand(encodeCommand({ type: 'register' })), { type: 'register' });
  // The session and seq travel in the product's fixed header (src/node/command.ts), not the payload.
  const h = readHeader(encodeCommand(cmd));
  assert.deepEqual([h.sid, h.seq, h.ack], ['7', 3, 2]);
  assert.throws(() => decodeCommand(encodeCommandBytes({ sid: '1', seq: 1, ack: 0 }, pack({ type: 'bogus' }))), /undecodable/);
  assert.throws(() => decodeCommand(encodeCommandBytes({ sid: null, seq: 0, ack: 0 }, pack({ type: 'kv', input: cmd.input }))), /undecodable/, 'a KV command without a session');
  assert.throws(() => decodeCommand(pack(cmd)), /undecodable/, 'a bare msgpack command is not a command of this format');
});

test('a batch entry: one result per command, in order, each deduplicated by its own session and seq', () => {
  const sm = new KvStateMachine();
  // Two registrations in one entry get distinct session ids (their log positions).
  const regs = sm.applyBatch(1, [{ type: 'register' }, { type: 'register' }]);
  assert.deepEqual(regs, [
    { type: 'registered', sessionId: 1 * MAX_COMMANDS_PER_ENTRY },
    { type: 'registered', sessionId: 1 * MAX_COMMANDS_PER_ENTRY + 1 },
  ]);
  const [a, b] = regs.map((r) => (r as { sessionId: number }).sessionId) as [number, number];
  const appendA: Command = { type: 'kv', sessionId: a, seq: 1, input: { op: 'append', key: 'k', value: 'a' } };
  const appendB: Command = { type: 'kv', sessionId: b, seq: 1, input: { op: 'append', key: 'k', value: 'b' } };
  // The entry travels in the product's format; the retry of A shares the entry with its first attempt.
  const entry = encodeEntry([appendA, appendB, appendA].map(encodeCommand), 1234);
  assert.equal(splitBatchEntry(entry)!.length, 3);
  assert.equal(readHeader(splitBatchEntry(entry)![0]!).ts, 1234, 'the leader time is stamped into every header');
  const rs = sm.applyBatch(2, decodeEntry(entry));
  assert.deepEqual(rs.map(kvOut), [
    { op: 'append', value: 'a' },
    { op: 'append', value: 'ab' },
    { op: 'append', value: 'a' }, // the retry: its first result, not applied again
  ]);
  assert.equal(sm.read('k'), 'ab');
  assert.throws(() => sm.applyBatch(3, []), /1\.\.1024 commands/);
  assert.throws(() => decodeEntry(encodeCommand(appendA)), /not a batch entry/, 'a lone command is not an entry');
  // The deliberate bug's path: the entry again, past the session table.
  sm.reapplyWithoutDedupe(2, decodeEntry(entry));
  assert.equal(sm.read('k'), 'ababa', 'applyBatchTwice applies every command of the batch again');
});
