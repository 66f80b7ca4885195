// The protobuf codec of the Snapshot call (src/transport/codec.ts); raft messages and forwarded
// writes travel in binary frames (frames.test.ts).
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { decodeSnapshotHeader, encodeSnapshotHeader, snapMessage, snapshotHeaderOf, u64 } from '../../../src/transport/codec.ts';
import { TransportError } from '../../../src/transport/errors.ts';
import { wireCodecs } from '../../../src/transport/proto.ts';
import type { MsgSnap } from '../../../src/raft/types.ts';
import { bytes } from './messages.ts';

const isMalformed = (e: unknown): boolean => e instanceof TransportError && e.code === 'MALFORMED';

test('MsgSnap round-trips as snapshot header (protobuf bytes) + data', () => {
  const snap: MsgSnap = {
    type: 'snap',
    from: 1,
    to: 4,
    term: 9,
    snapshot: {
      metadata: { index: 120, term: 8, confState: { voters: [1, 2, 3], learners: [4], votersOutgoing: [1, 2, 5], learnersNext: [5], autoLeave: true } },
      data: bytes(5, 6, 7),
    },
  };
  const buf = wireCodecs.snapshotChunk.encode({ header: encodeSnapshotHeader(snapshotHeaderOf(snap)) });
  const chunk = wireCodecs.snapshotChunk.decode(buf);
  assert.equal(chunk.kind, 'header');
  const header = decodeSnapshotHeader(chunk.header);
  assert.deepEqual(snapMessage(header, bytes(5, 6, 7)), snap);
});

test('the snapshot header decoder refuses integers beyond 2^53 and missing parts', () => {
  const header = (term: string, confState: unknown = { voters: ['1'], learners: [], votersOutgoing: [], learnersNext: [], autoLeave: false }) =>
    wireCodecs.snapshotChunk.decode(wireCodecs.snapshotChunk.encode({ header: { from: 1, to: 2, term, metadata: { index: 5, term: 1, confState } } as never })).header;
  assert.deepEqual(decodeSnapshotHeader(header('9007199254740991')).term, 9007199254740991, 'control: 2^53 - 1 is accepted');
  assert.throws(() => decodeSnapshotHeader(header('9007199254740993')), (e: unknown) => isMalformed(e) && /header\.term/.test((e as Error).message));
  assert.throws(() => decodeSnapshotHeader(null), (e: unknown) => isMalformed(e) && /snapshot header missing/.test((e as Error).message));
  assert.throws(() => decodeSnapshotHeader({ from: 1, to: 2, term: 1, metadata: { index: 5, term: 1, confState: null } }), (e: unknown) => isMalformed(e) && /confState: missing/.test((e as Error).message));
  assert.throws(() => u64(-1, 'x'), isMalformed);
  assert.equal(u64('42', 'x'), 42);
});
