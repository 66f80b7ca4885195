// Regression (Jepsen membership nemesis, seed 5): a node applying "remove node 3" and "add node 3
// back" in one batch wrote sys.members/3 as both put and deleted in one storage write, which
// storage refuses — the node stopped with a fatal error. The member-table changes of a batch are
// now folded, last writer wins per key.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { foldChanges, memberChanges, MEMBERS_KEYSPACE, encodeMembersContext } from '../../../src/node/members.ts';
import type { ConfChange } from '../../../src/raft/types.ts';

const addr = { raftAddress: '127.0.0.1:7003', httpAddress: '127.0.0.1:8003' };
const remove3: ConfChange = { changes: [{ type: 'removeNode', nodeId: 3 }] };
const add3: ConfChange = { changes: [{ type: 'addLearner', nodeId: 3 }], context: encodeMembersContext(new Map([[3, addr]])) };

test('remove then re-add of a member in one batch folds into one put (never a put and a delete of one key)', () => {
  const base = { puts: [['kv', 'a', new Uint8Array([1])] as const], dels: [['kv', 'b'] as const] };
  const folded = foldChanges(base, [memberChanges(remove3), memberChanges(add3)]);
  const keys = (xs: readonly (readonly [string, string, ...unknown[]])[]) => xs.map(([ks, k]) => `${ks}/${k}`);
  assert.deepEqual(keys(folded.dels), ['kv/b']);
  assert.deepEqual(keys(folded.puts).sort(), ['kv/a', `${MEMBERS_KEYSPACE}/3`]);
  // No key in both lists.
  const putKeys = new Set(keys(folded.puts));
  for (const d of keys(folded.dels)) assert.equal(putKeys.has(d), false, d);
});

test('add then remove in one batch leaves only the delete; the state machine batch is kept as is', () => {
  const folded = foldChanges({ puts: [], dels: [] }, [memberChanges(add3), memberChanges(remove3)]);
  assert.deepEqual(folded.puts, []);
  assert.deepEqual(folded.dels, [[MEMBERS_KEYSPACE, '3']]);
});
