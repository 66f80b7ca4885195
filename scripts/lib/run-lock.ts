// One `npm start` per cluster directory (issue 13, defect 3). A second launcher used to delete the
// running cluster's cluster.json, start nodes that failed on the LevelDB lock, and meanwhile take
// the running cluster's answers for its own: it printed "ready" and re-created the demo
// credentials on the cluster it did not start.
//
// The launcher now holds <dir>/launcher.json: its pid, its command and, once they run, its nodes'
// pids and config files. A second launcher refuses while that launcher runs, or while any of its
// nodes does (a launcher killed with SIGKILL leaves its nodes running: they are in their own
// process groups). A lock whose processes are all gone is stale and taken over. A pid is only
// trusted if, where /proc tells, that process still runs the recorded command (pids are reused).
// The nodes' ports are checked too (busyPorts), which also catches the same description started
// from another directory.
import { existsSync, readFileSync } from 'node:fs';
import { link, mkdir, readFile, rename, unlink, writeFile } from 'node:fs/promises';
import { createServer } from 'node:net';
import { basename, join } from 'node:path';
import type { ClusterSpec } from './local-cluster.ts';

export const RUN_LOCK_FILE = 'launcher.json';
/** A lock file larger than this is not one we wrote. */
const MAX_LOCK_BYTES = 64 * 1024;
/** Rounds of "stale: remove, take" before giving up (another launcher keeps winning the race). */
const TAKE_ATTEMPTS = 3;

export interface LockedNode {
  readonly id: number;
  readonly pid: number;
  /** The node's config file: its command line names it. */
  readonly configFile: string;
}

interface LockRecord {
  readonly pid: number;
  /** A string the launcher's command line contains (its script's file name), to tell a reused pid apart. */
  readonly command: string;
  readonly startedAt: string;
  readonly nodes: readonly LockedNode[];
}

/** Another launcher, or the nodes of one, run the cluster in this directory. */
export class ClusterRunningError extends Error {
  constructor(message: string) {
    super(message);
    this.name = 'ClusterRunningError';
  }
}

export interface RunLock {
  readonly file: string;
  /** Record the launched nodes, so a later launcher sees them even if this one is SIGKILLed. */
  recordNodes(nodes: readonly LockedNode[]): Promise<void>;
  /** Remove the lock (after the nodes have stopped). Idempotent. */
  release(): Promise<void>;
}

/**
 * Whether `pid` is alive and, where /proc can tell, runs a command line containing `marker`.
 * Where /proc is not there (not Linux), a live pid counts: refusing wrongly is the safe side.
 */
export function runs(pid: number, marker: string): boolean {
  if (!Number.isSafeInteger(pid) || pid < 1) return false;
  try {
    process.kill(pid, 0);
  } catch (e) {
    if ((e as NodeJS.ErrnoException).code !== 'EPERM') return false;
  }
  if (!existsSync('/proc/self/cmdline')) return true;
  try {
    return readFileSync(`/proc/${pid}/cmdline`, 'utf8').split('\0').join(' ').includes(marker);
  } catch {
    return false; // it exited while we looked
  }
}

function parseRecord(text: string): LockRecord | null {
  let o: unknown;
  try {
    o = JSON.parse(text);
  } catch {
    return null;
  }
  const r = o as Partial<LockRecord> | null;
  if (!r || typeof r.pid !== 'number' || typeof r.command !== 'string' || !Array.isArray(r.nodes)) return null;
  const nodes = r.nodes.filter((n): n is LockedNode => typeof n === 'object' && n !== null && typeof n.id === 'number' && typeof n.pid === 'number' && typeof n.configFile === 'string');
  return { pid: r.pid, command: r.command, startedAt: typeof r.startedAt === 'string' ? r.startedAt : '?', nodes };
}

/** Why the lock in `dir` is held, or null when it is stale. */
function heldBecause(rec: LockRecord, dir: string, file: string): string | null {
  if (runs(rec.pid, rec.command)) {
    return `another \`npm start\` (pid ${rec.pid}) is running the cluster in ${dir} (since ${rec.startedAt}): stop it with Ctrl-C in its terminal (or kill ${rec.pid}), or start this one with another --dir`;
  }
  const alive = rec.nodes.filter((n) => runs(n.pid, n.configFile));
  if (alive.length > 0) {
    return (
      `the nodes of an earlier \`npm start\` in ${dir} still run (${alive.map((n) => `node ${n.id}: pid ${n.pid}`).join(', ')}), but its launcher (pid ${rec.pid}) is gone; ` +
      `stop them first (kill ${alive.map((n) => n.pid).join(' ')}), then start again. (${file} records them.)`
    );
  }
  return null;
}

