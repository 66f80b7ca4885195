// What a CLI command may touch: its output streams, environment and working directory. Passed in,
// so tests run commands in-process and read what they printed.
export interface CliIo {
  out(text: string): void;
  err(text: string): void;
  readonly env: NodeJS.ProcessEnv;
  readonly cwd: string;
}

/**
 * A command: returns its exit code, or null when it keeps the process running (`start`: the server
 * exits by itself on SIGTERM/SIGINT).
 */
export type Command = (argv: readonly string[], io: CliIo) => Promise<number | null>;

export function processIo(): CliIo {
  return {
    out: (t) => void process.stdout.write(t),
    err: (t) => void process.stderr.write(t),
    env: process.env,
    cwd: process.cwd(),
  };
}
