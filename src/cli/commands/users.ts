// `raftauth users …`: users through the admin API (src/ops/admin-oauth.ts).
//
// A password never comes from the command line: argv lands in shell history and is visible to
// every local user in ps(1). It is read from a file (--password-file) or from standard input
// (--password-stdin), without its final line break.
import { openSync, readSync, closeSync, fstatSync } from 'node:fs';
import { resolve } from 'node:path';
import { CliError, EXIT_OK, UsageError, flag, parse, str } from '../args.ts';
import type { OptionValues } from '../args.ts';
import type { CliIo } from '../io.ts';
import { formatTable } from '../table.ts';
import { CONNECTION_OPTIONS } from './cluster.ts';
import { PAGE_OPTIONS, call, connect, formatFields, isoTime, notePage, onePositional, pageQuery, printJson } from './clients.ts';

/**
 * Most bytes read for a password: 1024 characters (the server's limit, NIST SP 800-63B asks for at
 * least 64) of up to 4 UTF-8 bytes, and a line break. More is not a password file.
 */
export const MAX_PASSWORD_INPUT_BYTES = 1024 * 4 + 2;

/** Standard input, where a test can provide its own (CliIo carries no input stream). */
export interface StdinIo {
  readonly stdin?: AsyncIterable<Uint8Array | string>;
}

/** Drop one final line break (what `echo` or an editor adds); every other character is the password's. */
function withoutFinalNewline(s: string): string {
  return s.endsWith('\r\n') ? s.slice(0, -2) : s.endsWith('\n') ? s.slice(0, -1) : s;
}

function readPasswordFile(file: string): string {
  let fd: number;
  try {
    fd = openSync(file, 'r');
  } catch (e) {
    throw new CliError(`cannot read --password-file: ${(e as NodeJS.ErrnoException).code ?? (e as Error).message}`);
  }
  try {
    if (!fstatSync(fd).isFile()) throw new CliError('--password-file is not a regular file');
    const buf = Buffer.alloc(MAX_PASSWORD_INPUT_BYTES + 1);
    let n = 0;
    for (;;) {
      const r = readSync(fd, buf, n, buf.length - n, null);
      if (r === 0) break;
      n += r;
      if (n > MAX_PASSWORD_INPUT_BYTES) throw new CliError(`--password-file is larger than ${MAX_PASSWORD_INPUT_BYTES} bytes; it should hold the password alone`);
    }
    const text = buf.toString('utf8', 0, n);
    buf.fill(0);
    return text;
  } finally {
    closeSync(fd);
  }
}

async function readStdin(io: CliIo): Promise<string> {
  const chunks: Buffer[] = [];
  let n = 0;
  for await (const c of (io as CliIo & StdinIo).stdin ?? process.stdin) {
    const b = typeof c === 'string' ? Buffer.from(c, 'utf8') : Buffer.from(c);
    n += b.length;
    if (n > MAX_PASSWORD_INPUT_BYTES) throw new CliError(`standard input is larger than ${MAX_PASSWORD_INPUT_BYTES} bytes; it should hold the password alone`);
    chunks.push(b);
  }
  return Buffer.concat(chunks).toString('utf8');
}

/** The password from --password-file or --password-stdin (exactly one of them). */
async function password(v: OptionValues, io: CliIo): Promise<string> {
  const file = str(v, 'password-file');
  const stdin = flag(v, 'password-stdin');
  if (file !== undefined && stdin) throw new UsageError('give the password once: --password-file FILE or --password-stdin');
  if (file === undefined && !stdin) throw new UsageError('the password is read from --password-file FILE or --password-stdin (never from the command line)');
  const pw = withoutFinalNewline(file !== undefined ? readPasswordFile(resolve(io.cwd, file)) : await readStdin(io));
  if (pw.length === 0) throw new CliError(`the password ${file !== undefined ? 'file' : 'input'} is empty`);
  return pw;
}

const PASSWORD_OPTIONS = { 'password-file': { type: 'string' }, 'password-stdin': { type: 'boolean' } } as const;

