// The front address of `npm start` (scripts/lib/front-proxy.ts) over fake nodes: it balances over
// ready nodes only (/readyz, or /v1/status with a known leader where /readyz is 404), answers 503
// when none is ready, re-sends a request only when the node certainly never saw it, and forwards
// method, path, body and headers.
import assert from 'node:assert/strict';
import { createServer } from 'node:http';
import type { IncomingMessage, Server, ServerResponse } from 'node:http';
import type { AddressInfo } from 'node:net';
import { afterEach, describe, it } from 'node:test';
import { FRONT_MAX_BODY_BYTES, FrontProxy } from '../../../scripts/lib/front-proxy.ts';
import { freePort } from '../../../scripts/lib/local-cluster.ts';

interface Fake {
  id: number;
  server: Server;
  url: string;
  /** /readyz answer: 200, 503, or 404 (no such endpoint: /v1/status decides). */
  readyz: number;
  leader: number;
  seen: { method: string; url: string; body: string; headers: IncomingMessage['headers'] }[];
}

async function fakeNode(id: number, readyz: number, leader = 1): Promise<Fake> {
  const f: Fake = { id, server: null as unknown as Server, url: '', readyz, leader, seen: [] };
  f.server = createServer(async (req: IncomingMessage, res: ServerResponse) => {
    let body = '';
    for await (const c of req) body += c;
    const send = (status: number, o: unknown) => {
      res.writeHead(status, { 'content-type': 'application/json', 'x-raftauth-node': String(id) });
      res.end(JSON.stringify(o));
    };
    if (req.url === '/readyz') return send(f.readyz, { ready: f.readyz === 200 });
    if (req.url?.startsWith('/v1/status')) return send(200, { id, leader: f.leader });
    f.seen.push({ method: req.method!, url: req.url!, body, headers: req.headers });
    return send(200, { node: id, method: req.method, url: req.url, body });
  });
  await new Promise<void>((r) => f.server.listen(0, '127.0.0.1', () => r()));
  f.url = `http://127.0.0.1:${(f.server.address() as AddressInfo).port}`;
  return f;
}

/** Wait for a condition with a deadline (never a fixed sleep). */
async function until(what: string, cond: () => boolean, timeoutMs = 5_000): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  while (!cond()) {
    if (Date.now() > deadline) throw new Error(`timed out waiting for ${what}`);
    await new Promise((r) => setTimeout(r, 10));
  }
}

/** Whether this machine can listen on ::1 (probed once, before the tests). */
const ipv6Loopback = await new Promise<boolean>((resolve) => {
  const s = createServer();
  s.once('error', () => resolve(false));
  s.listen(0, '::1', () => s.close(() => resolve(true)));
});

