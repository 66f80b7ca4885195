// `raftauth keys …`: the signing keys and data keys through the admin API (src/ops/admin-oauth.ts),
// and a fresh master key file for crypto.masterKeyFile.
//
// rotate and rewrap are proposed by the leader (the CLI follows 409 NOT_LEADER to it); list is
// served by any node. generate-master needs no cluster.
import { closeSync, openSync, writeSync } from 'node:fs';
import { resolve } from 'node:path';
import { MasterKeyRing } from '../../crypto/seal.ts';
import { CliError, EXIT_OK, UsageError, flag, parse, str } from '../args.ts';
import type { CliIo } from '../io.ts';
import { formatTable } from '../table.ts';
import { CONNECTION_OPTIONS } from './cluster.ts';
import { call, connect, isoTime, printJson } from './clients.ts';

export const KEYS_USAGE = `usage:
  raftauth keys list [--json]      signing keys (next, active, retired) and data keys, without secrets
  raftauth keys rotate [--json]    the next signing key becomes active now; a new next key is made
  raftauth keys rewrap [--json]    rewrap every data key under the current master key (the first
                                   in the node's key file); see docs/operations.md for the procedure
  (list, rotate and rewrap take the connection options)
  raftauth keys generate-master [--out FILE]
                                   print a new master key file (for crypto.masterKeyFile), or write
                                   it to FILE with mode 0600 (an existing FILE is never overwritten)`;

interface KeysAnswer {
  readonly signingKeys: { version: number; keys: { kid: string; alg: string; state: string; createdAt: number; activatedAt: number | null; publishUntil: number | null }[] } | null;
  readonly dataKeys: { version: number; activeId: string; keys: { id: string; masterKid: string; createdAt: number }[] } | null;
  readonly masterKeys: { current: string; all: string[] };
}

function formatKeys(k: KeysAnswer): string {
  let out = '';
  if (k.signingKeys) {
    out += `signing keys (ring version ${k.signingKeys.version}):\n`;
    out += formatTable(
      ['KID', 'ALG', 'STATE', 'CREATED', 'ACTIVATED', 'PUBLISHED_UNTIL'],
      k.signingKeys.keys.map((s) => [s.kid, s.alg, s.state, isoTime(s.createdAt), isoTime(s.activatedAt), isoTime(s.publishUntil)]),
    );
  } else {
    out += 'signing keys: none yet (the leader creates them)\n';
  }
  if (k.dataKeys) {
    out += `data keys (ring version ${k.dataKeys.version}):\n`;
    out += formatTable(
      ['ID', 'ACTIVE', 'WRAPPED_BY', 'CREATED'],
      k.dataKeys.keys.map((d) => [d.id, d.id === k.dataKeys!.activeId, d.masterKid === k.masterKeys.current ? `${d.masterKid} (current)` : d.masterKid, isoTime(d.createdAt)]),
    );
  } else {
    out += 'data keys: none yet (the leader creates them)\n';
  }
  out += `master keys of the answering node: ${k.masterKeys.all.map((m) => (m === k.masterKeys.current ? `${m} (current)` : m)).join(', ')}\n`;
  return out;
}

/** Create FILE holding `text`, readable by its owner only; never replace an existing file (it may be the only copy of a key). */
function writeSecretFile(file: string, text: string): void {
  let fd: number;
  try {
    fd = openSync(file, 'wx', 0o600);
  } catch (e) {
    const code = (e as NodeJS.ErrnoException).code;
    throw new CliError(code === 'EEXIST' ? `${file} exists; not overwriting a key file (remove it first, or choose another name)` : `cannot create ${file}: ${code ?? (e as Error).message}`);
  }
  try {
    writeSync(fd, text);
  } finally {
    closeSync(fd);
  }
}

export async function keysCommand(argv: readonly string[], io: CliIo): Promise<number> {
  const sub = argv[0];
  const rest = argv.slice(1);
  const json = { json: { type: 'boolean' } } as const;
  switch (sub) {
    case 'list': {
      const { values } = parse(rest, { ...CONNECTION_OPTIONS, ...json }, 0);
      const r = await call(connect(values, io), 'GET', '/admin/v1/keys');
      if (flag(values, 'json')) printJson(io, r);
      else io.out(formatKeys(r as unknown as KeysAnswer));
      return EXIT_OK;
    }
    case 'rotate': {
      const { values } = parse(rest, { ...CONNECTION_OPTIONS, ...json }, 0);
      const r = await call(connect(values, io), 'POST', '/admin/v1/keys/rotate');
      if (flag(values, 'json')) printJson(io, r);
      else io.out(`signing keys rotated: ${String(r.active)} is active, ${String(r.next)} is next (ring version ${String(r.version)})\n`);
      return EXIT_OK;
    }
    case 'rewrap': {
      const { values } = parse(rest, { ...CONNECTION_OPTIONS, ...json }, 0);
      const r = await call(connect(values, io), 'POST', '/admin/v1/keys/rewrap');
      if (flag(values, 'json')) printJson(io, r);
      else if (r.rewrapped === 0) io.out(`every data key is already wrapped by master key ${String(r.masterKid)}; nothing to do\n`);
      else io.out(`${String(r.rewrapped)} data key(s) rewrapped under master key ${String(r.masterKid)} (ring version ${String(r.version)})\n`);
      return EXIT_OK;
    }
    case 'generate-master': {
      const { values } = parse(rest, { out: { type: 'string' } }, 0);
      const out = str(values, 'out');
      if (out === '') throw new UsageError('--out needs a file name');
      const text = `# raftauth master key (crypto.masterKeyFile): the first key is current, later ones are old keys kept for a rewrap\n${MasterKeyRing.generateText()}`;
      if (out === undefined) {
        io.out(text);
      } else {
        const file = resolve(io.cwd, out);
        writeSecretFile(file, text);
        io.out(`master key written to ${file} (mode 0600)\n`);
      }
      return EXIT_OK;
    }
    case undefined:
      throw new UsageError('keys needs a subcommand: list, rotate, rewrap or generate-master');
    default:
      throw new UsageError(`unknown keys subcommand ${JSON.stringify(sub)} (expected list, rotate, rewrap or generate-master)`);
  }
}
