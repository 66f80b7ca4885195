// The demo data of `npm start` (issue 13, defect 8): on fresh data the leader creates the cluster's
// data key a moment after it is elected, and until the admin node has applied it, creating a user
// (whose password hash is sealed with that key) is refused 503. ensureDemo waits for the data key
// (GET /admin/v1/keys, a linearizable read) before it creates anything, within a deadline.
import { test } from 'node:test';
import type { TestContext } from 'node:test';
import assert from 'node:assert/strict';
import { mkdtemp, rm } from 'node:fs/promises';
import { createServer } from 'node:http';
import type { AddressInfo } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { ensureDemo } from './demo.ts';

const TOKEN = 'k'.repeat(43);

interface Fake {
  readonly url: string;
  readonly requests: string[];
}

/**
 * A fake admin API whose data key appears after `keyPolls` reads of /admin/v1/keys (time passing
 * while the caller waits), or never (keyPolls Infinity). Before that, POST /admin/v1/users answers
 * 503 as the real one does.
 */
async function fakeAdmin(t: TestContext, keyPolls: number): Promise<Fake> {
  const requests: string[] = [];
  let polls = 0;
  const server = createServer((req, res) => {
    const send = (status: number, body: unknown): void => {
      res.writeHead(status, { 'content-type': 'application/json' });
      res.end(JSON.stringify(body));
    };
    req.resume();
    req.on('end', () => {
      requests.push(`${req.method} ${req.url}`);
      if (req.headers.authorization !== `Bearer ${TOKEN}`) return send(401, { error: 'UNAUTHORIZED' });
      const ready = polls >= keyPolls;
      if (req.method === 'GET' && req.url === '/admin/v1/keys') {
        polls++;
        return send(200, { signingKeys: null, dataKeys: ready ? { version: 1, activeId: 'dk1', keys: [] } : null, masterKeys: { current: 'm', all: ['m'] } });
      }
      if (req.method === 'DELETE') return send(404, { error: 'NOT_FOUND' });
      if (req.method === 'POST' && req.url === '/admin/v1/clients') return send(201, { client: {}, client_secret: 'secret' });
      if (req.method === 'POST' && req.url === '/admin/v1/users') {
        return ready ? send(201, { user: {} }) : send(503, { error: 'UNAVAILABLE', message: 'the cluster has not created its data key yet; retry in a moment' });
      }
      return send(404, { error: 'NOT_FOUND' });
    });
  });
  await new Promise<void>((r) => server.listen(0, '127.0.0.1', r));
  t.after(() => new Promise<void>((r) => server.close(() => r())));
  return { url: `http://127.0.0.1:${(server.address() as AddressInfo).port}`, requests };
}

async function tempDir(t: TestContext): Promise<string> {
  const dir = await mkdtemp(join(tmpdir(), 'raftauth-demo-'));
  t.after(() => rm(dir, { recursive: true, force: true }));
  return dir;
}

test('the demo data waits for the data key instead of failing on the 503 before it exists', async (t) => {
  const fake = await fakeAdmin(t, 3);
  const demo = await ensureDemo({ url: fake.url, token: TOKEN }, await tempDir(t), { dataKeyTimeoutMs: 10_000, pollMs: 1 });
  assert.equal(demo.user.username, 'demo');
  assert.equal(demo.confidentialClient.client_secret, 'secret');
  // Nothing was created before the key existed: the key reads come first.
  const firstWrite = fake.requests.findIndex((r) => !r.startsWith('GET /admin/v1/keys'));
  assert.deepEqual(fake.requests.slice(0, firstWrite), Array(4).fill('GET /admin/v1/keys'));
});

test('a data key that never comes fails within the deadline, saying what it waited for, and creates nothing', async (t) => {
  const fake = await fakeAdmin(t, Infinity);
  await assert.rejects(
    ensureDemo({ url: fake.url, token: TOKEN }, await tempDir(t), { dataKeyTimeoutMs: 200, pollMs: 5 }),
    /timed out after 200 ms waiting for the cluster's data key at http:\/\/127\.0\.0\.1:\d+ \(the leader creates it at start; does every node have the master key\?\)/,
  );
  assert.ok(fake.requests.every((r) => r === 'GET /admin/v1/keys'), fake.requests.join(', '));
});

test('an answer that waiting cannot change (no OAuth on the node, a refused token) fails at once', async (t) => {
  const fake = await fakeAdmin(t, 0);
  await assert.rejects(ensureDemo({ url: fake.url, token: 'wrong'.repeat(9) }, await tempDir(t), { dataKeyTimeoutMs: 10_000, pollMs: 5 }), /reading the data keys: HTTP 401/);
  assert.equal(fake.requests.length, 1);
});
