import { test } from 'node:test';
import assert from 'node:assert/strict';
import { createServer } from 'node:http';
import type { AddressInfo } from 'node:net';
import { Pool } from '../bench/client.ts';
import type { HttpCall } from '../bench/client.ts';
import { errorKey, LoadAccumulator, runLoad } from './load.ts';

/** A loopback server: /ok answers 200, /bad 400 invalid_grant, /plain 503 text; records which port each request hit. */
async function servers(n: number): Promise<{ ports: number[]; hits: number[]; close: () => Promise<void> }> {
  const hits = Array.from({ length: n }, () => 0);
  const list = await Promise.all(
    Array.from({ length: n }, (_, i) => {
      const s = createServer((req, res) => {
        hits[i]!++;
        req.resume();
        req.on('end', () => {
          if (req.url === '/ok') res.writeHead(200, { 'content-type': 'application/json' }).end('{"access_token":"x"}');
          else if (req.url === '/bad') res.writeHead(400, { 'content-type': 'application/json' }).end('{"error":"invalid_grant","error_description":"no"}');
          else res.writeHead(503).end('busy');
        });
      });
      return new Promise<typeof s>((r) => s.listen(0, '127.0.0.1', () => r(s)));
    }),
  );
  return {
    ports: list.map((s) => (s.address() as AddressInfo).port),
    hits,
    close: () => Promise.all(list.map((s) => new Promise<void>((r) => s.close(() => r())))).then(() => undefined),
  };
}

const call = (path: string): HttpCall => ({ method: 'POST', path, headers: {}, body: Buffer.from('a=b') });

test('errorKey names the status and the RFC 6749 §5.2 error code when there is one', () => {
  assert.equal(errorKey({ status: 400, body: '{"error":"invalid_grant"}' }), 'HTTP 400 invalid_grant');
  assert.equal(errorKey({ status: 503, body: 'busy' }), 'HTTP 503');
  assert.equal(errorKey({ status: 500, body: '{"message":"x"}' }), 'HTTP 500');
});

test('runLoad spreads requests round robin, times the successes and counts failures by kind', async () => {
  const s = await servers(3);
  const pool = new Pool(
    s.ports.map((port, i) => ({ member: String(i), host: '127.0.0.1', port })),
    4,
  );
  try {
    let k = 0;
    const r = await runLoad(pool, { next: () => call(++k % 5 === 0 ? '/bad' : k % 7 === 0 ? '/plain' : '/ok') }, 4, 50, 300, 2_000);
    assert.equal(r.concurrency, 4);
    assert.equal(r.measuredSeconds, 0.3);
    assert.ok(r.ok > 10, `ok ${r.ok}`);
    assert.equal(r.latency.count, r.ok);
    assert.ok(r.errors['HTTP 400 invalid_grant']! > 0);
    assert.ok(r.errors['HTTP 503']! > 0);
    assert.equal(r.errorCount, Object.values(r.errors).reduce((a, b) => a + b, 0));
    assert.equal(r.ranDryAtS, null);
    assert.ok(Math.abs(r.requestsPerSec - r.ok / 0.3) < 1);
    // Round robin: every endpoint took a fair share.
    const total = s.hits.reduce((a, b) => a + b, 0);
    for (const h of s.hits) assert.ok(h >= total / 3 - 4 && h <= total / 3 + 4, `hits ${s.hits}`);
  } finally {
    pool.close();
    await s.close();
  }
});

test('a source that runs dry ends the window there; network errors are counted and reported to the source', async () => {
  const s = await servers(1);
  const pool = new Pool([{ member: 'a', host: '127.0.0.1', port: s.ports[0]! }], 2);
  try {
    let left = 30;
    const answered: number[] = [];
    const r = await runLoad(
      pool,
      {
        next: () => (left-- > 0 ? call('/ok') : null),
        answered: (c, _call, a) => void answered.push(c * 1000 + a.status),
      },
      2,
      0,
      5_000,
      2_000,
    );
    assert.equal(r.ok, 30);
    assert.equal(answered.length, 30);
    assert.ok(r.ranDryAtS !== null && r.ranDryAtS < 5, `ranDryAtS ${r.ranDryAtS}`);
    assert.ok(r.measuredSeconds < 5);
  } finally {
    pool.close();
    await s.close();
  }
  // Nothing listens on the closed port any more: connection refused, counted by code.
  const dead = new Pool([{ member: 'a', host: '127.0.0.1', port: s.ports[0]! }], 1);
  try {
    const failures: string[] = [];
    let left = 3;
    const r = await runLoad(dead, { next: () => (left-- > 0 ? call('/ok') : null), failed: (_c, _call, code) => void failures.push(code) }, 1, 0, 2_000, 1_000);
    assert.deepEqual(r.errors, { ECONNREFUSED: 3 });
    assert.deepEqual(failures, ['ECONNREFUSED', 'ECONNREFUSED', 'ECONNREFUSED']);
    assert.equal(r.ok, 0);
  } finally {
    dead.close();
  }
});

test('slices of one level add up in a LoadAccumulator: seconds, counts, warm-up apart', async () => {
  const s = await servers(1);
  try {
    const acc = new LoadAccumulator();
    const slice = async (warmupMs: number, measureMs: number) => {
      const pool = new Pool([{ member: 'a', host: '127.0.0.1', port: s.ports[0]! }], 2);
      try {
        return await runLoad(pool, { next: () => call('/ok') }, 2, warmupMs, measureMs, 2_000, acc);
      } finally {
        pool.close();
      }
    };
    const w = await slice(100, 0);
    assert.equal(w.ok, 0);
    assert.ok(w.warmup.ok > 0);
    const a = await slice(0, 150);
    const b = await slice(0, 150);
    assert.equal(acc.slices, 2);
    assert.equal(b.measuredSeconds, 0.3);
    assert.ok(b.ok > a.ok && a.ok > 0);
    assert.equal(b.latency.count, b.ok);
    assert.equal(b.requestsPerSec, Math.round((b.ok / 0.3) * 10) / 10);
    assert.equal(b.warmup.ok, w.warmup.ok);
  } finally {
    await s.close();
  }
});
