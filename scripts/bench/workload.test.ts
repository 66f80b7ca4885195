// Tests of the workload and its failover measurement against a fake 3-member system: three
// in-process HTTP servers on 127.0.0.1 whose "leader" can be killed (its server closed with every
// connection) while the others either hold writes until an outage ends (like raftauth waiting
// inside the deadline) or answer 503 during it. The gap the workload reports must match the
// outage the fake imposes.
import assert from 'node:assert/strict';
import { createServer } from 'node:http';
import type { Server } from 'node:http';
import type { AddressInfo } from 'node:net';
import { test } from 'node:test';
import type { Answer, Endpoint, HttpCall } from './client.ts';
import type { SystemUnderTest } from './system.ts';
import { runFailover, runLevel } from './workload.ts';

/** The fake members' answer time outside an outage. */
const SERVICE_MS = 20;

class FakeSystem implements SystemUnderTest {
  private readonly outageMs: number;
  private readonly duringOutage: 'hold' | '503';
  readonly name = 'raftauth' as const;
  readonly version = 'fake';
  readonly settings = {};
  readonly attemptTimeoutMs: number;
  endpoints: Endpoint[] = [];
  readonly received = [0, 0, 0];
  private servers: Server[] = [];
  private outageUntil = 0;

  constructor(
    outageMs: number,
    duringOutage: 'hold' | '503',
    attemptTimeoutMs: number,
  ) {
    this.outageMs = outageMs;
    this.duringOutage = duringOutage;
    this.attemptTimeoutMs = attemptTimeoutMs;
  }

  async start(): Promise<void> {
    for (let i = 0; i < 3; i++) {
      const s = createServer((req, res) => {
        req.resume();
        req.on('end', () => {
          this.received[i]!++;
          const wait = this.outageUntil - performance.now();
          if (wait > 0 && this.duringOutage === '503') {
            res.writeHead(503, { 'content-type': 'application/json' }).end('{"error":"UNAVAILABLE"}');
            return;
          }
          // A fake server's answer time, not test synchronization: it models the election, and a
          // service time long enough that every client always has a put in flight — so the kill
          // always catches puts on the killed member, which are reset and retried through the
          // outage (with a 1 ms service time, a loaded machine could kill between puts and the
          // "latency across the kill" check failed on a 3.6 ms maximum).
          setTimeout(() => res.writeHead(200, { 'content-type': 'application/json' }).end('{}'), Math.max(0, wait) + SERVICE_MS);
        });
      });
      await new Promise<void>((r) => s.listen(0, '127.0.0.1', r));
      this.servers.push(s);
      this.endpoints.push({ member: String(i + 1), host: '127.0.0.1', port: (s.address() as AddressInfo).port });
    }
  }

  putCall(key: string, value: string): HttpCall {
    return { method: 'PUT', path: `/v1/kv/${encodeURIComponent(key)}`, headers: {}, body: Buffer.from(JSON.stringify({ value })) };
  }
  putOk(a: Answer): boolean {
    return a.status === 200;
  }
  async term(): Promise<number> {
    return 1;
  }

  async leader(): Promise<number> {
    return 0;
  }
  cpuSeconds(): number | null {
    return null; // no processes: the level reports cpuMsPerWrite null
  }

  async kill(i: number): Promise<void> {
    this.outageUntil = performance.now() + this.outageMs;
    const s = this.servers[i]!;
    s.closeAllConnections();
    await new Promise<void>((r) => s.close(() => r()));
  }
  async stop(): Promise<void> {
    for (const s of this.servers) {
      s.closeAllConnections();
      if (s.listening) await new Promise<void>((r) => s.close(() => r()));
    }
  }
}

const VALUE = 'v'.repeat(16);

test('a level spreads puts evenly over the members and measures every one', async () => {
  const f = new FakeSystem(0, 'hold', 1000);
  await f.start();
  try {
    const r = await runLevel(f, 1, 100, 500, { requestTimeoutMs: 1000, value: VALUE });
    assert.equal(r.failedRequests, 0);
    assert.deepEqual(r.erroredAttempts, {});
    assert.ok(r.writes > 10, `only ${r.writes} writes in 0.5 s against a ${SERVICE_MS} ms server`);
    assert.equal(r.writesPerSec, Math.round((r.writes / 0.5) * 10) / 10);
    assert.ok(r.latency.p50Ms >= 1 && r.latency.p50Ms < 100, `p50 ${r.latency.p50Ms} ms`);
    // One client, round robin: the members' counts differ by at most one.
    assert.ok(Math.max(...f.received) - Math.min(...f.received) <= 1, `uneven spread ${f.received.join(',')}`);
  } finally {
    await f.stop();
  }
});

test('failover: writes held through an outage resume after it, with no failed request and no error from a live member', async () => {
  const outageMs = 300;
  const f = new FakeSystem(outageMs, 'hold', 2000);
  await f.start();
  try {
    const r = await runFailover(f, 6, 200, 3000, { requestTimeoutMs: 2000, value: VALUE });
    assert.equal(r.killedMember, '1');
    assert.ok(r.gapMs !== null && r.gapMs >= outageMs && r.gapMs < outageMs + 200, `gap ${r.gapMs} ms for an outage of ${outageMs} ms`);
    assert.ok(r.allClientsResumedMs !== null && r.allClientsResumedMs >= r.gapMs!, `all resumed ${r.allClientsResumedMs}`);
    // The probe, one fresh put every 20 ms, sees the end of the outage too; the gap is the earlier of the two.
    assert.ok(r.probesSent > 0 && r.probeGapMs !== null && r.probeGapMs >= outageMs, `probe gap ${r.probeGapMs} after ${r.probesSent} probes`);
    assert.equal(r.gapMs, Math.min(r.probeGapMs, r.clientGapMs!));
    assert.equal(r.failedRequests, 0);
    assert.deepEqual(r.erroredAttemptsOnLiveMembers, {});
    // Puts sent to the killed member after the kill are refused (or reset) and retried elsewhere.
    const onKilled = Object.entries(r.erroredAttemptsOnKilledMember);
    assert.ok(onKilled.length > 0 && onKilled.every(([k]) => k === 'ECONNREFUSED' || k === 'ECONNRESET'), JSON.stringify(r.erroredAttemptsOnKilledMember));
    assert.ok(r.writesAfterKill > 6);
    assert.ok(r.maxLatencyAcrossKillMs >= outageMs - 50, `max latency across the kill ${r.maxLatencyAcrossKillMs} ms`);
  } finally {
    await f.stop();
  }
});

test('failover: 503s from live members during an outage longer than the deadline are counted as errors and failed requests', async () => {
  const outageMs = 400;
  const f = new FakeSystem(outageMs, '503', 100);
  await f.start();
  try {
    const r = await runFailover(f, 4, 200, 3000, { requestTimeoutMs: 100, value: VALUE });
    assert.ok(r.failedRequests > 0, 'a put whose deadline ends inside the outage must fail');
    assert.ok((r.erroredAttemptsOnLiveMembers['HTTP 503 UNAVAILABLE'] ?? 0) > 0, JSON.stringify(r.erroredAttemptsOnLiveMembers));
    assert.ok(r.gapMs !== null && r.gapMs >= outageMs && r.gapMs < outageMs + 200, `gap ${r.gapMs} ms for an outage of ${outageMs} ms`);
  } finally {
    await f.stop();
  }
});
