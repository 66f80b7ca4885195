// Process and temp-dir bookkeeping for the benchmark: every child runs in its own process group
// (detached) so that "kill -9 the node" takes its HTTP workers with it, and every child and temp
// directory is registered here so that cleanup() removes all of them — on success, on failure, on
// Ctrl-C and on the global deadline alike.
import { spawn } from 'node:child_process';
import type { ChildProcess, SpawnOptions } from 'node:child_process';
import { createWriteStream, existsSync, readdirSync, readFileSync, rmSync } from 'node:fs';
import type { WriteStream } from 'node:fs';
import { mkdtemp } from 'node:fs/promises';
import { join } from 'node:path';

/** Poll interval of waitFor. */
const POLL_MS = 20;
/** Characters of a child's log quoted in an error. */
const LOG_TAIL_CHARS = 3_000;

export interface Exit {
  readonly code: number | null;
  readonly signal: NodeJS.Signals | null;
}

/** One child process (the leader of its own process group) and its log file. */
export class Child {
  readonly name: string;
  readonly proc: ChildProcess;
  readonly logFile: string;
  exit: Exit | null = null;
  readonly exited: Promise<Exit>;
  private readonly log: WriteStream;

  constructor(
    name: string,
    proc: ChildProcess,
    logFile: string,
  ) {
    this.name = name;
    this.proc = proc;
    this.logFile = logFile;
    this.log = createWriteStream(logFile, { flags: 'a' });
    proc.stdout?.pipe(this.log, { end: false });
    proc.stderr?.pipe(this.log, { end: false });
    this.exited = new Promise((resolve) => {
      proc.once('exit', (code, signal) => {
        this.exit = { code, signal };
        resolve(this.exit);
      });
    });
  }

  get running(): boolean {
    return this.exit === null;
  }

  get pid(): number {
    return this.proc.pid!;
  }

  /** SIGKILL the whole process group (the node and any worker processes it forked). */
  killGroup(): void {
    try {
      process.kill(-this.pid, 'SIGKILL');
    } catch (e) {
      if ((e as NodeJS.ErrnoException).code !== 'ESRCH') throw e;
    }
  }

  logTail(): string {
    return existsSync(this.logFile) ? readFileSync(this.logFile, 'utf8').slice(-LOG_TAIL_CHARS) : '';
  }

  closeLog(): void {
    this.log.end();
  }
}

const children = new Set<Child>();
const tempDirs = new Set<string>();
let keepTemp = false;

/** Keep temp dirs (for a post-mortem), still killing every process. */
export function setKeepTemp(keep: boolean): void {
  keepTemp = keep;
}

export function spawnChild(name: string, cmd: string, args: readonly string[], logFile: string, opts: Omit<SpawnOptions, 'stdio' | 'detached'> = {}): Child {
  // detached: a new process group whose id is the child's pid, so killGroup reaches its workers.
  const proc = spawn(cmd, args, { ...opts, detached: true, stdio: ['ignore', 'pipe', 'pipe'] });
  const c = new Child(name, proc, logFile);
  proc.once('error', () => undefined); // reported through exit / the caller's readiness wait
  children.add(c);
  return c;
}

export async function makeTempDir(prefix: string, parent: string): Promise<string> {
  const dir = await mkdtemp(join(parent, prefix));
  tempDirs.add(dir);
  return dir;
}

/** Kill `c`'s process group and wait for the exit, bounded by timeoutMs. */
export async function killAndWait(c: Child, timeoutMs: number): Promise<Exit> {
  c.killGroup();
  return withTimeout(c.exited, timeoutMs, `${c.name} (pid ${c.pid}) to exit after SIGKILL`);
}

/** Remove a temp dir made by makeTempDir now (its processes must be gone). */
export function removeTempDir(dir: string): void {
  if (!keepTemp) rmSync(dir, { recursive: true, force: true });
  tempDirs.delete(dir);
}

/**
 * Kill every child's process group and remove every temp dir. Synchronous, so it also works from
 * process.on('exit'). Idempotent. Returns the temp dirs kept (with setKeepTemp).
 */
export function cleanupAllSync(): string[] {
  for (const c of children) {
    if (c.running) c.killGroup();
    c.closeLog();
  }
  children.clear();
  const kept = keepTemp ? [...tempDirs] : [];
  if (!keepTemp) for (const d of tempDirs) rmSync(d, { recursive: true, force: true });
  tempDirs.clear();
  return kept;
}

/** Wait for every registered child to be gone (after cleanupAllSync), bounded. */
export async function waitAllGone(list: readonly Child[], timeoutMs: number): Promise<void> {
  await withTimeout(Promise.all(list.map((c) => c.exited)), timeoutMs, 'every benchmark process to exit');
}

export class TimeoutError extends Error {}

export async function withTimeout<T>(p: Promise<T>, timeoutMs: number, what: string): Promise<T> {
  let timer: NodeJS.Timeout | undefined;
  const limit = new Promise<never>((_, reject) => {
    timer = setTimeout(() => reject(new TimeoutError(`timed out after ${timeoutMs} ms waiting for ${what}`)), timeoutMs);
  });
  try {
    return await Promise.race([p, limit]);
  } finally {
    clearTimeout(timer);
  }
}

