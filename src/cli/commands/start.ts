// `raftauth start --config FILE`: run a node in the foreground; this process becomes the node's
// primary. The node's own command line (src/server/cli.ts runCli with src/server/start-node.ts
// startNode) does the work: config errors exit 2, a failed start exits 1, SIGTERM/SIGINT stop
// gracefully and exit 0.
import { UsageError } from '../args.ts';
import type { CliIo } from '../io.ts';
import { bootMark } from '../../ops/boot-marks.ts';
import type { NodeFactory } from '../../server/process.ts';

export const START_USAGE = `usage: raftauth start --config FILE
  Runs one node (configuration: see src/server/config.ts) until SIGTERM or SIGINT.`;

/** The CLI's own variables, which are not node config overrides. */
export const CLI_ENV_VARS = ['RAFTAUTH_ADMIN', 'RAFTAUTH_ADMIN_TOKEN'] as const;

/**
 * The environment a node should see: without the CLI's variables. RAFTAUTH_ADMIN_TOKEN starts with
 * the `admin` section's override prefix, and the config loader refuses an override that names no
 * key, so an operator who exported it for `raftauth status` could not start a node in that shell.
 */
export function nodeEnv(env: NodeJS.ProcessEnv): NodeJS.ProcessEnv {
  const out = { ...env };
  for (const k of CLI_ENV_VARS) delete out[k];
  return out;
}

/**
 * The node's modules (raft, storage, transport, gRPC, the LevelDB addon) are loaded when
 * startServer builds the node, which is after it has forked the HTTP workers: the workers load
 * their modules while this process loads the node's (docs/operations.md, "Boot time").
 */
const startNodeAfterFork: NodeFactory = async (config, logger) => {
  const { startNode } = await import('../../server/start-node.ts');
  bootMark('node modules loaded');
  return startNode(config, logger);
};

export async function startCommand(argv: readonly string[], _io: CliIo): Promise<null> {
  // Validate the shape here so `raftauth start` with a typo gets the CLI's usage, not the node's.
  const ok = (argv.length === 2 && argv[0] === '--config') || (argv.length === 1 && /^--config=.+/.test(argv[0]!));
  if (!ok) throw new UsageError('start takes --config FILE');
  // Loaded only for `start`: the other commands need none of the node's code.
  const { runCli } = await import('../../server/cli.ts');
  bootMark('start path loaded');
  await runCli(argv, startNodeAfterFork, {}, nodeEnv(process.env));
  return null;
}
