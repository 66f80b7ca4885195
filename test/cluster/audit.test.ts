// The audit chain across a leader failure (issue 6): acknowledged events — a client created, users
// created, client secrets rotated, client_credentials tokens issued (each answered only after its
// token.issued record committed) — before and after a kill -9 of the leader; then every node,
// the killed one restarted and caught up included, verifies its own copy of the chain, and every
// acknowledged event has its record on every node, in the same order.
import assert from 'node:assert/strict';
import { test } from 'node:test';
import { ProcessCluster, httpJson, waitFor } from './harness.ts';

const IDS = [1, 2, 3] as const;

test('audit chain: every acknowledged event on every node, in the same order, and the chain verifies after a leader kill', { timeout: 90_000 }, async () => {
  const c = await ProcessCluster.create(IDS, { name: 'audit', oauth: { issuer: 'http://127.0.0.1:9' } });
  try {
    await Promise.all(IDS.map((id) => c.startServing(id)));
    const admin = async (id: number, method: string, path: string, body?: unknown) => {
      const r = await httpJson(c.member(id).adminAddress, method, path, { ...(body !== undefined ? { body } : {}), headers: { authorization: `Bearer ${c.adminToken}` }, timeoutMs: 15_000 });
      return r;
    };
    const live = new Set<number>(IDS);
    /** An admin call on any live node, retried while the cluster elects a leader. */
    const adminAny = async (method: string, path: string, body?: unknown) =>
      waitFor(
        `${method} ${path}`,
        async () => {
          for (const id of live) {
            try {
              const r = await admin(id, method, path, body);
              if (r.status < 500) return r;
            } catch {
              // that node is going away; try another
            }
          }
          return null;
        },
        20_000,
      );
    // What the test was acknowledged, in order: [type, key detail].
    const acked: { type: string; match: (r: AuditRow) => boolean }[] = [];
    const cc = await adminAny('POST', '/admin/v1/clients', { client_id: 'svc', client_name: 'Service', grant_types: ['client_credentials'], scopes: ['read'] });
    assert.equal(cc.status, 201, JSON.stringify(cc.body));
    acked.push({ type: 'client.created', match: (r) => r.clientId === 'svc' });
    let secret = cc.body.client_secret as string;

    const token = async (): Promise<string> =>
      waitFor(
        'a client_credentials token',
        async () => {
          for (const id of live) {
            try {
              const res = await fetch(`http://${c.member(id).httpAddress}/token`, {
                method: 'POST',
                headers: { 'content-type': 'application/x-www-form-urlencoded', authorization: `Basic ${Buffer.from(`svc:${secret}`).toString('base64')}` },
                body: 'grant_type=client_credentials&scope=read',
                signal: AbortSignal.timeout(10_000),
              });
              if (res.status !== 200) continue;
              const at = ((await res.json()) as { access_token: string }).access_token;
              return JSON.parse(Buffer.from(at.split('.')[1]!, 'base64url').toString()).jti as string;
            } catch {
              // node down or no answer: not acknowledged, try another
            }
          }
          return null;
        },
        20_000,
      );
    const round = async (tag: string) => {
      const u = await adminAny('POST', '/admin/v1/users', { username: `user-${tag}`, password: 'correct horse battery staple' });
      assert.equal(u.status, 201, JSON.stringify(u.body));
      const sub = u.body.sub as string;
      acked.push({ type: 'user.created', match: (r) => r.sub === sub });
      for (let i = 0; i < 5; i++) {
        const jti = await token();
        acked.push({ type: 'token.issued', match: (r) => r.details.jti === jti });
      }
      const rot = await adminAny('POST', '/admin/v1/clients/svc/secret');
      assert.equal(rot.status, 200, JSON.stringify(rot.body));
      secret = rot.body.client_secret as string;
      acked.push({ type: 'client.updated', match: (r) => r.clientId === 'svc' && r.details.secretChanged === true });
    };
    await round('a');
    await round('b');
    const leader = await c.waitLeader(IDS);
    await c.kill(leader);
    live.delete(leader);
    await round('c');
    await round('d');
    await c.startServing(leader);
    live.add(leader);
    const newLeader = await c.waitLeader(IDS);
    await c.waitCaughtUp(IDS, newLeader);

    const copies = new Map<number, AuditRow[]>();
    for (const id of IDS) {
      const v = await admin(id, 'GET', `/admin/v1/audit/verify?node=${id}`);
      assert.equal(v.status, 200, JSON.stringify(v.body));
      assert.equal(v.body.ok, true, `node ${id}: ${JSON.stringify(v.body)}`);
      const rows: AuditRow[] = [];
      let after = 0;
      for (;;) {
        const q = await admin(id, 'GET', `/admin/v1/audit?limit=1000&after=${after}`);
        assert.equal(q.status, 200, JSON.stringify(q.body));
        rows.push(...(q.body.records as AuditRow[]));
        if (typeof q.body.next !== 'number') break;
        after = q.body.next;
      }
      copies.set(id, rows);
    }
    // Every node holds the same chain (same hashes), up to the shortest (a record appended meanwhile, e.g. by a member change, may be missing on a slower node).
    const [a, b, d] = IDS.map((id) => copies.get(id)!.map((r) => r.hash));
    const n = Math.min(a!.length, b!.length, d!.length);
    assert.deepEqual(b!.slice(0, n), a!.slice(0, n));
    assert.deepEqual(d!.slice(0, n), a!.slice(0, n));
    for (const id of IDS) {
      const rows = copies.get(id)!;
      let lastSeq = 0;
      for (const ev of acked) {
        // The next matching record after the previous event's: acknowledged order is chain order.
        const r = rows.find((x) => x.seq > lastSeq && x.type === ev.type && ev.match(x));
        assert.ok(r, `node ${id}: no ${ev.type} record after seq ${lastSeq} for an acknowledged event`);
        lastSeq = r.seq;
      }
    }
    console.log(`# audit: ${acked.length} acknowledged events, ${a!.length} records on node 1; node ${leader} was killed and caught up`);
  } finally {
    await c.close();
  }
});

interface AuditRow {
  seq: number;
  type: string;
  sub: string | null;
  clientId: string | null;
  details: Record<string, unknown>;
  hash: string;
}
