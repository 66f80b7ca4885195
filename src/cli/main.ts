// The `raftauth` command line: `raftauth <command> …`. Exit codes: 0 ok, 1 the command failed,
// 2 the command line is wrong (the usage is printed).
//
// The program's entry module (src/main.ts, built to dist/main.js: package.json "bin", the single
// binary) runs it with cliArgs(argv).
//
// Commands: start, status, members list|add|promote|remove, transfer-leader, certs init|issue,
// snapshot save|restore, recover --force-new-cluster, clients …, users …, keys …, audit …,
// version (also --version).
import { CliError, EXIT_FAILURE, EXIT_OK, EXIT_USAGE, UsageError } from './args.ts';
import { VERSION } from '../version.ts';
import type { CliIo, Command } from './io.ts';

interface CommandEntry {
  readonly run: Command;
  readonly usage: string;
}

/**
 * Each command's module is loaded only when that command (or its help) is asked for. A node's
 * primary is `raftauth start`, and loading every command with it (the admin client, certificate
 * issuing with @peculiar/x509, snapshot and recovery tools) cost a node about half a second of its
 * boot (docs/operations.md, "Boot time").
 */
const COMMANDS: ReadonlyMap<string, () => Promise<CommandEntry>> = new Map<string, () => Promise<CommandEntry>>([
  ['start', async () => import('./commands/start.ts').then((m) => ({ run: m.startCommand, usage: m.START_USAGE }))],
  ['status', async () => import('./commands/cluster.ts').then((m) => ({ run: m.statusCommand, usage: `${m.STATUS_USAGE}\n${m.CONNECTION_USAGE}` }))],
  ['members', async () => import('./commands/cluster.ts').then((m) => ({ run: m.membersCommand, usage: `${m.MEMBERS_USAGE}\n${m.CONNECTION_USAGE}` }))],
  ['transfer-leader', async () => import('./commands/cluster.ts').then((m) => ({ run: m.transferLeaderCommand, usage: `${m.TRANSFER_USAGE}\n${m.CONNECTION_USAGE}` }))],
  ['certs', async () => import('./commands/certs.ts').then((m) => ({ run: m.certsCommand, usage: m.CERTS_USAGE }))],
  ['snapshot', async () => import('./commands/snapshot.ts').then((m) => ({ run: m.snapshotCommand, usage: m.SNAPSHOT_USAGE }))],
  ['recover', async () => import('./commands/recover.ts').then((m) => ({ run: m.recoverCommand, usage: m.RECOVER_USAGE }))],
  ['clients', async () => Promise.all([import('./commands/clients.ts'), import('./commands/cluster.ts')]).then(([m, c]) => ({ run: m.clientsCommand, usage: `${m.CLIENTS_USAGE}\n${c.CONNECTION_USAGE}` }))],
  ['users', async () => Promise.all([import('./commands/users.ts'), import('./commands/cluster.ts')]).then(([m, c]) => ({ run: m.usersCommand, usage: `${m.USERS_USAGE}\n${c.CONNECTION_USAGE}` }))],
  ['keys', async () => Promise.all([import('./commands/keys.ts'), import('./commands/cluster.ts')]).then(([m, c]) => ({ run: m.keysCommand, usage: `${m.KEYS_USAGE}\n${c.CONNECTION_USAGE}` }))],
  ['audit', async () => Promise.all([import('./commands/audit.ts'), import('./commands/cluster.ts')]).then(([m, c]) => ({ run: m.auditCommand, usage: `${m.AUDIT_USAGE}\n${c.CONNECTION_USAGE}` }))],
]);

export const USAGE = `usage: raftauth <command> [options]
commands:
  start --config FILE                     run a node in the foreground
  status [--json]                         members, roles, term, commit/applied index, lag
  members list|add|promote|remove         membership (changes go to the leader)
  transfer-leader N                       hand leadership to node N
  certs init|issue                        cluster CA and node certificates
  snapshot save|restore                   back up a running cluster; restore a new cluster from it
  recover --force-new-cluster             majority lost for good: this node becomes a one-node cluster
  clients create|list|get|update|...      OAuth clients (rotate-secret, delete)
  users create|list|get|passwd|...        users (disable, enable, delete); passwords from a file or stdin
  keys list|rotate|rewrap                 signing and data keys; keys generate-master: a master key file
  audit query|export|verify               the audit log: search, export as JSON Lines, verify the chain on every node
  version, --version                      the version of raftauth (package.json)
  help [command]                          this text, or a command's options
`;

/** Run one CLI invocation. Resolves with the exit code, or null when the process keeps running (start). */
export async function runRaftauth(argv: readonly string[], io: CliIo): Promise<number | null> {
  const [name, ...rest] = argv;
  if (name === undefined || name === 'help' || name === '--help' || name === '-h') {
    const load = name === 'help' && rest[0] !== undefined ? COMMANDS.get(rest[0]) : undefined;
    io.out(load ? `${(await load()).usage}\n` : USAGE);
    return name === undefined ? EXIT_USAGE : EXIT_OK;
  }
  if (name === 'version' || name === '--version') {
    if (rest.length > 0) {
      io.err(`raftauth ${name}: takes no arguments (got ${JSON.stringify(rest[0])})\n`);
      return EXIT_USAGE;
    }
    io.out(`raftauth ${VERSION}\n`);
    return EXIT_OK;
  }
  const load = COMMANDS.get(name);
  if (!load) {
    io.err(`raftauth: unknown command ${JSON.stringify(name)}\n${USAGE}`);
    return EXIT_USAGE;
  }
  const cmd = await load();
  if (rest.includes('--help') || rest.includes('-h')) {
    io.out(`${cmd.usage}\n`);
    return EXIT_OK;
  }
  try {
    return await cmd.run(rest, io);
  } catch (e) {
    if (e instanceof UsageError) {
      io.err(`raftauth ${name}: ${e.message}\n${cmd.usage}\n`);
      return EXIT_USAGE;
    }
    if (e instanceof CliError) {
      io.err(`raftauth ${name}: ${e.message}\n`);
      return EXIT_FAILURE;
    }
    io.err(`raftauth ${name}: unexpected error: ${(e as Error)?.stack ?? String(e)}\n`);
    return EXIT_FAILURE;
  }
}

/**
 * The arguments for runRaftauth from the program's: a bare `--config FILE` (the spelling of a node
 * started by a service manager) is `start --config FILE`.
 */
export function cliArgs(argv: readonly string[]): string[] {
  return argv[0] === '--config' || argv[0]?.startsWith('--config=') === true ? ['start', ...argv] : [...argv];
}
