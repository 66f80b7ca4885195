// Membership changes: encoding of ConfChange entries and the pure transition from one ConfState
// to the next (etcd's confchange.Changer, simplified).
//
// Safety argument (Raft dissertation §4.1–4.3, and the 2015 single-server-change correction):
//  - A change is applied when its entry is *applied*, so at most one change is in flight: the
//    leader refuses a new change until the previous one is applied (pendingConfIndex).
//  - A change that alters at most one voter is applied directly: any majority of the old voters
//    and any majority of the new voters overlap.
//  - A larger change goes through a joint configuration in which every decision (elections and
//    commitment) needs a majority of BOTH the old and the new voters; the leader leaves it once
//    the joint configuration is applied (autoLeave).
//  - A new leader may not propose a change before it has committed an entry of its own term (the
//    no-op appended on election): that is the 2015 correction, enforced by pendingConfIndex.
import { RaftError } from './errors.ts';
import type { ConfChange, ConfChangeOp, ConfState, NodeId } from './types.ts';

const encoder = new TextEncoder();
const decoder = new TextDecoder();

/** Max operations in one change; a cluster has at most a handful of members. */
export const MAX_CONF_CHANGE_OPS = 16;

function hex(bytes: Uint8Array): string {
  let s = '';
  for (const b of bytes) s += b.toString(16).padStart(2, '0');
  return s;
}

function unhex(s: string): Uint8Array {
  if (s.length % 2 !== 0 || !/^[0-9a-f]*$/.test(s)) throw new RaftError('INVALID_CONF_CHANGE', 'context is not hex');
  const out = new Uint8Array(s.length / 2);
  for (let i = 0; i < out.length; i++) out[i] = parseInt(s.slice(i * 2, i * 2 + 2), 16);
  return out;
}

/** Conf changes are rare; JSON keeps the core free of codec dependencies and the log readable. */
export function encodeConfChange(cc: ConfChange): Uint8Array {
  validateShape(cc);
  const obj = { v: 1, changes: cc.changes.map((c) => ({ type: c.type, nodeId: c.nodeId })), context: cc.context ? hex(cc.context) : null };
  return encoder.encode(JSON.stringify(obj));
}

export function decodeConfChange(data: Uint8Array): ConfChange {
  let obj: unknown;
  try {
    obj = JSON.parse(decoder.decode(data));
  } catch {
    throw new RaftError('INVALID_CONF_CHANGE', 'conf change entry is not valid JSON');
  }
  if (typeof obj !== 'object' || obj === null || (obj as { v?: unknown }).v !== 1 || !Array.isArray((obj as { changes?: unknown }).changes)) {
    throw new RaftError('INVALID_CONF_CHANGE', 'conf change entry has an unknown format');
  }
  const o = obj as { changes: unknown[]; context: unknown };
  const changes = o.changes.map((c): ConfChangeOp => {
    const cc = c as { type?: unknown; nodeId?: unknown };
    if ((cc.type !== 'addVoter' && cc.type !== 'addLearner' && cc.type !== 'removeNode') || typeof cc.nodeId !== 'number') {
      throw new RaftError('INVALID_CONF_CHANGE', 'conf change operation is malformed');
    }
    return { type: cc.type, nodeId: cc.nodeId };
  });
  const cc: ConfChange = typeof o.context === 'string' ? { changes, context: unhex(o.context) } : { changes };
  validateShape(cc);
  return cc;
}

function validateShape(cc: ConfChange): void {
  if (cc.changes.length > MAX_CONF_CHANGE_OPS) throw new RaftError('INVALID_CONF_CHANGE', `more than ${MAX_CONF_CHANGE_OPS} operations`);
  for (const c of cc.changes) {
    if (!Number.isSafeInteger(c.nodeId) || c.nodeId <= 0) throw new RaftError('INVALID_CONF_CHANGE', `node id ${c.nodeId} is not a positive integer`);
  }
}

export function isJoint(cs: ConfState): boolean {
  return cs.votersOutgoing.length > 0;
}

/** Every node the configuration tracks (voters of both halves, learners, learnersNext). */
export function allMembers(cs: ConfState): NodeId[] {
  return sorted(new Set([...cs.voters, ...cs.votersOutgoing, ...cs.learners, ...cs.learnersNext]));
}

export function isVoter(cs: ConfState, id: NodeId): boolean {
  return cs.voters.includes(id) || cs.votersOutgoing.includes(id);
}

function sorted(s: Iterable<NodeId>): NodeId[] {
  return [...s].sort((a, b) => a - b);
}

function symmetricDifference(a: readonly NodeId[], b: readonly NodeId[]): number {
  const sa = new Set(a);
  const sb = new Set(b);
  let n = 0;
  for (const x of sa) if (!sb.has(x)) n++;
  for (const x of sb) if (!sa.has(x)) n++;
  return n;
}

/**
 * The configuration that results from applying `cc` to `cs`. Throws INVALID_CONF_CHANGE for a
 * change that is not allowed from `cs` (the state is then unchanged).
 */
export function nextConfState(cs: ConfState, cc: ConfChange): ConfState {
  if (cc.changes.length === 0) {
    // Leave the joint configuration.
    if (!isJoint(cs)) throw new RaftError('INVALID_CONF_CHANGE', 'cannot leave a joint configuration: not in one');
    return checked({
      voters: cs.voters,
      votersOutgoing: [],
      learners: sorted(new Set([...cs.learners, ...cs.learnersNext])),
      learnersNext: [],
      autoLeave: false,
    });
  }
  if (isJoint(cs)) throw new RaftError('INVALID_CONF_CHANGE', 'a joint configuration must be left before another change');

  const voters = new Set(cs.voters);
  const learners = new Set(cs.learners);
  const learnersNext = new Set<NodeId>();
  const outgoing = cs.voters; // the voters before the change
  for (const op of cc.changes) {
    switch (op.type) {
      case 'addVoter':
        learners.delete(op.nodeId);
        learnersNext.delete(op.nodeId);
        voters.add(op.nodeId);
        break;
      case 'addLearner':
        if (learners.has(op.nodeId)) break;
        voters.delete(op.nodeId);
        // A voter of the outgoing half cannot be a learner until the joint config is left.
        if (outgoing.includes(op.nodeId)) learnersNext.add(op.nodeId);
        else learners.add(op.nodeId);
        break;
      case 'removeNode':
        voters.delete(op.nodeId);
        learners.delete(op.nodeId);
        learnersNext.delete(op.nodeId);
        break;
    }
  }
  const newVoters = sorted(voters);
  if (symmetricDifference(cs.voters, newVoters) <= 1) {
    // Simple change (§4.1): at most one voter differs. Demoted voters become learners at once.
    return checked({ voters: newVoters, votersOutgoing: [], learners: sorted(new Set([...learners, ...learnersNext])), learnersNext: [], autoLeave: false });
  }
  return checked({ voters: newVoters, votersOutgoing: [...outgoing], learners: sorted(learners), learnersNext: sorted(learnersNext), autoLeave: true });
}

function checked(cs: ConfState): ConfState {
  if (cs.voters.length === 0) throw new RaftError('INVALID_CONF_CHANGE', 'the change would remove every voter');
  for (const l of cs.learners) {
    if (cs.voters.includes(l) || cs.votersOutgoing.includes(l)) throw new RaftError('INVALID_CONF_CHANGE', `node ${l} would be a voter and a learner`);
  }
  for (const l of cs.learnersNext) {
    if (!cs.votersOutgoing.includes(l)) throw new RaftError('INVALID_CONF_CHANGE', `node ${l} in learnersNext is not an outgoing voter`);
  }
  return cs;
}
