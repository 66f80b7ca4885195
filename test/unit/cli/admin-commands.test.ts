// status, members and transfer-leader against fake admin APIs (node:http servers on 127.0.0.1 that
// speak src/ops/admin.ts's protocol over one shared, scripted cluster state). The real cluster is
// exercised by test/start/start.test.ts.
import assert from 'node:assert/strict';
import { mkdtemp, rm, writeFile } from 'node:fs/promises';
import { createServer } from 'node:http';
import type { IncomingMessage, Server, ServerResponse } from 'node:http';
import type { AddressInfo } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterEach, beforeEach, describe, it } from 'node:test';
import type { NodeStatus } from '../../../src/node/api.ts';
import { buildStatusReport } from '../../../src/cli/commands/cluster.ts';
import { runRaftauth } from '../../../src/cli/main.ts';
import { captureIo } from './io.ts';

const TOKEN = 't'.repeat(43);

interface FakeCluster {
  leader: number;
  term: number;
  voters: number[];
  learners: number[];
  commit: number;
  applied: Map<number, number>;
  /** Hook run on every authorized request (scripts elections and transfers as conditions, not timers). */
  onRequest: (() => void) | null;
  /** A refusal the leader answers to the next change, if set. */
  refuse: { status: number; error: string; message: string } | null;
  requests: { node: number; method: string; url: string; body: unknown }[];
  /** false: a transfer is accepted but never completes (the target does not catch up). */
  transferCompletes: boolean;
}

interface FakeNode {
  id: number;
  server: Server;
  url: string;
}

function statusOf(c: FakeCluster, id: number): NodeStatus {
  const leader = id === c.leader;
  return {
    id,
    role: leader ? 'leader' : 'follower',
    leader: c.leader,
    term: c.term,
    commit: c.commit,
    applied: c.applied.get(id) ?? c.commit,
    lastIndex: c.commit,
    voters: [...c.voters],
    learners: [...c.learners],
    members: leader ? [...c.voters, ...c.learners].map((m) => ({ id: m, role: m === id ? 'leader' : c.learners.includes(m) ? 'learner' : 'follower', voter: !c.learners.includes(m), match: c.applied.get(m) ?? c.commit })) : null,
  };
}

async function readBody(req: IncomingMessage): Promise<unknown> {
  let s = '';
  for await (const c of req) s += c;
  return s ? JSON.parse(s) : undefined;
}

function handler(c: FakeCluster, id: number) {
  return async (req: IncomingMessage, res: ServerResponse) => {
    const send = (status: number, body: unknown) => {
      res.writeHead(status, { 'content-type': 'application/json' });
      res.end(JSON.stringify(body));
    };
    const body = await readBody(req);
    c.requests.push({ node: id, method: req.method!, url: req.url!, body });
    if (req.headers.authorization !== `Bearer ${TOKEN}`) return send(401, { error: 'UNAUTHORIZED', message: 'a valid admin bearer token is required' });
    c.onRequest?.();
    if (req.method === 'GET' && req.url === '/admin/v1/status') {
      return send(200, statusOf(c, id));
    }
    if (id !== c.leader) return send(409, { error: 'NOT_LEADER', leader: c.leader, leaderHttp: c.leader ? `127.0.0.1:${18000 + c.leader}` : null });
    if (c.refuse) return send(c.refuse.status, { error: c.refuse.error, message: c.refuse.message });
    let m: RegExpExecArray | null;
    if (req.method === 'POST' && req.url === '/admin/v1/members') {
      c.learners.push((body as { id: number }).id);
    } else if (req.method === 'POST' && (m = /^\/admin\/v1\/members\/(\d+)\/promote$/.exec(req.url!))) {
      const n = Number(m[1]);
      c.learners = c.learners.filter((x) => x !== n);
      c.voters.push(n);
    } else if (req.method === 'DELETE' && (m = /^\/admin\/v1\/members\/(\d+)$/.exec(req.url!))) {
      const n = Number(m[1]);
      c.voters = c.voters.filter((x) => x !== n);
      c.learners = c.learners.filter((x) => x !== n);
    } else if (req.method === 'POST' && req.url === '/admin/v1/leader/transfer') {
      const to = (body as { to: number }).to;
      // The transfer completes after two more requests (status polls), as a real one takes a round or two.
      let polls = 0;
      if (c.transferCompletes) {
        c.onRequest = () => {
          if (++polls === 2) {
            c.leader = to;
            c.term++;
            c.onRequest = null;
          }
        };
      }
      return send(202, { ok: true, to });
    } else {
      return send(404, { error: 'NOT_FOUND', message: 'no route' });
    }
    c.commit++;
    return send(200, { ok: true, status: statusOf(c, id) });
  };
}

