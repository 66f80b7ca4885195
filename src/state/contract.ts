// The replicated contract (issue 14, decision 3): one table of operations per domain is the single
// source of
//   - the TypeScript types of each operation's arguments and result (inferred from the table),
//   - the apply-side validation (each op's `args` schema runs before its apply function; bad
//     arguments are refused with INVALID_ARGUMENT and change nothing),
//   - the closed set of codes each operation may refuse with (`refuses`), and
//   - the typed client stubs (`stubs(table)`) that oauth/, mfa/, audit/, ops/ and server/ call
//     instead of passing (domain, op, args) strings.
// How to add an operation, and the envelope, are described in docs/write-path.md ("The contract").
//
// The wire format does not change: a write's payload is still `[domain, op, args]` (msgpack), and
// apply's answer is still an ApplyResult ({ ok, value } | { ok: false, code, message }), so
// entries already in logs and session records apply and answer as before, and nodes of different
// versions understand each other. The envelope callers see (Outcome) is made from the ApplyResult
// on the caller's side, once.
//
// The stubs use the node API by type only (DESIGN "Layers": state → node); a node failure is
// recognised by its `code`, never by its text.
import type { ApplyContext, ApplyResult, Domain, StateReader } from './machine.ts';
import { DomainError } from './machine.ts';
import type { NodeApi, NodeErrorCode } from '../node/api.ts';
import { packValue } from './command.ts';

// ---------------------------------------------------------------------------------------------
// Schemas: a parse function (throws INVALID_ARGUMENT naming the field) whose type is inferred

/**
 * `T` is what apply gets (the checked value), `I` what a caller sends (they differ where the check
 * fills in a default: an absent audit `meta` is "no ip, no sub, no client").
 */
export interface Schema<T, I = T> {
  /** Returns the checked value (possibly a copy); throws DomainError('INVALID_ARGUMENT', …) naming `name`. */
  readonly parse: (v: unknown, name: string) => T;
  /** Present (true) on schemas that accept an absent field (`optional`, `withDefault`). */
  readonly optional?: true;
  /** Type only (never set): carries `I`. */
  readonly input?: (i: I) => void;
}

export type Infer<S> = S extends Schema<infer T, never> ? T : never;
export type InferInput<S> = S extends { readonly input?: (i: infer I) => void } ? I : never;

/** A field map of an object schema. */
// eslint-disable-next-line @typescript-eslint/no-explicit-any -- fields of any input type
export type Fields = Readonly<Record<string, Schema<unknown, any>>>;

type AbsentKeys<F extends Fields> = { [K in keyof F]: F[K] extends { readonly optional: true } ? K : never }[keyof F];
type UndefinedKeys<F extends Fields> = { [K in keyof F]: undefined extends Infer<F[K]> ? K : never }[keyof F];
type Simplify<T> = { [K in keyof T]: T[K] } & {};
/** The type of an object schema's checked value: a field whose value may be undefined may be absent. */
export type ObjectOf<F extends Fields> = Simplify<{ readonly [K in Exclude<keyof F, UndefinedKeys<F>>]: Infer<F[K]> } & { readonly [K in UndefinedKeys<F>]?: Infer<F[K]> }>;
/** What a caller sends for an object schema: fields that may be absent (`optional`, `withDefault`) are optional. */
export type ObjectInput<F extends Fields> = Simplify<{ readonly [K in Exclude<keyof F, AbsentKeys<F>>]: InferInput<F[K]> } & { readonly [K in AbsentKeys<F>]?: InferInput<F[K]> }>;

export function invalidArgument(message: string): DomainError {
  return new DomainError('INVALID_ARGUMENT', message);
}

function isPlainObject(v: unknown): v is Record<string, unknown> {
  return typeof v === 'object' && v !== null && !Array.isArray(v) && !(v instanceof Uint8Array);
}

/**
 * A schema from a checking function of the `(v, name) => T` shape that src/state/validate.ts uses;
 * `I` (default T) is the type callers send when it differs.
 */
