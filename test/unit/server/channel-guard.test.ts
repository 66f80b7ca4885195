// A primary that stops on a fatal error (exit 70) must stop cleanly: its own message and exit code,
// and no worker crashing after it with an uncaught `write EPIPE` (issue 15; src/server/channel-guard.ts).
//
// Regression: before the fix, a primary that stopped while its preforked workers were still
// starting left them to write node:cluster's own messages (`online`, the listen request) into the
// closed channel; node emitted the EPIPE as an 'error' event nobody listened to, and each worker
// printed "Unhandled 'error' event ... Error: write EPIPE" with its stack after the primary's message.
import assert from 'node:assert/strict';
import { spawn } from 'node:child_process';
import { EventEmitter } from 'node:events';
import { readFileSync, existsSync } from 'node:fs';
import { join } from 'node:path';
import { test } from 'node:test';
import type { TestContext } from 'node:test';
import { fileURLToPath } from 'node:url';
import { guardWorkerChannel, killWorkersAtExit, peerGone } from '../../../src/server/channel-guard.ts';
import { alive, primaryConfigFile, tempDir, waitFor } from './helpers.ts';

const FATAL_PRIMARY = fileURLToPath(new URL('./fixtures/fatal-primary.ts', import.meta.url));
const GONE_PRIMARY = fileURLToPath(new URL('./fixtures/gone-primary.ts', import.meta.url));
/** Bound on a fixture run: a primary and its workers loading their modules on a loaded 2-core machine. */
const RUN_LIMIT_MS = 60_000;

interface Run {
  readonly code: number | null;
  readonly signal: string | null;
  readonly stdout: string;
  /** Everything written to stderr by the primary and every process that inherited it (its workers). */
  readonly stderr: string;
}

/** Run a fixture until it exits and every process holding its output (its workers) has closed it. */
function run(t: TestContext, args: readonly string[]): Promise<Run> {
  const child = spawn(process.execPath, ['--import', 'tsx', ...args], { stdio: ['ignore', 'pipe', 'pipe'] });
  let stdout = '';
  let stderr = '';
  child.stdout.on('data', (d: Buffer) => (stdout += d.toString('utf8')));
  child.stderr.on('data', (d: Buffer) => (stderr += d.toString('utf8')));
  t.after(() => {
    if (child.exitCode === null && child.signalCode === null) child.kill('SIGKILL');
  });
  return new Promise((resolve, reject) => {
    const timer = setTimeout(() => reject(new Error(`fixture ${args.join(' ')} still running after ${RUN_LIMIT_MS} ms; stderr so far:\n${stderr}`)), RUN_LIMIT_MS);
    // 'close': the process exited AND its output pipes are closed, i.e. its workers are gone too.
    child.on('close', (code, signal) => {
      clearTimeout(timer);
      resolve({ code, signal, stdout, stderr });
    });
  });
}


function assertCleanFatalStop(r: Run): void {
  assert.equal(r.code, 70, `exit code 70 (docs/operations.md: a fatal error at run time); stderr:\n${r.stderr}`);
  assert.match(r.stderr, /FATAL: the node stopped/);
  assert.doesNotMatch(r.stderr, /EPIPE|Unhandled 'error' event|ERR_IPC/, 'no worker crashed after the primary');
}

test('a primary stopping on a fatal error while its preforked workers start: exit 70, its message, no EPIPE from a worker', async (t) => {
  const r = await run(t, [FATAL_PRIMARY, await primaryConfigFile(t), 'at-start']);
  assertCleanFatalStop(r);
});

test('a primary stopping on a fatal error while its workers serve: exit 70, its message, the workers killed with it', async (t) => {
  const r = await run(t, [FATAL_PRIMARY, await primaryConfigFile(t), 'serving']);
  assertCleanFatalStop(r);
  const { workers } = JSON.parse(r.stdout.split('\n')[0]!) as { workers: number[] };
  assert.equal(workers.length, 2);
  // Killed by the primary's exit (SIGKILL; reaped by whoever inherits them): gone within the bound.
  await waitFor('the workers to be gone', () => workers.every((pid) => !alive(pid)));
});

test('a worker writing into the channel of a primary that is gone: without the guard an uncaught EPIPE (the bug), with it a quiet exit', async (t) => {
  const dir = await tempDir(t);
  // The reproduction itself, so this test fails if it stops reproducing the crash.
  const bare = await run(t, [GONE_PRIMARY, 'bare', join(dir, 'bare.txt')]);
  assert.equal(bare.code, 0, 'the primary exits 0 once its worker runs');
  assert.match(bare.stderr, /Unhandled 'error' event/);
  assert.match(bare.stderr, /write EPIPE/);

  const out = join(dir, 'guarded.txt');
  const guarded = await run(t, [GONE_PRIMARY, 'guarded', out]);
  assert.equal(guarded.code, 0);
  assert.equal(guarded.stderr, '', 'nothing on stderr');
  assert.ok(existsSync(out), 'the guarded worker saw its primary gone');
  assert.match(readFileSync(out, 'utf8'), /^primary gone: (EPIPE|ECONNRESET|ERR_IPC_CHANNEL_CLOSED)\n$/);
});

test('guardWorkerChannel: a peer-gone error goes to onPrimaryGone; any other error is written out and exits 1', () => {
  const emitter = new EventEmitter();
  const exits: number[] = [];
  const guard = guardWorkerChannel(emitter, (c) => {
    exits.push(c);
    return undefined as never;
  });
  emitter.emit('error', Object.assign(new Error('write EPIPE'), { code: 'EPIPE' }));
  assert.deepEqual(exits, [0], 'before runWorker takes over: a quiet exit 0');
  const seen: unknown[] = [];
  guard.onPrimaryGone((e) => seen.push((e as { code: string }).code));
  emitter.emit('error', Object.assign(new Error('closed'), { code: 'ERR_IPC_CHANNEL_CLOSED' }));
  assert.deepEqual(seen, ['ERR_IPC_CHANNEL_CLOSED']);
  const write = process.stderr.write;
  let written = '';
  process.stderr.write = ((s: string) => ((written += s), true)) as typeof process.stderr.write;
  try {
    emitter.emit('error', new Error('something else'));
  } finally {
    process.stderr.write = write;
  }
  assert.deepEqual(exits, [0, 1]);
  assert.match(written, /HTTP worker IPC channel error: Error: something else/);
  assert.equal(peerGone({ code: 'EPIPE' }), true);
  assert.equal(peerGone(new Error('x')), false);
  assert.equal(peerGone(null), false);
});

test('killWorkersAtExit: at exit, SIGKILL to every live worker, none to dead ones; unhooked, nothing', () => {
  const proc = new EventEmitter();
  const killed: string[] = [];
  const worker = (name: string, dead: boolean) => ({ process: { pid: 1, kill: (s: NodeJS.Signals) => (killed.push(`${name}:${s}`), true) }, isDead: () => dead });
  const table = { workers: { 1: worker('a', false), 2: worker('b', true), 3: worker('c', false) } };
  const unhook = killWorkersAtExit(table, proc as unknown as NodeJS.Process);
  proc.emit('exit', 70);
  assert.deepEqual(killed, ['a:SIGKILL', 'c:SIGKILL']);
  unhook();
  proc.emit('exit', 0);
  assert.deepEqual(killed, ['a:SIGKILL', 'c:SIGKILL']);
  assert.equal(proc.listenerCount('exit'), 0);
});
