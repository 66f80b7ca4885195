// The IPC messages health and metrics add: their decoding, the primary's checks, the worker's proxy.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { IpcConnection, IpcError, IpcNodeApi, decodePrimaryMessage, decodeWorkerMessage, encodeIpc } from '../../../src/server/ipc.ts';
import type { IpcResponse } from '../../../src/server/ipc.ts';
import { NodeError } from '../../../src/node/api.ts';
import type { HealthRequest, NodeHealth } from '../../../src/node/api.ts';
import { createLogger } from '../../../src/server/log.ts';
import { FakeNode } from '../server/helpers.ts';

const log = createLogger('silent', { node: 1 });

test('ipc: health and metrics requests, metrics.collect and metrics.report decode; malformed ones are refused', () => {
  assert.deepEqual(decodeWorkerMessage(encodeIpc({ t: 'req', id: 3, method: 'health', params: { deep: true, timeoutMs: 10 } })), { t: 'req', id: 3, method: 'health', params: { deep: true, timeoutMs: 10 } });
  assert.equal((decodeWorkerMessage(encodeIpc({ t: 'req', id: 4, method: 'metrics', params: null })) as { method: string }).method, 'metrics');
  assert.deepEqual(decodeWorkerMessage(encodeIpc({ t: 'metrics.report', id: 5, metrics: [] })), { t: 'metrics.report', id: 5, metrics: [] });
  assert.deepEqual(decodePrimaryMessage(encodeIpc({ t: 'metrics.collect', id: 6 })), { t: 'metrics.collect', id: 6 });
  assert.throws(() => decodeWorkerMessage(encodeIpc({ t: 'metrics.report', id: 0, metrics: [] } as never)), IpcError);
  assert.throws(() => decodePrimaryMessage(encodeIpc({ t: 'metrics.collect', id: -1 } as never)), IpcError);
  assert.throws(() => decodeWorkerMessage(encodeIpc({ t: 'req', id: 7, method: 'metricz', params: null } as never)), /unknown method/);
});

class HealthNode extends FakeNode {
  readonly asked: HealthRequest[] = [];
  async health(req: HealthRequest): Promise<NodeHealth> {
    this.asked.push(req);
    return { id: 1, role: 'leader', leader: 1, term: 2, commit: 5, applied: 5, leaderContactAgeMs: 0, electionTimeoutMs: 1000, stopping: false, deep: null };
  }
}

async function ask(conn: IpcConnection, sent: IpcResponse[], method: 'health' | 'metrics', params: unknown): Promise<IpcResponse> {
  const before = sent.length;
  await conn.handle({ t: 'req', id: 100 + before, method, params });
  assert.equal(sent.length, before + 1);
  return sent.at(-1)!;
}

test('ipc: the primary checks health parameters, and answers metrics from its collector', async () => {
  const node = new HealthNode();
  const sent: IpcResponse[] = [];
  const send = (b: Uint8Array): void => void sent.push(decodePrimaryMessage(b) as IpcResponse);
  const limits = { maxOutstandingPerWorker: 4, maxTimeoutMs: 5_000 };
  const conn = new IpcConnection(node, send, limits, log, async () => 'raftauth_x 1\n');

  const ok = await ask(conn, sent, 'health', { deep: false, timeoutMs: 100 });
  assert.equal(ok.ok, true);
  assert.deepEqual(node.asked, [{ deep: false, timeoutMs: 100 }]);
  for (const bad of [null, { deep: 'yes', timeoutMs: 100 }, { deep: true, timeoutMs: 0 }, { deep: true, timeoutMs: 5_001 }, { deep: true }]) {
    const r = await ask(conn, sent, 'health', bad);
    assert.equal(r.ok, false, JSON.stringify(bad));
    assert.equal(!r.ok && r.error.code, 'INVALID_REQUEST');
  }
  assert.equal(node.asked.length, 1, 'nothing malformed reached the node');
  const m = await ask(conn, sent, 'metrics', null);
  assert.deepEqual(m, { t: 'res', id: m.id, ok: true, value: 'raftauth_x 1\n' });

  // A primary without a collector, and a node without health, answer UNAVAILABLE.
  const bare = new IpcConnection(new FakeNode(), send, limits, log);
  const r1 = await ask(bare, sent, 'metrics', null);
  const r2 = await ask(bare, sent, 'health', { deep: false, timeoutMs: 100 });
  assert.equal(!r1.ok && r1.error.code, 'UNAVAILABLE');
  assert.equal(!r2.ok && r2.error.code, 'UNAVAILABLE');
});

test('ipc: the worker proxy sends health with its deadline and refuses a metrics answer that is not text', async () => {
  const out: Uint8Array[] = [];
  const api = new IpcNodeApi((b) => void out.push(b), { maxOutstanding: 4, graceMs: 50, statusTimeoutMs: 200 });
  const h = api.health({ deep: true, timeoutMs: 30 });
  const req = decodeWorkerMessage(out.at(-1)!) as { id: number; method: string; params: unknown };
  assert.equal(req.method, 'health');
  assert.deepEqual(req.params, { deep: true, timeoutMs: 30 });
  api.onResponse({ t: 'res', id: req.id, ok: true, value: { term: 9 } });
  assert.deepEqual(await h, { term: 9 });

  const m = api.metricsText();
  const mreq = decodeWorkerMessage(out.at(-1)!) as { id: number };
  api.onResponse({ t: 'res', id: mreq.id, ok: true, value: 42 });
  await assert.rejects(m, (e: unknown) => e instanceof NodeError && e.code === 'UNAVAILABLE');

  // No answer: the metrics call ends at statusTimeoutMs exactly (no grace: the primary has no
  // deadline to honour). The error names the deadline it used: 200 ms, not 200 + the 50 ms grace
  // (no upper bound on the elapsed time: a loaded machine only makes it later).
  const t0 = Date.now();
  await assert.rejects(api.metricsText(), (e: unknown) => e instanceof NodeError && e.code === 'TIMEOUT' && e.message === 'no answer from the primary within 200 ms');
  const took = Date.now() - t0;
  assert.ok(took >= 190, `metrics timed out after ${took} ms, before its deadline`);
  api.close('done');
});
