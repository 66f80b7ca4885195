// The member table: each member's addresses, replicated in the state machine (keyspace
// sys.members) so every node can reach every member, including members added at runtime and
// nodes restarted with an old config file. A conf change carries the addresses of the nodes it
// adds in its context; the bootstrap snapshot carries those of the founding members.
import type { StateChangeSet } from '../state/overlay.ts';
import type { ConfChange, NodeId } from '../raft/types.ts';

export const MEMBERS_KEYSPACE = 'sys.members';

export interface MemberAddress {
  /** host:port of the peer (gRPC, mutual TLS). */
  readonly raftAddress: string;
  /** host:port of the member's HTTP API. */
  readonly httpAddress: string;
}

const enc = new TextEncoder();
const dec = new TextDecoder();
const HOST_PORT_RE = /^[A-Za-z0-9.\-:[\]]{1,253}:\d{1,5}$/;

export function validateAddress(a: unknown, what: string): MemberAddress {
  const o = a as Partial<MemberAddress> | null;
  if (!o || typeof o.raftAddress !== 'string' || !HOST_PORT_RE.test(o.raftAddress)) throw new Error(`${what}: raftAddress must be host:port`);
  if (typeof o.httpAddress !== 'string' || !HOST_PORT_RE.test(o.httpAddress)) throw new Error(`${what}: httpAddress must be host:port`);
  return { raftAddress: o.raftAddress, httpAddress: o.httpAddress };
}

/** Context bytes of a conf change that adds `members`. */
export function encodeMembersContext(members: ReadonlyMap<NodeId, MemberAddress>): Uint8Array {
  const o: Record<string, MemberAddress> = {};
  for (const [id, a] of members) o[String(id)] = a;
  return enc.encode(JSON.stringify({ members: o }));
}

function decodeMembersContext(ctx: Uint8Array | undefined): Map<NodeId, MemberAddress> {
  const out = new Map<NodeId, MemberAddress>();
  if (!ctx || ctx.length === 0) return out;
  let o: unknown;
  try {
    o = JSON.parse(dec.decode(ctx));
  } catch {
    return out; // a context we cannot read names no addresses; the change itself still applies
  }
  const members = (o as { members?: Record<string, unknown> } | null)?.members;
  if (!members || typeof members !== 'object') return out;
  for (const [k, v] of Object.entries(members)) {
    const id = Number(k);
    try {
      if (Number.isSafeInteger(id) && id > 0) out.set(id, validateAddress(v, `member ${k}`));
    } catch {
      // ignore a malformed address: deterministic on every node
    }
  }
  return out;
}

export function memberRecord(a: MemberAddress): Uint8Array {
  return enc.encode(JSON.stringify({ raftAddress: a.raftAddress, httpAddress: a.httpAddress }));
}

/** State writes for the member table implied by a conf change. */
export function memberChanges(cc: ConfChange): { puts: [string, string, Uint8Array][]; dels: [string, string][] } {
  const addrs = decodeMembersContext(cc.context);
  const puts: [string, string, Uint8Array][] = [];
  const dels: [string, string][] = [];
  for (const op of cc.changes) {
    if (op.type === 'removeNode') dels.push([MEMBERS_KEYSPACE, String(op.nodeId)]);
    else {
      const a = addrs.get(op.nodeId);
      if (a) puts.push([MEMBERS_KEYSPACE, String(op.nodeId), memberRecord(a)]);
    }
  }
  return { puts, dels };
}

/**
 * Fold changes into one write, last writer wins per key. Storage refuses a key both put and
 * deleted in one write, and one batch of committed entries may remove a member and add it back
 * (the Jepsen membership nemesis: node 3 removed and re-added; a node catching up applies both
 * conf changes at once). `base` (the state machine's batch) is already one change per key.
 */
export function foldChanges(base: StateChangeSet, later: readonly { puts: readonly (readonly [string, string, Uint8Array])[]; dels: readonly (readonly [string, string])[] }[]): StateChangeSet {
  const m = new Map<string, readonly [string, string, Uint8Array | null]>();
  const k = (ks: string, key: string): string => `${ks}\u0000${key}`;
  for (const [ks, key, v] of base.puts) m.set(k(ks, key), [ks, key, v]);
  for (const [ks, key] of base.dels) m.set(k(ks, key), [ks, key, null]);
  for (const c of later) {
    for (const [ks, key] of c.dels) m.set(k(ks, key), [ks, key, null]);
    for (const [ks, key, v] of c.puts) m.set(k(ks, key), [ks, key, v]);
  }
  const puts: [string, string, Uint8Array][] = [];
  const dels: [string, string][] = [];
  for (const [ks, key, v] of m.values()) {
    if (v === null) dels.push([ks, key]);
    else puts.push([ks, key, v]);
  }
  return { puts, dels };
}
