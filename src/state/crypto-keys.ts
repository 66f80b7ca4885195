// The crypto domain: the data keys that seal records at rest (keyspace `sys.dk`, key `ring`),
// each wrapped by the operator's master key (DESIGN principle 5). The primary pushes the value as
// is into the workers' `data_keys` read cache: packValue(DataKeyRing) exactly.
import { DomainError } from './machine.ts';
import type { ApplyContext, Domain, StateReader } from './machine.ts';
import { packValue, unpackValue } from './command.ts';
import type { DataKeyRing, WrappedDataKey } from './oauth-ops.ts';
import { int, invalid, obj, validateWrappedDataKey } from './validate.ts';
import { RING_KEY } from './keys.ts';
import { appendAudit, auditEvent, auditMeta } from './audit.ts';

export const DATA_KEYS_KEYSPACE = 'sys.dk';
/** Most data keys in the ring. */
export const MAX_DATA_KEYS = 100;

export function readDataKeyRing(reader: StateReader): DataKeyRing | null {
  const b = reader.get(DATA_KEYS_KEYSPACE, RING_KEY);
  return b === undefined ? null : unpackValue<DataKeyRing>(b);
}

export const cryptoDomain: Domain = {
  name: 'crypto',
  keyspaces: [DATA_KEYS_KEYSPACE],
  apply(ctx: ApplyContext, op: string, args: unknown): unknown {
    const a = obj(args, 'args');
    switch (op) {
      case 'init': {
        const key = validateWrappedDataKey(a.key, 'key');
        // Idempotent: two leaders racing the bootstrap create one ring.
        if (readDataKeyRing(ctx.tx)) return { created: false };
        const ring: DataKeyRing = { version: 1, activeId: key.id, keys: [key] };
        ctx.tx.put(DATA_KEYS_KEYSPACE, RING_KEY, packValue(ring));
        return { created: true };
      }
      case 'rewrap': {
        // A master-key change: the same data keys wrapped by the new master key. Ids and count
        // must not change, or records sealed under a dropped key would become unreadable.
        const expectVersion = int(a.expectVersion, 'expectVersion', 0, Number.MAX_SAFE_INTEGER);
        if (!Array.isArray(a.keys)) throw invalid('keys must be an array');
        if (a.keys.length > MAX_DATA_KEYS) throw invalid(`keys has more than ${MAX_DATA_KEYS} entries`);
        const given = a.keys.map((k: unknown, i: number) => validateWrappedDataKey(k, `keys[${i}]`));
        const meta = auditMeta(a.meta);
        const ring = readDataKeyRing(ctx.tx);
        if (!ring) throw new DomainError('NOT_FOUND', 'there is no data key ring');
        if (ring.version !== expectVersion) throw new DomainError('CONFLICT', `data key ring is at version ${ring.version}, not ${expectVersion}`);
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
      }
      default:
        throw new DomainError('UNKNOWN_OPERATION', `crypto has no operation ${op}`);
    }
  },
  read(reader: StateReader, op: string): unknown {
    if (op !== 'ring') throw new DomainError('UNKNOWN_OPERATION', `crypto has no read ${op}`);
    return readDataKeyRing(reader);
  },
};
