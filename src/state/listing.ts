// Typed pages of replicated state for operators (the admin API's listings): the state layer knows
// the keyspaces and how their values are encoded, so its callers (src/ops/admin-oauth.ts) read
// through here instead of iterating the store (docs/architecture.md "Layers": ops reads replicated
// state through the state layer). Pages are read from this node's applied state; the caller passes
// a ReadIndex barrier first when it needs them linearizable.
import type { StateScanner } from '../node/api.ts';
import { unpackValue } from '../codec/msgpack.ts';
import type { ClientRecord } from './oauth-ops.ts';
import { CLIENTS_KEYSPACE } from './clients.ts';
import { USERNAMES_KEYSPACE } from './users.ts';

/** One page and the key to continue after (null when the page was not full: nothing follows). */
export interface Page<T> {
  readonly items: T[];
  readonly next: string | null;
}

const dec = new TextDecoder();

/** Key bounds of the page after `after` (exclusive), if any. */
function after(key: string | null): { gte?: string } {
  return key !== null ? { gte: `${key}\u0000` } : {};
}

/** Clients in client_id order, at most `limit`, after client_id `afterId`. */
export async function listClients(scanner: StateScanner, afterId: string | null, limit: number): Promise<Page<ClientRecord>> {
  const recs = await scanner.scanState(CLIENTS_KEYSPACE, { ...after(afterId), limit });
  return { items: recs.map((r) => unpackValue<ClientRecord>(r.value)), next: recs.length === limit ? dec.decode(recs[recs.length - 1]!.key) : null };
}

/**
 * Usernames (lower-cased: the index key) in order, at most `limit`, after `afterName`. The records
 * are read by username (users domain `byUsername`): a user deleted meanwhile is simply absent.
 */
export async function listUsernames(scanner: StateScanner, afterName: string | null, limit: number): Promise<Page<string>> {
  const recs = await scanner.scanState(USERNAMES_KEYSPACE, { ...after(afterName === null ? null : afterName.toLowerCase()), limit });
  const items = recs.map((r) => dec.decode(r.key));
  return { items, next: recs.length === limit ? items[items.length - 1]! : null };
}
