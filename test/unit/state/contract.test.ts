// The table machinery of the replicated contract (src/state/contract.ts): a table's schemas refuse
// bad arguments with INVALID_ARGUMENT and change nothing; a declared refusal code travels from
// apply through the node (binary command, batch entry, IPC channel) to the caller's envelope; an
// undeclared one becomes an error; node failures arrive as codes. The switch in
// `describeSwap` is exhaustive over the op's refusals: `tsc` fails if a code is added to the table
// and not handled (the `never` assignment).
import { prepareEntries } from '../../../src/node/applier.ts';
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { NodeError } from '../../../src/node/api.ts';
import type { ApplyResult, EncodedWriteRequest, NodeStatus, ReadRequest, WriteRequest } from '../../../src/node/api.ts';
import { encodeBatchEntry, encodeCommandBytes } from '../../../src/node/command.ts';
import { StateMachine } from '../../../src/state/machine.ts';
import type { StateReader } from '../../../src/state/machine.ts';
import { SESSION_LIMITS } from '../../../src/state/sessions.ts';
import { packValue, unpackValue } from '../../../src/state/command.ts';
import { check, must, nullable, object, oneOf, optional, read, readStubs, tableDomain, write, writeStubs, ContractError } from '../../../src/state/contract.ts';
import type { Outcome, RefusalOf } from '../../../src/state/contract.ts';
import { int, str } from '../../../src/state/validate.ts';
import { IpcConnection, IpcNodeApi, decodePrimaryMessage, decodeWorkerMessage } from '../../../src/server/ipc.ts';
import type { ServedNode } from '../../../src/server/process.ts';
import { createLogger } from '../../../src/server/log.ts';
import { MapState } from './helpers.ts';

const KS = 'test.reg';

/** A register domain with one refusing op, defined only through the table machinery. */
const WRITES = {
  set: write({
    args: object({ key: check((v, n) => str(v, n, 1, 16)), value: check((v, n) => int(v, n, 0, 100)), note: optional(check((v, n) => str(v, n, 0, 8))) }, { strict: true }),
    apply: (ctx, a): { previous: number | null } => {
      const b = ctx.tx.get(KS, a.key);
      ctx.tx.put(KS, a.key, packValue(a.value));
      return { previous: b === undefined ? null : unpackValue<number>(b) };
    },
  }),
  swap: write({
    args: object({ key: check((v, n) => str(v, n, 1, 16)), expected: nullable(check((v, n) => int(v, n, 0, 100))), value: check((v, n) => int(v, n, 0, 100)), mode: oneOf(['strict', 'loose'] as const) }),
    refuses: ['MISMATCH', 'LOCKED'],
    apply: (ctx, a, refuse): { swapped: true } => {
      const b = ctx.tx.get(KS, a.key);
      const cur = b === undefined ? null : unpackValue<number>(b);
      // The write happens before the refusal: the machine must discard it.
      ctx.tx.put(KS, a.key, packValue(a.value));
      if (cur === 42) refuse('LOCKED', `${a.key} is locked`);
      if (cur !== a.expected && a.mode === 'strict') refuse('MISMATCH', `${a.key} is ${String(cur)}`);
      return { swapped: true };
    },
  }),
  cheat: write({
    args: object({}),
    refuses: ['NOPE'],
    // A refusal code outside the declaration (a cast): apply must not let it out as a refusal.
    apply: (_ctx, _a, refuse): never => (refuse as (c: string, m: string) => never)('OTHER', 'undeclared'),
  }),
};
const READS = {
  get: read({ args: object({ key: check((v, n) => str(v, n, 1, 16)) }), refuses: ['ABSENT'], read: (r: StateReader, a, refuse): number => {
    const b = r.get(KS, a.key);
    if (b === undefined) return refuse('ABSENT', `${a.key} is not set`);
    return unpackValue<number>(b);
  } }),
};
const domain = tableDomain({ name: 'reg', keyspaces: [KS], writes: WRITES, reads: READS });
const reg = { ...writeStubs('reg', WRITES), read: readStubs('reg', READS) };

/** What a caller does with swap's outcome: exhaustive over its refusals (checked by tsc). */
function describeSwap(o: Outcome<{ swapped: true }, RefusalOf<typeof WRITES.swap>>): string {
  switch (o.kind) {
    case 'ok':
      return 'swapped';
    case 'error':
      return `error ${o.code}`;
    case 'refused': {
      const code = o.code;
      switch (code) {
        case 'MISMATCH':
          return 'mismatch';
        case 'LOCKED':
          return 'locked';
        default: {
          const unhandled: never = code;
          return unhandled;
        }
      }
    }
  }
}

/**
 * A primary's node over a real StateMachine: writeEncoded wraps the payload bytes in a binary
 * command, puts it in a batch entry stamped with the leader time and applies it — the path of
 * src/node/router.ts and the driver, without Raft.
 */
