// The suite's network: one network namespace per node, one for the clients and one "switch"
// namespace holding the bridge, joined by veth pairs. Addresses come from JEPSEN_SUBNET, which
// exists only inside these namespaces: the root namespace gets no link, no address, no nft table.
//
// Every name carries the run's prefix `rj-<owner pid>-<random>`, so parallel runs never collide and
// a later run can tell a crashed run's leftovers (owner pid gone) from a live run's namespaces.
// Teardown kills every process still inside a namespace (a node outlives the runner that crashed)
// and deletes the namespaces; deleting a namespace deletes its end of each veth pair, and with it
// the pair, the bridge and the nft tables inside.
import { execFile } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import { promisify } from 'node:util';

const run = promisify(execFile);

/** The /24 the suite's hosts live in (private, RFC 1918; never routed outside the namespaces). */
export const JEPSEN_SUBNET = '10.77.0';
/** The client namespace's address. */
export const CLIENT_IP = `${JEPSEN_SUBNET}.2`;
/**
 * More client addresses (.100 to .254), all on the client namespace's eth0. The nodes count failed
 * sign-in attempts per client IP as well as per user (THROTTLE.ipFreeFailures in
 * src/state/mfa-ops.ts, 24 h memory): the TOTP workloads give each user's requests an address of
 * its own so one user's replays and lockout never throttle another's (test/jepsen/mfa.ts).
 */
export const CLIENT_POOL: readonly string[] = Array.from({ length: 155 }, (_, i) => `${JEPSEN_SUBNET}.${100 + i}`);
/** Prefix of every namespace the suite creates. */
export const NS_PREFIX = 'rj-';
/** Most nodes (addresses .11 to .74). */
export const MAX_NODES = 64;
/** Deadline of one `ip`/`nft` command. */
const CMD_TIMEOUT_MS = 10_000;

export interface Hosts {
  readonly prefix: string;
  readonly switchNs: string;
  readonly clientNs: string;
  readonly nodeIds: readonly number[];
}

export function nodeNs(hosts: Pick<Hosts, 'prefix'>, id: number): string {
  return `${hosts.prefix}-n${id}`;
}

export function nodeIp(id: number): string {
  if (!Number.isInteger(id) || id < 1 || id > MAX_NODES) throw new RangeError(`node id must be 1..${MAX_NODES}, got ${id}`);
  return `${JEPSEN_SUBNET}.${10 + id}`;
}

/** Run a command; reject with its stderr on failure. */
export async function sh(cmd: string, args: readonly string[], input?: string): Promise<string> {
  if (input === undefined) {
    const { stdout } = await run(cmd, [...args], { timeout: CMD_TIMEOUT_MS });
    return stdout;
  }
  return new Promise<string>((resolve, reject) => {
    const child = execFile(cmd, [...args], { timeout: CMD_TIMEOUT_MS }, (err, stdout, stderr) => {
      if (err) reject(new Error(`${cmd} ${args.join(' ')}: ${stderr || err.message}`));
      else resolve(stdout);
    });
    child.stdin!.end(input);
  });
}

/** A fresh prefix for this process's run. */
export function newPrefix(): string {
  return `${NS_PREFIX}${process.pid}-${randomBytes(3).toString('hex')}`;
}

async function listNamespaces(): Promise<string[]> {
  const out = await sh('ip', ['netns', 'list']);
  return out
    .split('\n')
    .map((l) => l.trim().split(/\s+/)[0] ?? '')
    .filter((n) => n.startsWith(NS_PREFIX));
}

