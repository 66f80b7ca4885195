import { test } from 'node:test';
import assert from 'node:assert/strict';
import { AttemptError } from '../bench/client.ts';
import type { Answer, HttpCall } from '../bench/client.ts';
import { NO_PREPARED, runOpenLoop } from './open-loop.ts';
import type { OpenLoopClock } from './open-loop.ts';

/** Virtual time: sleep() moves the clock to the end of the sleep at once. */
class VirtualClock implements OpenLoopClock {
  t = 1_000;
  now(): number {
    return this.t;
  }
  async sleep(ms: number): Promise<void> {
    this.t += ms;
  }
}

/** A pool whose answers the test gives by hand: every attempt waits until answer(). */
class HandPool {
  readonly endpoints = [{ member: '1', host: 'a', port: 1 }, { member: '2', host: 'b', port: 2 }, { member: '3', host: 'c', port: 3 }];
  readonly calls: { endpoint: number; path: string; settle: (a: Answer | AttemptError) => void }[] = [];
  attempt(i: number, call: HttpCall): Promise<Answer> {
    return new Promise<Answer>((resolve, reject) => {
      this.calls.push({ endpoint: i, path: call.path, settle: (a) => (a instanceof AttemptError ? reject(a) : resolve(a)) });
    });
  }
}

const CALL = (i: number): HttpCall => ({ method: 'POST', path: `/r${i}`, headers: {}, body: Buffer.alloc(0) });

/** Wait (on the event loop, with a deadline) until `cond` holds. */
async function until(cond: () => boolean, what: string): Promise<void> {
  const deadline = Date.now() + 5_000;
  while (!cond()) {
    if (Date.now() > deadline) assert.fail(`timed out waiting for ${what}`);
    await new Promise((r) => setImmediate(r));
  }
}

test('open loop: every arrival is sent at its time without waiting for earlier answers; latency runs from the scheduled time', async () => {
  const clock = new VirtualClock();
  const pool = new HandPool();
  // Two warm-up arrivals (offsets 0 and 5), then eight in the 100 ms window.
  const offsets = [0, 5, 10, 20, 30, 40, 50, 60, 70, 80];
  const run = runOpenLoop(pool, offsets, CALL, { warmupMs: 10, measureMs: 100, timeoutMs: 1_000, clock });
  // Nobody has answered, yet all ten were sent: the arrivals do not depend on the answers.
  await until(() => pool.calls.length === offsets.length, 'all ten sends');
  assert.deepEqual(pool.calls.map((c) => c.path), offsets.map((_, i) => `/r${i}`));
  assert.deepEqual(pool.calls.map((c) => c.endpoint), [0, 1, 2, 0, 1, 2, 0, 1, 2, 0], 'round robin over the nodes');
  const t0 = 1_000;
  // The system answers everything at t0 + 200: the request scheduled at offset k waited 200 - k.
  clock.t = t0 + 200;
  for (const c of pool.calls.slice(0, 9)) c.settle({ status: 200, body: 'ok' });
  pool.calls[9]!.settle({ status: 400, body: 'refused' });
  const r = await run;
  assert.equal(r.scheduled, 8);
  assert.equal(r.ok, 7);
  assert.equal(r.errorCount, 1);
  assert.deepEqual(r.errors, { 'HTTP 400': 1 });
  assert.equal(r.latency.maxMs, 190, 'offset 10: from its scheduled time, not from when the sender got to it');
  assert.equal(r.latency.minMs, 130, 'offset 70 (the one at 80 was refused)');
  assert.equal(r.maxInFlight, 10);
  assert.equal(r.maxSendLagMs, 0);
  assert.equal(r.offeredPerSec, 80);
  assert.equal(r.ratePerSec, 70);
  assert.deepEqual(r.warmup, { sent: 2, ok: 2, errors: {} });
});

test('open loop: a late sender counts against the latency; nothing to send is an error; timeouts are errors; arrivals past the window are not sent', async () => {
  const clock = new VirtualClock();
  const pool = new HandPool();
  let made = 0;
  const run = runOpenLoop(
    pool,
    [0, 10, 20, 500],
    (i) => {
      made++;
      // The sender is busy for 30 ms building the first request (a loaded event loop).
      if (i === 0) clock.t += 30;
      return i === 2 ? null : CALL(i);
    },
    { warmupMs: 0, measureMs: 100, timeoutMs: 1_000, clock },
  );
  await until(() => pool.calls.length === 2, 'two sends');
  clock.t = 1_000 + 50;
  pool.calls[0]!.settle({ status: 200, body: '' });
  pool.calls[1]!.settle(new AttemptError('ATTEMPT_TIMEOUT'));
  const r = await run;
  assert.equal(made, 3, 'the arrival at 500 ms is past the window');
  assert.equal(r.scheduled, 3);
  assert.equal(r.ok, 1);
  assert.equal(r.latency.maxMs, 50);
  assert.deepEqual(r.errors, { ATTEMPT_TIMEOUT: 1, [NO_PREPARED]: 1 });
  assert.equal(r.maxSendLagMs, 20, 'the arrival at 10 ms went out at 30 ms');
});

test('open loop: unsorted offsets are refused', async () => {
  await assert.rejects(runOpenLoop(new HandPool(), [5, 1], CALL, { warmupMs: 0, measureMs: 10, timeoutMs: 10, clock: new VirtualClock() }), /sorted/);
});