export function check<T, I = T>(parse: (v: unknown, name: string) => T): Schema<T, I> {
  return { parse };
}

/** A field that may be absent (then `undefined`); present, it must pass `s`. */
export function optional<T, I>(s: Schema<T, I>): Schema<T | undefined, I | undefined> & { readonly optional: true } {
  return { parse: (v, name) => (v === undefined ? undefined : s.parse(v, name)), optional: true };
}

/** A field a caller may leave out: `parse` sees undefined and gives the default. */
export function withDefault<T, I>(parse: (v: unknown, name: string) => T): Schema<T, I | undefined> & { readonly optional: true } {
  return { parse, optional: true };
}

export function nullable<T, I>(s: Schema<T, I>): Schema<T | null, I | null> {
  return { parse: (v, name) => (v === null ? null : s.parse(v, name)) };
}

/** One of a fixed set of literal values. */
export function oneOf<const T extends string | number | boolean>(values: readonly T[]): Schema<T> {
  return {
    parse: (v, name) => {
      if (!values.includes(v as T)) throw invalidArgument(`${name} must be one of ${values.join(', ')}`);
      return v as T;
    },
  };
}

/** Any value, unchecked here (an op whose apply checks the value itself, e.g. a record validated by its own rules). */
export function unknownValue(): Schema<unknown> {
  return { parse: (v) => v };
}

export interface ObjectOptions {
  /**
   * Refuse fields the schema does not name (default false: they are ignored and not passed on).
   * Only for ops that refused them before the table existed: an entry already in a log that
   * carried an extra field must apply exactly as it did (every node replays it).
   */
  readonly strict?: boolean;
}

/**
 * An object with the named fields, each checked in the order given (the first bad field is the
 * one reported). The value passed on holds exactly the named fields. An op's args are parsed with
 * the name '' (fields are named bare: `key`, `checkpoint.seq`; the object itself is `args`).
 */
export function object<const F extends Fields>(fields: F, opts: ObjectOptions = {}): Schema<ObjectOf<F>, ObjectInput<F>> {
  const keys = Object.keys(fields);
  return {
    parse: (v, name) => {
      const self = name === '' ? 'args' : name;
      if (!isPlainObject(v)) throw invalidArgument(`${self} must be an object`);
      if (opts.strict) for (const k of Object.keys(v)) if (!Object.hasOwn(fields, k)) throw invalidArgument(`${self} has an unknown field ${k}`);
      const out: Record<string, unknown> = {};
      for (const k of keys) {
        const s = fields[k]!;
        const x = Object.hasOwn(v, k) ? v[k] : undefined;
        const parsed = s.parse(x, name === '' ? k : `${name}.${k}`);
        if (parsed !== undefined || !s.optional) out[k] = parsed;
      }
      return out as ObjectOf<F>;
    },
  };
}

// ---------------------------------------------------------------------------------------------
// Operations and tables

/** Codes every operation may answer with besides its own refusals: the contract's, not the op's. */
export type ContractErrorCode =
  /** The arguments failed the op's schema (or a record check of its apply): nothing changed. */
  | 'INVALID_ARGUMENT'
  /** The domain has no such operation (a caller newer than the applying node). */
  | 'UNKNOWN_OPERATION'
  /** No such domain is registered on the applying node. */
  | 'UNKNOWN_DOMAIN'
  /** The command's bytes could not be decoded (state/machine.ts). */
  | 'MALFORMED_COMMAND'
  /** Apply refused with a code the op does not declare (a node of another version, or a bug). */
  | 'UNDECLARED_REFUSAL';

/** Every code an Outcome's `error` may carry. */
export type ErrorCode = ContractErrorCode | NodeErrorCode;

export interface WriteOp<A, R, C extends string, I = A> {
  readonly args: Schema<A, I>;
  /** The codes apply may refuse this op with (it then changes nothing): a closed set. */
  readonly refuses: readonly C[];
  /**
   * The op's apply: state through ctx.tx, time from ctx.ts, args already checked. Refuses with
   * `refuse(code, message)` (only a declared code type-checks) or a record check's
   * INVALID_ARGUMENT; any other exception is a bug that stops the node (state/machine.ts).
   */
  readonly apply: (ctx: ApplyContext, args: A, refuse: Refuse<C>) => R;
}

