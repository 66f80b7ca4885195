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
import { CERTS_USAGE, certsCommand } from './commands/certs.ts';
import { CONNECTION_USAGE, MEMBERS_USAGE, STATUS_USAGE, TRANSFER_USAGE, membersCommand, statusCommand, transferLeaderCommand } from './commands/cluster.ts';
import { START_USAGE, startCommand } from './commands/start.ts';
import { SNAPSHOT_USAGE, snapshotCommand } from './commands/snapshot.ts';
import { RECOVER_USAGE, recoverCommand } from './commands/recover.ts';
import { CLIENTS_USAGE, clientsCommand } from './commands/clients.ts';
import { USERS_USAGE, usersCommand } from './commands/users.ts';
import { KEYS_USAGE, keysCommand } from './commands/keys.ts';
import { AUDIT_USAGE, auditCommand } from './commands/audit.ts';
import { VERSION } from '../version.ts';
import type { CliIo, Command } from './io.ts';

const COMMANDS: Readonly<Record<string, { run: Command; usage: string }>> = {
  start: { run: startCommand, usage: START_USAGE },
  status: { run: statusCommand, usage: `${STATUS_USAGE}\n${CONNECTION_USAGE}` },
  members: { run: membersCommand, usage: `${MEMBERS_USAGE}\n${CONNECTION_USAGE}` },
  'transfer-leader': { run: transferLeaderCommand, usage: `${TRANSFER_USAGE}\n${CONNECTION_USAGE}` },
  certs: { run: certsCommand, usage: CERTS_USAGE },
  snapshot: { run: snapshotCommand, usage: SNAPSHOT_USAGE },
  recover: { run: recoverCommand, usage: RECOVER_USAGE },
  clients: { run: clientsCommand, usage: `${CLIENTS_USAGE}\n${CONNECTION_USAGE}` },
  users: { run: usersCommand, usage: `${USERS_USAGE}\n${CONNECTION_USAGE}` },
  keys: { run: keysCommand, usage: `${KEYS_USAGE}\n${CONNECTION_USAGE}` },
  audit: { run: auditCommand, usage: `${AUDIT_USAGE}\n${CONNECTION_USAGE}` },
};

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
    const topic = name === 'help' && rest[0] !== undefined ? COMMANDS[rest[0]] : undefined;
    io.out(topic ? `${topic.usage}\n` : USAGE);
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
  const cmd = COMMANDS[name];
  if (!cmd) {
    io.err(`raftauth: unknown command ${JSON.stringify(name)}\n${USAGE}`);
    return EXIT_USAGE;
  }
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
