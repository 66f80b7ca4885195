// The KV domain: a linearizable register/CAS keyspace for tests, the Jepsen workload and
// operators (admin API). Values are strings; a missing key reads as null.
import { DomainError } from './machine.ts';
import type { ApplyContext, Domain, StateReader } from './machine.ts';

const KEYSPACE = 'kv';
/** Key and value limits, enforced in apply so every node refuses the same commands. */
export const KV_MAX_KEY_BYTES = 256;
export const KV_MAX_VALUE_BYTES = 64 * 1024;

const enc = new TextEncoder();
const dec = new TextDecoder();

export type KvOp =
  | { op: 'get'; key: string }
  | { op: 'put'; key: string; value: string }
  | { op: 'cas'; key: string; expected: string | null; value: string }
  | { op: 'append'; key: string; value: string }
  | { op: 'delete'; key: string };

function str(v: unknown, name: string, maxBytes: number): string {
  if (typeof v !== 'string') throw new DomainError('INVALID_ARGUMENT', `${name} must be a string`);
  if (enc.encode(v).length > maxBytes) throw new DomainError('INVALID_ARGUMENT', `${name} is longer than ${maxBytes} bytes`);
  return v;
}

export const kvDomain: Domain = {
  name: 'kv',
  keyspaces: [KEYSPACE],
  apply(ctx: ApplyContext, op: string, args: unknown): unknown {
    const a = (args ?? {}) as Record<string, unknown>;
    const key = str(a.key, 'key', KV_MAX_KEY_BYTES);
    if (key.length === 0) throw new DomainError('INVALID_ARGUMENT', 'key must not be empty');
    const read = (): string | null => {
      const b = ctx.tx.get(KEYSPACE, key);
      return b === undefined ? null : dec.decode(b);
    };
    switch (op) {
      case 'get':
        return { value: read() };
      case 'put':
        ctx.tx.put(KEYSPACE, key, enc.encode(str(a.value, 'value', KV_MAX_VALUE_BYTES)));
        return {};
      case 'cas': {
        const expected = a.expected === null ? null : str(a.expected, 'expected', KV_MAX_VALUE_BYTES);
        const value = str(a.value, 'value', KV_MAX_VALUE_BYTES);
        const actual = read();
        if (actual !== expected) return { ok: false, actual };
        ctx.tx.put(KEYSPACE, key, enc.encode(value));
        return { ok: true, actual };
      }
      case 'append': {
        const next = (read() ?? '') + str(a.value, 'value', KV_MAX_VALUE_BYTES);
        if (enc.encode(next).length > KV_MAX_VALUE_BYTES) throw new DomainError('INVALID_ARGUMENT', `value would exceed ${KV_MAX_VALUE_BYTES} bytes`);
        ctx.tx.put(KEYSPACE, key, enc.encode(next));
        return { value: next };
      }
      case 'delete': {
        const existed = read() !== null;
        ctx.tx.del(KEYSPACE, key);
        return { existed };
      }
      default:
        throw new DomainError('UNKNOWN_OPERATION', `kv has no operation ${op}`);
    }
  },
  read(reader: StateReader, op: string, args: unknown): unknown {
    if (op !== 'get') throw new DomainError('UNKNOWN_OPERATION', `kv has no read ${op}`);
    const key = str((args as Record<string, unknown> | null)?.key, 'key', KV_MAX_KEY_BYTES);
    return { value: kvRead(reader, key) };
  },
};

/** Read a key straight from state (for ReadIndex reads served locally). */
export function kvRead(reader: StateReader, key: string): string | null {
  const b = reader.get(KEYSPACE, key);
  return b === undefined ? null : dec.decode(b);
}
