// The workers' group commit of audit events (src/audit/batcher.ts), and the client_credentials
// grant that uses it: the token is answered only after its token.issued record is committed.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { AuditBatcher, AuditQueueFull } from '../../../src/audit/batcher.ts';
import type { AuditEvent } from '../../../src/state/audit-ops.ts';
import { DomainError } from '../../../src/state/machine.ts';
import { oauthTestApp } from '../../support/oauth-app.ts';
import { ev, outsideHash, records } from './helpers.ts';

/** A write the test completes by hand: each call waits until released. */
function manualWrite() {
  const calls: { events: readonly AuditEvent[]; resolve: () => void; reject: (e: Error) => void }[] = [];
  let seq = 0;
  const write = (events: readonly AuditEvent[]) =>
    new Promise<{ seqs: number[] }>((resolve, reject) => {
      calls.push({ events, resolve: () => resolve({ seqs: events.map(() => ++seq) }), reject });
    });
  return { calls, write };
}

const tick = () => new Promise<void>((r) => setImmediate(r));

test('group commit: alone when idle; while a batch is in flight, events accumulate into batches of at most 256', async () => {
  const m = manualWrite();
  const b = new AuditBatcher(m.write);
  const first = b.append(ev({ details: { n: 0 } }));
  assert.equal(m.calls.length, 1, 'proposed at once');
  assert.equal(m.calls[0]!.events.length, 1);
  const rest = Array.from({ length: 300 }, (_, i) => b.append(ev({ details: { n: i + 1 } })));
  await tick();
  assert.equal(m.calls.length, 1, 'nothing more while one batch is in flight');
  assert.equal(b.queued, 300);
  m.calls[0]!.resolve();
  assert.equal(await first, 1);
  await tick();
  assert.equal(m.calls.length, 2);
  assert.equal(m.calls[1]!.events.length, 256);
  m.calls[1]!.resolve();
  await tick();
  assert.equal(m.calls[2]!.events.length, 44);
  m.calls[2]!.resolve();
  const seqs = await Promise.all(rest);
  assert.deepEqual(seqs, Array.from({ length: 300 }, (_, i) => i + 2), 'each waiter gets its own record');
  assert.deepEqual(m.calls.flatMap((c) => c.events.map((e) => e.details.n)), Array.from({ length: 301 }, (_, i) => i), 'order kept');
});

test('a full queue refuses at once; a failed command fails its own waiters only; a malformed event never joins a batch', async () => {
  const m = manualWrite();
  const b = new AuditBatcher(m.write, { maxQueued: 3 });
  const inFlight = b.append(ev());
  const queued = [b.append(ev()), b.append(ev()), b.append(ev())];
  await assert.rejects(b.append(ev()), AuditQueueFull);
  await assert.rejects(b.append({ ...ev(), type: 'nope' as AuditEvent['type'] }), DomainError);
  m.calls[0]!.reject(new Error('leader lost'));
  await assert.rejects(inFlight, /leader lost/);
  await tick();
  assert.equal(m.calls[1]!.events.length, 3);
  m.calls[1]!.resolve();
  assert.deepEqual(await Promise.all(queued), [1, 2, 3]);
  assert.throws(() => new AuditBatcher(m.write, { maxBatch: 257 }), RangeError);
});

test('client_credentials: the token is answered after its token.issued record is committed; no record, no token', async (t) => {
  const o = await oauthTestApp();
  t.after(() => o.close());
  const { secret } = await o.addClient({ client_id: 'svc', grant_types: ['client_credentials'], scopes: ['read'] });
  const token = () =>
    o.app.inject({
      method: 'POST',
      url: '/token',
      headers: { 'content-type': 'application/x-www-form-urlencoded', authorization: `Basic ${Buffer.from(`svc:${secret}`).toString('base64')}` },
      payload: 'grant_type=client_credentials&scope=read',
      remoteAddress: '192.0.2.10',
    });
  const before = records(o.node).length;
  const r = await token();
  assert.equal(r.statusCode, 200, r.body);
  const jti = JSON.parse(Buffer.from((r.json() as { access_token: string }).access_token.split('.')[1]!, 'base64url').toString()).jti as string;
  const rec = records(o.node).at(-1)!;
  assert.equal(records(o.node).length, before + 1);
  assert.deepEqual([rec.type, rec.sub, rec.clientId, rec.ip], ['token.issued', null, 'svc', '192.0.2.10']);
  assert.deepEqual({ ...rec.details }, { grant: 'client_credentials', jti, scope: 'read' });
  assert.equal(outsideHash({ ...rec }), rec.hash);
  assert.ok(!JSON.stringify(rec).includes((r.json() as { access_token: string }).access_token.split('.')[2]!), 'no token in the record');
  // The cluster cannot take the record: 503, and no token is handed out.
  o.node.failNext = { code: 'UNAVAILABLE', count: 1 };
  const failed = await token();
  assert.equal(failed.statusCode, 503);
  assert.equal((failed.json() as { error: string }).error, 'temporarily_unavailable');
  assert.equal((failed.json() as { access_token?: string }).access_token, undefined);
  assert.equal(records(o.node).length, before + 1);
});
