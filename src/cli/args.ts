// Argument parsing for the raftauth CLI: node's util.parseArgs in strict mode (an unknown or
// misspelt option is an error, never silently ignored), with its errors turned into UsageError so
// that main exits with code 2 and the command's usage.
import { parseArgs } from 'node:util';

export const EXIT_OK = 0;
export const EXIT_FAILURE = 1;
export const EXIT_USAGE = 2;

/** A command line the CLI does not understand: exit code 2 with the usage text. */
export class UsageError extends Error {
  constructor(message: string) {
    super(message);
    this.name = 'UsageError';
  }
}

/** A command that ran and failed (a node refused, no node reachable, a file exists): exit code 1. */
export class CliError extends Error {
  constructor(message: string) {
    super(message);
    this.name = 'CliError';
  }
}

export interface OptionSpec {
  readonly type: 'string' | 'boolean';
  readonly multiple?: boolean;
  readonly short?: string;
}

export type OptionValues = Record<string, string | boolean | string[] | undefined>;

export interface ParsedArgs {
  readonly values: OptionValues;
  readonly positionals: string[];
}

export function parse(argv: readonly string[], options: Readonly<Record<string, OptionSpec>>, maxPositionals: number): ParsedArgs {
  let r;
  try {
    r = parseArgs({ args: [...argv], options: options as Record<string, OptionSpec>, strict: true, allowPositionals: true });
  } catch (e) {
    // ERR_PARSE_ARGS_UNKNOWN_OPTION, ERR_PARSE_ARGS_INVALID_OPTION_VALUE, …
    throw new UsageError((e as Error).message);
  }
  if (r.positionals.length > maxPositionals) throw new UsageError(`unexpected argument ${JSON.stringify(r.positionals[maxPositionals])}`);
  return { values: r.values as OptionValues, positionals: r.positionals };
}

export function str(v: OptionValues, name: string): string | undefined {
  const x = v[name];
  if (x === undefined) return undefined;
  if (typeof x !== 'string') throw new UsageError(`--${name} takes a value`);
  return x;
}

export function requiredStr(v: OptionValues, name: string): string {
  const x = str(v, name);
  if (x === undefined || x === '') throw new UsageError(`--${name} is required`);
  return x;
}

export function list(v: OptionValues, name: string): string[] {
  const x = v[name];
  if (x === undefined) return [];
  const items = Array.isArray(x) ? x : [String(x)];
  // Also accept comma-separated lists: `--admin a,b` as well as `--admin a --admin b`.
  return items.flatMap((s) => s.split(',')).map((s) => s.trim()).filter((s) => s.length > 0);
}

export function flag(v: OptionValues, name: string): boolean {
  return v[name] === true;
}

/** A positive integer node id (1 .. 2^31-1, as in the node config). */
export function parseNodeId(raw: string | undefined, what: string): number {
  if (raw === undefined) throw new UsageError(`${what} is required`);
  if (!/^[1-9][0-9]{0,9}$/.test(raw) || Number(raw) > 2 ** 31 - 1) throw new UsageError(`${what} must be a positive integer node id (got ${JSON.stringify(raw)})`);
  return Number(raw);
}

export function parsePositiveInt(raw: string | undefined, what: string, max: number): number | undefined {
  if (raw === undefined) return undefined;
  if (!/^[0-9]{1,12}$/.test(raw) || Number(raw) < 1 || Number(raw) > max) throw new UsageError(`${what} must be an integer from 1 to ${max} (got ${JSON.stringify(raw)})`);
  return Number(raw);
}

/** `host:port` as the node config and the admin API want it. */
export function parseHostPortArg(raw: string | undefined, what: string): string {
  if (raw === undefined) throw new UsageError(`${what} is required`);
  const m = /^(?:\[[0-9A-Fa-f:.]+\]|[A-Za-z0-9.-]+):(\d{1,5})$/.exec(raw);
  if (!m || Number(m[1]) < 1 || Number(m[1]) > 65535) throw new UsageError(`${what} must be host:port (got ${JSON.stringify(raw)})`);
  return raw;
}