export { WaitAborted, freePort } from '../lib/wait.ts';
import { freePort, waitFor as waitForShared } from '../lib/wait.ts';

/** Poll `cond` with a deadline (scripts/lib/wait.ts). */
export function waitFor<T>(what: string, cond: () => Promise<T | undefined | null | false>, timeoutMs: number): Promise<T> {
  return waitForShared(what, cond, timeoutMs, POLL_MS);
}

export function sleep(ms: number): Promise<void> {
  return new Promise((r) => setTimeout(r, ms));
}

/** `n` distinct free ports (distinct even if the OS would hand the same one out twice in a row). */
export async function freePorts(n: number): Promise<number[]> {
  const out = new Set<number>();
  for (let tries = 0; out.size < n; tries++) {
    if (tries > n * 20) throw new Error(`could not find ${n} distinct free ports`);
    out.add(await freePort());
  }
  return [...out];
}

/** A benchmarked cluster member's process (both systems under test keep their members this way). */
export interface MemberProcess {
  child: Child | null;
  dead: boolean;
}

/** Kill -9 a member (its process group) and wait until it has exited. */
export async function killMember(m: MemberProcess, timeoutMs: number): Promise<void> {
  m.dead = true;
  if (m.child) await killAndWait(m.child, timeoutMs);
}

/** Stop every member, close their logs and remove the cluster's temp dir. */
export async function stopMembers(members: readonly MemberProcess[], dir: string, timeoutMs: number): Promise<void> {
  // Profiling (BENCH_RAFTAUTH_NODE_ARGS with --cpu-prof): a profile is written only on a clean
  // exit, so stop gracefully first (SIGTERM to the primary, which stops its workers), then kill.
  if (process.env.BENCH_RAFTAUTH_NODE_ARGS) {
    await Promise.all(members.map(async (m) => {
      if (!m.child?.running) return;
      try {
        process.kill(m.child.pid, 'SIGTERM');
        await withTimeout(m.child.exited, timeoutMs, `${m.child.name} to exit after SIGTERM`);
      } catch {
        // killed below
      }
    }));
  }
  await Promise.all(members.map(async (m) => (m.child ? killAndWait(m.child, timeoutMs) : undefined)));
  for (const m of members) m.child?.closeLog();
  removeTempDir(dir);
}


/** Clock ticks per second of /proc/<pid>/stat times (USER_HZ: 100 on every Linux architecture we run on). */
const USER_HZ = 100;

/**
 * CPU seconds (user + system) used so far by every live process of the members' process groups
 * (a raftauth node and its HTTP workers; an etcd member), read from /proc. The benchmark reads it
 * at both ends of a measured window: CPU per operation is steadier than operations per second on a
 * shared machine, and it is what a faster implementation must lower. Linux only; null elsewhere.
 */
export function membersCpuSeconds(members: readonly MemberProcess[]): number | null {
  const k = membersCpuByKind(members);
  return k === null ? null : k.primary + k.workers;
}

/**
 * The same CPU seconds split by process kind: `primary` is the process each member was started as
 * (the leader of its process group: a raftauth node's primary, an etcd member), `workers` every
 * other process of the groups (a raftauth node's HTTP workers). null without /proc.
 */
export function membersCpuByKind(members: readonly MemberProcess[]): { primary: number; workers: number } | null {
  const groups = new Set<number>();
  for (const m of members) if (m.child?.running) groups.add(m.child.pid);
  let pids: string[];
  try {
    pids = readdirSync('/proc').filter((d) => /^\d+$/.test(d));
  } catch {
    return null;
  }
  let primary = 0;
  let workers = 0;
  for (const pid of pids) {
    let stat: string;
    try {
      stat = readFileSync(`/proc/${pid}/stat`, 'utf8');
    } catch {
      continue; // exited meanwhile
    }
    // Fields after "(comm)": state ppid pgrp session tty tpgid flags minflt cminflt majflt cmajflt utime stime
    const f = stat.slice(stat.lastIndexOf(')') + 2).split(' ');
    if (!groups.has(Number(f[2]))) continue;
    const ticks = Number(f[11]) + Number(f[12]);
    if (groups.has(Number(pid))) primary += ticks;
    else workers += ticks;
  }
  return { primary: primary / USER_HZ, workers: workers / USER_HZ };
}

/**
 * Runs a benchmark's `main` as the process: its resolved value is the exit code, a rejection is
 * printed through `say` and exits 1. Whatever way the process ends (normally, on a failure, on
 * SIGINT or SIGTERM, or at process exit as a last resort), `cleanup` runs, so no node, etcd member,
 * server or temp dir outlives the run.
 */
export function runBenchmark(main: () => Promise<number>, say: (line: string) => void, cleanup: () => void = cleanupAllSync): void {
  process.on('exit', () => cleanup());
  for (const sig of ['SIGINT', 'SIGTERM'] as const) {
    process.on(sig, () => {
      say(`${sig}: stopping every process`);
      cleanup();
      process.exit(sig === 'SIGINT' ? 130 : 143);
    });
  }
  main().then(
    (code) => {
      cleanup();
      process.exitCode = code;
    },
    (e: unknown) => {
      say(`failed: ${(e as Error)?.stack ?? String(e)}`);
      cleanup();
      process.exitCode = 1;
    },
  );
}
