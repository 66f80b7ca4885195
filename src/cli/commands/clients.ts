// `raftauth clients …`: OAuth clients through the admin API (src/ops/admin-oauth.ts). Any node
// serves these routes (its writes go to the leader through Raft), so the CLI asks the first
// reachable admin URL. Also the helpers the users and keys commands share.
import { readFileSync } from 'node:fs';
import { resolve } from 'node:path';
import { clientFromArgs, describeError } from '../admin-client.ts';
import type { AdminClient, AdminMethod } from '../admin-client.ts';
import { CliError, EXIT_OK, UsageError, flag, list, parse, parsePositiveInt, str } from '../args.ts';
import type { OptionSpec, OptionValues } from '../args.ts';
import type { CliIo } from '../io.ts';
import { formatTable } from '../table.ts';
import type { Cell } from '../table.ts';
import { CONNECTION_OPTIONS } from './cluster.ts';

/** Longest --timeout-ms accepted: 10 minutes (as the cluster commands). */
const MAX_TIMEOUT_MS = 600_000;
/** Largest page the admin API returns (admin-oauth.ts MAX_PAGE_SIZE). */
const MAX_PAGE = 1_000;
/** Largest --jwks-file read: 10 keys of a few KiB each (the server refuses more than 10 keys). */
const MAX_JWKS_FILE_BYTES = 64 * 1024;
const DEVICE_CODE_GRANT = 'urn:ietf:params:oauth:grant-type:device_code';

export function connect(v: OptionValues, io: CliIo): AdminClient {
  return clientFromArgs(
    { admin: list(v, 'admin'), tokenFile: str(v, 'token-file'), clusterFile: str(v, 'cluster'), configFile: str(v, 'config'), timeoutMs: parsePositiveInt(str(v, 'timeout-ms'), '--timeout-ms', MAX_TIMEOUT_MS) },
    io.env,
    io.cwd,
  );
}

/** One admin call; a refusal (any non-2xx answer) is a CliError with the API's `{ error, message }`. */
export async function call(c: AdminClient, method: AdminMethod, path: string, body?: unknown): Promise<Record<string, unknown>> {
  const r = await c.onLeader(method, path, body);
  if (r.status < 200 || r.status >= 300) throw new CliError(`${r.url} refused: ${describeError(r)}`);
  const b = r.body;
  if (typeof b !== 'object' || b === null || Array.isArray(b)) throw new CliError(`${r.url}${path}: the answer is not a JSON object`);
  return b as Record<string, unknown>;
}

/** Every value of a repeatable option, as given (no comma splitting: commas are legal in URIs and scopes). */
export function repeated(v: OptionValues, name: string): string[] {
  const x = v[name];
  if (x === undefined) return [];
  return Array.isArray(x) ? x : [String(x)];
}

/** Exactly one positional argument (an id or a username). */
export function onePositional(positionals: readonly string[], what: string): string {
  const p = positionals[0];
  if (p === undefined || p === '') throw new UsageError(`${what} is required`);
  return p;
}

export function printJson(io: CliIo, value: unknown): void {
  io.out(`${JSON.stringify(value, null, 2)}\n`);
}

/** `name: value` lines, aligned. */
export function formatFields(rows: readonly (readonly [string, Cell | readonly string[]])[]): string {
  const w = Math.max(...rows.map(([k]) => k.length)) + 1;
  return rows.map(([k, v]) => `${`${k}:`.padEnd(w)}  ${Array.isArray(v) ? (v.length ? v.join(' ') : '-') : v === null || v === undefined ? '-' : typeof v === 'boolean' ? (v ? 'yes' : 'no') : String(v)}`).join('\n') + '\n';
}

export function isoTime(ms: unknown): string | null {
  return typeof ms === 'number' ? new Date(ms).toISOString() : null;
}

export const PAGE_OPTIONS: Readonly<Record<string, OptionSpec>> = { after: { type: 'string' }, limit: { type: 'string' } };

export function pageQuery(v: OptionValues): string {
  const q = new URLSearchParams();
  const after = str(v, 'after');
  if (after !== undefined) q.set('after', after);
  const limit = parsePositiveInt(str(v, 'limit'), '--limit', MAX_PAGE);
  if (limit !== undefined) q.set('limit', String(limit));
  const s = q.toString();
  return s ? `?${s}` : '';
}

/** Tell where the next page starts (stderr: stdout stays the table or the JSON). */
export function notePage(io: CliIo, next: unknown, command: string): void {
  if (typeof next === 'string') io.err(`more: ${command} --after ${next}\n`);
}

// ---------------------------------------------------------------------------------------------

const CLIENT_FLAGS: Readonly<Record<string, OptionSpec>> = {
  name: { type: 'string' },
  'auth-method': { type: 'string' },
  'redirect-uri': { type: 'string', multiple: true },
  grant: { type: 'string', multiple: true },
  scope: { type: 'string', multiple: true },
  'jwks-file': { type: 'string' },
  'first-party': { type: 'boolean' },
  audience: { type: 'string' },
  'require-mfa': { type: 'boolean' },
};

