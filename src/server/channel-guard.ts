// The IPC channel between a node's primary and its HTTP workers, when the other side is gone.
//
// A write on the channel to a process that has exited fails with EPIPE (or ERR_IPC_CHANNEL_CLOSED
// once node noticed the close). node emits such a failure as an 'error' event — on `process`, which
// node:cluster re-emits on `cluster.worker` — when the send had no callback, and node:cluster's own
// sends (the worker's `online` at start, the `listen` request for the shared socket) have none.
// Without a listener that event is an uncaught exception: a worker whose primary stopped on a
// fatal error (e.g. a voter started on an emptied data directory, exit 70) printed a stack trace of
// `write EPIPE` after the primary's own message, as if the worker had failed.
//
// Two guards, one per side (docs/operations.md "Exit codes"):
//  - a worker treats a write failing because its primary is gone as the primary's exit, which the
//    worker's contract already covers (it exits at once: src/server/worker.ts), and says nothing
//    more: the primary's message is the one that matters;
//  - a primary that exits without stopping its workers (a fatal error, a failed start) kills them
//    first (killWorkersAtExit), so no worker outlives it to write into a closed channel.
// Deliberately free of other imports: src/main.ts installs the worker's guard before it loads
// anything else, so a channel error during the worker's module loading is covered too.
import type { EventEmitter } from 'node:events';

/** Error codes meaning the other end of the channel is gone (not a bug of ours). */
const GONE_CODES: ReadonlySet<string> = new Set(['EPIPE', 'ECONNRESET', 'ERR_IPC_CHANNEL_CLOSED', 'ERR_IPC_DISCONNECTED']);

/** True when `e` is a channel write that failed because the peer process is gone. */
export function peerGone(e: unknown): boolean {
  const code = (e as { code?: unknown } | null)?.code;
  return typeof code === 'string' && GONE_CODES.has(code);
}

export interface WorkerChannelGuard {
  /** Replace what happens when the primary is found gone (runWorker: log, then exit like on 'disconnect'). */
  onPrimaryGone(f: (e: unknown) => void): void;
}

/**
 * Install the worker side's guard on `emitter` (cluster.worker). A channel error because the
 * primary is gone calls the current onPrimaryGone (at first: exit 0 at once and silently, as
 * node:cluster's own worker does when its primary disconnects before the worker's code has its
 * handlers). Any other error is a real failure: it is written to stderr and the worker exits 1.
 */
export function guardWorkerChannel(emitter: EventEmitter, exit: (code: number) => never = (c) => process.exit(c)): WorkerChannelGuard {
  let gone: (e: unknown) => void = () => exit(0);
  emitter.on('error', (e: unknown) => {
    if (peerGone(e)) {
      gone(e);
      return;
    }
    process.stderr.write(`raftauth: HTTP worker IPC channel error: ${(e as Error)?.stack ?? String(e)}\n`);
    exit(1);
  });
  return {
    onPrimaryGone: (f) => {
      gone = f;
    },
  };
}

/** What killWorkersAtExit needs of node:cluster (the test passes a stand-in). */
export interface WorkerTable {
  readonly workers?: NodeJS.Dict<{ readonly process: { readonly pid?: number | undefined; kill(signal: NodeJS.Signals): boolean }; isDead(): boolean }>;
}

/**
 * In the primary: when this process exits (process.exit or the end of the event loop), SIGKILL
 * every worker still alive. A graceful stop has stopped them all before (nothing left to kill); a
 * fatal error (exit 70) or a failed start (exit 1) has not, and a worker left running would write
 * into a closed channel. SIGKILL, not SIGTERM: the 'exit' handler cannot wait, and a worker must
 * not serve a moment longer than its primary. Returns the function that removes the hook.
 */
export function killWorkersAtExit(table: WorkerTable, proc: Pick<NodeJS.Process, 'on' | 'off'> = process): () => void {
  const onExit = (): void => {
    for (const w of Object.values(table.workers ?? {})) {
      if (!w || w.isDead()) continue;
      try {
        w.process.kill('SIGKILL');
      } catch {
        // Already gone between the check and the kill: nothing to do.
      }
    }
  };
  proc.on('exit', onExit);
  return () => proc.off('exit', onExit);
}
