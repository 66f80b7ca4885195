// The command line of a node's primary: `raftauth --config <file>` (or `raftauth <file>`).
// Loads and validates the configuration (a bad one is refused with the message naming the key and
// exit code 2, before anything is started), then runs the server until SIGTERM/SIGINT, which stop
// it gracefully with exit code 0 (process.ts).
//
// The node itself is passed in (`nodeFactory`), so this module does not depend on src/node's
// implementation and can be driven with a fake node in tests.
import { ConfigError, loadConfig } from './config.ts';
import type { NodeConfig } from './config.ts';
import { startServer } from './process.ts';
import { StorageError } from '../storage/errors.ts';
import type { NodeFactory, ServerHandle, StartOptions } from './process.ts';
import { bootMark } from '../ops/boot-marks.ts';

export const EXIT_CONFIG_ERROR = 2;
export const EXIT_START_FAILED = 1;

export const USAGE = 'usage: raftauth --config <node.yaml>   (or: raftauth <node.yaml>)';

/** The config file named by argv (the arguments after the script), or null if argv is not understood. */
export function configPathFromArgs(argv: readonly string[]): string | null {
  if (argv.length === 1 && !argv[0]!.startsWith('-')) return argv[0]!;
  if (argv.length === 2 && argv[0] === '--config') return argv[1]!;
  const eq = argv.length === 1 ? /^--config=(.+)$/.exec(argv[0]!) : null;
  return eq ? eq[1]! : null;
}

/**
 * Run a node's primary from the command line. Resolves with the running server; on a usage or
 * config error writes the message to stderr and exits (a process that cannot start must say why
 * and stop, not linger).
 */
export async function runCli(argv: readonly string[], nodeFactory: NodeFactory, options: StartOptions = {}, env: NodeJS.ProcessEnv = process.env): Promise<ServerHandle> {
  const file = configPathFromArgs(argv);
  if (file === null) {
    process.stderr.write(`${USAGE}\n`);
    process.exit(EXIT_CONFIG_ERROR);
  }
  let config: NodeConfig;
  try {
    config = loadConfig(file, env);
    bootMark('config loaded');
  } catch (e) {
    if (!(e instanceof ConfigError)) throw e;
    process.stderr.write(`${e.message}\n`);
    process.exit(EXIT_CONFIG_ERROR);
  }
  try {
    return await startServer(config, nodeFactory, { handleSignals: true, ...options });
  } catch (e) {
    // A store held by another process is an operator's situation, not a bug: the message says
    // what to do, and a stack trace would only bury it.
    const why = e instanceof StorageError && e.code === 'LOCKED' ? e.message : ((e as Error)?.stack ?? String(e));
    process.stderr.write(`raftauth node ${config.node.id} failed to start: ${why}\n`);
    process.exit(EXIT_START_FAILED);
  }
}
