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

/** A free TCP port on 127.0.0.1 (bind port 0, read it, close). Loopback only, by design. */
export async function freePort(): Promise<number> {
  return new Promise((resolve, reject) => {
    const s = createServer();
    s.once('error', reject);
    s.listen(0, '127.0.0.1', () => {
      const port = (s.address() as { port: number }).port;
      s.close(() => resolve(port));
    });
  });
}
