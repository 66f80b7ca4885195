// Waiting helpers shared by the tests, the local-cluster launcher and the benchmarks: a free
// loopback port, and a condition polled with a deadline (never a fixed sleep to synchronize).
import { createServer } from 'node:net';

/** Thrown by a waitFor condition to stop waiting at once (e.g. the process it waits on died). */
export class WaitAborted extends Error {}

/** The deadline of a waitFor passed. */
export class WaitTimeout extends Error {}

/** Poll interval of waitFor: short, since tests wait on elections of a few hundred ms. */
export const WAIT_POLL_MS = 20;

/**
 * Poll `cond` until it returns a truthy value, with a deadline. An error thrown by `cond` counts as
 * "not yet" (and is quoted on timeout), except WaitAborted, which ends the wait.
 */
export async function waitFor<T>(what: string, cond: () => Promise<T | undefined | null | false> | T | undefined | null | false, timeoutMs: number, pollMs = WAIT_POLL_MS): Promise<T> {
  const deadline = performance.now() + timeoutMs;
  let last: unknown;
  for (;;) {
    try {
      const v = await cond();
      if (v) return v;
    } catch (e) {
      if (e instanceof WaitAborted) throw e;
      last = e;
    }
    if (performance.now() > deadline) {
      throw new WaitTimeout(`timed out after ${timeoutMs} ms waiting for ${what}${last ? `: ${(last as Error).message ?? String(last)}` : ''}`);
    }
    await new Promise((r) => setTimeout(r, pollMs));
  }
}

/**
 * Ports handed out by freePort: below Linux's default ephemeral range (32768–60999). A port taken
 * with bind(0) comes *from* that range, and while a node restarts (its port closed for a moment)
 * any outgoing connection on the machine may be given the same number as its local port — the
 * restarted node then fails with EADDRINUSE. Ports outside the range are never handed out that way.
 */
export const FREE_PORT_RANGE = { min: 20_000, max: 32_000 } as const;
const FREE_PORT_ATTEMPTS = 200;

function tryListen(port: number): Promise<boolean> {
  return new Promise((resolve) => {
    const s = createServer();
    s.once('error', () => resolve(false));
    s.listen(port, '127.0.0.1', () => s.close(() => resolve(true)));
  });
}

/** A free TCP port on 127.0.0.1, outside the ephemeral range (see FREE_PORT_RANGE). Loopback only, by design. */
export async function freePort(): Promise<number> {
  const span = FREE_PORT_RANGE.max - FREE_PORT_RANGE.min;
  for (let i = 0; i < FREE_PORT_ATTEMPTS; i++) {
    const port = FREE_PORT_RANGE.min + Math.floor(Math.random() * span);
    if (await tryListen(port)) return port;
  }
  throw new Error(`no free port on 127.0.0.1 in ${FREE_PORT_RANGE.min}-${FREE_PORT_RANGE.max} after ${FREE_PORT_ATTEMPTS} attempts`);
}
