// Test 3: membership changes through the admin API on the leader (Raft dissertation §4: one server
// at a time; a new server joins as a non-voting learner first, §4.2.1, so it cannot stall commits
// while it catches up). One cluster: add node 4 as a learner, promote it, remove a follower,
// remove the leader (§4.2.2: the leader steps down once the configuration without it commits).
//
// Leadership may move between "find the leader" and "call it" (a CPU-starved node misses its
// election timeout): every admin call goes through `onLeader`, which, like an operator's tool,
// follows a 409 NOT_LEADER to the current leader instead of failing.
import assert from 'node:assert/strict';
import { test } from 'node:test';
import { ProcessCluster, waitFor } from './harness.ts';
import type { HttpResult } from './harness.ts';

const IDS = [1, 2, 3];
const ADMIN_DEADLINE_MS = 20_000;

function ok(r: HttpResult, what: string): Record<string, unknown> {
  assert.equal(r.status, 200, `${what}: HTTP ${r.status} ${JSON.stringify(r.body)}`);
  return r.body;
}

/**
 * Send an admin call to the current leader among `ids`; on 409 NOT_LEADER find the leader again
 * and resend. `path` gets the leader's id (to remove the leader itself). Returns the answer and
 * the node that accepted the call.
 */
async function onLeader(c: ProcessCluster, ids: readonly number[], method: string, path: (leader: number) => string, body?: unknown): Promise<{ r: HttpResult; leader: number }> {
  const deadline = Date.now() + ADMIN_DEADLINE_MS;
  for (;;) {
    const leader = await c.waitLeader(ids);
    const r = await c.admin(leader, method, path(leader), body);
    if (r.status !== 409 || Date.now() > deadline) return { r, leader };
  }
}

