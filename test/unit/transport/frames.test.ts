import { test } from 'node:test';
import assert from 'node:assert/strict';
import { estimateMessageBytes } from '../../../src/transport/codec.ts';
import { TransportError } from '../../../src/transport/errors.ts';
import {
  decodeForwardFrame,
  decodeOutcomesFrame,
  decodeRaftFrame,
  encodeForwardFrame,
  encodeOutcomesFrame,
  encodeRaftFrame,
  frameData,
} from '../../../src/transport/frames.ts';
import type { ForwardItem, ForwardOutcome } from '../../../src/transport/frames.ts';
import type { Message, MessageType } from '../../../src/raft/types.ts';
import { rng } from './helpers.ts';
import { BIG, randomMessage, samples } from './messages.ts';

const LIMITS = { maxMessagesPerBatch: 1024, maxEntryBytes: 4 << 20, maxContextBytes: 512 };
const FWD_LIMITS = { maxForwardsPerFrame: 512, maxCommandBytes: 1 << 20, maxSessionIdChars: 128 };

const isMalformed = (e: unknown): boolean => e instanceof TransportError && e.code === 'MALFORMED';
const isLimit = (e: unknown): boolean => e instanceof TransportError && e.code === 'LIMIT_EXCEEDED';

/** Messages of a batch from `from` to `to`: every sample, re-addressed. */
function batchOf(from: number, to: number, ms: readonly Message[]): Message[] {
  return ms.map((m) => ({ ...m, from, to }) as Message);
}

test('a raft frame is a protobuf Frame: field 1, length-delimited, whose length is the rest', () => {
  const f = encodeRaftFrame(1, 2, batchOf(1, 2, samples));
  assert.equal(f[0], 0x0a);
  const data = frameData(f);
  assert.equal(data.byteOffset - f.byteOffset + data.length, f.length);
  assert.deepEqual(frameData(Buffer.alloc(0)), Buffer.alloc(0), 'protobuf encodes an empty Frame as no bytes');
  assert.throws(() => frameData(Buffer.from([0x12, 0])), isMalformed, 'another field number');
  assert.throws(() => frameData(Buffer.concat([f, Buffer.from([0])])), isMalformed, 'bytes after Frame.data');
});

test('every message variant survives a raft frame, entry data as plain Uint8Array views', () => {
  const all: readonly MessageType[] = ['app', 'appResp', 'vote', 'preVote', 'voteResp', 'preVoteResp', 'heartbeat', 'heartbeatResp', 'snap', 'timeoutNow', 'readIndex', 'readIndexResp', 'transferLeader'];
  const covered = new Set(samples.map((m) => m.type));
  covered.add('snap'); // travels on the Snapshot call, not in a frame (codec.test.ts)
  assert.deepEqual([...covered].sort(), [...all].sort(), 'the samples must cover the whole Message union');
  const ms = batchOf(1, 2, samples);
  const back = decodeRaftFrame(frameData(encodeRaftFrame(1, 2, ms)), LIMITS);
  assert.equal(back.from, 1);
  assert.equal(back.to, 2);
  assert.deepEqual(back.messages, ms);
  for (const m of back.messages) if (m.type === 'app') for (const e of m.entries) assert.equal(Object.getPrototypeOf(e.data), Uint8Array.prototype);
});

test('the encoder refuses MsgSnap, a message of another sender or receiver, and integers past 2^53', () => {
  const snap: Message = { type: 'snap', from: 1, to: 2, term: 1, snapshot: { metadata: { index: 1, term: 1, confState: { voters: [1], learners: [], votersOutgoing: [], learnersNext: [], autoLeave: false } }, data: new Uint8Array() } };
  assert.throws(() => encodeRaftFrame(1, 2, [snap]), isMalformed);
  assert.throws(() => encodeRaftFrame(1, 2, [{ type: 'timeoutNow', from: 3, to: 2, term: 1 }]), isMalformed);
  assert.throws(() => encodeRaftFrame(1, 2, [{ type: 'timeoutNow', from: 1, to: 3, term: 1 }]), isMalformed);
  assert.throws(() => encodeRaftFrame(1, 2, [{ type: 'timeoutNow', from: 1, to: 2, term: BIG + 1 }]), isMalformed);
});

test('the decoder refuses every truncation, trailing bytes, unknown versions, kinds, types and integers past 2^53', () => {
  const data = frameData(encodeRaftFrame(1, 2, batchOf(1, 2, samples)));
  for (let n = 0; n < data.length; n++) assert.throws(() => decodeRaftFrame(data.subarray(0, n), LIMITS), isMalformed, `cut at ${n} of ${data.length}`);
  assert.throws(() => decodeRaftFrame(Buffer.concat([data, Buffer.from([0])]), LIMITS), isMalformed, 'a byte too many');
  const patched = (at: number, v: number): Buffer => {
    const b = Buffer.from(data);
    b[at] = v;
    return b;
  };
  assert.throws(() => decodeRaftFrame(patched(0, 2), LIMITS), /unknown version/);
  assert.throws(() => decodeRaftFrame(patched(1, 2), LIMITS), /kind 2/);
  // Offset 22: the first message's type (2 header bytes, from, to, count).
  assert.throws(() => decodeRaftFrame(patched(22, 99), LIMITS), /unknown message type 99/);
  // Offsets 23–26: the high half of its term; 0x00200000 there is 2^53.
  assert.throws(() => decodeRaftFrame(patched(24, 0x20), LIMITS), /below 2\^53/);
  assert.throws(() => decodeRaftFrame(patched(22, 5), LIMITS), isMalformed, 'an app read as a voteResp leaves bytes over or misreads a boolean');
});

