import { test } from 'node:test';
import assert from 'node:assert/strict';
import { NodeError } from '../../../src/node/api.ts';
import type { ApplyResult, EncodedWriteRequest } from '../../../src/node/api.ts';
import { packValue } from '../../../src/state/command.ts';
import { IpcBatcher, IpcConnection, IpcError, IpcNodeApi, MAX_IPC_BATCH_MESSAGES, MAX_IPC_MESSAGE_BYTES, decodePrimaryMessage, decodeWorkerMessage, encodeIpc, ipcMessages } from '../../../src/server/ipc.ts';
import type { IpcClientLimits } from '../../../src/server/ipc.ts';
import { createLogger } from '../../../src/server/log.ts';
import { FakeNode, hang } from './helpers.ts';

const silent = createLogger('silent', { node: 1 });

/** A worker's IpcNodeApi wired to a primary's IpcConnection through encode/decode, as on the real channel. */
function pair(node: FakeNode, client: Partial<IpcClientLimits> = {}, maxOutstandingPerWorker = 64) {
  let open = true;
  const toWorker = (bytes: Uint8Array): void =>
    void setImmediate(() => {
      const m = decodePrimaryMessage(bytes);
      if (m.t === 'res') api.onResponse(m);
    });
  const conn = new IpcConnection(node, toWorker, { maxOutstandingPerWorker, maxTimeoutMs: 10_000 }, silent);
  const api = new IpcNodeApi(
    (bytes) => {
      if (!open) throw new Error('channel closed');
      setImmediate(() => {
        const m = decodeWorkerMessage(bytes);
        if (m.t === 'req') void conn.handle(m);
      });
    },
    { maxOutstanding: 64, graceMs: 50, statusTimeoutMs: 1_000, ...client },
  );
  return { api, conn, close: () => (open = false) };
}

async function rejectsWith(p: Promise<unknown>, code: string, pattern?: RegExp): Promise<void> {
  await assert.rejects(p, (e: unknown) => {
    assert.ok(e instanceof NodeError, `expected NodeError, got ${String(e)}`);
    assert.equal(e.code, code);
    if (pattern) assert.match(e.message, pattern);
    return true;
  });
}

test('write, read and status cross the channel; binary values survive', async () => {
  const node = new FakeNode();
  const { api } = pair(node);
  assert.deepEqual(await api.write({ domain: 'kv', op: 'put', args: { key: 'a', value: 'x' }, timeoutMs: 1000 }), { ok: true, value: {} });
  assert.deepEqual(await api.read({ domain: 'kv', op: 'get', args: { key: 'a' }, timeoutMs: 1000, consistency: 'local' }), { ok: true, value: { value: 'x' } });
  const lastRead = node.calls.at(-1)!;
  assert.equal(lastRead.method === 'read' && lastRead.req.consistency, 'local');
  assert.deepEqual(await api.status(), node.statusValue);
  assert.deepEqual(await api.write({ domain: 'kv', op: 'cas', args: { key: 'a', expected: 'y', value: 'z' }, timeoutMs: 1000 }), { ok: true, value: { ok: false, actual: 'x' } });
  assert.deepEqual(await api.write({ domain: 'nope', op: 'x', args: {}, timeoutMs: 1000 }), { ok: false, code: 'UNKNOWN_DOMAIN', message: 'no domain nope' });

  node.hook = () => Promise.resolve({ ok: true, value: { bytes: new Uint8Array([0, 255, 7]) } });
  const r = (await api.read({ domain: 'kv', op: 'get', args: { key: 'b' }, timeoutMs: 1000 })) as ApplyResult & { ok: true };
  const bytes = (r.value as { bytes: Uint8Array }).bytes;
  assert.ok(bytes instanceof Uint8Array);
  assert.deepEqual([...bytes], [0, 255, 7]);
  assert.equal(api.outstanding, 0);
});

test('NodeErrors keep their code across the channel; any other failure is UNAVAILABLE', async () => {
  const node = new FakeNode();
  const { api } = pair(node);
  for (const code of ['UNAVAILABLE', 'TIMEOUT', 'INVALID_REQUEST', 'STOPPING'] as const) {
    node.hook = () => Promise.reject(new NodeError(code, `because ${code}`));
    await rejectsWith(api.write({ domain: 'kv', op: 'put', args: {}, timeoutMs: 1000 }), code, new RegExp(`because ${code}`));
  }
  node.hook = () => Promise.reject(new TypeError('bug'));
  await rejectsWith(api.read({ domain: 'kv', op: 'get', args: {}, timeoutMs: 1000 }), 'UNAVAILABLE', /internal error in the primary/);
});

