// A dead or hung peer must be noticed: by the call deadline when a batch is in flight, and by
// HTTP/2 keepalive when the connection is idle.
import { test, after } from 'node:test';
import assert from 'node:assert/strict';
import { spawn } from 'node:child_process';
import type { ChildProcess } from 'node:child_process';
import { createServer } from 'node:net';
import type { AddressInfo, Socket } from 'node:net';
import { fileURLToPath } from 'node:url';
import { Transport } from '../../../src/transport/transport.ts';
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

test('keepalive notices a peer that froze with an idle connection', async () => {
  const pki = await makePki([1, 2]);
  const child: ChildProcess = spawn(process.execPath, ['--import', 'tsx', fileURLToPath(new URL('./fixtures/peer-process.ts', import.meta.url))], {
    env: { ...process.env, RAFTAUTH_TEST_PEER: JSON.stringify({ id: 2, tls: pki.tls(2) }) },
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
  const port = Number(/port (\d+)/.exec(out)?.[1]);
  const handler = new RecordingHandler();
  const a = new Transport({
    id: 1,
    listen: { host: HOST, port: 0 },
    peers: new Map([[2, `${HOST}:${port}`]]),
    tls: pki.tls(1),
    handler,
    logger: new CapturingLogger(),
    limits: { keepaliveTimeMs: 200, keepaliveTimeoutMs: 200, initialReconnectBackoffMs: 5_000, maxReconnectBackoffMs: 5_000 },
  });
  cleanups.push(() => a.stop());
  await a.start();
  a.send([hb(1, 2, 1)]);
  await waitFor(() => a.stats().sentBatches === 1, 'the first batch to be acknowledged');
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