test('the decoder enforces its limits before allocating: message count, entry bytes, context bytes, entry count', () => {
  const many = Array.from({ length: 5 }, (_, i): Message => ({ type: 'heartbeat', from: 1, to: 2, term: 1, commit: i, context: null }));
  assert.throws(() => decodeRaftFrame(frameData(encodeRaftFrame(1, 2, many)), { ...LIMITS, maxMessagesPerBatch: 4 }), isLimit);
  const big: Message = { type: 'app', from: 1, to: 2, term: 1, logTerm: 1, index: 1, commit: 1, entries: [{ term: 1, index: 2, type: 'normal', data: new Uint8Array(100) }] };
  assert.throws(() => decodeRaftFrame(frameData(encodeRaftFrame(1, 2, [big])), { ...LIMITS, maxEntryBytes: 99 }), isLimit);
  const ctx: Message = { type: 'readIndex', from: 1, to: 2, term: 1, context: 'x'.repeat(600) };
  assert.throws(() => decodeRaftFrame(frameData(encodeRaftFrame(1, 2, [ctx])), LIMITS), isLimit);
  // An app whose entry count claims more entries than the frame has bytes for.
  const lie = Buffer.from(frameData(encodeRaftFrame(1, 2, [{ ...big, entries: [] }])));
  lie.writeUInt32BE(0x0fff_ffff, lie.length - 4);
  assert.throws(() => decodeRaftFrame(lie, LIMITS), /cannot fit/);
});

test('randomized: raft frames round-trip, and estimateMessageBytes bounds each message\'s share of a frame', () => {
  const seed = Number(process.env.SEED ?? Date.now() % 1_000_000);
  console.log(`frames randomized test seed=${seed} (replay with SEED=${seed})`);
  const r = rng(seed);
  const empty = encodeRaftFrame(BIG, BIG, []).length;
  for (let i = 0; i < 300; i++) {
    const m = randomMessage(r);
    const addressed = { ...m, from: 3, to: 4 } as Message;
    const f = encodeRaftFrame(3, 4, [addressed]);
    assert.deepEqual(decodeRaftFrame(frameData(f), { ...LIMITS, maxContextBytes: 1 << 20 }).messages, [addressed], `seed=${seed} iteration ${i}`);
    // The transport cuts batches by estimateMessageBytes: it must not undercount a frame.
    assert.ok(f.length - empty <= estimateMessageBytes(addressed) + 8, `seed=${seed} iteration ${i}: ${m.type} takes ${f.length - empty} bytes, estimate ${estimateMessageBytes(addressed)}`);
  }
});

test('forward frames carry writes and outcomes frames their results or errors, by id', () => {
  const items: ForwardItem[] = [
    { id: 1, timeoutMs: 5000, sessionId: 'n1-abc', seq: 1, command: new Uint8Array([1, 2, 3]) },
    { id: BIG, timeoutMs: 0, sessionId: 'ü-session', seq: BIG, command: new Uint8Array() },
  ];
  const back = decodeForwardFrame(frameData(encodeForwardFrame(7, items)), FWD_LIMITS);
  assert.equal(back.from, 7);
  assert.deepEqual(back.items, items);
  const outcomes: ForwardOutcome[] = [
    { id: 1, ok: true, result: new Uint8Array([9]) },
    { id: 2, ok: false, error: { code: 'NOT_LEADER', leaderHint: 3, message: 'not the leader' } },
    { id: 3, ok: false, error: { code: 'INTERNAL', leaderHint: 0, message: 'ünïcode' } },
  ];
  assert.deepEqual(decodeOutcomesFrame(frameData(encodeOutcomesFrame(outcomes)), 1 << 20), outcomes);
  for (const code of ['TIMEOUT', 'PROPOSAL_DROPPED', 'UNAVAILABLE'] as const) {
    const o: ForwardOutcome[] = [{ id: 1, ok: false, error: { code, leaderHint: 0, message: '' } }];
    assert.deepEqual(decodeOutcomesFrame(frameData(encodeOutcomesFrame(o)), 1), o);
  }
});

test('forward frames refuse empty or long session ids, oversized commands, too many writes, and truncation', () => {
  const one = (over: Partial<ForwardItem>): Uint8Array => frameData(encodeForwardFrame(1, [{ id: 1, timeoutMs: 1, sessionId: 's', seq: 1, command: new Uint8Array(4), ...over }]));
  assert.throws(() => decodeForwardFrame(one({ sessionId: '' }), FWD_LIMITS), /sessionId/);
  assert.throws(() => decodeForwardFrame(one({ sessionId: 'x'.repeat(129) }), FWD_LIMITS), /sessionId/);
  assert.throws(() => decodeForwardFrame(one({}), { ...FWD_LIMITS, maxCommandBytes: 3 }), isLimit);
  assert.throws(() => decodeForwardFrame(one({}), { ...FWD_LIMITS, maxForwardsPerFrame: 0 }), isLimit);
  const data = one({});
  for (let n = 0; n < data.length; n++) assert.throws(() => decodeForwardFrame(data.subarray(0, n), FWD_LIMITS), isMalformed, `cut at ${n}`);
  const out = frameData(encodeOutcomesFrame([{ id: 1, ok: false, error: { code: 'TIMEOUT', leaderHint: 0, message: 'late' } }]));
  for (let n = 0; n < out.length; n++) assert.throws(() => decodeOutcomesFrame(out.subarray(0, n), 1 << 20), isMalformed, `outcome cut at ${n}`);
  const badCode = Buffer.from(out);
  badCode[2 + 4 + 8 + 1] = 9;
  assert.throws(() => decodeOutcomesFrame(badCode, 1 << 20), /unknown forward error code 9/);
  assert.throws(() => decodeOutcomesFrame(frameData(encodeForwardFrame(1, [])), 1), /kind 2 where 3/);
});
