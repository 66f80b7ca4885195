// Waiting helpers shared by the tests, the local-cluster launcher and the benchmarks: a free
// loopback port, and a condition polled with a deadline (never a fixed sleep to synchronize).
import { AssertionError } from 'node:assert';
import { mkdirSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { createServer } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';

/** Thrown by a waitFor condition to stop waiting at once (e.g. the process it waits on died). */
export class WaitAborted extends Error {}

/** The deadline of a waitFor passed. */
export class WaitTimeout extends Error {}

/** Poll interval of waitFor: short, since tests wait on elections of a few hundred ms. */
export const WAIT_POLL_MS = 20;

/**
 * Poll `cond` until it returns a truthy value, with a deadline. An error thrown by `cond` counts as
 * "not yet" (and is quoted on timeout), except WaitAborted, which ends the wait, and a failed
 * assertion (node:assert's AssertionError), which is rethrown at once: an assertion is a verdict on
 * the sample it saw, and retrying it would hide exactly the sample that broke it. A condition that
 * wants "not yet" returns a falsy value.
 */
export async function waitFor<T>(what: string, cond: () => Promise<T | undefined | null | false> | T | undefined | null | false, timeoutMs: number, pollMs = WAIT_POLL_MS): Promise<T> {
  const deadline = performance.now() + timeoutMs;
  let last: unknown;
  for (;;) {
    try {
      const v = await cond();
      if (v) return v;
    } catch (e) {
      if (e instanceof WaitAborted || e instanceof AssertionError) throw e;
      last = e;
    }
    if (performance.now() > deadline) {
      throw new WaitTimeout(`timed out after ${timeoutMs} ms waiting for ${what}${last ? `: ${(last as Error).message ?? String(last)}` : ''}`);
    }
    await new Promise((r) => setTimeout(r, pollMs));
  }
}

/** What a "never" check saw: how many samples it judged, and how many probes failed to answer. */
export interface NeverSeen {
  readonly samples: number;
  readonly missed: number;
}

export interface NeverCheck<S> {
  /** The forbidden state, for messages ("node 4 knows a leader"). */
  readonly what: string;
  /** Takes one sample (e.g. a node's status). An error other than an AssertionError is a missed sample. */
  readonly probe: () => Promise<S> | S;
  /** A description of why `s` is forbidden, or null when it is allowed. */
  readonly violation: (s: S) => string | null;
  /**
   * The event that ends the window (e.g. "the refusals were logged"): checked after each sample, so
   * the last sample is taken after it. The window is bounded by an event, and by timeoutMs.
   */
  readonly until: () => Promise<boolean> | boolean;
  /** Deadline for `until`: past it the check fails with WaitTimeout (the window never closed). */
  readonly timeoutMs: number;
  /** Judged samples required before the window may close (default 1). */
  readonly minSamples?: number;
  readonly pollMs?: number;
}

/**
 * A "never" check: sample `probe` repeatedly until `until()` holds, and fail with an AssertionError
 * on the first forbidden sample. Unlike an assertion inside a waitFor condition (which a waitFor
 * must either rethrow or, as this one once did, retry), the verdict here cannot be read as "not
 * yet": every sample is judged, and a forbidden one seen on any sample fails the check, even if
 * later samples are allowed again.
 */
export async function assertNever<S>(check: NeverCheck<S>): Promise<NeverSeen> {
  const minSamples = check.minSamples ?? 1;
  const pollMs = check.pollMs ?? WAIT_POLL_MS;
  const deadline = performance.now() + check.timeoutMs;
  let samples = 0;
  let missed = 0;
  let lastMiss: unknown = null;
  for (;;) {
    let s: S | undefined;
    let got = false;
    try {
      s = await check.probe();
      got = true;
    } catch (e) {
      if (e instanceof AssertionError || e instanceof WaitAborted) throw e;
      missed++;
      lastMiss = e;
    }
    if (got) {
      samples++;
      const why = check.violation(s as S);
      if (why !== null) throw new AssertionError({ message: `${check.what} on sample ${samples}: ${why}` });
    }
    if (samples >= minSamples && (await check.until())) return { samples, missed };
    if (performance.now() > deadline) {
      throw new WaitTimeout(
        `timed out after ${check.timeoutMs} ms: the window of the check "never ${check.what}" did not close (${samples} samples, ${missed} missed${lastMiss ? `; last miss: ${(lastMiss as Error).message ?? String(lastMiss)}` : ''})`,
      );
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

/**
 * A port freePort hands out is free *now*, but its caller binds it later (a cluster takes all its
 * ports before it starts its nodes). Until then nothing on the machine holds it, so the same number
 * could be handed out twice: to a second call in this process, or to another test process running
 * beside it (CI, 2026-12-08: an admin listener failed with EADDRINUSE on a port a node of the same
 * cluster had bound since). So every port handed out is reserved by a file named after it in
 * PORT_RESERVATION_DIR, created exclusively and holding the reserving pid: a port reserved by a live
 * process, this one included, is not handed out again. A reservation of a process that is gone is
 * stale and taken over; a process's own reservations are removed when it exits.
 */
export const PORT_RESERVATION_DIR = join(tmpdir(), 'raftauth-port-reservations');
const reservedFiles: string[] = [];
let exitHookInstalled = false;

function processAlive(pid: number): boolean {
  if (!Number.isSafeInteger(pid) || pid <= 0) return false;
  try {
    process.kill(pid, 0);
    return true;
  } catch (e) {
    // EPERM: it exists, under another user.
    return (e as NodeJS.ErrnoException).code === 'EPERM';
  }
}

/**
 * Reserve `port` for this process across the machine's processes: true if this process now holds
 * it (fresh, or taken over from a process that is gone), false if a live process (this one
 * included) holds it. Exported for its tests.
 */
export function reservePort(port: number, dir = PORT_RESERVATION_DIR): boolean {
  mkdirSync(dir, { recursive: true });
  const file = join(dir, String(port));
  for (let attempt = 0; attempt < 2; attempt++) {
    try {
      writeFileSync(file, String(process.pid), { flag: 'wx' });
      reservedFiles.push(file);
      if (!exitHookInstalled) {
        exitHookInstalled = true;
        process.on('exit', () => {
          for (const f of reservedFiles) rmSync(f, { force: true });
        });
      }
      return true;
    } catch (e) {
      if ((e as NodeJS.ErrnoException).code !== 'EEXIST') throw e;
    }
    let holder: number;
    try {
      holder = Number(readFileSync(file, 'utf8'));
    } catch {
      // Removed meanwhile by its holder: try again.
      continue;
    }
    if (processAlive(holder)) return false;
    // Stale: the holder is gone. If another process takes it over first, the retry sees its pid.
    rmSync(file, { force: true });
  }
  return false;
}

function tryListen(port: number): Promise<boolean> {
  return new Promise((resolve) => {
    const s = createServer();
    s.once('error', () => resolve(false));
    s.listen(port, '127.0.0.1', () => s.close(() => resolve(true)));
  });
}

/**
 * A free TCP port on 127.0.0.1, outside the ephemeral range (see FREE_PORT_RANGE), never handed out
 * before by this process nor reserved by another live one (see PORT_RESERVATION_DIR). Loopback
 * only, by design.
 */
export async function freePort(): Promise<number> {
  const span = FREE_PORT_RANGE.max - FREE_PORT_RANGE.min;
  for (let i = 0; i < FREE_PORT_ATTEMPTS; i++) {
    const port = FREE_PORT_RANGE.min + Math.floor(Math.random() * span);
    // Refused too when this very process holds it: a port is handed out once.
    if (!reservePort(port)) continue;
    if (await tryListen(port)) return port;
  }
  throw new Error(`no free port on 127.0.0.1 in ${FREE_PORT_RANGE.min}-${FREE_PORT_RANGE.max} after ${FREE_PORT_ATTEMPTS} attempts`);
}
