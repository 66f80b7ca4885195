// Test support: a CliIo that records what a command printed.
import type { CliIo } from '../../../src/cli/io.ts';

export function captureIo(env: NodeJS.ProcessEnv = {}, cwd = process.cwd()): CliIo & { stdout: () => string; stderr: () => string } {
  let out = '';
  let err = '';
  return { out: (t) => void (out += t), err: (t) => void (err += t), env, cwd, stdout: () => out, stderr: () => err };
}
