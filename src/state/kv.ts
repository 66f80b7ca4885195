// The KV domain: a linearizable register/CAS keyspace for tests, the Jepsen workload and
// operators (admin API). Values are strings; a missing key reads as null. Its operations are the
// table below (the contract: src/state/contract.ts); `kv` holds its typed client stubs.
import { DomainError } from './machine.ts';
import type { ApplyContext, StateReader } from './machine.ts';
import { check, nullable, object, read, readStubs, tableDomain, write, writeStubs } from './contract.ts';

const KEYSPACE = 'kv';
/** Key and value limits, enforced in apply so every node refuses the same commands. */
export const KV_MAX_KEY_BYTES = 256;
export const KV_MAX_VALUE_BYTES = 64 * 1024;

const enc = new TextEncoder();
const dec = new TextDecoder();

function str(v: unknown, name: string, maxBytes: number): string {
  if (typeof v !== 'string') throw new DomainError('INVALID_ARGUMENT', `${name} must be a string`);
  if (enc.encode(v).length > maxBytes) throw new DomainError('INVALID_ARGUMENT', `${name} is longer than ${maxBytes} bytes`);
  return v;
}

const key = check((v) => {
  const k = str(v, 'key', KV_MAX_KEY_BYTES);
  if (k.length === 0) throw new DomainError('INVALID_ARGUMENT', 'key must not be empty');
  return k;
});
const value = check((v, name) => str(v, name, KV_MAX_VALUE_BYTES));

function current(ctx: ApplyContext, k: string): string | null {
  const b = ctx.tx.get(KEYSPACE, k);
  return b === undefined ? null : dec.decode(b);
}

export const KV_WRITES = {
  get: write({ args: object({ key }), apply: (ctx, a): { value: string | null } => ({ value: current(ctx, a.key) }) }),
  put: write({
    args: object({ key, value }),
    apply: (ctx, a): Record<string, never> => {
      ctx.tx.put(KEYSPACE, a.key, enc.encode(a.value));
      return {};
    },
  }),
  cas: write({
    args: object({ key, expected: nullable(value), value }),
    apply: (ctx, a): { ok: boolean; actual: string | null } => {
      const actual = current(ctx, a.key);
      if (actual !== a.expected) return { ok: false, actual };
      ctx.tx.put(KEYSPACE, a.key, enc.encode(a.value));
      return { ok: true, actual };
    },
  }),
  append: write({
    args: object({ key, value }),
    apply: (ctx, a): { value: string } => {
      const next = (current(ctx, a.key) ?? '') + a.value;
      if (enc.encode(next).length > KV_MAX_VALUE_BYTES) throw new DomainError('INVALID_ARGUMENT', `value would exceed ${KV_MAX_VALUE_BYTES} bytes`);
      ctx.tx.put(KEYSPACE, a.key, enc.encode(next));
      return { value: next };
    },
  }),
  delete: write({
    args: object({ key }),
    apply: (ctx, a): { existed: boolean } => {
      const existed = current(ctx, a.key) !== null;
      ctx.tx.del(KEYSPACE, a.key);
      return { existed };
    },
  }),
};

export const KV_READS = {
  get: read({ args: object({ key: check((v) => str(v, 'key', KV_MAX_KEY_BYTES)) }), read: (r, a): { value: string | null } => ({ value: kvRead(r, a.key) }) }),
};

export const kvDomain = tableDomain({ name: 'kv', keyspaces: [KEYSPACE], writes: KV_WRITES, reads: KV_READS });

/** Typed client stubs of the kv domain: `kv.put(client, { key, value })`, `kv.read.get(client, { key })`. */
export const kv = { ...writeStubs('kv', KV_WRITES), read: readStubs('kv', KV_READS) };

/** Read a key straight from state (for ReadIndex reads served locally). */
export function kvRead(reader: StateReader, key: string): string | null {
  const b = reader.get(KEYSPACE, key);
  return b === undefined ? null : dec.decode(b);
}
