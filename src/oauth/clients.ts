// Client lookup for endpoints: from the read cache the primary pushes (src/server/oauth-node.ts),
// so authenticating a client costs no IPC round trip. A client created a moment ago on another
// node may not be here yet: lookupClient falls back to a linearizable read on a miss.
import type { ClientRecord, GrantType } from '../state/oauth-ops.ts';
import { clients } from '../state/clients.ts';
import { must } from '../state/contract.ts';
import type { OAuthContext } from './context.ts';
import { InvalidScope, UnauthorizedClient } from './errors.ts';

export const CLIENTS_TABLE = 'clients';

/** The client as this node's cache has it, or null (not there yet, deleted, or past the cache's bound). */
function getClient(ctx: OAuthContext, clientId: string): ClientRecord | null {
  const c = ctx.cache.get(CLIENTS_TABLE, clientId) as ClientRecord | undefined;
  return c ?? null;
}

/**
 * The client a request names, where a flow begins (the token endpoint's client authentication,
 * /authorize): from the cache, and on a miss through the node with a linearizable read. The admin
 * API answers once the leader has applied a new client; a follower applies it a heartbeat later,
 * and a node still catching up (just added, just restarted) later still, so a script that creates
 * a client and uses it at once through a load balancer would otherwise see invalid_client now and
 * then. An unknown client_id costs a ReadIndex round trip, no write; a malformed one, nothing.
 */
export async function lookupClient(ctx: OAuthContext, clientId: string): Promise<ClientRecord | null> {
  const cached = getClient(ctx, clientId);
  if (cached !== null) return cached;
  const o = await clients.read.get(ctx, { client_id: clientId });
  // INVALID_ARGUMENT: the id is not one a client can have (the domain's own check): no such client.
  if (o.kind === 'error' && o.code === 'INVALID_ARGUMENT') return null;
  return must(o, 'clients.get');
}

/** RFC 6749 §5.2 unauthorized_client: the client may not use this grant type. */
export function checkGrantType(client: ClientRecord, grant: GrantType): void {
  if (!client.grant_types.includes(grant)) throw new UnauthorizedClient(`client ${client.client_id} may not use the ${grant} grant`);
}

/** Scopes about an end user (OIDC Core §5.4, §11): not part of a default request without one. */
const USER_SCOPES: ReadonlySet<string> = new Set(['openid', 'profile', 'email', 'address', 'phone', 'offline_access']);

/**
 * RFC 6749 §3.3: the requested scopes must all be allowed for the client; we refuse rather than
 * silently narrow, so a client learns of a misconfiguration. An empty request gets the client's
 * default: with an end user (`withUser`), every scope it may ask for minus `openid` and
 * `offline_access` (those must be asked for explicitly); without one (client_credentials), its
 * scopes minus every end-user scope.
 */
export function resolveScope(_ctx: OAuthContext, client: ClientRecord, requested: readonly string[], withUser = true): string[] {
  if (requested.length === 0) return client.scopes.filter((s) => (withUser ? s !== 'openid' && s !== 'offline_access' : !USER_SCOPES.has(s)));
  for (const s of requested) {
    if (!client.scopes.includes(s)) throw new InvalidScope(`scope ${s} is not allowed for client ${client.client_id}`);
  }
  return [...requested];
}
