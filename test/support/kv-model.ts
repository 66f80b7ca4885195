// The sequential specification of the simulator's reference KV store, as a model for the
// linearizability checker. Keys are independent registers, so a history is checked one key at a
// time (Herlihy & Wing 1990, §3.3: linearizability is local), which keeps each search small.
import type { Model, Operation } from './linearizability.ts';

export type KvInput =
  | { op: 'get'; key: string }
  | { op: 'put'; key: string; value: string }
  | { op: 'cas'; key: string; expected: string | null; value: string } // null = key absent
  | { op: 'append'; key: string; value: string }; // appends to the string value ('' if absent)

export type KvOutput =
  | { op: 'get'; value: string | null }
  | { op: 'put' }
  /** `actual` is the value the CAS compared against (before it), whether or not it succeeded. */
  | { op: 'cas'; ok: boolean; actual: string | null }
  | { op: 'append'; value: string }; // the value after the append

/** The value of one key; null = absent. */
export type KvState = string | null;

export type KvOperation = Operation<KvInput, KvOutput>;

/** A history that pairs an output with an input of another kind is a recording bug, not a verdict. */
function mismatch(input: KvInput, output: KvOutput): never {
  throw new Error(`kv history: output of kind '${output.op}' recorded for a '${input.op}' on key ${JSON.stringify(input.key)}`);
}

function step(state: KvState, input: KvInput, output: KvOutput | undefined): { ok: boolean; next: KvState } {
  if (output !== undefined && output.op !== input.op) mismatch(input, output);
  switch (input.op) {
    case 'get':
      return { ok: output === undefined || (output.op === 'get' && output.value === state), next: state };
    case 'put':
      return { ok: true, next: input.value };
    case 'cas': {
      const swapped = state === input.expected;
      const next = swapped ? input.value : state;
      const ok = output === undefined || (output.op === 'cas' && output.ok === swapped && output.actual === state);
      return { ok, next };
    }
    case 'append': {
      const next = (state ?? '') + input.value;
      return { ok: output === undefined || (output.op === 'append' && output.value === next), next };
    }
  }
}

function show(v: string | null): string {
  return v === null ? 'nil' : JSON.stringify(v);
}

function describe(input: KvInput, output: KvOutput | undefined): string {
  const key = JSON.stringify(input.key);
  let call: string;
  switch (input.op) {
    case 'get':
      call = `get ${key}`;
      break;
    case 'put':
      call = `put ${key} ${show(input.value)}`;
      break;
    case 'cas':
      call = `cas ${key} ${show(input.expected)} -> ${show(input.value)}`;
      break;
    case 'append':
      call = `append ${key} ${show(input.value)}`;
      break;
  }
  if (output === undefined) return `${call} => ?`;
  switch (output.op) {
    case 'get':
      return `${call} => ${show(output.value)}`;
    case 'put':
      return `${call} => ok`;
    case 'cas':
      return `${call} => ${output.ok ? 'swapped' : 'failed'} (actual ${show(output.actual)})`;
    case 'append':
      return `${call} => ${show(output.value)}`;
  }
}

/**
 * One sub-history per key, in order of first appearance. Indeterminate gets are dropped: a read
 * whose result is unknown neither changes the state nor constrains it, so it can be linearized
 * anywhere or nowhere; keeping it would only multiply the states the search visits.
 */
function partition(history: readonly KvOperation[]): KvOperation[][] {
  const byKey = new Map<string, KvOperation[]>();
  for (const o of history) {
    if (o.input.op === 'get' && o.return === Infinity) continue;
    let list = byKey.get(o.input.key);
    if (list === undefined) {
      list = [];
      byKey.set(o.input.key, list);
    }
    list.push(o);
  }
  return [...byKey.values()];
}

export const kvModel: Model<KvState, KvInput, KvOutput> = {
  init: () => null,
  step,
  partition,
  // 'N' for absent and 'S' + value otherwise keeps absent distinct from every string.
  hash: (state) => (state === null ? 'N' : `S${state}`),
  describe,
};
