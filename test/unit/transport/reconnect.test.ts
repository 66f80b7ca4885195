// A peer that was down is dialed again soon after it listens: the reconnect backoff is capped at a
// quarter of the election timeout (reconnectBackoffFor, src/transport/limits.ts), so a restarted
// node hears from the leader long before its own election timer could fire.
//
// The restart test counts ticks of a heartbeat clock, as a leader's driver would (one heartbeat
// per tick, sent through the transport): the sender's channel backs off to its cap while the peer
// is down, then the peer listens again on its port and the ticks until its first heartbeat are
// counted. Ticks are timer callbacks of this event loop, as grpc-js's backoff timers are, so a
// slow machine slows both alike.
import { test, after } from 'node:test';
import assert from 'node:assert/strict';
import { DEFAULT_LIMITS, RECONNECT_BACKOFF_ELECTION_DIVISOR, reconnectBackoffFor, resolveLimits } from '../../../src/transport/limits.ts';
import { Transport } from '../../../src/transport/transport.ts';
import type { MsgHeartbeat, NodeId } from '../../../src/raft/types.ts';
import { CapturingLogger, RecordingHandler, makePki } from './helpers.ts';

const HOST = '127.0.0.1';
const hb = (from: NodeId, to: NodeId, commit: number): MsgHeartbeat => ({ type: 'heartbeat', from, to, term: 1, commit, context: null });
const cleanups: (() => Promise<void> | void)[] = [];
after(async () => {
  for (const c of cleanups.reverse()) await c();
});

test('the reconnect backoff is at most a quarter of the election timeout, and the defaults fit the default election timeout', () => {
  // raft.tickMs 100 × raft.electionTick 10 (src/server/config.ts defaults).
  assert.deepEqual(reconnectBackoffFor(1_000), { initialReconnectBackoffMs: DEFAULT_LIMITS.initialReconnectBackoffMs, maxReconnectBackoffMs: DEFAULT_LIMITS.maxReconnectBackoffMs });
  assert.ok(DEFAULT_LIMITS.maxReconnectBackoffMs * RECONNECT_BACKOFF_ELECTION_DIVISOR <= 1_000);
  for (const electionTimeoutMs of [2, 3, 7, 20, 200, 499, 500, 999, 1_000, 1_001, 10_000, 10_000_000]) {
    const r = reconnectBackoffFor(electionTimeoutMs);
    assert.ok(r.maxReconnectBackoffMs <= Math.max(1, Math.floor(electionTimeoutMs / RECONNECT_BACKOFF_ELECTION_DIVISOR)), `cap within ${electionTimeoutMs} / ${RECONNECT_BACKOFF_ELECTION_DIVISOR}`);
    assert.ok(r.maxReconnectBackoffMs <= DEFAULT_LIMITS.maxReconnectBackoffMs, 'never above the default cap');
    assert.ok(r.initialReconnectBackoffMs <= r.maxReconnectBackoffMs);
    resolveLimits(r); // the transport accepts it
  }
  for (const bad of [0, -1, 1.5, Number.NaN]) assert.throws(() => reconnectBackoffFor(bad), RangeError);
});

const TICK_MS = 50;
const ELECTION_TIMEOUT_MS = 1_000;
/** Ticks the peer stays down: long enough for the sender's backoff to reach its cap (100, 160, 250 ms …). */
const DOWN_TICKS = 30;
/**
 * Ticks from the peer listening to its first heartbeat, at most: the longest backoff (cap + 20%
 * jitter) in ticks, one tick until the next send asks for a connection, and room for the connect,
 * the TLS handshake and the delivery.
 */
const MAX_TICKS_TO_REACH = Math.ceil((reconnectBackoffFor(ELECTION_TIMEOUT_MS).maxReconnectBackoffMs * 1.2) / TICK_MS) + 4;
/** The bound of each wait below, in ticks: a peer never reached fails the test there. */
const GIVE_UP_TICKS = 200;
const RESTARTS = 3;

test(`a restarted peer gets the next heartbeat within ${MAX_TICKS_TO_REACH} ticks of listening (reconnect backoff capped for a ${ELECTION_TIMEOUT_MS} ms election timeout)`, async (t) => {
  const pki = await makePki([1, 2]);
  const startPeer = async (port: number): Promise<{ t: Transport; handler: RecordingHandler; port: number }> => {
    const handler = new RecordingHandler();
    const t = new Transport({ id: 2, listen: { host: HOST, port }, peers: new Map([[1, `${HOST}:1`]]), tls: pki.tls(2), handler, logger: new CapturingLogger() });
    cleanups.push(() => t.stop());
    return { t, handler, port: await t.start() };
  };
  let peer = await startPeer(0);
  const leader = new Transport({
    id: 1,
    listen: { host: HOST, port: 0 },
    peers: new Map([[2, `${HOST}:${peer.port}`]]),
    tls: pki.tls(1),
    handler: new RecordingHandler(),
    logger: new CapturingLogger(),
    limits: reconnectBackoffFor(ELECTION_TIMEOUT_MS),
  });
  cleanups.push(() => leader.stop());
  await leader.start();

  // The heartbeat clock: one heartbeat per tick; `ticks` counts them.
  let ticks = 0;
  let commit = 0;
  const clock = setInterval(() => {
    ticks++;
    leader.send([hb(1, 2, ++commit)]);
  }, TICK_MS);
  cleanups.push(() => clearInterval(clock));
  /** Resolves with the ticks elapsed once cond() holds, checked at every tick; fails after GIVE_UP_TICKS. */
  const ticksUntil = (what: string, cond: () => boolean): Promise<number> => {
    const from = ticks;
    return new Promise((resolve, reject) => {
      const check = setInterval(() => {
        if (cond()) {
          clearInterval(check);
          resolve(ticks - from);
        } else if (ticks - from > GIVE_UP_TICKS) {
          clearInterval(check);
          reject(new Error(`${what}: not within ${GIVE_UP_TICKS} ticks`));
        }
      }, TICK_MS);
    });
  };

  /** Resolves once `n` more ticks have passed. */
  const waitTicks = (n: number): Promise<void> => {
    const from = ticks;
    return new Promise((resolve) => {
      const check = setInterval(() => {
        if (ticks - from < n) return;
        clearInterval(check);
        resolve();
      }, TICK_MS);
    });
  };

  await ticksUntil('the first heartbeat', () => peer.handler.received.length > 0);
  const reached: number[] = [];
  for (let i = 0; i < RESTARTS; i++) {
    const port = peer.port;
    await peer.t.stop();
    // Down for DOWN_TICKS: the leader's attempts are refused and its backoff grows to the cap.
    await waitTicks(DOWN_TICKS);
    peer = await startPeer(port);
    reached.push(await ticksUntil('a heartbeat to the restarted peer', () => peer.handler.received.length > 0));
  }
  clearInterval(clock);
  t.diagnostic(`ticks from listening to the first heartbeat, per restart: ${reached.join(', ')}`);
  for (const n of reached) assert.ok(n <= MAX_TICKS_TO_REACH, `reached after ${reached.join(', ')} ticks; at most ${MAX_TICKS_TO_REACH}`);
});
