// The member table: each member's addresses, replicated in the state machine (keyspace
// sys.members) so every node can reach every member, including members added at runtime and
// nodes restarted with an old config file. A conf change carries the addresses of the nodes it
// adds in its context; the bootstrap snapshot carries those of the founding members.
//
// The context may also carry the change's audit part (issue 6): who asked for it and when, so the
// state machine appends its `member.changed` record while applying the very entry that changes the
// membership (src/state/machine.ts applyConfChange) — the record commits with the change or not at
// all. The state machine applies both parts in log order, together with the commands around it.
import { NodeError } from './api.ts';
import type { ConfChange, NodeId } from '../raft/types.ts';

export const MEMBERS_KEYSPACE = 'sys.members';

export interface MemberAddress {
  /** host:port of the peer (gRPC, mutual TLS). */
  readonly raftAddress: string;
  /** host:port of the member's HTTP API. */
  readonly httpAddress: string;
  /**
   * host:port of the member's admin API, so that `raftauth status` given one node finds the
   * others (issue 13). Optional: records written before it existed, and members configured
   * without one, have none.
   */
  readonly adminAddress?: string;
}

const enc = new TextEncoder();
const dec = new TextDecoder();
const HOST_PORT_RE = /^[A-Za-z0-9.\-:[\]]{1,253}:\d{1,5}$/;

export function validateAddress(a: unknown, what: string): MemberAddress {
  const o = a as Partial<MemberAddress> | null;
  if (!o || typeof o.raftAddress !== 'string' || !HOST_PORT_RE.test(o.raftAddress)) throw new Error(`${what}: raftAddress must be host:port`);
  if (typeof o.httpAddress !== 'string' || !HOST_PORT_RE.test(o.httpAddress)) throw new Error(`${what}: httpAddress must be host:port`);
  if (o.adminAddress !== undefined && (typeof o.adminAddress !== 'string' || !HOST_PORT_RE.test(o.adminAddress))) throw new Error(`${what}: adminAddress must be host:port when given`);
  return { raftAddress: o.raftAddress, httpAddress: o.httpAddress, ...(o.adminAddress !== undefined ? { adminAddress: o.adminAddress } : {}) };
}

/**
 * A stored member record, read tolerantly: the addresses it has (an old record has no
 * adminAddress), or undefined when it is not a record at all.
 */
export function parseMemberRecord(b: Uint8Array): MemberAddress | undefined {
  try {
    return validateAddress(JSON.parse(dec.decode(b)), 'member record');
  } catch {
    return undefined;
  }
}

/**
 * Largest context a conf change may carry. A context names a few members' addresses and a small
 * audit part; it rides in a Raft entry of its own, so it is kept small.
 */
export const MAX_CONF_CHANGE_CONTEXT_BYTES = 4 * 1024;

/** The audit part of a conf change's context: what the leader knew of the request. */
export interface ConfChangeAudit {
  /** Leader wall-clock time (ms) of the request; the state machine makes it monotonic like a command's ts. */
  readonly ts: number;
  /** The admin's address as the leader's socket saw it. */
  readonly ip: string | null;
  /** The record's details (validated by the audit domain as any event's are). */
  readonly details: Readonly<Record<string, string | number | boolean | null>>;
}

/** A decoded context: addresses of the nodes the change adds, and the audit part if it had a well-formed one. */
export interface ConfChangeContext {
  readonly members: ReadonlyMap<NodeId, MemberAddress>;
  readonly audit: ConfChangeAudit | null;
}

/**
 * Context bytes of a conf change that adds `members` (may be empty) and carries `audit`. A context
 * over MAX_CONF_CHANGE_CONTEXT_BYTES is refused (INVALID_REQUEST) before anything is proposed.
 */