/**
 * Take the lock of cluster directory `dir` for this process, or throw ClusterRunningError saying
 * who holds it and what to do. `command` is what this process's command line contains (default:
 * its script's file name: the command line holds the path as typed, process.argv[1] the resolved one).
 */
export async function acquireRunLock(dir: string, opts: { pid?: number; command?: string } = {}): Promise<RunLock> {
  await mkdir(dir, { recursive: true, mode: 0o700 });
  const file = join(dir, RUN_LOCK_FILE);
  let record: LockRecord = { pid: opts.pid ?? process.pid, command: opts.command ?? basename(process.argv[1] ?? process.execPath), startedAt: new Date().toISOString(), nodes: [] };
  // Written aside, then linked into place: link() fails if the lock exists, and a reader never
  // sees a half-written lock.
  const tmp = join(dir, `.${RUN_LOCK_FILE}.${record.pid}.tmp`);
  await writeFile(tmp, `${JSON.stringify(record)}\n`, { mode: 0o600 });
  try {
    for (let attempt = 1; ; attempt++) {
      try {
        await link(tmp, file);
        break;
      } catch (e) {
        if ((e as NodeJS.ErrnoException).code !== 'EEXIST') throw e;
      }
      let text: string;
      try {
        text = await readFile(file, 'utf8');
      } catch (e) {
        if ((e as NodeJS.ErrnoException).code === 'ENOENT') continue; // released meanwhile: take it
        throw e;
      }
      const held = text.length > MAX_LOCK_BYTES ? null : parseRecord(text);
      if (held === null) throw new ClusterRunningError(`${file} is not a lock this launcher wrote; if no cluster runs from ${dir}, remove it and start again`);
      const why = heldBecause(held, dir, file);
      if (why !== null) throw new ClusterRunningError(why);
      if (attempt >= TAKE_ATTEMPTS) throw new ClusterRunningError(`could not take ${file}: other launchers keep taking it`);
      // Stale: everything it names is gone. Remove it, unless another launcher replaced it meanwhile.
      if ((await readFile(file, 'utf8').catch(() => '')) === text) await unlink(file).catch(() => undefined);
    }
  } finally {
    await unlink(tmp).catch(() => undefined);
  }

  let released = false;
  return {
    file,
    async recordNodes(nodes: readonly LockedNode[]): Promise<void> {
      if (released) return;
      record = { ...record, nodes: [...nodes] };
      // Replace atomically: a reader sees the old record or the new one.
      const next = join(dir, `.${RUN_LOCK_FILE}.${record.pid}.next`);
      await writeFile(next, `${JSON.stringify(record)}\n`, { mode: 0o600 });
      await rename(next, file);
    },
    async release(): Promise<void> {
      if (released) return;
      released = true;
      await unlink(file).catch(() => undefined);
    },
  };
}

function portInUse(host: string, port: number): Promise<boolean> {
  return new Promise((resolve, reject) => {
    const s = createServer();
    s.once('error', (e: NodeJS.ErrnoException) => (e.code === 'EADDRINUSE' ? resolve(true) : reject(e)));
    s.listen({ host, port, exclusive: true }, () => s.close(() => resolve(false)));
  });
}

/**
 * The node ports of `spec` that something already listens on, as "127.0.0.1:P (node N's K port)".
 * A cluster of this description started from another directory holds them all; its nodes would
 * fail to listen, and a launcher polling those ports would see the other cluster's answers.
 */
export async function busyPorts(spec: ClusterSpec): Promise<string[]> {
  const busy: string[] = [];
  for (const n of spec.nodes) {
    for (const kind of ['raft', 'http', 'admin'] as const) {
      if (await portInUse('127.0.0.1', n.ports[kind])) busy.push(`127.0.0.1:${n.ports[kind]} (node ${n.id}'s ${kind} port)`);
    }
  }
  return busy;
}
