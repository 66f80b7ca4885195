// Raft messages for the transport's codec tests: one sample of every variant the batches carry,
// and a seeded generator of random ones.
import type { Entry, Message } from '../../../src/raft/types.ts';

export const bytes = (...xs: number[]): Uint8Array => new Uint8Array(xs);
export const BIG = Number.MAX_SAFE_INTEGER;

/** Every variant of the Message union except MsgSnap (which travels on the snapshot stream). */
export const samples: Message[] = [
  {
    type: 'app',
    from: 1,
    to: 2,
    term: 7,
    logTerm: 6,
    index: 41,
    commit: 40,
    entries: [
      { term: 7, index: 42, type: 'normal', data: bytes(1, 2, 3) },
      { term: 7, index: 43, type: 'confChange', data: bytes(9) },
      { term: 7, index: 44, type: 'normal', data: bytes() },
    ],
  },
  { type: 'app', from: 1, to: 2, term: BIG, logTerm: BIG, index: BIG, commit: BIG, entries: [] },
  { type: 'appResp', from: 2, to: 1, term: 7, index: 44, reject: false, rejectHint: 0, logTerm: 0 },
  { type: 'appResp', from: 2, to: 1, term: 7, index: 44, reject: true, rejectHint: 30, logTerm: 5 },
  { type: 'vote', from: 3, to: 1, term: 8, logTerm: 7, index: 44, transfer: false },
  { type: 'vote', from: 3, to: 1, term: 8, logTerm: 7, index: 44, transfer: true },
  { type: 'preVote', from: 3, to: 1, term: 9, logTerm: 7, index: 44, transfer: false },
  { type: 'voteResp', from: 1, to: 3, term: 8, reject: true },
  { type: 'voteResp', from: 1, to: 3, term: 8, reject: false },
  { type: 'preVoteResp', from: 1, to: 3, term: 9, reject: false },
  { type: 'heartbeat', from: 1, to: 2, term: 7, commit: 44, context: null },
  { type: 'heartbeat', from: 1, to: 2, term: 7, commit: 44, context: '' },
  { type: 'heartbeat', from: 1, to: 2, term: 7, commit: 44, context: 'read-17-ü' },
  { type: 'heartbeatResp', from: 2, to: 1, term: 7, context: null },
  { type: 'heartbeatResp', from: 2, to: 1, term: 7, context: 'read-17' },
  { type: 'timeoutNow', from: 1, to: 2, term: 7 },
  { type: 'readIndex', from: 2, to: 1, term: 0, context: 'ctx-1' },
  { type: 'readIndexResp', from: 1, to: 2, term: 7, context: 'ctx-1', index: 44 },
  { type: 'transferLeader', from: 2, to: 1, term: 7, transferee: 3 },
];


export function randomMessage(r: (n: number) => number): Message {
  const big = (): number => (r(4) === 0 ? BIG - r(1000) : r(1 << 30));
  const str = (): string => 'ctx-ü€'.repeat(r(20));
  const from = 1 + r(5);
  const to = 1 + r(5);
  const term = big();
  switch (r(8)) {
    case 0: {
      const entries: Entry[] = [];
      const n = r(20);
      for (let i = 0; i < n; i++) entries.push({ term: big(), index: big(), type: r(2) === 0 ? 'normal' : 'confChange', data: new Uint8Array(r(3) === 0 ? r(70_000) : r(200)).fill(r(256)) });
      return { type: 'app', from, to, term, logTerm: big(), index: big(), commit: big(), entries };
    }
    case 1:
      return { type: 'appResp', from, to, term, index: big(), reject: r(2) === 0, rejectHint: big(), logTerm: big() };
    case 2:
      return { type: r(2) === 0 ? 'vote' : 'preVote', from, to, term, logTerm: big(), index: big(), transfer: r(2) === 0 };
    case 3:
      return { type: 'heartbeat', from, to, term, commit: big(), context: r(2) === 0 ? null : str() };
    case 4:
      return { type: 'heartbeatResp', from, to, term, context: r(2) === 0 ? null : str() };
    case 5:
      return { type: 'readIndexResp', from, to, term, context: str(), index: big() };
    case 6:
      return { type: 'readIndex', from, to, term, context: str() };
    default:
      return { type: 'transferLeader', from, to, term, transferee: big() };
  }
}

