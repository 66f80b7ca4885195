// `raftauth keys …` against fake admin APIs (node:http servers on 127.0.0.1): list on any node,
// rotate and rewrap following 409 NOT_LEADER to the leader; generate-master writes a key file.
import assert from 'node:assert/strict';
import { mkdtemp, readFile, rm, stat, writeFile } from 'node:fs/promises';
import { createServer } from 'node:http';
import type { Server } from 'node:http';
import type { AddressInfo } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterEach, beforeEach, describe, it } from 'node:test';
import { runRaftauth } from '../../../src/cli/main.ts';
import { MasterKeyRing } from '../../../src/crypto/seal.ts';
import { captureIo } from './io.ts';

const TOKEN = 't'.repeat(43);

interface Req {
  node: number;
  method: string;
  url: string;
}

describe('raftauth keys', () => {
  let dir: string;
  const servers: Server[] = [];
  const urls = new Map<number, string>();
  let requests: Req[];
  let rewrapped: number;
  const LEADER = 2;

  const keysAnswer = {
    signingKeys: {
      version: 3,
      keys: [
        { kid: 'kid-old', alg: 'ES256', state: 'retired', createdAt: 0, activatedAt: 1_000, publishUntil: 2_000 },
        { kid: 'kid-act', alg: 'ES256', state: 'active', createdAt: 0, activatedAt: 2_000, publishUntil: null },
        { kid: 'kid-nxt', alg: 'ES256', state: 'next', createdAt: 2_000, activatedAt: null, publishUntil: null },
      ],
    },
    dataKeys: { version: 1, activeId: 'dk1', keys: [{ id: 'dk1', masterKid: 'mk-old', createdAt: 0 }] },
    masterKeys: { current: 'mk-new', all: ['mk-new', 'mk-old'] },
  };

  beforeEach(async () => {
    dir = await mkdtemp(join(tmpdir(), 'raftauth-cli-keys-'));
    await writeFile(join(dir, 'token'), `${TOKEN}\n`);
    requests = [];
    rewrapped = 1;
    for (const id of [1, 2]) {
      const server = createServer((req, res) => {
        req.resume();
        req.on('end', () => {
          requests.push({ node: id, method: req.method!, url: req.url! });
          const send = (status: number, body: unknown) => {
            res.writeHead(status, { 'content-type': 'application/json' });
            res.end(JSON.stringify(body));
          };
          if (req.headers.authorization !== `Bearer ${TOKEN}`) return send(401, { error: 'UNAUTHORIZED', message: 'no' });
          if (req.method === 'GET' && req.url === '/admin/v1/status') return send(200, { id, role: id === LEADER ? 'leader' : 'follower', leader: LEADER, term: 4, commit: 9, applied: 9, lastIndex: 9, voters: [1, 2], learners: [], members: null });
          if (req.method === 'GET' && req.url === '/admin/v1/keys') return send(200, keysAnswer);
          if (req.method === 'POST' && (req.url === '/admin/v1/keys/rotate' || req.url === '/admin/v1/keys/rewrap')) {
            if (id !== LEADER) return send(409, { error: 'NOT_LEADER', leader: LEADER, leaderHttp: '127.0.0.1:1' });
            if (req.url.endsWith('rotate')) return send(200, { version: 4, active: 'kid-nxt', next: 'kid-new' });
            return send(200, { version: 2, masterKid: 'mk-new', rewrapped });
          }
          return send(404, { error: 'NOT_FOUND', message: 'no route' });
        });
      });
      await new Promise<void>((r) => server.listen(0, '127.0.0.1', () => r()));
      servers.push(server);
      urls.set(id, `http://127.0.0.1:${(server.address() as AddressInfo).port}`);
    }
  });
  afterEach(async () => {
    for (const s of servers.splice(0)) await new Promise((r) => s.close(r));
    await rm(dir, { recursive: true, force: true });
  });

  const run = async (args: string[], conn = true) => {
    const io = captureIo({}, dir);
    const code = await runRaftauth(['keys', ...args, ...(conn ? ['--admin', `${urls.get(1)!},${urls.get(2)!}`, '--token-file', 'token'] : [])], io);
    return { code, out: io.stdout(), err: io.stderr() };
  };

  it('list prints the signing keys, the data keys and which master key wraps them', async () => {
    const r = await run(['list']);
    assert.equal(r.code, 0, r.err);
    assert.deepEqual(requests.map((q) => `${q.node} ${q.method} ${q.url}`), ['1 GET /admin/v1/keys']);
    assert.match(r.out, /^signing keys \(ring version 3\):$/m);
    assert.match(r.out, /^kid-act\s+ES256\s+active\s+1970-01-01T00:00:00\.000Z\s+1970-01-01T00:00:02\.000Z\s+-$/m);
    assert.match(r.out, /^kid-old\s+ES256\s+retired\s+.*1970-01-01T00:00:02\.000Z$/m);
    assert.match(r.out, /^dk1\s+yes\s+mk-old\s+/m);
    assert.match(r.out, /master keys of the answering node: mk-new \(current\), mk-old/);
    const j = await run(['list', '--json']);
    assert.deepEqual(JSON.parse(j.out), keysAnswer);
  });

  it('rotate and rewrap follow NOT_LEADER to the leader', async () => {
    const r = await run(['rotate']);
    assert.equal(r.code, 0, r.err);
    assert.equal(r.out, 'signing keys rotated: kid-nxt is active, kid-new is next (ring version 4)\n');
    const posts = requests.filter((q) => q.method === 'POST').map((q) => `${q.node} ${q.url}`);
    assert.deepEqual(posts, ['1 /admin/v1/keys/rotate', '2 /admin/v1/keys/rotate']);
    const w = await run(['rewrap']);
    assert.equal(w.code, 0, w.err);
    assert.equal(w.out, '1 data key(s) rewrapped under master key mk-new (ring version 2)\n');
    rewrapped = 0;
    const again = await run(['rewrap']);
    assert.match(again.out, /already wrapped by master key mk-new; nothing to do/);
  });

  it('argument errors exit 2', async () => {
    for (const args of [['rotate', 'now'], ['list', '--all'], ['frobnicate'], []]) {
      const r = await run(args);
      assert.equal(r.code, 2, `${args.join(' ')}: ${r.err}`);
    }
    for (const args of [['generate-master', 'file'], ['generate-master', '--out'], ['generate-master', '--out', '']]) {
      const r = await run(args, false);
      assert.equal(r.code, 2, `${args.join(' ')}: ${r.err}`);
    }
    assert.equal(requests.length, 0);
  });

  it('generate-master prints a key file, or writes one at mode 0600 and never overwrites it', async () => {
    const p = await run(['generate-master'], false);
    assert.equal(p.code, 0, p.err);
    const printed = MasterKeyRing.parse(p.out, 'stdout');
    assert.equal(printed.kids().length, 1);
    const again = await run(['generate-master'], false);
    assert.notEqual(MasterKeyRing.parse(again.out, 'stdout').currentKid, printed.currentKid);

    const w = await run(['generate-master', '--out', 'master.key'], false);
    assert.equal(w.code, 0, w.err);
    const file = join(dir, 'master.key');
    assert.equal((await stat(file)).mode & 0o777, 0o600);
    const text = await readFile(file, 'utf8');
    assert.equal(w.out.includes(text.trim().split('\n').pop()!), false); // the key itself is not printed
    const ring = MasterKeyRing.load({ file, env: undefined }); // passes the 0600 check
    assert.equal(ring.kids().length, 1);

    const o = await run(['generate-master', '--out', 'master.key'], false);
    assert.equal(o.code, 1);
    assert.match(o.err, /exists; not overwriting/);
    assert.equal(await readFile(file, 'utf8'), text);
  });
});