test('membership: add a learner, promote it, remove a follower, remove the leader', { timeout: 120_000 }, async () => {
  const c = await ProcessCluster.create(IDS, { name: 'membership' });
  try {
    await Promise.all(IDS.map((id) => c.startServing(id)));
    ok(await c.put(await c.waitLeader(IDS), 'before-join', 'x'), 'PUT before-join');

    // A membership call to a follower is refused with the leader's id and HTTP address. (A
    // leadership transfer to the follower itself: harmless should the follower have just become
    // leader, in which case the check is repeated.)
    const refused = await waitFor(
      'a follower to answer 409 NOT_LEADER naming the leader',
      async () => {
        const leader = await c.waitLeader(IDS);
        const follower = IDS.find((id) => id !== leader)!;
        const r = await c.admin(follower, 'POST', '/admin/v1/leader/transfer', { to: follower });
        return r.status === 409 && r.body.leader === leader ? { r, leader } : null;
      },
      ADMIN_DEADLINE_MS,
    );
    assert.equal(refused.r.body.error, 'NOT_LEADER');
    assert.equal(refused.r.body.leaderHttp, c.member(refused.leader).httpAddress);

    // Add node 4: it starts empty (join: true, listing itself and the existing members).
    const m4 = await c.reserve(4);
    await c.startServing(4, { join: true, members: [1, 2, 3, 4] });
    ok((await onLeader(c, IDS, 'POST', () => '/admin/v1/members', { id: 4, raftAddress: m4.raftAddress, httpAddress: m4.httpAddress })).r, 'add learner 4');
    // (The status in the 200 answer may not show the learner yet: see the report. Wait for it.)
    await waitFor('nodes 1-4 to know node 4 is a learner', async () => (await Promise.all([1, 2, 3, 4].map((id) => c.status(id)))).every((s) => s.learners.includes(4)), 10_000);
    let leader = await c.waitLeader(IDS);
    assert.deepEqual((await c.status(leader)).voters, [1, 2, 3], 'a learner does not vote');
    ok(await c.put(leader, 'after-join', 'y'), 'PUT after-join');
    await c.waitCaughtUp([4], leader);
    assert.equal(await c.localValue(4, 'before-join'), 'x');
    assert.equal(await c.localValue(4, 'after-join'), 'y');

    // Promote it.
    ok((await onLeader(c, IDS, 'POST', () => '/admin/v1/members/4/promote')).r, 'promote 4');
    await waitFor('every node to see voters 1,2,3,4', async () => (await Promise.all([1, 2, 3, 4].map((id) => c.status(id)))).every((s) => s.voters.join() === '1,2,3,4' && s.learners.length === 0), 10_000);

    // Remove a follower: one of the original voters that is not the leader.
    leader = await c.waitLeader([1, 2, 3, 4]);
    const removed = [1, 2, 3].find((id) => id !== leader)!;
    ok((await onLeader(c, [1, 2, 3, 4], 'DELETE', () => `/admin/v1/members/${removed}`)).r, `remove follower ${removed}`);
    const rest = [1, 2, 3, 4].filter((id) => id !== removed);
    await waitFor(`nodes ${rest.join(',')} to see voters without ${removed}`, async () => (await Promise.all(rest.map((id) => c.status(id)))).every((s) => !s.voters.includes(removed) && s.voters.length === 3), 10_000);
    await c.kill(removed);
    ok(await c.put(rest.find((id) => id !== leader)!, 'after-remove-follower', 'z'), 'PUT after removing a follower');

    // Remove the leader itself (whoever leads when the call is accepted): a new leader among the
    // other two, and the cluster still writes.
    const { r: removal, leader: oldLeader } = await onLeader(c, rest, 'DELETE', (l) => `/admin/v1/members/${l}`);
    ok(removal, `remove leader ${oldLeader}`);
    const remaining = rest.filter((id) => id !== oldLeader);
    leader = await c.waitLeader(remaining, 15_000);
    assert.ok(remaining.includes(leader));
    await waitFor(`voters ${remaining.join(',')}`, async () => (await Promise.all(remaining.map((id) => c.status(id)))).every((s) => s.voters.join() === remaining.join()), 10_000);
    await c.kill(oldLeader);
    const other = remaining.find((id) => id !== leader)!;
    ok(await c.put(other, 'after-remove-leader', 'w'), 'PUT after removing the leader');
    const r = await c.get(leader, 'after-remove-leader');
    assert.deepEqual([r.status, r.body.value], [200, 'w']);
    for (const id of remaining) {
      for (const [k, v] of [['before-join', 'x'], ['after-join', 'y'], ['after-remove-follower', 'z']] as const) {
        assert.equal(await c.localValue(id, k), v, `node ${id}: ${k}`);
      }
    }
    console.log(`# membership: added 4, promoted, removed follower ${removed}, removed leader ${oldLeader}; node ${leader} leads voters ${remaining.join(',')}`);
  } finally {
    await c.close();
  }
});

// The answer to a membership change carries the node's status "after the change" (src/ops/admin.ts
// `{ ok: true, status }`); an operator's tool reads the new membership from it. It must show the
// change it reports as done, and, like any status, never an applied index beyond the commit index
// (an entry is applied only once committed, Raft §5.3).
test('the admin answer to a membership change shows the membership it made', { timeout: 60_000 }, async () => {
  const c = await ProcessCluster.create(IDS, { name: 'admin-answer' });
  try {
    await Promise.all(IDS.map((id) => c.startServing(id)));
    const m4 = await c.reserve(4);
    // Node 4 is never started: adding a learner needs only the voters' majority.
    const { r } = await onLeader(c, IDS, 'POST', () => '/admin/v1/members', { id: 4, raftAddress: m4.raftAddress, httpAddress: m4.httpAddress });
    const st = ok(r, 'add learner 4').status as { learners: number[]; applied: number; commit: number };
    assert.ok(st.applied <= st.commit, `status shows applied ${st.applied} beyond commit ${st.commit}: ${JSON.stringify(st)}`);
    assert.deepEqual(st.learners, [4], `the answer to "add learner 4" shows learners ${JSON.stringify(st.learners)}: ${JSON.stringify(st)}`);
  } finally {
    await c.close();
  }
});
