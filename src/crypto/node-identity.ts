// A node's identity in its certificate: the SAN URI `raftauth://node/<id>` (RFC 5280 §4.2.1.6),
// with the subject CN `node-<id>` saying the same for humans (src/crypto/certs.ts makes the
// certificates). Reading it needs only node:crypto, so this module stays apart from certs.ts,
// which loads @peculiar/x509 to build certificates: the peer transport imports this one, and a
// node's boot does not pay for the certificate builder (docs/operations.md, "Boot time").
import { X509Certificate } from 'node:crypto';

export type NodeId = number;

export const NODE_URI_PREFIX = 'raftauth://node/';

export function nodeUri(id: NodeId): string {
  return `${NODE_URI_PREFIX}${id}`;
}

export function assertNodeId(id: unknown): asserts id is NodeId {
  if (typeof id !== 'number' || !Number.isSafeInteger(id) || id <= 0) {
    throw new RangeError(`node id must be a positive integer, got ${String(id)}`);
  }
}

/**
 * The node id a certificate names. Requires exactly one SAN URI raftauth://node/<id> and, when
 * the subject has a CN, that it is node-<id>. Throws otherwise: a certificate that does not name
 * one node unambiguously identifies no node.
 */
export function nodeIdFromCert(cert: string | Buffer | X509Certificate): NodeId {
  const c = cert instanceof X509Certificate ? cert : new X509Certificate(cert);
  const ids = new Set<NodeId>();
  // Node renders the SAN as "URI:raftauth://node/2, DNS:localhost, IP Address:127.0.0.1"; a
  // name containing ", " or a quote is JSON-quoted, which cannot match our strict pattern.
  for (const part of (c.subjectAltName ?? '').split(', ')) {
    if (!part.startsWith('URI:')) continue;
    const uri = part.slice(4);
    if (!uri.startsWith(NODE_URI_PREFIX)) continue;
    const digits = uri.slice(NODE_URI_PREFIX.length);
    if (!/^[1-9][0-9]{0,15}$/.test(digits)) throw new Error(`certificate SAN has a malformed node URI: ${uri}`);
    ids.add(Number(digits));
  }
  if (ids.size === 0) throw new Error('certificate names no node (no SAN URI raftauth://node/<id>)');
  if (ids.size > 1) throw new Error(`certificate names several nodes: ${[...ids].join(', ')}`);
  const id = [...ids][0]!;
  assertNodeId(id);
  const cns = c.subject
    .split('\n')
    .filter((l) => l.startsWith('CN='))
    .map((l) => l.slice(3));
  for (const cn of cns) {
    if (cn !== `node-${id}`) throw new Error(`certificate CN ${cn} disagrees with its SAN node URI (node ${id})`);
  }
  return id;
}