export function encodeMembersContext(members: ReadonlyMap<NodeId, MemberAddress>, audit?: ConfChangeAudit): Uint8Array {
  const o: Record<string, MemberAddress> = {};
  for (const [id, a] of members) o[String(id)] = a;
  const bytes = enc.encode(JSON.stringify({ ...(members.size > 0 ? { members: o } : {}), ...(audit ? { audit: { ts: audit.ts, ip: audit.ip, details: audit.details } } : {}) }));
  if (bytes.length > MAX_CONF_CHANGE_CONTEXT_BYTES) throw new NodeError('INVALID_REQUEST', `a conf change context of ${bytes.length} bytes exceeds ${MAX_CONF_CHANGE_CONTEXT_BYTES}`);
  return bytes;
}

const isObject = (v: unknown): v is Record<string, unknown> => typeof v === 'object' && v !== null && !Array.isArray(v);

/**
 * The audit part, or null when absent or malformed. Only its shape is checked here; the audit
 * domain validates ip and details as it does any event's and writes nothing for one it refuses.
 * Every node reads the same bytes the same way, so a malformed part is skipped everywhere.
 */
function decodeAudit(v: unknown): ConfChangeAudit | null {
  if (!isObject(v)) return null;
  const { ts, ip, details } = v;
  if (typeof ts !== 'number' || !Number.isSafeInteger(ts) || ts < 0) return null;
  if (ip !== null && typeof ip !== 'string') return null;
  if (!isObject(details)) return null;
  for (const x of Object.values(details)) if (x !== null && typeof x !== 'string' && typeof x !== 'number' && typeof x !== 'boolean') return null;
  return { ts, ip, details: details as ConfChangeAudit['details'] };
}

/**
 * Decode a context, tolerantly: a context we cannot read names no addresses and carries no audit
 * part, and the change itself still applies (older contexts are `{members}` only, and the empty
 * changes the core proposes to leave a joint configuration have none).
 */
export function decodeConfChangeContext(ctx: Uint8Array | undefined): ConfChangeContext {
  const out = new Map<NodeId, MemberAddress>();
  const none = { members: out, audit: null };
  if (!ctx || ctx.length === 0) return none;
  let o: unknown;
  try {
    o = JSON.parse(dec.decode(ctx));
  } catch {
    return none;
  }
  if (!isObject(o)) return none;
  const members = o.members;
  if (isObject(members)) {
    for (const [k, v] of Object.entries(members)) {
      const id = Number(k);
      try {
        if (Number.isSafeInteger(id) && id > 0) out.set(id, validateAddress(v, `member ${k}`));
      } catch {
        // ignore a malformed address: deterministic on every node
      }
    }
  }
  // The encoder refuses a bigger context; one that got into the log anyway keeps its addresses (as
  // before the audit part existed) but its audit part is not trusted.
  return { members: out, audit: ctx.length <= MAX_CONF_CHANGE_CONTEXT_BYTES ? decodeAudit(o.audit) : null };
}

export function memberRecord(a: MemberAddress): Uint8Array {
  return enc.encode(JSON.stringify({ raftAddress: a.raftAddress, httpAddress: a.httpAddress, ...(a.adminAddress !== undefined ? { adminAddress: a.adminAddress } : {}) }));
}

/**
 * State writes for the member table implied by a conf change, deletes before puts (an op list that
 * removes a node and adds it back leaves it in the table). The state machine applies them to its
 * batch in log order, so a batch that removes a member and adds it back (the Jepsen membership
 * nemesis; a node catching up applies both changes at once) ends with one write per key.
 */
export function memberChanges(cc: ConfChange, context: ConfChangeContext = decodeConfChangeContext(cc.context)): { puts: [string, string, Uint8Array][]; dels: [string, string][] } {
  const puts: [string, string, Uint8Array][] = [];
  const dels: [string, string][] = [];
  for (const op of cc.changes) {
    if (op.type === 'removeNode') dels.push([MEMBERS_KEYSPACE, String(op.nodeId)]);
    else {
      const a = context.members.get(op.nodeId);
      if (a) puts.push([MEMBERS_KEYSPACE, String(op.nodeId), memberRecord(a)]);
    }
  }
  return { puts, dels };
}
