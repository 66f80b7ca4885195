// HTTP workers forked before the node exists (docs/operations.md, "Boot time").
//
// A worker spends most of its start loading its modules (the HTTP app, every OAuth route), and
// the primary most of its own loading the node's modules and opening the store. Forked only once
// the node was up, the worker's start came after the primary's; forked first, the two overlap
// (each is one process, so on a machine with two cores or more they run side by side). startServer
// (src/server/process.ts) forks its initial workers here before it builds the node, and its own
// fork() then take()s them one by one instead of forking.
//
// Until a worker is adopted, everything it reports is held, in order: its IPC messages (its
// `ready`, and any request it already forwards), `listening`, and `exit`. Adoption replays them to
// the handlers startServer installs, as if they had just arrived, so startServer sees the same
// sequence of events as for a worker it forked itself. A worker may thus accept HTTP connections
// before the node exists: /healthz answers; a request that needs the node waits for it (its own
// deadline, http.requestTimeoutMs, still bounds it), and /readyz answers 503 until the node has a
// leader, as for any starting node.
//
// Held events are bounded (MAX_HELD_EVENTS per worker): a worker that reports more before the node
// is up is killed, and startServer sees it exit.
import cluster from 'node:cluster';
import type { Worker } from 'node:cluster';
import { DEFAULT_IPC_CLIENT_LIMITS } from './ipc.ts';

/**
 * Events held per preforked worker before adoption. A worker has at most
 * DEFAULT_IPC_CLIENT_LIMITS.maxOutstanding requests in flight (src/server/worker.ts), each in at
 * most one message; the margin covers its `ready`, its `listening` and its exit. Only a worker
 * that breaks its own limit reaches this.
 */
export const MAX_HELD_EVENTS = DEFAULT_IPC_CLIENT_LIMITS.maxOutstanding + 16;

/** What happened to a worker before it was adopted, in order. */
type HeldEvent =
  | { readonly kind: 'message'; readonly message: unknown }
  | { readonly kind: 'listening'; readonly address: unknown }
  | { readonly kind: 'exit'; readonly code: number | null; readonly signal: string | null };

interface Held {
  readonly worker: Worker;
  readonly events: HeldEvent[];
  /** Removes the holding handlers. */
  detach: () => void;
}

export class Preforked {
  private readonly held: Held[] = [];

  /**
   * Fork `n` workers now with `env` (cluster.setupPrimary must have been called). `forkWorker` is
   * cluster.fork; tests pass a stand-in.
   */
  constructor(n: number, env: NodeJS.ProcessEnv, forkWorker: (env: NodeJS.ProcessEnv) => Worker = (e) => cluster.fork(e)) {
    for (let i = 0; i < n; i++) {
      const worker = forkWorker(env);
      const h: Held = { worker, events: [], detach: () => {} };
      let overflowed = false;
      const hold = (e: HeldEvent): void => {
        if (overflowed) return;
        if (h.events.length >= MAX_HELD_EVENTS) {
          overflowed = true;
          worker.process.kill('SIGKILL');
          return;
        }
        h.events.push(e);
      };
      const onMessage = (message: unknown): void => hold({ kind: 'message', message });
      const onListening = (address: unknown): void => hold({ kind: 'listening', address });
      // The exit is always kept (an overflowed worker's too): startServer must see every worker die.
      const onExit = (code: number | null, signal: string | null): void => void h.events.push({ kind: 'exit', code, signal });
      // A channel error before adoption: the worker's exit follows, and is what startServer acts on.
      const onError = (): void => {};
      worker.on('message', onMessage);
      worker.on('listening', onListening);
      worker.on('exit', onExit);
      worker.on('error', onError);
      h.detach = () => {
        worker.off('message', onMessage);
        worker.off('listening', onListening);
        worker.off('exit', onExit);
        worker.off('error', onError);
      };
      this.held.push(h);
    }
  }

  /** Preforked workers not adopted yet. */
  get size(): number {
    return this.held.length;
  }

  /**
   * Adopt the next preforked worker, or null when none is left. The caller installs its own
   * handlers (message, listening, exit, error) on `worker`, then calls replay(), which emits to
   * them what the worker reported before, in order. Nothing is lost in between: it all runs in
   * one turn of the event loop.
   */
  take(): { readonly worker: Worker; replay(): void } | null {
    const h = this.held.shift();
    if (h === undefined) return null;
    h.detach();
    const { worker, events } = h;
    return {
      worker,
      replay: () => {
        for (const e of events.splice(0)) {
          if (e.kind === 'message') worker.emit('message', e.message);
          else if (e.kind === 'listening') worker.emit('listening', e.address);
          else worker.emit('exit', e.code, e.signal);
        }
      },
    };
  }

  /** Kill every worker not adopted (the node failed to start) and wait for them to exit. */
  async discard(): Promise<void> {
    const left = this.held.splice(0);
    await Promise.all(
      left.map(async (h) => {
        const exited = h.events.some((e) => e.kind === 'exit');
        h.detach();
        if (exited) return;
        const gone = new Promise<void>((resolve) => h.worker.once('exit', () => resolve()));
        h.worker.process.kill('SIGKILL');
        await gone;
      }),
    );
  }
}