export interface ReadOp<A, R, C extends string, I = A> {
  readonly args: Schema<A, I>;
  readonly refuses: readonly C[];
  readonly read: (reader: StateReader, args: A, refuse: Refuse<C>) => R;
}

export type Refuse<C extends string> = (code: C, message: string) => never;

/* eslint-disable @typescript-eslint/no-explicit-any -- a table holds ops of every args/result type */
export type WriteTable = Readonly<Record<string, WriteOp<any, any, string, any>>>;
export type ReadTable = Readonly<Record<string, ReadOp<any, any, string, any>>>;
/* eslint-enable @typescript-eslint/no-explicit-any */

/** Define a write op; `A`, `R` and `C` are inferred from the schema, the apply function and `refuses`. */
export function write<A, I, R, const C extends string = never>(o: { readonly args: Schema<A, I>; readonly refuses?: readonly C[]; readonly apply: (ctx: ApplyContext, args: A, refuse: Refuse<C>) => R }): WriteOp<A, R, C, I> {
  return { args: o.args, refuses: o.refuses ?? [], apply: o.apply };
}

/** Define a read op (served from applied state; never changes it). */
export function read<A, I, R, const C extends string = never>(o: { readonly args: Schema<A, I>; readonly refuses?: readonly C[]; readonly read: (reader: StateReader, args: A, refuse: Refuse<C>) => R }): ReadOp<A, R, C, I> {
  return { args: o.args, refuses: o.refuses ?? [], read: o.read };
}

/** What a caller sends to op O. */
export type ArgsOf<O> = O extends { readonly args: infer S } ? InferInput<S> : never;
export type ResultOf<O> = O extends { readonly apply: (...a: never[]) => infer R } ? R : O extends { readonly read: (...a: never[]) => infer R } ? R : never;
export type RefusalOf<O> = O extends { readonly refuses: readonly (infer C extends string)[] } ? C : never;

function refuser<C extends string>(declared: readonly C[], domain: string, op: string): Refuse<C> {
  return (code, message) => {
    // A code outside the declaration cannot type-check; this catches a cast or a plain-JS caller.
    if (!declared.includes(code)) throw new Error(`${domain}.${op} refused with undeclared code ${code}`);
    throw new DomainError(code, message);
  };
}

export interface DomainTables<W extends WriteTable, R extends ReadTable> {
  readonly name: string;
  readonly keyspaces: readonly string[];
  readonly writes: W;
  readonly reads: R;
  /** Optional conf-change hook (Domain.confChange). */
  readonly confChange?: Domain['confChange'];
}

/**
 * The Domain state/machine.ts registers, made from a domain's tables: look the op up (own
 * properties only: `toString` is no op), check its args, apply. A refusal — a bad argument, an
 * unknown op, a declared code — is a DomainError: the machine discards the op's writes.
 */
export function tableDomain<W extends WriteTable, R extends ReadTable>(t: DomainTables<W, R>): Domain {
  const writeRefusers = new Map(Object.entries(t.writes).map(([op, o]) => [op, refuser(o.refuses, t.name, op)]));
  const readRefusers = new Map(Object.entries(t.reads).map(([op, o]) => [op, refuser(o.refuses, t.name, op)]));
  return {
    name: t.name,
    keyspaces: t.keyspaces,
    ...(t.confChange ? { confChange: t.confChange } : {}),
    apply(ctx: ApplyContext, op: string, args: unknown): unknown {
      const o = Object.hasOwn(t.writes, op) ? t.writes[op] : undefined;
      if (!o) throw new DomainError('UNKNOWN_OPERATION', `${t.name} has no operation ${op}`);
      return o.apply(ctx, o.args.parse(args, ''), writeRefusers.get(op)!);
    },
    read(reader: StateReader, op: string, args: unknown): unknown {
      const o = Object.hasOwn(t.reads, op) ? t.reads[op] : undefined;
      if (!o) throw new DomainError('UNKNOWN_OPERATION', `${t.name} has no read ${op}`);
      return o.read(reader, o.args.parse(args, ''), readRefusers.get(op)!);
    },
  };
}

