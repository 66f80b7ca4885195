// The clients domain: registered OAuth clients (RFC 6749 §2), keyed by client_id. The primary
// pushes this keyspace as is into the workers' `clients` read cache, so the stored value is
// exactly packValue(ClientRecord) with the record's fields and nothing else. Every change appends
// its audit event (client.created/updated/deleted) in the same transaction.
import { DomainError } from './machine.ts';
import type { ApplyContext, Domain, StateReader } from './machine.ts';
import { packValue, unpackValue } from './command.ts';
import type { ClientRecord } from './oauth-ops.ts';
import { clientId, obj, validateClientRecord } from './validate.ts';
import { appendAudit, auditEvent, auditMeta } from './audit.ts';

export const CLIENTS_KEYSPACE = 'clients';

function load(reader: StateReader, id: string): ClientRecord | null {
  const b = reader.get(CLIENTS_KEYSPACE, id);
  return b === undefined ? null : unpackValue<ClientRecord>(b);
}

export const clientsDomain: Domain = {
  name: 'clients',
  keyspaces: [CLIENTS_KEYSPACE],
  apply(ctx: ApplyContext, op: string, args: unknown): unknown {
    const a = obj(args, 'args');
    switch (op) {
      case 'create': {
        const c = validateClientRecord(a.client);
        const meta = auditMeta(a.meta);
        if (load(ctx.tx, c.client_id)) throw new DomainError('ALREADY_EXISTS', `client ${c.client_id} already exists`);
        ctx.tx.put(CLIENTS_KEYSPACE, c.client_id, packValue(c));
        appendAudit(ctx.tx, ctx.ts, auditEvent('client.created', meta, { clientId: c.client_id, details: { authMethod: c.token_endpoint_auth_method, grantTypes: c.grant_types.join(' ') } }));
        return {};
      }
      case 'update': {
        const c = validateClientRecord(a.client);
        const meta = auditMeta(a.meta);
        const old = load(ctx.tx, c.client_id);
        if (!old) throw new DomainError('NOT_FOUND', `no client ${c.client_id}`);
        ctx.tx.put(CLIENTS_KEYSPACE, c.client_id, packValue({ ...c, created_at: old.created_at }));
        const details = { authMethod: c.token_endpoint_auth_method, grantTypes: c.grant_types.join(' '), secretChanged: c.client_secret_hash !== old.client_secret_hash };
        appendAudit(ctx.tx, ctx.ts, auditEvent('client.updated', meta, { clientId: c.client_id, details }));
        return {};
      }
      case 'delete': {
        const id = clientId(a.client_id);
        const meta = auditMeta(a.meta);
        const existed = load(ctx.tx, id) !== null;
        if (existed) {
          ctx.tx.del(CLIENTS_KEYSPACE, id);
          appendAudit(ctx.tx, ctx.ts, auditEvent('client.deleted', meta, { clientId: id }));
        }
        return { existed };
      }
      default:
        throw new DomainError('UNKNOWN_OPERATION', `clients has no operation ${op}`);
    }
  },
  read(reader: StateReader, op: string, args: unknown): unknown {
    if (op !== 'get') throw new DomainError('UNKNOWN_OPERATION', `clients has no read ${op}`);
    return load(reader, clientId(obj(args, 'args').client_id));
  },
};
