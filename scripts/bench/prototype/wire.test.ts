// The prototype's byte formats and configuration (wire.ts): every frame round-trips, and every
// decoder refuses a truncated or padded frame before it hands out anything.
import assert from 'node:assert/strict';
import { test } from 'node:test';
import {
  MAX_INDEX, MAX_KEY_BYTES, MAX_VALUE_BYTES, WireError, decodeAck, decodeAppend, decodeEntry, decodeItem, decodeOutcomes, decodeWrites,
  encodeAck, encodeAppend, encodeEntry, encodeItem, encodeOutcomes, encodeWrites, logKey, parseNodeConfig, stateKey,
} from './wire.ts';

test('an item carries its key and value as UTF-8, and refuses keys and values out of bounds', () => {
  const { key, value } = decodeItem(encodeItem('bench/c1/7 ü', 'välue'));
  assert.equal(key.toString('utf8'), 'bench/c1/7 ü');
  assert.equal(value.toString('utf8'), 'välue');
  assert.equal(decodeItem(encodeItem('k', '')).value.length, 0);
  assert.throws(() => encodeItem('', 'v'), WireError);
  assert.throws(() => encodeItem('k'.repeat(MAX_KEY_BYTES + 1), 'v'), WireError);
  assert.throws(() => encodeItem('k', 'v'.repeat(MAX_VALUE_BYTES + 1)), WireError);
  const item = encodeItem('key', 'value');
  assert.throws(() => decodeItem(item.subarray(0, item.length - 1)), WireError);
  assert.throws(() => decodeItem(Buffer.concat([item, Buffer.from([0])])), WireError);
});

test('writes round-trip with their ids, and a bad frame calls back for none of its writes', () => {
  const items = [encodeItem('a', '1'), encodeItem('bb', '22'), encodeItem('ccc', '')];
  const ids = [1, 0xffff_ffff, 42];
  const frame = encodeWrites(ids, items, items.reduce((n, b) => n + b.length, 0));
  const got: [number, string][] = [];
  decodeWrites(frame, (id, item) => got.push([id, decodeItem(item).key.toString()]));
  assert.deepEqual(got, [[1, 'a'], [0xffff_ffff, 'bb'], [42, 'ccc']]);
  let calls = 0;
  assert.throws(() => decodeWrites(frame.subarray(0, frame.length - 1), () => calls++), WireError);
  assert.throws(() => decodeWrites(Buffer.concat([frame, Buffer.from([9])]), () => calls++), WireError);
  assert.equal(calls, 0, 'nothing handed out from a refused frame');
  assert.throws(() => encodeWrites(ids, items, 1), WireError, 'a wrong byte count is refused');
  assert.throws(() => encodeEntry(items, 1000), WireError, 'a wrong byte count is refused');
  assert.throws(() => encodeWrites([1], items, 0), WireError, 'ids and items must pair up');
  decodeWrites(encodeWrites([], [], 0), () => calls++);
  assert.equal(calls, 0);
});

test('outcomes round-trip; a wrong length or an ok byte other than 0/1 is refused', () => {
  const f = encodeOutcomes([3, 4, 5], [true, false, true]);
  const got: [number, boolean][] = [];
  decodeOutcomes(f, (id, ok) => got.push([id, ok]));
  assert.deepEqual(got, [[3, true], [4, false], [5, true]]);
  assert.throws(() => decodeOutcomes(f.subarray(0, 8), () => undefined), WireError);
  const bad = Buffer.from(f);
  bad[8] = 2;
  assert.throws(() => decodeOutcomes(bad, () => assert.fail('called back for a refused frame')), WireError);
});

test('an entry and its append frame round-trip; acks and log keys carry indexes up to 2^48 - 1', () => {
  const items = [encodeItem('x', 'y'), encodeItem('z', 'w')];
  const entry = encodeEntry(items, items[0]!.length + items[1]!.length);
  assert.deepEqual(decodeEntry(entry).map((b) => decodeItem(b).value.toString()), ['y', 'w']);
  const a = decodeAppend(encodeAppend(MAX_INDEX, 7, entry));
  assert.equal(a.index, MAX_INDEX);
  assert.equal(a.commit, 7);
  assert.deepEqual(a.entry, entry);
  assert.throws(() => encodeAppend(MAX_INDEX + 1, 0, entry), WireError);
  assert.throws(() => decodeAppend(encodeAppend(1, 0, entry).subarray(0, 20)), WireError);
  assert.equal(decodeAck(encodeAck(123_456_789_012)), 123_456_789_012);
  assert.throws(() => decodeAck(Buffer.alloc(5)), WireError);
  assert.ok(Buffer.compare(logKey(255), logKey(256)) < 0, 'log keys sort by index');
  assert.ok(!stateKey(Buffer.from('k')).equals(logKey(1)));
});

test('a node configuration is checked field by field', () => {
  const good = { id: 2, httpPort: 8080, peerPorts: [1, 2, 3], dataDir: '/d', tlsDir: null, worker: true };
  assert.deepEqual(parseNodeConfig(JSON.stringify(good)), good);
  assert.deepEqual(parseNodeConfig(JSON.stringify({ ...good, tlsDir: '/t' })).tlsDir, '/t');
  assert.throws(() => parseNodeConfig(undefined), /not set/);
  assert.throws(() => parseNodeConfig('{'), /not JSON/);
  assert.throws(() => parseNodeConfig('[]'), /not an object/);
  for (const [field, v] of [['id', 0], ['id', 4], ['id', 1.5], ['httpPort', 70000], ['peerPorts', [1, 2]], ['peerPorts', [1, 2, 0]], ['dataDir', ''], ['tlsDir', 3], ['worker', 'yes']] as const) {
    assert.throws(() => parseNodeConfig(JSON.stringify({ ...good, [field]: v })), WireError, `${field} = ${JSON.stringify(v)}`);
  }
});