// ---------------------------------------------------------------------------------------------
// The envelope

/**
 * What a caller gets back from a stub: one envelope, one discriminant.
 *   ok       the op applied (or the read ran); `value` is its result.
 *   refused  apply refused with one of the op's declared codes; nothing changed.
 *   error    the contract's or the node's: the args were refused, no leader in time (UNAVAILABLE,
 *            TIMEOUT: a write may or may not have applied, and retrying is safe), the node is
 *            stopping… `code` says which; `message` is for logs, never for matching.
 */
export type Outcome<R, C extends string = never> =
  | { readonly kind: 'ok'; readonly value: R }
  | { readonly kind: 'refused'; readonly code: C; readonly message: string }
  | { readonly kind: 'error'; readonly code: ErrorCode; readonly message: string };

const CONTRACT_CODES: ReadonlySet<string> = new Set<ContractErrorCode>(['INVALID_ARGUMENT', 'UNKNOWN_OPERATION', 'UNKNOWN_DOMAIN', 'MALFORMED_COMMAND', 'UNDECLARED_REFUSAL']);
const NODE_CODES: ReadonlySet<string> = new Set<NodeErrorCode>(['UNAVAILABLE', 'TIMEOUT', 'INVALID_REQUEST', 'STOPPING']);

/** The envelope of an apply answer (the wire's ApplyResult) for an op refusing with `declared`. */
export function outcomeOf<R, C extends string>(r: ApplyResult, declared: readonly C[]): Outcome<R, C> {
  if (r.ok) return { kind: 'ok', value: r.value as R };
  if ((declared as readonly string[]).includes(r.code)) return { kind: 'refused', code: r.code as C, message: r.message };
  if (CONTRACT_CODES.has(r.code)) return { kind: 'error', code: r.code as ContractErrorCode, message: r.message };
  return { kind: 'error', code: 'UNDECLARED_REFUSAL', message: `${r.code}: ${r.message}` };
}

/** A node's failure (NodeError, thrown by NodeApi) as an envelope, recognised by its code. */
function nodeFailure(e: unknown): Outcome<never> | null {
  if (!(e instanceof Error)) return null;
  const code: unknown = (e as unknown as { code?: unknown }).code;
  if (typeof code === 'string' && NODE_CODES.has(code)) return { kind: 'error', code: code as NodeErrorCode, message: e.message };
  return null;
}

/** A refusal or error a caller chose not to handle, thrown by `must` (the HTTP layer maps it by code). */
export class ContractError extends Error {
  readonly kind: 'refused' | 'error';
  readonly code: string;
  readonly op: string;

  constructor(kind: 'refused' | 'error', code: string, op: string, message: string) {
    super(`${op}: ${code}: ${message}`);
    this.kind = kind;
    this.code = code;
    this.op = op;
    this.name = 'ContractError';
  }
}

/** The value of an outcome, or a ContractError carrying its code (for callers that handle no refusal). */
export function must<R>(o: Outcome<R, string>, op = 'state'): R {
  if (o.kind === 'ok') return o.value;
  throw new ContractError(o.kind, o.code, op, o.message);
}

// ---------------------------------------------------------------------------------------------
// Client stubs

/** What a read stub needs of its caller: the node API's read (by type) and the deadline of each call. */
export interface ReadClient {
  readonly node: Pick<NodeApi, 'read'>;
  /** Deadline of each call (leader changes are retried inside it by the node). */
  readonly requestTimeoutMs: number;
}

/** What a write stub needs: the node API's write (writeEncoded when it has it). An OAuthContext is one. */
export interface StateClient extends ReadClient {
  readonly node: Pick<NodeApi, 'write' | 'read' | 'writeEncoded'>;
}

