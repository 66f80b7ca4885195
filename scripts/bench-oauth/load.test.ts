import { test } from 'node:test';
import assert from 'node:assert/strict';
import { createServer } from 'node:http';
import type { AddressInfo } from 'node:net';
import { Pool } from '../bench/client.ts';
import type { HttpCall } from '../bench/client.ts';
import { errorKey, LoadAccumulator, runLoad } from './load.ts';
import type { RequestSource } from './load.ts';

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

/**
 * A window no run of these tests reaches: the window ends because the source ran dry, an event,
 * so what is counted does not depend on how fast the machine is. (A run-dry bug would show as a
 * window of this length, not as a slow test.)
 */
const UNREACHED_WINDOW_MS = 60_000;

test('runLoad spreads requests round robin, times the successes and counts failures by kind', async () => {
  const s = await servers(3);
  const pool = new Pool(
    s.ports.map((port, i) => ({ member: String(i), host: '127.0.0.1', port })),
    4,
  );
  try {
    // 70 requests: every 5th /bad (14), every 7th not 5th /plain (8), the other 48 /ok.
    let k = 0;
    const r = await runLoad(pool, { next: () => (k >= 70 ? null : call(++k % 5 === 0 ? '/bad' : k % 7 === 0 ? '/plain' : '/ok')) }, 4, 0, UNREACHED_WINDOW_MS, 2_000);
    assert.equal(r.concurrency, 4);
    assert.equal(r.ok, 48);
    assert.equal(r.latency.count, r.ok);
    assert.deepEqual(r.errors, { 'HTTP 400 invalid_grant': 14, 'HTTP 503': 8 });
    assert.equal(r.errorCount, 22);
    assert.ok(r.ranDryAtS !== null && r.measuredSeconds === r.ranDryAtS, `window ${r.measuredSeconds} s, ran dry at ${r.ranDryAtS} s`);
    // requestsPerSec is ok over the unrounded seconds, which measuredSeconds shows to 0.01 s.
    const m = r.measuredSeconds;
    const [lo, hi] = [r.ok / (m + 0.005) - 0.05, m > 0.005 ? r.ok / (m - 0.005) + 0.05 : Infinity];
    assert.ok(r.requestsPerSec >= lo && r.requestsPerSec <= hi, `${r.requestsPerSec}/s for ${r.ok} in ${m} s`);
    assert.deepEqual(r.warmup, { ok: 0, errors: {} });
    // Round robin per client ((c + k) mod 3): each of the 4 clients spreads its requests with
    // counts differing by at most one, so the endpoints' totals differ by at most 4.
    assert.equal(s.hits.reduce((a, b) => a + b, 0), 70);
    assert.ok(Math.max(...s.hits) - Math.min(...s.hits) <= 4, `hits ${s.hits}`);
  } finally {
    pool.close();
    await s.close();
  }
});

test('a fixed window: its length is the one asked, and only what completes inside it is counted', async () => {
  const s = await servers(1);
  const pool = new Pool([{ member: 'a', host: '127.0.0.1', port: s.ports[0]! }], 2);
  try {
    // An endless source: the window's end stops the clients. How much fits in 0.3 s is the
    // machine's business; the bookkeeping is not.
    const r = await runLoad(pool, { next: () => call('/ok') }, 2, 0, 300, 2_000);
    assert.equal(r.measuredSeconds, 0.3);
    assert.equal(r.ranDryAtS, null);
    assert.equal(r.latency.count, r.ok);
    assert.equal(r.requestsPerSec, Math.round((r.ok / 0.3) * 10) / 10);
    // Every counted request reached the server; the last one of each client may end outside the window.
    assert.ok(r.ok <= s.hits[0]!, `ok ${r.ok} > hits ${s.hits[0]}`);
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
      UNREACHED_WINDOW_MS,
      2_000,
    );
    assert.equal(r.ok, 30);
    assert.equal(answered.length, 30);
    // The window ended when the source ran dry, not at its asked length.
    assert.ok(r.ranDryAtS !== null && r.measuredSeconds === r.ranDryAtS, `window ${r.measuredSeconds} s, ran dry at ${r.ranDryAtS} s`);
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
    const slice = async (source: RequestSource, warmupMs: number, measureMs: number) => {
      const pool = new Pool([{ member: 'a', host: '127.0.0.1', port: s.ports[0]! }], 2);
      try {
        return await runLoad(pool, source, 2, warmupMs, measureMs, 2_000, acc);
      } finally {
        pool.close();
      }
    };
    const endless: RequestSource = { next: () => call('/ok') };
    const w = await slice(endless, 100, 0);
    assert.equal(w.ok, 0);
    assert.ok(w.warmup.ok > 0);
    // Two fixed windows: their seconds add up exactly, and the counts only grow.
    const a = await slice(endless, 0, 150);
    const b = await slice(endless, 0, 150);
    assert.equal(acc.slices, 2);
    assert.equal(a.measuredSeconds, 0.15);
    assert.equal(b.measuredSeconds, 0.3);
    assert.ok(b.ok >= a.ok);
    assert.equal(b.latency.count, b.ok);
    assert.equal(b.requestsPerSec, Math.round((b.ok / 0.3) * 10) / 10);
    assert.equal(b.warmup.ok, w.warmup.ok);
    // Two slices that run dry after exactly 10 requests each: the counts add up exactly.
    const counted = new LoadAccumulator();
    const ten = (): RequestSource => {
      let left = 10;
      return { next: () => (left-- > 0 ? call('/ok') : null) };
    };
    for (const want of [10, 20]) {
      const pool = new Pool([{ member: 'a', host: '127.0.0.1', port: s.ports[0]! }], 2);
      try {
        const r = await runLoad(pool, ten(), 2, 0, UNREACHED_WINDOW_MS, 2_000, counted);
        assert.equal(r.ok, want);
        assert.equal(r.latency.count, want);
      } finally {
        pool.close();
      }
    }
    assert.equal(counted.slices, 2);
  } finally {
    await s.close();
  }
});
