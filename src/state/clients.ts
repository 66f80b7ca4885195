// The clients domain: registered OAuth clients (RFC 6749 §2), keyed by client_id. The primary
// pushes this keyspace as is into the workers' `clients` read cache, so the stored value is
// exactly packValue(ClientRecord) with the record's fields and nothing else. Every change appends
// its audit event (client.created/updated/deleted) in the same transaction.
import type { Domain, StateReader } from './machine.ts';
import { packValue, unpackValue } from './command.ts';
import type { ClientRecord } from './oauth-ops.ts';
import { clientId, validateClientRecord } from './validate.ts';
import { appendAudit, auditEvent, auditMeta } from './audit.ts';
import type { AuditMeta } from './audit.ts';
import { check, object, read, readStubs, tableDomain, withDefault, write, writeStubs } from './contract.ts';

export const CLIENTS_KEYSPACE = 'clients';

function load(reader: StateReader, id: string): ClientRecord | null {
  const b = reader.get(CLIENTS_KEYSPACE, id);
  return b === undefined ? null : unpackValue<ClientRecord>(b);
}

const CLIENT = check((v) => validateClientRecord(v));
const META = withDefault<AuditMeta, Partial<AuditMeta>>(auditMeta);
const CLIENT_ID = check((v, n) => clientId(v, n === 'client_id' ? undefined : n));

/** The clients domain's operations (the contract: src/state/contract.ts). */
export const CLIENTS_WRITES = {
  /** Register a client (the record as validateClientRecord accepts it). ALREADY_EXISTS for a taken client_id. */
  create: write({
    args: object({ client: CLIENT, meta: META }),
    refuses: ['ALREADY_EXISTS'],
    apply: (ctx, a, refuse): Record<string, never> => {
      const c = a.client;
      if (load(ctx.tx, c.client_id)) refuse('ALREADY_EXISTS', `client ${c.client_id} already exists`);
      ctx.tx.put(CLIENTS_KEYSPACE, c.client_id, packValue(c));
      appendAudit(ctx.tx, ctx.ts, auditEvent('client.created', a.meta, { clientId: c.client_id, details: { authMethod: c.token_endpoint_auth_method, grantTypes: c.grant_types.join(' ') } }));
      return {};
    },
  }),
  /** Replace a client's record (created_at kept). NOT_FOUND if there is none. */
  update: write({
    args: object({ client: CLIENT, meta: META }),
    refuses: ['NOT_FOUND'],
    apply: (ctx, a, refuse): Record<string, never> => {
      const c = a.client;
      const old = load(ctx.tx, c.client_id);
      if (!old) return refuse('NOT_FOUND', `no client ${c.client_id}`);
      ctx.tx.put(CLIENTS_KEYSPACE, c.client_id, packValue({ ...c, created_at: old.created_at }));
      const details = { authMethod: c.token_endpoint_auth_method, grantTypes: c.grant_types.join(' '), secretChanged: c.client_secret_hash !== old.client_secret_hash };
      appendAudit(ctx.tx, ctx.ts, auditEvent('client.updated', a.meta, { clientId: c.client_id, details }));
      return {};
    },
  }),
  delete: write({
    args: object({ client_id: CLIENT_ID, meta: META }),
    apply: (ctx, a): { existed: boolean } => {
      const existed = load(ctx.tx, a.client_id) !== null;
      if (existed) {
        ctx.tx.del(CLIENTS_KEYSPACE, a.client_id);
        appendAudit(ctx.tx, ctx.ts, auditEvent('client.deleted', a.meta, { clientId: a.client_id }));
      }
      return { existed };
    },
  }),
};

export const CLIENTS_READS = {
  get: read({ args: object({ client_id: CLIENT_ID }), read: (r, a): ClientRecord | null => load(r, a.client_id) }),
};

export const clientsDomain: Domain = tableDomain({ name: 'clients', keyspaces: [CLIENTS_KEYSPACE], writes: CLIENTS_WRITES, reads: CLIENTS_READS });

/** Typed client stubs: `clients.create(client, { client: record, meta })`, `clients.read.get(client, { client_id })`. */
export const clients = { ...writeStubs('clients', CLIENTS_WRITES), read: readStubs('clients', CLIENTS_READS) };