/**
 * The leader's own commands outside any client session (src/server/oauth-node.ts: key creation
 * and rotation, the sweep, audit retention): RaftNode.housekeeping, by type.
 */
export interface HousekeepingNode {
  housekeeping(domain: string, op: string, args: unknown, timeoutMs: number): Promise<ApplyResult>;
}

export type WriteStub<O> = (client: StateClient, args: ArgsOf<O>) => Promise<Outcome<ResultOf<O>, RefusalOf<O>>>;
export type ReadStub<O> = (client: ReadClient, args: ArgsOf<O>, consistency?: 'linearizable' | 'local') => Promise<Outcome<ResultOf<O>, RefusalOf<O>>>;
export type HousekeepingStub<O> = (node: HousekeepingNode, args: ArgsOf<O>, timeoutMs: number) => Promise<Outcome<ResultOf<O>, RefusalOf<O>>>;

export type WriteStubs<W extends WriteTable> = { readonly [K in keyof W]: WriteStub<W[K]> };
export type ReadStubs<R extends ReadTable> = { readonly [K in keyof R]: ReadStub<R[K]> };
export type HousekeepingStubs<W extends WriteTable> = { readonly [K in keyof W]: HousekeepingStub<W[K]> };

/**
 * The typed stubs of a domain's writes: `stub(client, args)` encodes `[domain, op, args]` once
 * (msgpack, the payload apply decodes) and proposes it; the answer comes back as an Outcome.
 * A node without writeEncoded (a test stand-in) gets the plain write.
 */
export function writeStubs<W extends WriteTable>(domain: string, table: W): WriteStubs<W> {
  type AnyStub = (client: StateClient, args: unknown) => Promise<Outcome<unknown, string>>;
  const out: Record<string, AnyStub> = {};
  for (const [op, o] of Object.entries(table)) {
    out[op] = async (client, args) => {
      let r: ApplyResult;
      try {
        const { node, requestTimeoutMs: timeoutMs } = client;
        r = node.writeEncoded ? await node.writeEncoded({ payload: packValue([domain, op, args]), timeoutMs }) : await node.write({ domain, op, args, timeoutMs });
      } catch (e) {
        const f = nodeFailure(e);
        if (f) return f;
        throw e;
      }
      return outcomeOf(r, o.refuses);
    };
  }
  return out as unknown as WriteStubs<W>;
}

/** The typed stubs of a domain's reads (ReadIndex, dissertation §6.4, unless 'local'). */
export function readStubs<R extends ReadTable>(domain: string, table: R): ReadStubs<R> {
  type AnyStub = (client: StateClient, args: unknown, consistency?: 'linearizable' | 'local') => Promise<Outcome<unknown, string>>;
  const out: Record<string, AnyStub> = {};
  for (const [op, o] of Object.entries(table)) {
    out[op] = async (client, args, consistency = 'linearizable') => {
      let r: ApplyResult;
      try {
        r = await client.node.read({ domain, op, args, timeoutMs: client.requestTimeoutMs, consistency });
      } catch (e) {
        const f = nodeFailure(e);
        if (f) return f;
        throw e;
      }
      return outcomeOf(r, o.refuses);
    };
  }
  return out as unknown as ReadStubs<R>;
}

/** The typed stubs of a domain's writes proposed by the leader as housekeeping (no client session). */
export function housekeepingStubs<W extends WriteTable>(domain: string, table: W): HousekeepingStubs<W> {
  type AnyStub = (node: HousekeepingNode, args: unknown, timeoutMs: number) => Promise<Outcome<unknown, string>>;
  const out: Record<string, AnyStub> = {};
  for (const [op, o] of Object.entries(table)) {
    out[op] = async (node, args, timeoutMs) => {
      let r: ApplyResult;
      try {
        r = await node.housekeeping(domain, op, args, timeoutMs);
      } catch (e) {
        const f = nodeFailure(e);
        if (f) return f;
        throw e;
      }
      return outcomeOf(r, o.refuses);
    };
  }
  return out as unknown as HousekeepingStubs<W>;
}
