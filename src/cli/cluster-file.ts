// `cluster.json`: what a running local cluster looks like from outside (issue 4): the front URL
// under `front` and, under `nodes`, each node's `id`, `http` URL, `admin` URL and `pid`. Written by
// `npm start` (scripts/start-local.ts) to `.raftauth/local/cluster.json`; read by the CLI, which
// uses it to find the admin APIs (and so the leader's) when no --admin is given.
import { readFileSync } from 'node:fs';
import { mkdir, open, rename, unlink } from 'node:fs/promises';
import { dirname } from 'node:path';

export interface ClusterFileNode {
  readonly id: number;
  readonly http: string;
  readonly admin: string;
  readonly pid: number;
}

/** Demo credentials `npm start` creates (issue 5), so a newcomer can fetch a token at once. */
export interface DemoCredentials {
  readonly confidentialClient: { readonly client_id: string; readonly client_secret: string };
  readonly publicClient: { readonly client_id: string; readonly redirect_uri: string };
  readonly user: { readonly username: string; readonly password: string };
}

export interface ClusterFile {
  readonly front: string;
  readonly nodes: readonly ClusterFileNode[];
  /** Present when the cluster serves OAuth. The file is written 0600 because of it. */
  readonly demo?: DemoCredentials;
}

/** Where `npm start` writes it, relative to the repository (the working directory of npm scripts). */
export const DEFAULT_CLUSTER_FILE = '.raftauth/local/cluster.json';
/** A cluster.json larger than this is not one we wrote. */
const MAX_CLUSTER_FILE_BYTES = 1024 * 1024;

function isHttpUrl(s: unknown): s is string {
  if (typeof s !== 'string') return false;
  try {
    const u = new URL(s);
    return u.protocol === 'http:' || u.protocol === 'https:';
  } catch {
    return false;
  }
}

/** Validate a parsed cluster.json; throws naming the first bad field. */
export function validateClusterFile(o: unknown, source: string): ClusterFile {
  const bad = (what: string): never => {
    throw new Error(`${source}: ${what}`);
  };
  if (typeof o !== 'object' || o === null || Array.isArray(o)) return bad('must be a JSON object');
  const r = o as Record<string, unknown>;
  if (!isHttpUrl(r.front)) bad('front must be an http URL');
  if (!Array.isArray(r.nodes) || r.nodes.length === 0) return bad('nodes must be a non-empty list');
  const nodes = r.nodes.map((n: unknown, i): ClusterFileNode => {
    if (typeof n !== 'object' || n === null) return bad(`nodes[${i}] must be an object`);
    const x = n as Record<string, unknown>;
    if (typeof x.id !== 'number' || !Number.isSafeInteger(x.id) || x.id < 1) bad(`nodes[${i}].id must be a positive integer`);
    if (!isHttpUrl(x.http)) bad(`nodes[${i}].http must be an http URL`);
    if (!isHttpUrl(x.admin)) bad(`nodes[${i}].admin must be an http URL`);
    if (typeof x.pid !== 'number' || !Number.isSafeInteger(x.pid) || x.pid < 1) bad(`nodes[${i}].pid must be a positive integer`);
    return { id: x.id as number, http: x.http as string, admin: x.admin as string, pid: x.pid as number };
  });
  if (r.demo === undefined) return { front: r.front as string, nodes };
  const d = r.demo as Record<string, Record<string, unknown> | undefined> | null;
  const strs = (o: Record<string, unknown> | undefined, keys: readonly string[], what: string): Record<string, string> => {
    if (typeof o !== 'object' || o === null) return bad(`demo.${what} must be an object`);
    for (const k of keys) if (typeof o[k] !== 'string' || (o[k] as string).length === 0) bad(`demo.${what}.${k} must be a non-empty string`);
    return o as Record<string, string>;
  };
  if (typeof d !== 'object' || d === null) return bad('demo must be an object');
  const cc = strs(d.confidentialClient, ['client_id', 'client_secret'], 'confidentialClient');
  const pc = strs(d.publicClient, ['client_id', 'redirect_uri'], 'publicClient');
  const u = strs(d.user, ['username', 'password'], 'user');
  const demo: DemoCredentials = {
    confidentialClient: { client_id: cc.client_id!, client_secret: cc.client_secret! },
    publicClient: { client_id: pc.client_id!, redirect_uri: pc.redirect_uri! },
    user: { username: u.username!, password: u.password! },
  };
  return { front: r.front as string, nodes, demo };
}

export function readClusterFile(file: string): ClusterFile {
  const text = readFileSync(file, 'utf8');
  if (text.length > MAX_CLUSTER_FILE_BYTES) throw new Error(`${file}: larger than ${MAX_CLUSTER_FILE_BYTES} bytes`);
  let o: unknown;
  try {
    o = JSON.parse(text);
  } catch (e) {
    throw new Error(`${file}: not JSON (${(e as Error).message})`, { cause: e });
  }
  return validateClusterFile(o, file);
}

/** Write it atomically (temp file, fsync, rename): a reader never sees half a file. */
export async function writeClusterFile(file: string, c: ClusterFile): Promise<void> {
  validateClusterFile(c, 'cluster.json being written'); // assertion: we write only what we can read back
  await mkdir(dirname(file), { recursive: true, mode: 0o700 });
  const tmp = `${file}.tmp-${process.pid}`;
  // 0600: it may carry the demo credentials.
  const fh = await open(tmp, 'w', 0o600);
  try {
    await fh.writeFile(`${JSON.stringify(c, null, 2)}\n`);
    await fh.sync();
  } finally {
    await fh.close();
  }
  try {
    await rename(tmp, file);
  } catch (e) {
    await unlink(tmp).catch(() => undefined);
    throw e;
  }
}
