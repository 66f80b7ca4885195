// HTTP workers forked before the node is built (src/server/prefork.ts, src/server/process.ts): the
// worker starts while the node factory runs, what it sends meanwhile reaches the node once the
// node exists, and a node that fails to start leaves no worker behind. Driven by the workers' own
// events (cluster 'listening' and 'message'), not by time.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import cluster from 'node:cluster';
import type { Address, Worker } from 'node:cluster';
import { EventEmitter } from 'node:events';
import { createLogger } from '../../../src/server/log.ts';
import { startServer } from '../../../src/server/process.ts';
import { MAX_HELD_EVENTS, Preforked } from '../../../src/server/prefork.ts';
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

/** A stand-in for a cluster Worker: an event emitter with a process that records kills. */
class FakeWorker extends EventEmitter {
  readonly kills: string[] = [];
  readonly process = {
    kill: (signal: string): boolean => {
      this.kills.push(signal);
      // The real process exits on SIGKILL, and its worker reports it.
      queueMicrotask(() => this.emit('exit', null, signal));
      return true;
    },
  };
}

test('Preforked holds what a worker reports before adoption and replays it in order; past MAX_HELD_EVENTS the worker is killed; discard kills the rest', async () => {
  const fakes: FakeWorker[] = [];
  const pre = new Preforked(3, { X: '1' }, (env) => {
    assert.deepEqual(env, { X: '1' });
    const w = new FakeWorker();
    fakes.push(w);
    return w as unknown as Worker;
  });
  assert.equal(pre.size, 3);
  const [a, b, c] = fakes as [FakeWorker, FakeWorker, FakeWorker];
  a.emit('message', 'ready');
  a.emit('listening', { address: '127.0.0.1', port: 1 });
  a.emit('message', 'req');
  // b floods: held up to the bound, then killed; its exit is still held.
  for (let i = 0; i < MAX_HELD_EVENTS + 5; i++) b.emit('message', i);
  await new Promise<void>((r) => queueMicrotask(r));
  assert.deepEqual(b.kills, ['SIGKILL']);

  const seen: unknown[] = [];
  const first = pre.take()!;
  assert.equal(first.worker, a as unknown as Worker);
  a.on('message', (m) => seen.push(['message', m]));
  a.on('listening', (x: { port: number }) => seen.push(['listening', x.port]));
  assert.deepEqual(seen, [], 'nothing is emitted before replay');
  first.replay();
  assert.deepEqual(seen, [['message', 'ready'], ['listening', 1], ['message', 'req']]);
  a.emit('message', 'later');
  assert.deepEqual(seen.at(-1), ['message', 'later'], 'after adoption events go straight to the new handlers');

  const second = pre.take()!;
  let messages = 0;
  const exits: unknown[] = [];
  b.on('message', () => messages++);
  b.on('exit', (code, signal) => exits.push([code, signal]));
  second.replay();
  assert.equal(messages, MAX_HELD_EVENTS, 'held up to the bound');
  assert.deepEqual(exits, [[null, 'SIGKILL']], 'its exit is replayed');

  // c is never adopted: discard kills it and waits for its exit.
  await pre.discard();
  assert.deepEqual(c.kills, ['SIGKILL']);
  assert.equal(pre.size, 0);
  assert.equal(pre.take(), null);
});
