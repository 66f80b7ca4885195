// The crypto domain: the data keys that seal records at rest (keyspace `sys.dk`, key `ring`),
// each wrapped by the operator's master key (DESIGN principle 5). The primary pushes the value as
// is into the workers' `data_keys` read cache: packValue(DataKeyRing) exactly.
import type { Domain, StateReader } from './machine.ts';
import { packValue, unpackValue } from './command.ts';
import type { DataKeyRing, WrappedDataKey } from './oauth-ops.ts';
import { int, invalid, validateWrappedDataKey } from './validate.ts';
import { RING_KEY } from './keys.ts';
import { appendAudit, auditEvent, auditMeta } from './audit.ts';
import type { AuditMeta } from './audit.ts';
import { check, housekeepingStubs, object, read, readStubs, tableDomain, unknownValue, withDefault, write, writeStubs } from './contract.ts';

export const DATA_KEYS_KEYSPACE = 'sys.dk';
/** Most data keys in the ring. */
export const MAX_DATA_KEYS = 100;

export function readDataKeyRing(reader: StateReader): DataKeyRing | null {
  const b = reader.get(DATA_KEYS_KEYSPACE, RING_KEY);
  return b === undefined ? null : unpackValue<DataKeyRing>(b);
}

const META = withDefault<AuditMeta, Partial<AuditMeta>>(auditMeta);
const GIVEN_KEYS = check((v, name): WrappedDataKey[] => {
  if (!Array.isArray(v)) throw invalid(`${name} must be an array`);
  if (v.length > MAX_DATA_KEYS) throw invalid(`${name} has more than ${MAX_DATA_KEYS} entries`);
  return v.map((k: unknown, i: number) => validateWrappedDataKey(k, `${name}[${i}]`));
});

/** The crypto domain's operations (the contract: src/state/contract.ts). */
export const CRYPTO_WRITES = {
  /** Create the ring with one key if there is none; else nothing. */
  init: write({
    args: object({ key: check((v, n) => validateWrappedDataKey(v, n)) }),
    apply: (ctx, a): { created: boolean } => {
      // Idempotent: two leaders racing the bootstrap create one ring.
      if (readDataKeyRing(ctx.tx)) return { created: false };
      const ring: DataKeyRing = { version: 1, activeId: a.key.id, keys: [a.key] };
      ctx.tx.put(DATA_KEYS_KEYSPACE, RING_KEY, packValue(ring));
      return { created: true };
    },
  }),
  /**
   * A master-key change: the same data keys wrapped by the new master key. Ids and count must not
   * change, or records sealed under a dropped key would become unreadable. CONFLICT on a version
   * mismatch.
   */
  rewrap: write({
    args: object({ expectVersion: check((v, n) => int(v, n, 0, Number.MAX_SAFE_INTEGER)), keys: GIVEN_KEYS, meta: META }),
    refuses: ['NOT_FOUND', 'CONFLICT'],
    apply: (ctx, a, refuse): { version: number } => {
      const { expectVersion, keys: given, meta } = a;
      const ring = readDataKeyRing(ctx.tx);
      if (!ring) return refuse('NOT_FOUND', 'there is no data key ring');
      if (ring.version !== expectVersion) refuse('CONFLICT', `data key ring is at version ${ring.version}, not ${expectVersion}`);
      const byId = new Map<string, WrappedDataKey>();
      for (const k of given) {
        if (byId.has(k.id)) throw invalid(`keys has key ${k.id} twice`);
        byId.set(k.id, k);
      }
      if (given.length !== ring.keys.length) throw invalid(`keys must hold the ring's ${ring.keys.length} keys, not ${given.length}`);
      const keys = ring.keys.map((old) => {
        const k = byId.get(old.id);
        if (!k) throw invalid(`keys is missing key ${old.id}`);
        return { id: old.id, masterKid: k.masterKid, wrapped: k.wrapped, createdAt: old.createdAt };
      });
      const version = ring.version + 1;
      ctx.tx.put(DATA_KEYS_KEYSPACE, RING_KEY, packValue({ version, activeId: ring.activeId, keys } satisfies DataKeyRing));
      const masterKids = [...new Set(keys.map((k) => k.masterKid))].join(' ');
      appendAudit(ctx.tx, ctx.ts, auditEvent('keys.rewrapped', meta, { details: { version, keys: keys.length, masterKids } }));
      return { version };
    },
  }),
};

export const CRYPTO_READS = {
  ring: read({ args: unknownValue(), read: (r): DataKeyRing | null => readDataKeyRing(r) }),
};

export const cryptoDomain: Domain = tableDomain({ name: 'crypto', keyspaces: [DATA_KEYS_KEYSPACE], writes: CRYPTO_WRITES, reads: CRYPTO_READS });

/** Typed client stubs: `dataKeys.read.ring(client, {})`, `dataKeys.rewrap(client, args)`, `dataKeys.leader.init(node, args, timeoutMs)`. */
export const dataKeys = { ...writeStubs('crypto', CRYPTO_WRITES), read: readStubs('crypto', CRYPTO_READS), leader: housekeepingStubs('crypto', CRYPTO_WRITES) };
