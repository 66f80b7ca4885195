// HTTP workers forked before the node is built (src/server/prefork.ts, src/server/process.ts): the
// worker starts while the node factory runs, what it sends meanwhile reaches the node once the
// node exists, and a node that fails to start leaves no worker behind. Driven by the workers' own
// events (cluster 'listening' and 'message'), not by time.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import cluster from 'node:cluster';
import type { Address } from 'node:cluster';
import { createLogger } from '../../../src/server/log.ts';
import { startServer } from '../../../src/server/process.ts';
import { PushingFakeNode, alive, call, testConfig, waitFor } from './helpers.ts';

const silent = createLogger('silent', { node: 1 });

/** The next `n` HTTP workers to listen, and where. */
function nextListening(n: number): Promise<{ pid: number; port: number }[]> {
  return new Promise((resolve) => {
    const seen: { pid: number; port: number }[] = [];
    const on = (w: { process: { pid?: number } }, a: Address): void => {
      seen.push({ pid: w.process.pid!, port: a.port });
      if (seen.length < n) return;
      cluster.off('listening', on);
      resolve(seen);
    };
    cluster.on('listening', on);
  });
}

/** The next IPC message a worker sends to this process (our messages are Uint8Arrays or arrays of them). */
function nextIpcMessage(): Promise<void> {
  return new Promise((resolve) => {
    const on = (_w: unknown, m: unknown): void => {
      if (m instanceof Uint8Array || Array.isArray(m)) {
        cluster.off('message', on);
        resolve();
      }
    };
    cluster.on('message', on);
  });
}

test('the worker is forked before the node is built; a request it forwarded meanwhile is answered once the node is up', async (t) => {
  const config = await testConfig(t, { workers: 1, requestTimeoutMs: 10_000 });
  const node = new PushingFakeNode();
  node.data.set('a', new TextEncoder().encode('one'));
  let pending: Promise<{ status: number; body: unknown }> | null = null;
  const server = await startServer(
    config,
    async () => {
      // The worker was forked before this factory ran; wait until it serves HTTP.
      // Fail at once (rather than wait for a worker that would never come) if none was forked.
      assert.equal(Object.keys(cluster.workers ?? {}).length, 1, 'the worker existed when the node factory ran');
      const [listening] = await nextListening(1);
      // A read that needs the node, which does not exist yet: the worker forwards it over IPC.
      const forwarded = nextIpcMessage();
      pending = call(listening!.port, 'GET', '/v1/kv/a?consistency=local');
      await forwarded;
      assert.equal(node.countCalls('read'), 0, 'nothing reached the node before it was built');
      return node;
    },
    { handleSignals: false, logger: silent, drainMs: 500 },
  );
  t.after(() => server.stop());
  assert.equal(server.workers().length, 1, 'the preforked worker is the one startServer serves with');
  const r = await pending!;
  assert.deepEqual([r.status, r.body], [200, { value: 'one' }]);
  assert.equal(node.last('read')?.req.consistency, 'local');
  // Its `ready`, sent before adoption, subscribed it to the read cache: the status table arrives.
  const s = await waitFor('the status table in the worker', async () => {
    const a = await call(server.address.port, 'GET', '/v1/status?cached=1');
    return a.status === 200 && a.headers['x-raftauth-cache'] === 'hit' ? a : null;
  });
  assert.equal((s.body as { leader: number }).leader, node.statusValue.leader);
  // A later restart forks as before.
  const first = server.workers()[0]!;
  process.kill(first.pid, 'SIGKILL');
  await waitFor('a replacement worker', () => server.workers().find((w) => w.pid !== first.pid));
  assert.equal(server.restarts(), 1);
});

test('a node that fails to start leaves no preforked worker behind', async (t) => {
  const config = await testConfig(t, { workers: 2 });
  const pids: number[] = [];
  await assert.rejects(
    startServer(
      config,
      async () => {
        // Both workers up (and listening), then the node fails, as a locked store would.
        pids.push(...(await nextListening(2)).map((l) => l.pid));
        throw new Error('the store is locked');
      },
      { handleSignals: false, logger: silent },
    ),
    /the store is locked/,
  );
  assert.equal(pids.length, 2);
  for (const pid of pids) assert.equal(alive(pid), false, `worker ${pid} was killed`);
  assert.deepEqual(Object.keys(cluster.workers ?? {}), []);
});
