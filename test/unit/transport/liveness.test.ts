// A dead or hung peer must be noticed: by the call deadline when a batch is in flight, and by
// HTTP/2 keepalive when the connection is idle; and a connection attempt whose SYNs were dropped
// must not outlast the partition (docs/transport.md, "Noticing a dead connection").
import { test, after } from 'node:test';
import assert from 'node:assert/strict';
import { spawn } from 'node:child_process';
import type { ChildProcess } from 'node:child_process';
import { connect, createServer } from 'node:net';
import type { AddressInfo, Socket } from 'node:net';
import { fileURLToPath } from 'node:url';
import { DEFAULT_LIMITS, resolveLimits } from '../../../src/transport/limits.ts';
import { Transport } from '../../../src/transport/transport.ts';
import type { TransportOptions } from '../../../src/transport/transport.ts';
import type { MsgHeartbeat, NodeId } from '../../../src/raft/types.ts';
import { CapturingLogger, RecordingHandler, makePki, waitFor } from './helpers.ts';

const HOST = '127.0.0.1';
const hb = (from: NodeId, to: NodeId, commit: number): MsgHeartbeat => ({ type: 'heartbeat', from, to, term: 1, commit, context: null });
const cleanups: (() => Promise<void> | void)[] = [];
after(async () => {
  for (const c of cleanups.reverse()) await c();
});

test('a peer that accepts connections but never answers is reported unreachable at the send deadline', async () => {
  const pki = await makePki([1, 2]);
  // A TCP listener that never speaks TLS: the handshake, then the call, hang.
  const held: Socket[] = [];
  const blackHole = createServer((s) => held.push(s));
  await new Promise<void>((r) => blackHole.listen(0, HOST, r));
  cleanups.push(() => {
    for (const s of held) s.destroy();
    return new Promise<void>((r) => blackHole.close(() => r()));
  });
  const handler = new RecordingHandler();
  const a = new Transport({
    id: 1,
    listen: { host: HOST, port: 0 },
    peers: new Map([[2, `${HOST}:${(blackHole.address() as AddressInfo).port}`]]),
    tls: pki.tls(1),
    handler,
    logger: new CapturingLogger(),
    limits: { sendTimeoutMs: 300 },
  });
  cleanups.push(() => a.stop());
  await a.start();
  const startedMs = Date.now();
  a.send([hb(1, 2, 1)]);
  await waitFor(() => handler.unreachable.includes(2), 'onUnreachable(2)', 5_000);
  assert.ok(Date.now() - startedMs >= 250, 'reported by the deadline, not at once');
  assert.equal(a.stats().failedBatches, 1);
});

/** A Transport for node `id` in its own process (fixtures/peer-process.ts); resolves with it and its port. */
async function startPeerProcess(pki: Awaited<ReturnType<typeof makePki>>, id: NodeId): Promise<{ child: ChildProcess; port: number }> {
  const child: ChildProcess = spawn(process.execPath, ['--import', 'tsx', fileURLToPath(new URL('./fixtures/peer-process.ts', import.meta.url))], {
    env: { ...process.env, RAFTAUTH_TEST_PEER: JSON.stringify({ id, tls: pki.tls(id) }) },
    stdio: ['ignore', 'pipe', 'inherit'],
  });
  cleanups.push(() => {
    if (child.exitCode === null && child.signalCode === null) {
      child.kill('SIGCONT');
      child.kill('SIGKILL');
    }
  });
  let out = '';
  child.stdout?.setEncoding('utf8');
  child.stdout?.on('data', (d: string) => (out += d));
  await waitFor(() => /port \d+/.test(out), 'the peer process to listen', 20_000);
  return { child, port: Number(/port (\d+)/.exec(out)?.[1]) };
}

/** Node 1's Transport to the peer process on `port`, once its first batch was acknowledged. */
async function connectedTo(pki: Awaited<ReturnType<typeof makePki>>, port: number, limits: TransportOptions['limits']): Promise<{ a: Transport; handler: RecordingHandler }> {
  const handler = new RecordingHandler();
  const a = new Transport({
    id: 1,
    listen: { host: HOST, port: 0 },
    peers: new Map([[2, `${HOST}:${port}`]]),
    tls: pki.tls(1),
    handler,
    logger: new CapturingLogger(),
    ...(limits ? { limits } : {}),
  });
  cleanups.push(() => a.stop());
  await a.start();
  a.send([hb(1, 2, 1)]);
  await waitFor(() => a.stats().sentBatches === 1, 'the first batch to be acknowledged');
  return { a, handler };
}

/** Whether a TCP connection to HOST:port opens within `ms`; the socket is kept in `into` either way. */
function tcpOpens(port: number, ms: number, into: Socket[]): Promise<boolean> {
  return new Promise((resolve) => {
    const s = connect(port, HOST);
    into.push(s);
    const timer = setTimeout(() => resolve(false), ms);
    s.once('connect', () => {
      clearTimeout(timer);
      resolve(true);
    });
    s.once('error', () => {
      clearTimeout(timer);
      resolve(false);
    });
  });
}

