// Regression (Jepsen membership nemesis, seed 5): a node applying "remove node 3" and "add node 3
// back" in one batch wrote sys.members/3 as both put and deleted in one storage write, which
// storage refuses — the node stopped with a fatal error. The member-table writes of conf changes
// are now made by the state machine, in log order in the batch overlay (one write per key); they
// used to be folded into the batch by the driver (foldChanges).
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { MAX_CONF_CHANGE_CONTEXT_BYTES, MEMBERS_KEYSPACE, decodeConfChangeContext, encodeMembersContext, memberChanges, memberRecord, parseMemberRecord, validateAddress } from '../../../src/node/members.ts';
import { NodeError } from '../../../src/node/api.ts';
import type { ConfChange, Entry } from '../../../src/raft/types.ts';
import { encodeConfChange } from '../../../src/raft/confchange.ts';
import { StateMachine } from '../../../src/state/machine.ts';
import { SESSION_LIMITS } from '../../../src/state/sessions.ts';
import { kvDomain } from '../../../src/state/kv.ts';
import { encodeCommand } from '../../../src/state/command.ts';
import { prepareEntries } from '../../../src/node/applier.ts';

const addr = { raftAddress: '127.0.0.1:7003', httpAddress: '127.0.0.1:8003' };
const remove3: ConfChange = { changes: [{ type: 'removeNode', nodeId: 3 }] };
const add3: ConfChange = { changes: [{ type: 'addLearner', nodeId: 3 }], context: encodeMembersContext(new Map([[3, addr]])) };

/** One batch of committed entries through a fresh state machine (no stored state). */
function applyBatch(...entries: ({ cc: ConfChange } | { kv: [string, string] })[]) {
  const sm = new StateMachine({ get: () => undefined }, SESSION_LIMITS);
  sm.register(kvDomain);
  const es: Entry[] = entries.map((x, i) =>
    'cc' in x
      ? { term: 1, index: i + 1, type: 'confChange', data: encodeConfChange(x.cc) }
      : { term: 1, index: i + 1, type: 'normal', data: encodeCommand({ v: 1, sid: null, seq: 0, ack: 0, ts: 1_000, domain: 'kv', op: 'put', args: { key: x.kv[0], value: x.kv[1] } }) },
  );
  return sm.applyEntries(prepareEntries(es)).changes;
}
const keys = (xs: readonly (readonly [string, string, ...unknown[]])[]) => xs.map(([ks, k]) => `${ks}/${k}`).filter((k) => !k.startsWith('sys.meta/'));

test('remove then re-add of a member in one batch is one put (never a put and a delete of one key)', () => {
  const changes = applyBatch({ kv: ['a', '1'] }, { cc: remove3 }, { cc: add3 });
  assert.deepEqual(keys(changes.dels), []);
  assert.deepEqual(keys(changes.puts).sort(), ['kv/a', `${MEMBERS_KEYSPACE}/3`]);
  const putKeys = new Set(keys(changes.puts));
  for (const d of keys(changes.dels)) assert.equal(putKeys.has(d), false, d);
});

test('add then remove in one batch leaves only the delete; the commands\' writes are kept as they are', () => {
  const changes = applyBatch({ cc: add3 }, { kv: ['a', '1'] }, { cc: remove3 });
  assert.deepEqual(keys(changes.puts), ['kv/a']);
  assert.deepEqual(keys(changes.dels), [`${MEMBERS_KEYSPACE}/3`]);
});

test('a context carries addresses and an audit part; old contexts and unreadable ones still decode', () => {
  const audit = { ts: 1_700_000_000_000, ip: '192.0.2.1', details: { action: 'promote', node: 3 } };
  const both = decodeConfChangeContext(encodeMembersContext(new Map([[3, addr]]), audit));
  assert.deepEqual([[...both.members], both.audit], [[[3, addr]], audit]);
  // Without members (promote, remove): only the audit part, no empty member list.
  const only = encodeMembersContext(new Map(), audit);
  assert.deepEqual(JSON.parse(new TextDecoder().decode(only)), { audit });
  assert.deepEqual(memberChanges({ changes: [{ type: 'addVoter', nodeId: 3 }], context: only }), { puts: [], dels: [] });
  // A context from before the audit part.
  const old = decodeConfChangeContext(new TextEncoder().encode(JSON.stringify({ members: { 3: addr } })));
  assert.deepEqual([[...old.members], old.audit], [[[3, addr]], null]);
  for (const junk of [undefined, new Uint8Array(), new Uint8Array([0xff]), new TextEncoder().encode('[1]'), new TextEncoder().encode('null')]) {
    const d = decodeConfChangeContext(junk);
    assert.deepEqual([d.members.size, d.audit], [0, null]);
  }
});

test(`a context over ${MAX_CONF_CHANGE_CONTEXT_BYTES} bytes is refused before anything is proposed`, () => {
  const audit = (n: number) => ({ ts: 1, ip: null, details: { note: 'x'.repeat(n) } });
  const fits = encodeMembersContext(new Map([[3, addr]]), audit(3_000));
  assert.ok(fits.length <= MAX_CONF_CHANGE_CONTEXT_BYTES);
  assert.throws(
    () => encodeMembersContext(new Map([[3, addr]]), audit(MAX_CONF_CHANGE_CONTEXT_BYTES)),
    (e: unknown) => e instanceof NodeError && e.code === 'INVALID_REQUEST' && /exceeds 4096/.test(e.message),
  );
});

test('a member record carries the admin address when given; old records without one stay readable (issue 13, defect 6)', () => {
  const withAdmin = { ...addr, adminAddress: '127.0.0.1:9003' };
  const cc: ConfChange = { changes: [{ type: 'addLearner', nodeId: 3 }], context: encodeMembersContext(new Map([[3, withAdmin]])) };
  assert.deepEqual(decodeConfChangeContext(cc.context).members.get(3), withAdmin);
  const put = memberChanges(cc).puts[0]!;
  assert.deepEqual(parseMemberRecord(put[2]), withAdmin);
  // A record written before admin addresses existed.
  const old = new TextEncoder().encode(JSON.stringify(addr));
  assert.deepEqual(parseMemberRecord(old), addr);
  assert.deepEqual(memberRecord(addr), old, 'a member without an admin address is recorded as before');
  assert.equal(parseMemberRecord(new TextEncoder().encode('not json')), undefined);
  // A malformed admin address is refused like the other addresses; in a context it is dropped (deterministically on every node).
  assert.throws(() => validateAddress({ ...addr, adminAddress: 'nowhere' }, 'member 3'), /member 3: adminAddress must be host:port/);
  const bad = encodeMembersContext(new Map([[3, { ...addr, adminAddress: 'nowhere' }]]));
  assert.equal(decodeConfChangeContext(bad).members.has(3), false);
});