describe('admin commands against fake admin APIs', () => {
  let c: FakeCluster;
  let nodes: FakeNode[];
  let dir: string;

  beforeEach(async () => {
    c = { leader: 2, term: 5, voters: [1, 2, 3], learners: [], commit: 100, applied: new Map([[3, 97]]), onRequest: null, refuse: null, requests: [], transferCompletes: true };
    nodes = [];
    for (const id of [1, 2, 3]) {
      const server = createServer((req, res) => void handler(c, id)(req, res));
      await new Promise<void>((r) => server.listen(0, '127.0.0.1', () => r()));
      nodes.push({ id, server, url: `http://127.0.0.1:${(server.address() as AddressInfo).port}` });
    }
    dir = await mkdtemp(join(tmpdir(), 'raftauth-cli-'));
    await writeFile(join(dir, 'token'), `${TOKEN}\n`);
  });
  afterEach(async () => {
    for (const n of nodes) if (n.server.listening) await new Promise((r) => n.server.close(r));
    await rm(dir, { recursive: true, force: true });
  });

  const conn = (...urls: string[]) => ['--admin', urls.join(','), '--token-file', 'token'];
  const url = (id: number) => nodes.find((n) => n.id === id)!.url;

  it('status prints every member with role, term, indexes and lag; --json has the same', async () => {
    const io = captureIo({}, dir);
    assert.equal(await runRaftauth(['status', ...conn(url(1), url(2), url(3))], io), 0, io.stderr());
    const lines = io.stdout().trim().split('\n');
    assert.equal(lines[0], 'leader: 2  term: 5');
    assert.match(lines[1]!, /^ID\s+ROLE\s+VOTER\s+TERM\s+COMMIT\s+APPLIED\s+MATCH\s+LAG$/);
    assert.match(lines[2]!, /^1\s+follower\s+yes\s+5\s+100\s+100\s+100\s+0$/);
    assert.match(lines[3]!, /^2\s+leader\s+yes\s+5\s+100\s+100\s+100\s+0$/);
    assert.match(lines[4]!, /^3\s+follower\s+yes\s+5\s+100\s+97\s+97\s+3$/);
    const j = captureIo({}, dir);
    assert.equal(await runRaftauth(['status', '--json', ...conn(url(1), url(2), url(3))], j), 0);
    const report = JSON.parse(j.stdout());
    assert.equal(report.leader, 2);
    assert.deepEqual(report.members.map((m: { id: number; lag: number }) => [m.id, m.lag]), [[1, 0], [2, 0], [3, 3]]);
  });

  it('status shows an unreachable node and still exits 0; exits 1 when no node answers', async () => {
    await new Promise((r) => nodes[2]!.server.close(r));
    const io = captureIo({}, dir);
    assert.equal(await runRaftauth(['status', ...conn(url(1), url(2), url(3))], io), 0);
    assert.match(io.stdout(), /^3\s+unreachable\s+yes\s+-\s+-\s+-\s+97\s+3$/m);
    assert.match(io.stdout(), /unreachable: http:\/\/127\.0\.0\.1:\d+: cannot reach the admin API/);
    await new Promise((r) => nodes[0]!.server.close(r));
    await new Promise((r) => nodes[1]!.server.close(r));
    const none = captureIo({}, dir);
    assert.equal(await runRaftauth(['status', ...conn(url(1), url(2), url(3))], none), 1);
  });

  it('members add sent to a follower follows NOT_LEADER to the leader found by asking the others', async () => {
    const io = captureIo({}, dir);
    const code = await runRaftauth(['members', 'add', '--id', '4', '--raft-address', '127.0.0.1:17004', '--http-address', '127.0.0.1:18004', ...conn(url(1), url(3))], io);
    // node 2's URL was not given: it cannot be found, and the error says what to do.
    assert.equal(code, 1);
    assert.match(io.stderr(), /node 2 \(HTTP 127\.0\.0\.1:18002\) is the leader, but its admin URL is unknown/);
    assert.deepEqual(c.learners, []);

    const ok = captureIo({}, dir);
    assert.equal(await runRaftauth(['members', 'add', '--id', '4', '--raft-address', '127.0.0.1:17004', '--http-address', '127.0.0.1:18004', ...conn(url(1), url(2), url(3))], ok), 0, ok.stderr());
    assert.match(ok.stdout(), /node 4 added as a learner/);
    assert.deepEqual(c.learners, [4]);
    const posts = c.requests.filter((r) => r.method === 'POST');
    assert.deepEqual(posts.map((r) => r.node).slice(-2), [1, 2], 'first the follower, then the leader');
    assert.deepEqual(posts.at(-1)!.body, { id: 4, raftAddress: '127.0.0.1:17004', httpAddress: '127.0.0.1:18004' });
  });

  it('a cluster.json maps the leader id to its admin URL', async () => {
    await writeFile(join(dir, 'cluster.json'), JSON.stringify({ front: 'http://127.0.0.1:1', nodes: nodes.map((n) => ({ id: n.id, http: `http://127.0.0.1:${18000 + n.id}`, admin: n.url, pid: 1 })) }));
    await writeFile(join(dir, 'admin.token'), TOKEN);
    const io = captureIo({}, dir);
    // Only node 3 given on the command line; the token comes from admin.token beside cluster.json.
    assert.equal(await runRaftauth(['members', 'promote', '3', '--admin', url(3), '--cluster', 'cluster.json'], io), 0, io.stderr());
    assert.equal(c.requests.filter((r) => r.method === 'POST' && r.node === 2).length, 1);
    // With no --admin at all, every node of cluster.json is used.
    const rm = captureIo({}, dir);
    assert.equal(await runRaftauth(['members', 'remove', '3', '--cluster', 'cluster.json'], rm), 0, rm.stderr());
    assert.deepEqual(c.voters, [1, 2]);
    assert.match(rm.stdout(), /node 3 removed\nvoters: 1, 2; learners: -/);
  });

  it('while no leader is known it retries until one is elected', async () => {
    c.leader = 0;
    let asked = 0;
    // The election "finishes" after the CLI has asked three times (a condition, not a timer).
    c.onRequest = () => {
      if (++asked === 3) c.leader = 1;
    };
    const io = captureIo({}, dir);
    assert.equal(await runRaftauth(['members', 'remove', '3', ...conn(url(2), url(1))], io), 0, io.stderr());
    assert.deepEqual(c.voters, [1, 2]);
    const posts = c.requests.filter((r) => r.method === 'DELETE').map((r) => r.node);
    assert.deepEqual(posts.slice(0, 3), [2, 2, 2], 'asked the same node again while no leader was known');
    assert.equal(posts.at(-1), 1);
  });

  it('a refusal by the leader is a failure (exit 1) with its code and message', async () => {
    c.refuse = { status: 400, error: 'INVALID_REQUEST', message: 'node 9 is not a learner' };
    const io = captureIo({}, dir);
    assert.equal(await runRaftauth(['members', 'promote', '9', ...conn(url(2))], io), 1);
    assert.match(io.stderr(), /refused: INVALID_REQUEST: node 9 is not a learner/);
  });

  it('a wrong token is a failure that says so', async () => {
    const io = captureIo({ RAFTAUTH_ADMIN: url(1), RAFTAUTH_ADMIN_TOKEN: 'w'.repeat(43) }, dir);
    assert.equal(await runRaftauth(['status'], io), 1);
    assert.match(io.stdout(), /unreachable: .*admin token was refused \(401\)/);
    const m = captureIo({ RAFTAUTH_ADMIN: url(2), RAFTAUTH_ADMIN_TOKEN: 'w'.repeat(43) }, dir);
    assert.equal(await runRaftauth(['members', 'remove', '1'], m), 1);
    assert.match(m.stderr(), /admin token was refused \(401\)/);
  });

  it('transfer-leader waits until the target leads', async () => {
    const io = captureIo({}, dir);
    assert.equal(await runRaftauth(['transfer-leader', '3', ...conn(url(1), url(2), url(3))], io), 0, io.stderr());
    assert.equal(c.leader, 3);
    assert.match(io.stdout(), /node 3 is the leader \(term 6\)/);
  });

  it('transfer-leader fails (exit 1) when the target does not take over in time', async () => {
    c.transferCompletes = false;
    const io = captureIo({}, dir);
    assert.equal(await runRaftauth(['transfer-leader', '1', '--timeout-ms', '300', ...conn(url(1), url(2), url(3))], io), 1);
    assert.match(io.stderr(), /node 1 did not become the leader within 300 ms \(leader: 2\)/);
  });
});