test('a connection attempt whose SYNs are dropped is abandoned as soon as the peer answers a probe, not at the next SYN retransmission', async (t) => {
  const pki = await makePki([1, 2]);
  const { child, port } = await startPeerProcess(pki, 2);
  // Keepalive slow enough that the accept queue is full before it drops the connection; no ack
  // deadline during the test (the stuck stream must fail by the channel reset).
  const { a, handler } = await connectedTo(pki, port, { keepaliveTimeMs: 1_500, keepaliveTimeoutMs: 1_500, connectTimeoutMs: 300, sendTimeoutMs: 60_000 });

  // The partition: the peer process stops, and its listen socket's accept queue is filled, so
  // the kernel drops every further SYN to it silently (as nft drop does): connection attempts
  // wait on SYN retransmissions (1, 3, 7… s after they begin), probes time out.
  child.kill('SIGSTOP');
  const fillers: Socket[] = [];
  cleanups.push(() => fillers.forEach((f) => f.destroy()));
  let full = false;
  for (let batch = 0; batch < 40 && !full; batch++) {
    const opened = await Promise.all(Array.from({ length: 128 }, () => tcpOpens(port, 300, fillers)));
    full = opened.includes(false);
  }
  assert.ok(full, 'the accept queue filled up');
  assert.equal(a.peerState(2), 'ready', 'the old connection was still up when the queue filled (else the attempt below is not a dropped SYN)');
  await waitFor(() => handler.unreachable.includes(2), 'keepalive to drop the connection (its stream fails, the peer is reported)', 10_000);
  a.send([hb(1, 2, 2)]);
  await waitFor(() => a.peerState(2) === 'connecting', 'a new connection attempt', 5_000);
  const attemptMs = performance.now();
  // The cut lasts 7.5 s into the attempt, past the SYN retransmissions that come quickly: every
  // second for the first four on Linux 6.x (tcp_syn_linear_timeouts), at +1, +3 s before. The next
  // one is then due at +10 s (Linux 6.x) or +15 s. The wait is the fault's length, not a synchronization.
  await waitFor(() => performance.now() - attemptMs >= 7_500, 'the cut to last 7.5 s', 15_000);
  assert.equal(a.stats().channelResets, 0, 'no reset while every probe times out');
  assert.equal(a.peerState(2), 'connecting');

  // Heal: the peer runs again and accepts the queued connections (the fillers, closed now).
  child.kill('SIGCONT');
  fillers.forEach((f) => f.destroy());
  const healMs = performance.now();
  // Raft keeps sending (a heartbeat per tick); the stuck stream's batch is lost with the old channel.
  // The counters are read together on every sample: the first sample with the batch acknowledged
  // must already show the stuck attempt abandoned. Without the probe the old attempt itself would
  // complete, at its next SYN retransmission, with no reset at all: the order of the two events
  // tells the mechanisms apart, whatever the machine's speed (the time is only printed).
  let resetsAtAck = -1;
  await waitFor(
    () => {
      a.send([hb(1, 2, 3)]);
      const st = a.stats();
      if (st.sentBatches >= 2) resetsAtAck = st.channelResets;
      return resetsAtAck >= 0;
    },
    'a batch acknowledged after the heal',
    15_000,
  );
  t.diagnostic(`acknowledged ${Math.round(performance.now() - healMs)} ms after the heal`);
  assert.ok(resetsAtAck >= 1, `the batch was acknowledged with the stuck attempt not abandoned (resets ${resetsAtAck}): it completed by SYN retransmission`);
});

test('keepalive notices a peer that froze with an idle connection', async () => {
  const pki = await makePki([1, 2]);
  const { child, port } = await startPeerProcess(pki, 2);
  const { a } = await connectedTo(pki, port, { keepaliveTimeMs: 200, keepaliveTimeoutMs: 200, initialReconnectBackoffMs: 5_000, maxReconnectBackoffMs: 5_000 });
  assert.equal(a.peerState(2), 'ready');
  // Control: an idle, live connection stays ready across several keepalive rounds.
  const idleUntilMs = Date.now() + 600;
  await waitFor(() => Date.now() >= idleUntilMs || a.peerState(2) !== 'ready', '600 ms of idle connection (three keepalive rounds)');
  assert.equal(a.peerState(2), 'ready');
  child.kill('SIGSTOP');
  // No call is in flight: only the keepalive ping can find out.
  await waitFor(() => a.peerState(2) !== 'ready', 'the channel to leave READY after keepalive fails', 5_000);
  child.kill('SIGCONT');
});

test('the connect timeout must be positive and not exceed its maximum', () => {
  assert.ok(DEFAULT_LIMITS.connectTimeoutMs <= DEFAULT_LIMITS.maxConnectTimeoutMs);
  assert.throws(() => resolveLimits({ connectTimeoutMs: DEFAULT_LIMITS.maxConnectTimeoutMs + 1 }), /connectTimeoutMs must not exceed maxConnectTimeoutMs/);
  assert.throws(() => resolveLimits({ connectTimeoutMs: 0 }), /connectTimeoutMs must be a positive integer/);
  assert.equal(resolveLimits({ connectTimeoutMs: 100, maxConnectTimeoutMs: 100 }).connectTimeoutMs, 100);
});
