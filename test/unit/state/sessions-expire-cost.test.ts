// The leader's sweep of expired client sessions (session `expire`, every minute) rewrites the
// session index once, however many sessions it drops (issue 15: housekeeping costs what it
// touches). Before, each dropped session decoded and re-encoded the whole index: a sweep of k of n
// sessions wrote k index values of up to n ids each.
import assert from 'node:assert/strict';
import { test } from 'node:test';
import { Overlay } from '../../../src/state/overlay.ts';
import { SESSION_LIMITS, SessionTable } from '../../../src/state/sessions.ts';
import { unpackValue } from '../../../src/state/command.ts';
import type { Command } from '../../../src/state/command.ts';

class CountingOverlay extends Overlay {
  indexWrites = 0;
  override put(keyspace: string, key: string, value: Uint8Array): void {
    if (keyspace === 'sys.meta' && key === 'sessions.index') this.indexWrites++;
    super.put(keyspace, key, value);
  }
}

const T0 = 1_000_000;
const cmd = (sid: string | null, op: string, args: unknown): Command => ({ v: 1, sid, seq: 0, ack: 0, ts: T0, domain: 'session', op, args });

test('expire drops k of n sessions with one write of the index; the others stay, in order', () => {
  const table = new SessionTable(SESSION_LIMITS);
  const tx = new CountingOverlay({ get: () => undefined });
  const N = 2_000;
  const sids = Array.from({ length: N }, (_, i) => `sess${String(i).padStart(6, '0')}`);
  // Half with the shortest TTL, half with the longest, opened at T0.
  for (const [i, sid] of sids.entries()) {
    const ttlMs = i % 2 === 0 ? SESSION_LIMITS.minTtlMs : SESSION_LIMITS.maxTtlMs;
    assert.equal(table.applySessionOp(tx, T0, cmd(sid, 'open', { ttlMs })).ok, true);
  }
  tx.indexWrites = 0;
  const r = table.applySessionOp(tx, T0 + SESSION_LIMITS.minTtlMs + 1, cmd(null, 'expire', null));
  assert.deepEqual(r, { ok: true, value: { expired: N / 2 } });
  assert.equal(tx.indexWrites, 1, 'the index is written once');
  assert.deepEqual(unpackValue<string[]>(tx.get('sys.meta', 'sessions.index')!), sids.filter((_, i) => i % 2 === 1));
  for (const [i, sid] of sids.entries()) assert.equal(tx.get('sys.sessions', sid) === undefined, i % 2 === 0, sid);
  // Nothing left to expire: nothing written.
  tx.indexWrites = 0;
  assert.deepEqual(table.applySessionOp(tx, T0 + SESSION_LIMITS.minTtlMs + 2, cmd(null, 'expire', null)), { ok: true, value: { expired: 0 } });
  assert.equal(tx.indexWrites, 0);
});