describe('buildStatusReport', () => {
  const st = (o: Partial<NodeStatus> & { id: number }): NodeStatus => ({ role: 'follower', leader: 0, term: 1, commit: 0, applied: 0, lastIndex: 0, voters: [1, 2, 3], learners: [], members: null, ...o });

  it('prefers the leader of the higher term when two nodes say leader', () => {
    const r = buildStatusReport([
      { url: 'a', status: st({ id: 1, role: 'leader', leader: 1, term: 3, commit: 10 }), error: null },
      { url: 'b', status: st({ id: 2, role: 'leader', leader: 2, term: 4, commit: 12, members: [] }), error: null },
    ]);
    assert.equal(r.leader, 2);
    assert.equal(r.term, 4);
    assert.deepEqual(r.members.map((m) => m.id), [1, 2, 3]);
    // Node 3 was not asked (no admin URL for it): unknown, not unreachable (issue 13, defect 6).
    assert.equal(r.members[2]!.role, 'unknown');
  });

  it('a member is unreachable when its own admin URL failed, or when a URL of unknown node failed; unknown when it was not asked', () => {
    const base = { url: 'a', id: 1, status: st({ id: 1, role: 'leader', leader: 1, term: 2, voters: [1, 2, 3, 4] }), error: null };
    const byId = buildStatusReport([base, { url: 'c', id: 3, status: null, error: 'down' }]);
    assert.deepEqual(byId.members.map((m) => [m.id, m.role]), [[1, 'leader'], [2, 'unknown'], [3, 'unreachable'], [4, 'unknown']]);
    const unattributed = buildStatusReport([base, { url: 'x', id: null, status: null, error: 'down' }]);
    assert.deepEqual(unattributed.members.map((m) => [m.id, m.role]), [[1, 'leader'], [2, 'unreachable'], [3, 'unreachable'], [4, 'unreachable']]);
  });

  it('without a reachable leader: the leader a follower names, no lag, learners marked', () => {
    const r = buildStatusReport([
      { url: 'a', status: st({ id: 1, leader: 3, term: 2, voters: [1, 3], learners: [4] }), error: null },
      { url: 'b', status: null, error: 'down' },
    ]);
    assert.equal(r.leader, 3);
    assert.deepEqual(r.members.map((m) => [m.id, m.voter, m.lag]), [[1, true, null], [3, true, null], [4, false, null]]);
    assert.deepEqual(r.unreachable, [{ url: 'b', error: 'down' }]);
  });
});