test('the primary checks request parameters before they reach the node', async () => {
  const node = new FakeNode();
  const { api } = pair(node);
  await rejectsWith(api.write({ domain: 'kv', op: 'put', args: {}, timeoutMs: 20_000 }), 'INVALID_REQUEST', /timeoutMs must be an integer from 1 to 10000/);
  await rejectsWith(api.write({ domain: 5 as unknown as string, op: 'put', args: {}, timeoutMs: 100 }), 'INVALID_REQUEST', /domain and op/);
  await rejectsWith(api.read({ domain: 'kv', op: 'get', args: {}, timeoutMs: 100, consistency: 'stale' as 'local' }), 'INVALID_REQUEST', /consistency/);
  await rejectsWith(api.write({ domain: 'kv', op: 'put', args: {}, timeoutMs: 0 }), 'INVALID_REQUEST', /timeoutMs must be a positive integer/);
  assert.equal(node.countCalls('write') + node.countCalls('read'), 0);
});

test('a request without an answer fails TIMEOUT at its deadline plus grace, and a late answer is dropped', async () => {
  const node = new FakeNode();
  const { api } = pair(node, { graceMs: 30 });
  let release!: (r: ApplyResult) => void;
  node.hook = () => new Promise((r) => (release = r));
  const started = Date.now();
  await rejectsWith(api.write({ domain: 'kv', op: 'put', args: {}, timeoutMs: 40 }), 'TIMEOUT', /within 70 ms/);
  assert.ok(Date.now() - started >= 65, 'not before the deadline');
  assert.equal(api.outstanding, 0);
  release({ ok: true, value: 'late' });
  node.hook = null;
  // The late answer must not be delivered to the next request.
  assert.deepEqual(await api.read({ domain: 'kv', op: 'get', args: { key: 'k' }, timeoutMs: 1000 }), { ok: true, value: { value: null } });
});

test('outstanding requests are bounded on the worker side', async () => {
  const node = new FakeNode();
  const { api } = pair(node, { maxOutstanding: 3 });
  const releases: (() => void)[] = [];
  node.hook = () => new Promise((r) => releases.push(() => r({ ok: true, value: 1 })));
  const inflight = [1, 2, 3].map(() => api.write({ domain: 'kv', op: 'put', args: {}, timeoutMs: 5000 }));
  await rejectsWith(api.write({ domain: 'kv', op: 'put', args: {}, timeoutMs: 5000 }), 'UNAVAILABLE', /3 requests to the primary are in flight, the limit/);
  await new Promise<void>((r) => {
    const check = (): void => (releases.length === 3 ? r() : void setImmediate(check));
    check();
  });
  for (const rel of releases) rel();
  assert.deepEqual(await Promise.all(inflight), [1, 1, 1].map((value) => ({ ok: true, value })));
  assert.equal(api.outstanding, 0);
});

test('outstanding requests are bounded per worker on the primary side too', async () => {
  const node = new FakeNode();
  const { api, conn } = pair(node, { maxOutstanding: 10 }, 2);
  const releases: (() => void)[] = [];
  node.hook = () => new Promise((r) => releases.push(() => r({ ok: true, value: 1 })));
  const first = [1, 2].map(() => api.write({ domain: 'kv', op: 'put', args: {}, timeoutMs: 5000 }));
  const third = api.write({ domain: 'kv', op: 'put', args: {}, timeoutMs: 5000 });
  await rejectsWith(third, 'UNAVAILABLE', /worker has 2 requests in flight, the limit/);
  assert.equal(conn.outstanding, 2);
  for (const rel of releases) rel();
  await Promise.all(first);
  assert.equal(conn.outstanding, 0);
});

test('a closed channel fails requests in flight and later ones with STOPPING', async () => {
  const node = new FakeNode();
  const { api, close } = pair(node);
  node.hook = (c) => hang(c.method === 'status' ? 1000 : c.req.timeoutMs);
  const p = api.write({ domain: 'kv', op: 'put', args: {}, timeoutMs: 5000 });
  api.close('the primary is gone');
  await rejectsWith(p, 'STOPPING', /the primary is gone/);
  await rejectsWith(api.status(), 'STOPPING');
  const { api: api2, close: close2 } = pair(node);
  close2();
  await rejectsWith(api2.status(), 'UNAVAILABLE', /cannot reach the primary/);
  close();
});