export const USERS_USAGE = `usage:
  raftauth users create USERNAME (--password-file FILE | --password-stdin) [--name NAME] [--email EMAIL]
                        [--email-verified] [--json]
      passwords: 8 to 1024 characters (NIST SP 800-63B); never given on the command line
  raftauth users list [--after USERNAME] [--limit N] [--json]
  raftauth users get USERNAME [--json]
  raftauth users passwd USERNAME (--password-file FILE | --password-stdin)
  raftauth users disable USERNAME      the user can no longer log in
  raftauth users enable USERNAME
  raftauth users delete USERNAME
  raftauth users factors USERNAME [--json]    second factors, MFA policy and lockout state
  raftauth users reset-factors USERNAME       remove every second factor (lost device); the user
                                              enrolls again at the next sign-in that needs MFA
  raftauth users unlock USERNAME              clear failed-attempt counters and the lockout
  raftauth users require-mfa USERNAME (--on | --off)
                                              require a second factor for every sign-in of this user
  (each takes the connection options)`;

interface UserView {
  readonly sub: string;
  readonly username: string;
  readonly name: string | null;
  readonly email: string | null;
  readonly email_verified: boolean;
  readonly disabled: boolean;
  readonly created_at: number;
  readonly updated_at: number;
}

function formatUser(u: UserView): string {
  return formatFields([
    ['username', u.username],
    ['sub', u.sub],
    ['name', u.name],
    ['email', u.email],
    ['email verified', u.email_verified],
    ['disabled', u.disabled],
    ['created', isoTime(u.created_at)],
    ['updated', isoTime(u.updated_at)],
  ]);
}

const userPath = (name: string, tail = ''): string => `/admin/v1/users/${encodeURIComponent(name)}${tail}`;

interface FactorsAnswer {
  readonly username: string;
  readonly sub: string;
  readonly required: boolean;
  readonly totp: { readonly confirmed: boolean; readonly createdAt: number } | null;
  readonly webauthn: readonly { readonly id: string; readonly name: string; readonly createdAt: number; readonly lastUsedAt: number | null; readonly discoverable: boolean }[];
  readonly recovery: { readonly remaining: number };
  readonly lock: { readonly failures: number; readonly lockedUntil: number | null; readonly backoffUntil: number | null };
}

function formatFactors(f: FactorsAnswer): string {
  const totp = f.totp === null ? null : f.totp.confirmed ? `yes (since ${isoTime(f.totp.createdAt)})` : 'enrollment not finished';
  const head = formatFields([
    ['username', f.username],
    ['MFA required', f.required],
    ['TOTP', totp ?? 'no'],
    ['WebAuthn keys', f.webauthn.length],
    ['recovery codes left', f.recovery.remaining],
    ['failed attempts', f.lock.failures],
    ['locked until', isoTime(f.lock.lockedUntil)],
    ['backoff until', isoTime(f.lock.backoffUntil)],
  ]);
  if (f.webauthn.length === 0) return head;
  return `${head}\n${formatTable(['KEY NAME', 'CREDENTIAL ID', 'PASSKEY', 'CREATED', 'LAST USED'], f.webauthn.map((c) => [c.name, c.id, c.discoverable, isoTime(c.createdAt), isoTime(c.lastUsedAt)]))}`;
}