describe('front proxy', () => {
  const cleanup: (() => Promise<void>)[] = [];
  afterEach(async () => {
    for (const c of cleanup.splice(0).reverse()) await c();
  });
  const start = async (nodes: Fake[], extra: Partial<{ url: string; id: number }>[] = [], queueTimeoutMs = 200) => {
    for (const n of nodes) cleanup.push(() => new Promise((r) => (n.server.listening ? n.server.close(() => r()) : r())));
    const p = new FrontProxy({ backends: [...nodes.map((n) => ({ id: n.id, url: n.url })), ...extra.map((e) => ({ id: e.id!, url: e.url! }))], port: 0, checkIntervalMs: 20, queueTimeoutMs });
    const url = await p.start();
    cleanup.push(() => p.close());
    return { p, url };
  };

  it('balances round-robin over ready nodes only, using /v1/status where /readyz is missing', async () => {
    const a = await fakeNode(1, 200);
    const b = await fakeNode(2, 503);
    const c = await fakeNode(3, 404, 1); // no /readyz; knows a leader: ready
    const d = await fakeNode(4, 404, 0); // no /readyz; no leader: not ready
    const { p, url } = await start([a, b, c, d]);
    await until('nodes 1 and 3 ready', () => p.readyNodes().join() === '1,3');
    const served: string[] = [];
    for (let i = 0; i < 6; i++) {
      const r = await fetch(`${url}/v1/kv/k${i}`);
      assert.equal(r.status, 200);
      served.push(r.headers.get('x-raftauth-node')!);
    }
    assert.deepEqual(served.sort(), ['1', '1', '1', '3', '3', '3']);
    assert.equal(b.seen.length + d.seen.length, 0);
    // Node 2 becomes ready, node 1 stops being ready: the rotation follows.
    b.readyz = 200;
    a.readyz = 503;
    await until('nodes 2 and 3 ready', () => p.readyNodes().join() === '2,3');
  });

  it('forwards method, path, query, body and headers, with x-forwarded-*', async () => {
    const a = await fakeNode(1, 200);
    const { p, url } = await start([a]);
    await until('ready', () => p.readyNodes().length === 1);
    const r = await fetch(`${url}/v1/kv/a%2Fb?consistency=local`, { method: 'PUT', headers: { 'content-type': 'application/json', 'x-request-timeout-ms': '123' }, body: '{"value":"v"}' });
    assert.equal(r.status, 200);
    const seen = a.seen[0]!;
    assert.equal(seen.method, 'PUT');
    assert.equal(seen.url, '/v1/kv/a%2Fb?consistency=local');
    assert.equal(seen.body, '{"value":"v"}');
    assert.equal(seen.headers['x-request-timeout-ms'], '123');
    assert.equal(seen.headers['x-forwarded-host'], new URL(url).host);
    assert.equal(seen.headers['x-forwarded-proto'], 'http');
  });

  it('holds a request while no node is ready and sends it once one is (queueing through an election)', async () => {
    const a = await fakeNode(1, 503);
    const { p, url } = await start([a], [], 30_000);
    const pending = fetch(`${url}/v1/kv/x`);
    await until('the front to hold the request', () => p.queued() === 1);
    assert.equal(a.seen.length, 0);
    a.readyz = 200;
    const r = await pending;
    assert.equal(r.status, 200);
    assert.equal(a.seen.length, 1);
  });

  it('answers 503 when no node becomes ready within the queue timeout', async () => {
    const a = await fakeNode(1, 503);
    const { url } = await start([a]);
    const r = await fetch(`${url}/v1/kv/x`);
    assert.equal(r.status, 503);
    assert.equal(((await r.json()) as { error: string }).error, 'UNAVAILABLE');
    assert.equal(a.seen.length, 0);
  });

  it('answers 413 with its JSON error to a body one byte over its limit, and forwards one at the limit', async () => {
    const a = await fakeNode(1, 200);
    const { p, url } = await start([a]);
    await until('ready', () => p.readyNodes().length === 1);
    // One byte over: the front has read the whole body when it refuses (the byte over the limit is
    // the last one), so nothing unread is left to make its close a reset: the 413 always arrives.
    const big = await fetch(`${url}/v1/kv/x`, { method: 'PUT', body: 'x'.repeat(FRONT_MAX_BODY_BYTES + 1) });
    assert.equal(big.status, 413);
    assert.equal(big.headers.get('content-type'), 'application/json');
    assert.deepEqual(await big.json(), { error: 'PAYLOAD_TOO_LARGE', message: `request body over ${FRONT_MAX_BODY_BYTES} bytes` });
    assert.equal(a.seen.length, 0, 'nothing reached the node');
    const max = await fetch(`${url}/v1/kv/x`, { method: 'PUT', body: 'y'.repeat(FRONT_MAX_BODY_BYTES) });
    assert.equal(max.status, 200);
    assert.equal(a.seen.length, 1);
    assert.equal(a.seen[0]!.body.length, FRONT_MAX_BODY_BYTES);
  });

  it('sends a request to another node when the chosen one refuses the connection', async () => {
    const a = await fakeNode(1, 200);
    const b = await fakeNode(2, 200);
    const { p, url } = await start([a, b]);
    await until('both ready', () => p.readyNodes().length === 2);
    // Node 1 goes away between two health checks: its port refuses connections.
    await new Promise<void>((r) => a.server.close(() => r()));
    a.server.closeAllConnections();
    for (let i = 0; i < 4; i++) {
      const r = await fetch(`${url}/v1/kv/k${i}`, { method: 'POST', body: '{}', headers: { 'content-type': 'application/json', connection: 'close' } });
      assert.equal(r.status, 200);
      assert.equal(r.headers.get('x-raftauth-node'), '2');
    }
    assert.equal(b.seen.length, 4);
  });

  it('a node whose port is closed is never ready', async () => {
    const port = await freePort();
    const a = await fakeNode(1, 200);
    const { p } = await start([a], [{ id: 9, url: `http://127.0.0.1:${port}` }]);
    await until('node 1 ready', () => p.readyNodes().includes(1));
    assert.deepEqual(p.readyNodes(), [1]);
  });

  // Issue 13, defect 4: the front's URL is the issuer of npm start; on http://127.0.0.1 browsers
  // refuse WebAuthn, on http://localhost (a secure context) they allow it.
  it('its URL is http://localhost:<port>, and it answers there on 127.0.0.1 and on ::1 (where the machine has IPv6 loopback)', async () => {
    const a = await fakeNode(1, 200);
    const { p, url } = await start([a]);
    assert.equal(url, `http://localhost:${p.port}`);
    await until('node 1 ready', () => p.readyNodes().includes(1));
    for (const host of ['127.0.0.1', ...(ipv6Loopback ? ['[::1]'] : [])]) {
      const r = await fetch(`http://${host}:${p.port}/v1/kv/x`);
      assert.equal(r.status, 200, host);
      assert.equal(r.headers.get('x-raftauth-node'), '1', host);
    }
    assert.equal((await fetch(`${url}/v1/kv/y`)).status, 200);
  });

  it('refuses to start when another program holds [::1]:<port>: a browser opening localhost could reach it instead', { skip: ipv6Loopback ? false : 'no IPv6 loopback on this machine' }, async () => {
    const squatter = createServer((_req, res) => res.end('not the front'));
    await new Promise<void>((r) => squatter.listen(0, '::1', () => r()));
    cleanup.push(() => new Promise((r) => squatter.close(() => r())));
    const port = (squatter.address() as AddressInfo).port;
    const a = await fakeNode(1, 200);
    cleanup.push(() => new Promise((r) => a.server.close(() => r())));
    const p = new FrontProxy({ backends: [{ id: 1, url: a.url }], port });
    await assert.rejects(p.start(), /\[::1\]:\d+ is in use by another program/);
    // Nothing is left listening on 127.0.0.1 either.
    await assert.rejects(fetch(`http://127.0.0.1:${port}/v1/kv/x`));
    await p.close();
  });
});
