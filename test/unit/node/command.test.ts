// The binary command and batch-entry format (src/node/command.ts).
import { test } from 'node:test';
import assert from 'node:assert/strict';
import {
  CommandFormatError,
  MAX_COMMAND_BYTES,
  MAX_COMMANDS_PER_ENTRY,
  encodeBatchEntry,
  encodeCommandBytes,
  isBinaryFormat,
  payloadOf,
  readHeader,
  splitBatchEntry,
} from '../../../src/node/command.ts';
import { encodeCommand } from '../../../src/state/command.ts';

const isFormat = (e: unknown): boolean => e instanceof CommandFormatError;

test('a command carries its header at fixed offsets and its payload untouched', () => {
  const payload = new Uint8Array([1, 2, 3, 255]);
  const c = encodeCommandBytes({ sid: 'n1-session_A', seq: 2 ** 40, ack: 7 }, payload);
  assert.deepEqual(readHeader(c), { sid: 'n1-session_A', seq: 2 ** 40, ack: 7, ts: 0 });
  assert.deepEqual(payloadOf(c), payload);
  const none = encodeCommandBytes({ sid: null, seq: 0, ack: 0 }, new Uint8Array());
  assert.deepEqual(readHeader(none), { sid: null, seq: 0, ack: 0, ts: 0 });
  assert.equal(payloadOf(none).length, 0);
});

test('the format can never be mistaken for a format-1 msgpack command, and older entries are told apart', () => {
  const old = encodeCommand({ v: 1, sid: null, seq: 0, ack: 0, ts: 1, domain: 'kv', op: 'put', args: null });
  assert.equal(isBinaryFormat(old), false);
  assert.equal(splitBatchEntry(old), null);
  assert.equal(isBinaryFormat(encodeCommandBytes({ sid: null, seq: 0, ack: 0 }, new Uint8Array())), true);
});

test('a batch entry stamps the leader clock into its copy of each header and splits back into views', () => {
  const a = encodeCommandBytes({ sid: 'abcdefgh', seq: 1, ack: 0 }, new Uint8Array([9]));
  const b = encodeCommandBytes({ sid: null, seq: 0, ack: 0 }, new Uint8Array(1000).fill(7));
  const entry = encodeBatchEntry([a, b], 1_700_000_000_123);
  const parts = splitBatchEntry(entry)!;
  assert.equal(parts.length, 2);
  assert.deepEqual(readHeader(parts[0]!), { sid: 'abcdefgh', seq: 1, ack: 0, ts: 1_700_000_000_123 });
  assert.deepEqual(payloadOf(parts[1]!), new Uint8Array(1000).fill(7));
  assert.equal(readHeader(a).ts, 0, 'the caller\'s command is not changed');
  assert.equal(parts[0]!.buffer, entry.buffer, 'views into the entry, no copy');
});

test('encoding refuses a bad session id, unsafe integers, an oversized command and empty or huge batches', () => {
  assert.throws(() => encodeCommandBytes({ sid: 'x'.repeat(65), seq: 1, ack: 0 }, new Uint8Array()), isFormat);
  assert.throws(() => encodeCommandBytes({ sid: 'ünicode', seq: 1, ack: 0 }, new Uint8Array()), isFormat);
  assert.throws(() => encodeCommandBytes({ sid: null, seq: -1, ack: 0 }, new Uint8Array()), isFormat);
  assert.throws(() => encodeCommandBytes({ sid: null, seq: 2 ** 53, ack: 0 }, new Uint8Array()), isFormat);
  assert.throws(() => encodeCommandBytes({ sid: null, seq: 0, ack: 0 }, new Uint8Array(MAX_COMMAND_BYTES)), isFormat);
  const c = encodeCommandBytes({ sid: null, seq: 0, ack: 0 }, new Uint8Array());
  assert.throws(() => encodeBatchEntry([], 1), isFormat);
  assert.throws(() => encodeBatchEntry(Array(MAX_COMMANDS_PER_ENTRY + 1).fill(c), 1), isFormat);
  assert.throws(() => encodeBatchEntry([new Uint8Array([1, 2, 3])], 1), isFormat, 'only commands of this format');
});

test('splitting refuses every truncation and trailing bytes; reading a header refuses bad formats and integers', () => {
  const entry = encodeBatchEntry([encodeCommandBytes({ sid: 'abcdefgh', seq: 3, ack: 1 }, new Uint8Array([1, 2]))], 5);
  for (let n = 2; n < entry.length; n++) assert.throws(() => splitBatchEntry(entry.subarray(0, n)), isFormat, `cut at ${n}`);
  const longer = new Uint8Array(entry.length + 1);
  longer.set(entry);
  assert.throws(() => splitBatchEntry(longer), /after the last command/);
  const zero = entry.slice();
  new DataView(zero.buffer).setUint32(2, 0);
  assert.throws(() => splitBatchEntry(zero), /1\.\.1024 commands, not 0/);
  const c = splitBatchEntry(entry)![0]!.slice();
  assert.throws(() => readHeader(c.subarray(0, 26)), isFormat);
  const wrongVersion = c.slice();
  wrongVersion[1] = 3;
  assert.throws(() => readHeader(wrongVersion), /unknown format/);
  const fractional = c.slice();
  new DataView(fractional.buffer).setFloat64(10, 1.5);
  assert.throws(() => readHeader(fractional), /seq 1.5/);
  const sidTooLong = c.slice();
  sidTooLong[26] = 200;
  assert.throws(() => readHeader(sidTooLong), /session id length/);
});