class ApplyingNode implements ServedNode {
  readonly st = new MapState();
  readonly sm = new StateMachine(this.st, SESSION_LIMITS);
  private index = 0;
  failWith: NodeError | null = null;
  encodedWrites = 0;

  constructor() {
    this.sm.register(domain);
  }

  async writeEncoded(req: EncodedWriteRequest): Promise<ApplyResult> {
    if (this.failWith) throw this.failWith;
    this.encodedWrites++;
    const i = ++this.index;
    const entry = encodeBatchEntry([encodeCommandBytes({ sid: null, seq: 0, ack: 0 }, req.payload)], 1_700_000_000_000);
    const b = this.sm.applyEntries(prepareEntries([{ term: 1, index: i, type: 'normal', data: entry }]));
    this.st.commit(b);
    return b.results.get(i)![0]!;
  }

  async write(req: WriteRequest): Promise<ApplyResult> {
    return this.writeEncoded({ payload: packValue([req.domain, req.op, req.args]), timeoutMs: req.timeoutMs });
  }

  async read(req: ReadRequest): Promise<ApplyResult> {
    if (this.failWith) throw this.failWith;
    return this.sm.read(req.domain, req.op, req.args);
  }

  async status(): Promise<NodeStatus> {
    return { id: 1, role: 'leader', leader: 1, term: 1, commit: this.index, applied: this.index, lastIndex: this.index, voters: [1], learners: [], members: null };
  }

  async stop(): Promise<void> {}
}

/** A worker's IpcNodeApi wired to the primary's IpcConnection through the channel's codecs. */
function worker(node: ApplyingNode): { node: IpcNodeApi; requestTimeoutMs: number } {
  const toWorker = (bytes: Uint8Array): void =>
    void setImmediate(() => {
      const m = decodePrimaryMessage(bytes);
      if (m.t === 'res') api.onResponse(m);
    });
  const conn = new IpcConnection(node, toWorker, { maxOutstandingPerWorker: 64, maxTimeoutMs: 10_000 }, createLogger('silent', { node: 1 }));
  const api = new IpcNodeApi(
    (bytes) =>
      void setImmediate(() => {
        const m = decodeWorkerMessage(bytes);
        if (m.t === 'req') void conn.handle(m);
      }),
    { maxOutstanding: 64, graceMs: 50, statusTimeoutMs: 1_000 },
  );
  return { node: api, requestTimeoutMs: 5_000 };
}

test('each kind of bad argument is refused with INVALID_ARGUMENT, naming the field, and changes nothing', async () => {
  const node = new ApplyingNode();
  const client = { node, requestTimeoutMs: 5_000 };
  assert.equal((await reg.set(client, { key: 'a', value: 1 })).kind, 'ok');
  const before = node.st.snapshot();
  const bad: [unknown, RegExp][] = [
    [null, /args must be an object/],
    [[1, 2], /args must be an object/],
    ['a', /args must be an object/],
    [{ value: 1 }, /^key must be a string/],
    [{ key: '', value: 1 }, /^key must be 1\.\.16 characters/],
    [{ key: 'a'.repeat(17), value: 1 }, /^key must be 1\.\.16/],
    [{ key: 'a\u0000', value: 1 }, /control characters/],
    [{ key: 'a', value: 101 }, /^value must be an integer in \[0, 100\]/],
    [{ key: 'a', value: 1.5 }, /^value must be an integer/],
    [{ key: 'a', value: '1' }, /^value must be an integer/],
    [{ key: 'a', value: 1, note: 5 }, /^note must be a string/],
    [{ key: 'a', value: 1, extra: true }, /args has an unknown field extra/],
  ];
  for (const [args, message] of bad) {
    // A plain-JS or older caller can send anything: the stub's type is bypassed on purpose here.
    const o = await reg.set(client, args as never);
    assert.equal(o.kind, 'error', JSON.stringify(args));
    if (o.kind !== 'error') continue;
    assert.equal(o.code, 'INVALID_ARGUMENT');
    assert.match(o.message, message);
    assert.deepEqual(node.st.snapshot(), before, `${JSON.stringify(args)} changed nothing`);
  }
  const o = await reg.swap(client, { key: 'a', expected: 1, value: 2, mode: 'sideways' as 'strict' });
  assert.deepEqual(o.kind === 'error' && [o.code, o.message], ['INVALID_ARGUMENT', 'mode must be one of strict, loose']);
  // A field the schema does not name (not strict) is ignored and not passed on.
  assert.equal((await reg.swap(client, { key: 'a', expected: 1, value: 2, mode: 'strict', junk: 1 } as never)).kind, 'ok');
  // An optional field may be absent, and then is not passed on either.
  assert.deepEqual(WRITES.set.args.parse({ key: 'k', value: 3 }, ''), { key: 'k', value: 3 });
  // An unknown op is the contract's error, not a refusal.
  const unknownOp = await (writeStubs('reg', { nosuch: WRITES.set }).nosuch)(client, { key: 'a', value: 1 });
  assert.deepEqual(unknownOp.kind === 'error' && unknownOp.code, 'UNKNOWN_OPERATION');
  // Own properties only: an Object.prototype name is no op.
  const proto = await (writeStubs('reg', { toString: WRITES.set }).toString)(client, { key: 'a', value: 1 });
  assert.deepEqual(proto.kind === 'error' && proto.code, 'UNKNOWN_OPERATION');
});