/** Create the switch, the client namespace and one namespace per node, all linked to the bridge. */
export async function createHosts(nodeIds: readonly number[], prefix = newPrefix()): Promise<Hosts> {
  for (const id of nodeIds) nodeIp(id);
  const hosts: Hosts = { prefix, switchNs: `${prefix}-sw`, clientNs: `${prefix}-cl`, nodeIds: [...nodeIds] };
  try {
    await sh('ip', ['netns', 'add', hosts.switchNs]);
    await sh('ip', ['-n', hosts.switchNs, 'link', 'add', 'br0', 'type', 'bridge']);
    await sh('ip', ['-n', hosts.switchNs, 'link', 'set', 'br0', 'up']);
    await sh('ip', ['-n', hosts.switchNs, 'link', 'set', 'lo', 'up']);
    const attach = async (ns: string, port: string, ip: string): Promise<void> => {
      await sh('ip', ['netns', 'add', ns]);
      // The pair is created inside the switch namespace with its other end placed straight into
      // the host's namespace: it never appears in the root namespace.
      await sh('ip', ['-n', hosts.switchNs, 'link', 'add', port, 'type', 'veth', 'peer', 'name', 'eth0', 'netns', ns]);
      await sh('ip', ['-n', hosts.switchNs, 'link', 'set', port, 'master', 'br0', 'up']);
      await sh('ip', ['-n', ns, 'addr', 'add', `${ip}/24`, 'dev', 'eth0']);
      await sh('ip', ['-n', ns, 'link', 'set', 'eth0', 'up']);
      await sh('ip', ['-n', ns, 'link', 'set', 'lo', 'up']);
    };
    await attach(hosts.clientNs, 'cl', CLIENT_IP);
    await sh('ip', ['-n', hosts.clientNs, '-batch', '-'], CLIENT_POOL.map((ip) => `addr add ${ip}/24 dev eth0\n`).join(''));
    for (const id of nodeIds) await attach(nodeNs(hosts, id), `n${id}`, nodeIp(id));
    return hosts;
  } catch (e) {
    await destroyHosts(prefix);
    throw e;
  }
}

/** SIGKILL every process inside the namespace (nodes, a runner), so it can be deleted cleanly. */
async function killInside(ns: string): Promise<void> {
  let pids: string;
  try {
    pids = await sh('ip', ['netns', 'pids', ns]);
  } catch {
    return;
  }
  for (const p of pids.split(/\s+/).filter((s) => /^[0-9]+$/.test(s))) {
    try {
      process.kill(Number(p), 'SIGKILL');
    } catch {
      // already gone
    }
  }
}

/** Remove every namespace of the run `prefix` and every process inside. Never throws. */
export async function destroyHosts(prefix: string): Promise<string[]> {
  const mine = (await listNamespaces().catch(() => [] as string[])).filter((n) => n.startsWith(`${prefix}-`));
  for (const ns of mine) await killInside(ns);
  const failed: string[] = [];
  for (const ns of mine) {
    try {
      await sh('ip', ['netns', 'del', ns]);
    } catch {
      failed.push(ns);
    }
  }
  return failed;
}

function alive(pid: number): boolean {
  try {
    process.kill(pid, 0);
    return true;
  } catch (e) {
    return (e as NodeJS.ErrnoException).code === 'EPERM';
  }
}

/** Remove the leftovers of runs whose owner process is gone (a crashed or SIGKILLed run). */
export async function cleanupStale(): Promise<string[]> {
  const stale = new Set<string>();
  for (const ns of await listNamespaces()) {
    const m = /^rj-([0-9]+)-([0-9a-f]+)-/.exec(ns);
    if (m && !alive(Number(m[1]))) stale.add(`rj-${m[1]}-${m[2]}`);
  }
  for (const p of stale) await destroyHosts(p);
  return [...stale];
}

/** Whether this process can create namespaces (root, iproute2 and nftables installed). */
export async function canCreateHosts(): Promise<{ ok: true } | { ok: false; why: string }> {
  if (process.getuid?.() !== 0) return { ok: false, why: 'not root' };
  try {
    await sh('ip', ['-V']);
    await sh('nft', ['--version']);
  } catch (e) {
    return { ok: false, why: `iproute2/nftables missing: ${(e as Error).message}` };
  }
  return { ok: true };
}
