// Child processes for the tests and benchmarks that run the built program: run a command to its
// end (bounded), and find a node primary's HTTP workers on Linux (/proc).
import { spawn } from 'node:child_process';
import { readdirSync, readFileSync } from 'node:fs';

/** How much of a command's output a timeout's message carries. */
const LOG_TAIL_CHARS = 4_000;

export interface CommandResult {
  readonly code: number | null;
  readonly signal: NodeJS.Signals | null;
  readonly stdout: string;
  readonly stderr: string;
  /** stdout and stderr interleaved as they arrived. */
  readonly output: string;
}

/** Run `cmd` to its end; killed (and rejected, with its output's tail) after timeoutMs. */
export function runCommand(cmd: string, args: readonly string[], opts: { readonly cwd: string; readonly env: NodeJS.ProcessEnv; readonly timeoutMs: number }): Promise<CommandResult> {
  return new Promise((resolve, reject) => {
    const child = spawn(cmd, args, { cwd: opts.cwd, env: opts.env, stdio: ['ignore', 'pipe', 'pipe'] });
    let stdout = '';
    let stderr = '';
    let output = '';
    child.stdout.on('data', (c: Buffer) => {
      stdout += c.toString();
      output += c.toString();
    });
    child.stderr.on('data', (c: Buffer) => {
      stderr += c.toString();
      output += c.toString();
    });
    const timer = setTimeout(() => {
      child.kill('SIGKILL');
      reject(new Error(`${cmd} ${args.join(' ')} did not finish within ${opts.timeoutMs} ms:\n${output.slice(-LOG_TAIL_CHARS)}`));
    }, opts.timeoutMs);
    child.on('error', (e) => {
      clearTimeout(timer);
      reject(e);
    });
    child.on('exit', (code, signal) => {
      clearTimeout(timer);
      resolve({ code, signal, stdout, stderr, output });
    });
  });
}

/** Children of `pid` (Linux /proc): a node primary's HTTP workers. */
export function childrenOf(pid: number): number[] {
  const out: number[] = [];
  for (const e of readdirSync('/proc')) {
    if (!/^\d+$/.test(e)) continue;
    try {
      const stat = readFileSync(`/proc/${e}/stat`, 'utf8');
      // Field 4 (ppid) follows the parenthesized command, which may contain spaces.
      if (Number(stat.slice(stat.lastIndexOf(')') + 2).split(' ')[1]) === pid) out.push(Number(e));
    } catch {
      // the process went away while we looked
    }
  }
  return out;
}