export async function usersCommand(argv: readonly string[], io: CliIo): Promise<number> {
  const sub = argv[0];
  const rest = argv.slice(1);
  const json = { json: { type: 'boolean' } } as const;
  switch (sub) {
    case 'create': {
      const { values, positionals } = parse(rest, { ...CONNECTION_OPTIONS, ...PASSWORD_OPTIONS, name: { type: 'string' }, email: { type: 'string' }, 'email-verified': { type: 'boolean' }, ...json }, 1);
      const username = onePositional(positionals, 'the username');
      if (flag(values, 'email-verified') && str(values, 'email') === undefined) throw new UsageError('--email-verified needs --email');
      const c = connect(values, io);
      const body: Record<string, unknown> = { username, password: await password(values, io) };
      const name = str(values, 'name');
      if (name !== undefined) body.name = name;
      const email = str(values, 'email');
      if (email !== undefined) body.email = email;
      if (flag(values, 'email-verified')) body.email_verified = true;
      const r = await call(c, 'POST', '/admin/v1/users', body);
      if (flag(values, 'json')) printJson(io, r);
      else io.out(`user ${String(r.username)} created (sub ${String(r.sub)})\n`);
      return EXIT_OK;
    }
    case 'list': {
      const { values } = parse(rest, { ...CONNECTION_OPTIONS, ...PAGE_OPTIONS, ...json }, 0);
      const r = await call(connect(values, io), 'GET', `/admin/v1/users${pageQuery(values)}`);
      const users = (r.users ?? []) as UserView[];
      if (flag(values, 'json')) printJson(io, r);
      else io.out(formatTable(['USERNAME', 'SUB', 'NAME', 'EMAIL', 'DISABLED'], users.map((u) => [u.username, u.sub, u.name, u.email, u.disabled])));
      notePage(io, r.next, 'raftauth users list');
      return EXIT_OK;
    }
    case 'get': {
      const { values, positionals } = parse(rest, { ...CONNECTION_OPTIONS, ...json }, 1);
      const username = onePositional(positionals, 'the username');
      const r = await call(connect(values, io), 'GET', userPath(username));
      if (flag(values, 'json')) printJson(io, r);
      else io.out(formatUser(r.user as UserView));
      return EXIT_OK;
    }
    case 'passwd': {
      const { values, positionals } = parse(rest, { ...CONNECTION_OPTIONS, ...PASSWORD_OPTIONS }, 1);
      const username = onePositional(positionals, 'the username');
      const c = connect(values, io);
      await call(c, 'POST', userPath(username, '/password'), { password: await password(values, io) });
      io.out(`password of ${username} changed\n`);
      return EXIT_OK;
    }
    case 'disable':
    case 'enable': {
      const { values, positionals } = parse(rest, { ...CONNECTION_OPTIONS }, 1);
      const username = onePositional(positionals, 'the username');
      await call(connect(values, io), 'POST', userPath(username, `/${sub}`));
      io.out(`user ${username} ${sub}d\n`);
      return EXIT_OK;
    }
    case 'delete': {
      const { values, positionals } = parse(rest, { ...CONNECTION_OPTIONS }, 1);
      const username = onePositional(positionals, 'the username');
      await call(connect(values, io), 'DELETE', userPath(username));
      io.out(`user ${username} deleted\n`);
      return EXIT_OK;
    }
    case 'factors': {
      const { values, positionals } = parse(rest, { ...CONNECTION_OPTIONS, ...json }, 1);
      const username = onePositional(positionals, 'the username');
      const r = await call(connect(values, io), 'GET', userPath(username, '/factors'));
      if (flag(values, 'json')) printJson(io, r);
      else io.out(formatFactors(r as unknown as FactorsAnswer));
      return EXIT_OK;
    }
    case 'reset-factors': {
      const { values, positionals } = parse(rest, { ...CONNECTION_OPTIONS }, 1);
      const username = onePositional(positionals, 'the username');
      await call(connect(values, io), 'POST', userPath(username, '/factors/reset'));
      io.out(`second factors of ${username} removed\n`);
      return EXIT_OK;
    }
    case 'unlock': {
      const { values, positionals } = parse(rest, { ...CONNECTION_OPTIONS }, 1);
      const username = onePositional(positionals, 'the username');
      await call(connect(values, io), 'POST', userPath(username, '/unlock'));
      io.out(`user ${username} unlocked\n`);
      return EXIT_OK;
    }
    case 'require-mfa': {
      const { values, positionals } = parse(rest, { ...CONNECTION_OPTIONS, on: { type: 'boolean' }, off: { type: 'boolean' } }, 1);
      const username = onePositional(positionals, 'the username');
      const on = flag(values, 'on');
      if (on === flag(values, 'off')) throw new UsageError('give exactly one of --on or --off');
      await call(connect(values, io), 'POST', userPath(username, '/mfa-required'), { required: on });
      io.out(`MFA ${on ? 'required' : 'no longer required'} for ${username}\n`);
      return EXIT_OK;
    }
    case undefined:
      throw new UsageError('users needs a subcommand: create, list, get, passwd, disable, enable, delete, factors, reset-factors, unlock or require-mfa');
    default:
      throw new UsageError(
        `unknown users subcommand ${JSON.stringify(sub)} (expected create, list, get, passwd, disable, enable, delete, factors, reset-factors, unlock or require-mfa)`,
      );
  }
}