test('messages are size-limited and malformed ones are refused', () => {
  assert.throws(() => encodeIpc({ t: 'res', id: 1, ok: true, value: new Uint8Array(MAX_IPC_MESSAGE_BYTES) }), IpcError);
  assert.throws(() => decodeWorkerMessage('not bytes'), /not bytes/);
  assert.throws(() => decodeWorkerMessage(new Uint8Array([0x85])), /not msgpack/);
  assert.throws(() => decodeWorkerMessage(encodeIpc({ t: 'req', id: 0, method: 'read', params: null })), /valid id/);
  assert.throws(() => decodeWorkerMessage(encodeIpc({ t: 'req', id: 1, method: 'drop' as 'read', params: null })), /unknown method drop/);
  assert.throws(() => decodePrimaryMessage(encodeIpc({ t: 'shutdown', drainMs: -1 })), /drainMs/);
  assert.throws(() => decodePrimaryMessage(encodeIpc({ t: 'ready' })), /unknown primary message type ready/);
  const unknownCode = decodePrimaryMessage(encodeIpc({ t: 'res', id: 3, ok: false, error: { code: 'WEIRD' as 'TIMEOUT', message: 'm' } }));
  assert.deepEqual(unknownCode, { t: 'res', id: 3, ok: false, error: { code: 'UNAVAILABLE', message: 'm' } });
});

test('messages sent in one event-loop turn leave as one channel message, in order, within the batch limits', async () => {
  const sent: (Uint8Array | Uint8Array[])[] = [];
  const errors: unknown[] = [];
  const b = new IpcBatcher((m) => void sent.push(m), (e) => void errors.push(e));
  const msg = (i: number) => encodeIpc({ t: 'req', id: i, method: 'status', params: null });
  b.send(msg(1));
  assert.equal(sent.length, 0, 'nothing leaves before the end of the turn');
  await new Promise((r) => setImmediate(r));
  assert.equal(sent.length, 1);
  assert.ok(sent[0] instanceof Uint8Array, 'a lone message leaves as itself, not as a batch of one');
  // A full batch leaves at once; the rest at the end of the turn; order is kept across both.
  for (let i = 1; i <= MAX_IPC_BATCH_MESSAGES + 3; i++) b.send(msg(i));
  assert.equal(sent.length, 2);
  assert.equal((sent[1] as Uint8Array[]).length, MAX_IPC_BATCH_MESSAGES);
  await new Promise((r) => setImmediate(r));
  assert.equal(sent.length, 3);
  const ids = [...ipcMessages(sent[1]), ...ipcMessages(sent[2])].map((x) => (decodeWorkerMessage(x) as { id: number }).id);
  assert.deepEqual(ids, Array.from({ length: MAX_IPC_BATCH_MESSAGES + 3 }, (_, i) => i + 1));
  // The byte limit: two messages that together exceed it never share a channel message.
  const big = new Uint8Array(MAX_IPC_MESSAGE_BYTES - 10);
  b.send(big);
  b.send(new Uint8Array(20));
  assert.equal(sent.length, 4, 'the first left when the second would have made the batch too big');
  await new Promise((r) => setImmediate(r));
  assert.equal(sent.length, 5);
  // A failing channel reports to onError and the batcher goes on.
  const failing = new IpcBatcher(() => {
    throw new Error('channel closed');
  }, (e) => void errors.push(e));
  failing.send(msg(1));
  failing.flush();
  assert.equal(errors.length, 1);
});

test('the receiving side takes a message or a batch, ignores node:cluster\'s own messages, refuses a malformed batch whole', () => {
  const m = encodeIpc({ t: 'ready' });
  assert.deepEqual(ipcMessages(m), [m]);
  assert.deepEqual(ipcMessages([m, m]), [m, m]);
  assert.deepEqual(ipcMessages({ cmd: 'NODE_CLUSTER' }), []);
  assert.deepEqual(ipcMessages([]), []);
  assert.deepEqual(ipcMessages(['text']), []);
  assert.throws(() => ipcMessages([m, 'x']), IpcError);
  assert.throws(() => ipcMessages(Array.from({ length: MAX_IPC_BATCH_MESSAGES + 1 }, () => m)), IpcError);
});

test('a write crosses the channel as the payload the worker encoded: a node with writeEncoded gets those bytes, not a re-encoding', async () => {
  const node = new FakeNode();
  const got: EncodedWriteRequest[] = [];
  const encoded = Object.assign(node, {
    writeEncoded: async (req: EncodedWriteRequest): Promise<ApplyResult> => {
      got.push(req);
      return { ok: true, value: 'applied' };
    },
  });
  const { api } = pair(encoded);
  const args = { key: 'a', value: 'x'.repeat(100), nested: [1, { b: true }] };
  assert.deepEqual(await api.write({ domain: 'kv', op: 'put', args, timeoutMs: 1000 }), { ok: true, value: 'applied' });
  assert.equal(got.length, 1);
  assert.deepEqual(Buffer.from(got[0]!.payload), Buffer.from(packValue(['kv', 'put', args])), 'the bytes the worker encoded');
  assert.equal(got[0]!.timeoutMs, 1000);
  assert.equal(node.countCalls('write'), 0, 'the decoded form is not used');
  await rejectsWith(api.write({ domain: 'kv', op: 5 as unknown as string, args: {}, timeoutMs: 1000 }), 'INVALID_REQUEST', /domain and op/);
});
