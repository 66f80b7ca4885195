// The command line of the single binary: every `raftauth` command (src/cli/main.ts). A node runs
// with `raftauth start --config node.yaml`; `raftauth --config node.yaml` (the node executable's
// own spelling, src/server/cli.ts) means the same.
import { runRaftauth } from '../cli/main.ts';
import { processIo } from '../cli/io.ts';

/** The arguments for src/cli/main.ts: a bare `--config FILE` is `start --config FILE`. */
export function cliArgs(argv: readonly string[]): string[] {
  return argv[0] === '--config' || argv[0]?.startsWith('--config=') === true ? ['start', ...argv] : [...argv];
}

/** Run the binary's command line with argv (the arguments after the executable). */
export async function runBinaryCli(argv: readonly string[]): Promise<void> {
  const code = await runRaftauth(cliArgs(argv), processIo());
  // null: `start` keeps the process running until the server exits on a signal.
  if (code !== null) process.exitCode = code;
}