/** Flags only `update` has: to clear or unset what create would leave out. */
const UPDATE_ONLY_FLAGS: Readonly<Record<string, OptionSpec>> = {
  'no-redirect-uris': { type: 'boolean' },
  'no-scopes': { type: 'boolean' },
  'no-jwks': { type: 'boolean' },
  'not-first-party': { type: 'boolean' },
  'no-audience': { type: 'boolean' },
  'no-require-mfa': { type: 'boolean' },
};

export const CLIENTS_USAGE = `usage:
  raftauth clients create --name NAME [--id ID] [--auth-method M] [--redirect-uri URI]... [--grant G]...
                          [--scope S]... [--jwks-file FILE] [--first-party] [--audience AUD] [--require-mfa]
                          [--json]
      M: client_secret_basic (default), client_secret_post, private_key_jwt (needs --jwks-file), none
      G: authorization_code (default), refresh_token, client_credentials, device_code
      A client with a secret method gets a secret: it is printed once and never shown again.
      --require-mfa: every sign-in for this client needs a second factor (docs/mfa.md).
  raftauth clients list [--after ID] [--limit N] [--json]
  raftauth clients get ID [--json]
  raftauth clients update ID [same flags as create but --id] [--no-redirect-uris] [--no-scopes]
                          [--no-jwks] [--not-first-party] [--no-audience] [--no-require-mfa] [--json]
      a repeated flag replaces the whole list (--redirect-uri, --grant, --scope)
  raftauth clients rotate-secret ID [--json]   a new secret, printed once; the old one stops working
  raftauth clients delete ID
  (each takes the connection options)`;

function grant(g: string): string {
  return g === 'device_code' ? DEVICE_CODE_GRANT : g;
}

function readJwks(file: string, io: CliIo): unknown {
  let text: string;
  try {
    text = readFileSync(resolve(io.cwd, file), 'utf8');
  } catch (e) {
    throw new CliError(`cannot read --jwks-file: ${(e as Error).message}`);
  }
  if (text.length > MAX_JWKS_FILE_BYTES) throw new CliError(`--jwks-file is larger than ${MAX_JWKS_FILE_BYTES} bytes`);
  let jwks: unknown;
  try {
    jwks = JSON.parse(text);
  } catch (e) {
    throw new CliError(`--jwks-file is not JSON: ${(e as Error).message}`);
  }
  // A single JWK is accepted as a one-key set (RFC 7517 §5: a JWK Set is { keys: [...] }).
  if (typeof jwks === 'object' && jwks !== null && !Array.isArray(jwks) && !('keys' in jwks) && 'kty' in jwks) return { keys: [jwks] };
  return jwks;
}

/** The request body from the flags: only what was given (update sends a partial change). */
function clientBody(v: OptionValues, io: CliIo, update: boolean): Record<string, unknown> {
  const b: Record<string, unknown> = {};
  const name = str(v, 'name');
  if (name !== undefined) b.client_name = name;
  const method = str(v, 'auth-method');
  if (method !== undefined) b.token_endpoint_auth_method = method;
  const uris = repeated(v, 'redirect-uri');
  if (uris.length) b.redirect_uris = uris;
  const grants = repeated(v, 'grant').map(grant);
  if (grants.length) b.grant_types = grants;
  // RFC 6749 §3.3: scopes are space-delimited; `--scope "openid profile"` is two scopes.
  const scopes = repeated(v, 'scope').flatMap((s) => s.split(/\s+/)).filter((s) => s.length > 0);
  if (scopes.length) b.scopes = scopes;
  const jwksFile = str(v, 'jwks-file');
  if (jwksFile !== undefined) b.jwks = readJwks(jwksFile, io);
  if (flag(v, 'first-party')) b.first_party = true;
  const audience = str(v, 'audience');
  if (audience !== undefined) b.audience = audience;
  if (flag(v, 'require-mfa')) b.require_mfa = true;
  if (update) {
    const both = (a: string, c: string) => {
      if (v[a] !== undefined && flag(v, c)) throw new UsageError(`--${a} and --${c} contradict each other`);
    };
    both('redirect-uri', 'no-redirect-uris');
    both('scope', 'no-scopes');
    both('jwks-file', 'no-jwks');
    both('first-party', 'not-first-party');
    both('audience', 'no-audience');
    both('require-mfa', 'no-require-mfa');
    if (flag(v, 'no-redirect-uris')) b.redirect_uris = [];
    if (flag(v, 'no-scopes')) b.scopes = [];
    if (flag(v, 'no-jwks')) b.jwks = null;
    if (flag(v, 'not-first-party')) b.first_party = false;
    if (flag(v, 'no-audience')) b.audience = null;
    if (flag(v, 'no-require-mfa')) b.require_mfa = false;
  }
  return b;
}

interface ClientView {
  readonly client_id: string;
  readonly client_name: string;
  readonly token_endpoint_auth_method: string;
  readonly redirect_uris: readonly string[];
  readonly grant_types: readonly string[];
  readonly scopes: readonly string[];
  readonly jwks: { keys: readonly unknown[] } | null;
  readonly first_party: boolean;
  readonly audience: string | null;
  readonly require_mfa?: boolean;
  readonly created_at: number;
  readonly updated_at: number;
}