test('a declared refusal travels apply → batch entry → IPC → stub as { kind: refused, code }, and its writes are discarded', async () => {
  const node = new ApplyingNode();
  const client = worker(node);
  assert.equal(describeSwap(await reg.swap(client, { key: 'k', expected: null, value: 7, mode: 'strict' })), 'swapped');
  const before = node.st.snapshot();
  const o = await reg.swap(client, { key: 'k', expected: 3, value: 9, mode: 'strict' });
  assert.deepEqual(o, { kind: 'refused', code: 'MISMATCH', message: 'k is 7' });
  assert.equal(describeSwap(o), 'mismatch');
  assert.deepEqual(node.st.snapshot(), before, 'the refused swap wrote nothing');
  assert.equal(describeSwap(await reg.swap(client, { key: 'k', expected: 3, value: 42, mode: 'loose' })), 'swapped');
  assert.equal(describeSwap(await reg.swap(client, { key: 'k', expected: 42, value: 1, mode: 'strict' })), 'locked');
  // Every write crossed as encoded bytes (the primary never saw (domain, op, args) strings).
  assert.equal(node.encodedWrites, 4);
  // Reads refuse the same way.
  assert.deepEqual(await reg.read.get(client, { key: 'nope' }), { kind: 'refused', code: 'ABSENT', message: 'nope is not set' });
  assert.deepEqual(await reg.read.get(client, { key: 'k' }), { kind: 'ok', value: 42 });
});

test('an undeclared refusal code is an error, never a refusal the caller would trust', async () => {
  const node = new ApplyingNode();
  // The refuser itself throws a plain Error for an undeclared code (a bug): the state machine treats it as one.
  await assert.rejects(reg.cheat({ node, requestTimeoutMs: 1_000 }, {}), /refused with undeclared code OTHER/);
  // An answer with a code the op does not declare (a node of another version): an error, with the code kept in the message.
  const stub = writeStubs('reg', { swap: WRITES.swap }).swap;
  const fake = { write: async (): Promise<ApplyResult> => ({ ok: false, code: 'NEW_CODE', message: 'from a newer node' }), read: async (): Promise<ApplyResult> => ({ ok: true, value: null }) };
  assert.deepEqual(await stub({ node: fake, requestTimeoutMs: 1_000 }, { key: 'k', expected: null, value: 1, mode: 'strict' }), {
    kind: 'error',
    code: 'UNDECLARED_REFUSAL',
    message: 'NEW_CODE: from a newer node',
  });
});

test('node failures arrive as error codes (no text to match); must() throws a ContractError with the code', async () => {
  const node = new ApplyingNode();
  const client = worker(node);
  for (const code of ['UNAVAILABLE', 'TIMEOUT', 'STOPPING'] as const) {
    node.failWith = new NodeError(code, `injected ${code}`);
    const o = await reg.set(client, { key: 'a', value: 1 });
    assert.equal(o.kind === 'error' && o.code, code);
    const r = await reg.read.get(client, { key: 'a' });
    assert.equal(r.kind === 'error' && r.code, code);
    assert.throws(
      () => must(o, 'reg.set'),
      (e: unknown) => e instanceof ContractError && e.kind === 'error' && e.code === code,
    );
  }
  node.failWith = null;
  // Anything else thrown by the node is a bug and is not swallowed into an envelope.
  const broken = { write: async (): Promise<ApplyResult> => Promise.reject(new TypeError('bug')), read: async (): Promise<ApplyResult> => Promise.reject(new TypeError('bug')) };
  await assert.rejects(reg.set({ node: broken, requestTimeoutMs: 1_000 }, { key: 'a', value: 1 }), TypeError);
  assert.equal(must(await reg.set({ node, requestTimeoutMs: 1_000 }, { key: 'a', value: 5 })).previous, null);
  const absent = await reg.read.get({ node, requestTimeoutMs: 1_000 }, { key: 'nope' });
  assert.throws(
    () => must(absent, 'reg.get'),
    (e: unknown) => e instanceof ContractError && e.kind === 'refused' && e.code === 'ABSENT',
  );
});