function formatClient(c: ClientView): string {
  return formatFields([
    ['client_id', c.client_id],
    ['name', c.client_name],
    ['auth method', c.token_endpoint_auth_method],
    ['redirect URIs', c.redirect_uris],
    ['grant types', c.grant_types],
    ['scopes', c.scopes],
    ['jwks', c.jwks ? `${c.jwks.keys.length} key(s)` : null],
    ['first party', c.first_party],
    ['audience', c.audience],
    ['require MFA', c.require_mfa ?? false],
    ['created', isoTime(c.created_at)],
    ['updated', isoTime(c.updated_at)],
  ]);
}

/** Print a client (and a secret, once, with the warning on stderr so it never mixes into --json output). */
function printClient(io: CliIo, v: OptionValues, answer: Record<string, unknown>): void {
  const secret = typeof answer.client_secret === 'string' ? answer.client_secret : null;
  if (flag(v, 'json')) printJson(io, answer);
  else io.out(formatClient(answer.client as ClientView) + (secret !== null ? formatFields([['client_secret', secret]]) : ''));
  if (secret !== null) io.err('note: the client secret is shown only this once; store it now (raftauth clients rotate-secret makes a new one)\n');
}

export async function clientsCommand(argv: readonly string[], io: CliIo): Promise<number> {
  const sub = argv[0];
  const rest = argv.slice(1);
  const json = { json: { type: 'boolean' } } as const;
  switch (sub) {
    case 'create': {
      const { values } = parse(rest, { ...CONNECTION_OPTIONS, ...CLIENT_FLAGS, id: { type: 'string' }, ...json }, 0);
      if (str(values, 'name') === undefined) throw new UsageError('--name is required');
      const body = clientBody(values, io, false);
      const id = str(values, 'id');
      if (id !== undefined) body.client_id = id;
      printClient(io, values, await call(connect(values, io), 'POST', '/admin/v1/clients', body));
      return EXIT_OK;
    }
    case 'list': {
      const { values } = parse(rest, { ...CONNECTION_OPTIONS, ...PAGE_OPTIONS, ...json }, 0);
      const r = await call(connect(values, io), 'GET', `/admin/v1/clients${pageQuery(values)}`);
      const clients = (r.clients ?? []) as ClientView[];
      if (flag(values, 'json')) printJson(io, r);
      else
        io.out(
          formatTable(
            ['CLIENT_ID', 'NAME', 'AUTH_METHOD', 'GRANTS', 'REDIRECT_URIS', 'FIRST_PARTY'],
            clients.map((c) => [c.client_id, c.client_name, c.token_endpoint_auth_method, c.grant_types.map((g) => (g === DEVICE_CODE_GRANT ? 'device_code' : g)).join(','), c.redirect_uris.length, c.first_party]),
          ),
        );
      notePage(io, r.next, 'raftauth clients list');
      return EXIT_OK;
    }
    case 'get': {
      const { values, positionals } = parse(rest, { ...CONNECTION_OPTIONS, ...json }, 1);
      const id = onePositional(positionals, 'the client id');
      const r = await call(connect(values, io), 'GET', `/admin/v1/clients/${encodeURIComponent(id)}`);
      if (flag(values, 'json')) printJson(io, r);
      else io.out(formatClient(r.client as ClientView));
      return EXIT_OK;
    }
    case 'update': {
      const { values, positionals } = parse(rest, { ...CONNECTION_OPTIONS, ...CLIENT_FLAGS, ...UPDATE_ONLY_FLAGS, ...json }, 1);
      const id = onePositional(positionals, 'the client id');
      const body = clientBody(values, io, true);
      if (Object.keys(body).length === 0) throw new UsageError('nothing to change: give at least one flag');
      printClient(io, values, await call(connect(values, io), 'PATCH', `/admin/v1/clients/${encodeURIComponent(id)}`, body));
      return EXIT_OK;
    }
    case 'rotate-secret': {
      const { values, positionals } = parse(rest, { ...CONNECTION_OPTIONS, ...json }, 1);
      const id = onePositional(positionals, 'the client id');
      printClient(io, values, await call(connect(values, io), 'POST', `/admin/v1/clients/${encodeURIComponent(id)}/secret`));
      return EXIT_OK;
    }
    case 'delete': {
      const { values, positionals } = parse(rest, { ...CONNECTION_OPTIONS }, 1);
      const id = onePositional(positionals, 'the client id');
      await call(connect(values, io), 'DELETE', `/admin/v1/clients/${encodeURIComponent(id)}`);
      io.out(`client ${id} deleted\n`);
      return EXIT_OK;
    }
    case undefined:
      throw new UsageError('clients needs a subcommand: create, list, get, update, rotate-secret or delete');
    default:
      throw new UsageError(`unknown clients subcommand ${JSON.stringify(sub)} (expected create, list, get, update, rotate-secret or delete)`);
  }
}
