// Test support for src/server: a fake NodeApi (the real node is not needed to test the serving
// side), config files in temp directories, HTTP calls on fresh connections, and condition waits.
import { mkdtemp, rm, writeFile } from 'node:fs/promises';
import { request } from 'node:http';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import type { TestContext } from 'node:test';
import { NodeError } from '../../../src/node/api.ts';
import type { ApplyResult, NodeStatus, ReadRequest, WriteRequest } from '../../../src/node/api.ts';
import { parseConfig } from '../../../src/server/config.ts';
import type { NodeConfig } from '../../../src/server/config.ts';
import type { ServedNode } from '../../../src/server/process.ts';
import { DomainError } from '../../../src/state/machine.ts';
import type { Tx } from '../../../src/state/machine.ts';
import { kvDomain } from '../../../src/state/kv.ts';
import { waitFor as waitForShared } from '../../../scripts/lib/wait.ts';

export type Call = { method: 'write'; req: WriteRequest } | { method: 'read'; req: ReadRequest } | { method: 'status' };

/**
 * An in-memory node: the real kv domain applied to a Map, so answers are the real domain's.
 * `hook` may take over any call (to fail, hang or delay it); it returns undefined to let it through.
 */
export class FakeNode implements ServedNode {
  readonly data = new Map<string, Uint8Array>();
  readonly calls: Call[] = [];
  hook: ((c: Call) => Promise<ApplyResult> | undefined) | null = null;
  statusValue: NodeStatus = { id: 1, role: 'leader', leader: 1, term: 3, commit: 10, applied: 10, lastIndex: 10, voters: [1, 2, 3], learners: [], members: null };
  stopped = false;
  private index = 0;

  async write(req: WriteRequest): Promise<ApplyResult> {
    return this.run({ method: 'write', req });
  }

  async read(req: ReadRequest): Promise<ApplyResult> {
    return this.run({ method: 'read', req });
  }

  async status(): Promise<NodeStatus> {
    this.calls.push({ method: 'status' });
    if (this.stopped) throw new NodeError('STOPPING', 'fake node stopped');
    return this.statusValue;
  }

  async stop(): Promise<void> {
    this.stopped = true;
  }

  /** The last call of this method (the status poller interleaves its own calls). */
  last<M extends Call['method']>(method: M): Extract<Call, { method: M }> | undefined {
    return this.calls.filter((c): c is Extract<Call, { method: M }> => c.method === method).at(-1);
  }

  countCalls(method: Call['method']): number {
    return this.calls.filter((c) => c.method === method).length;
  }

  private async run(c: Call & { req: WriteRequest | ReadRequest }): Promise<ApplyResult> {
    this.calls.push(c);
    if (this.stopped) throw new NodeError('STOPPING', 'fake node stopped');
    const hooked = this.hook?.(c);
    if (hooked) return hooked;
    if (c.req.domain !== 'kv') return { ok: false, code: 'UNKNOWN_DOMAIN', message: `no domain ${c.req.domain}` };
    const data = this.data;
    const tx: Tx = {
      get: (_ks, key) => data.get(key),
      put: (_ks, key, value) => void data.set(key, value),
      del: (_ks, key) => void data.delete(key),
    };
    try {
      const value = kvDomain.apply({ index: ++this.index, ts: 0, tx, sid: null }, c.req.op, c.req.args);
      return { ok: true, value };
    } catch (e) {
      if (e instanceof DomainError) return { ok: false, code: e.code, message: e.message };
      throw e;
    }
  }
}

/** A fake node that reports status changes itself (so the server does not poll it). */
export class PushingFakeNode extends FakeNode {
  private readonly listeners = new Set<(s: NodeStatus) => void>();

  onStatusChange(listener: (s: NodeStatus) => void): () => void {
    this.listeners.add(listener);
    return () => this.listeners.delete(listener);
  }

  setStatus(s: NodeStatus): void {
    this.statusValue = s;
    for (const l of this.listeners) l(s);
  }

  get subscribers(): number {
    return this.listeners.size;
  }
}

/** A node call that never answers by itself: it fails TIMEOUT after the request's own timeoutMs, like the real node. */
export function hang(timeoutMs: number): Promise<ApplyResult> {
  return new Promise((_, reject) => setTimeout(() => reject(new NodeError('TIMEOUT', `fake timeout after ${timeoutMs} ms`)), timeoutMs));
}

export async function tempDir(t: TestContext): Promise<string> {
  const dir = await mkdtemp(join(tmpdir(), 'raftauth-server-'));
  t.after(() => rm(dir, { recursive: true, force: true }));
  return dir;
}

/** Writes placeholder TLS files (config validation only checks they exist) and returns their YAML section. */
export async function tlsFiles(dir: string): Promise<string> {
  for (const f of ['ca.pem', 'node.pem', 'node.key']) await writeFile(join(dir, f), '-----placeholder-----\n');
  return 'tls:\n  ca: ca.pem\n  cert: node.pem\n  key: node.key\n';
}

/**
 * A config file for a primary run as its own process with a stand-in node (test/unit/server/fixtures):
 * two HTTP workers on port 0; the raft address is never bound (the node is a FakeNode).
 */
export async function primaryConfigFile(t: TestContext): Promise<string> {
  const dir = await tempDir(t);
  const file = join(dir, 'node1.yaml');
  await writeFile(
    file,
    `node: { id: 1, dataDir: data }
cluster:
  initialMembers:
    - { id: 1, raftAddress: "127.0.0.1:17001", httpAddress: "127.0.0.1:18001" }
http: { listen: "127.0.0.1:0", workers: 2, requestTimeoutMs: 1000 }
log: { level: silent }
${await tlsFiles(dir)}`,
  );
  return file;
}

/** A minimal valid config on 127.0.0.1 with HTTP on port 0. */
export async function testConfig(t: TestContext, http: { workers: number; port?: number; bodyLimitBytes?: number; requestTimeoutMs?: number }, extra = ''): Promise<NodeConfig> {
  const dir = await tempDir(t);
  const yaml = `node:
  id: 1
  dataDir: data
cluster:
  initialMembers:
    - { id: 1, raftAddress: "127.0.0.1:17001", httpAddress: "127.0.0.1:18001" }
http:
  listen: "127.0.0.1:${http.port ?? 0}"
  workers: ${http.workers}
  bodyLimitBytes: ${http.bodyLimitBytes ?? 1024}
  requestTimeoutMs: ${http.requestTimeoutMs ?? 2000}
log:
  level: silent
${await tlsFiles(dir)}${extra}`;
  return parseConfig(yaml, join(dir, 'node1.yaml'), {});
}

export interface HttpAnswer {
  readonly status: number;
  readonly headers: Record<string, string | string[] | undefined>;
  readonly body: unknown;
}

/** One request on a fresh connection (no keep-alive), so each lands on whichever worker accepts it. */
export function call(port: number, method: string, path: string, opts: { body?: string | object; headers?: Record<string, string> } = {}): Promise<HttpAnswer> {
  return new Promise((resolve, reject) => {
    const headers: Record<string, string> = { ...opts.headers };
    let payload: string | undefined;
    if (opts.body !== undefined) {
      payload = typeof opts.body === 'string' ? opts.body : JSON.stringify(opts.body);
      headers['content-type'] ??= 'application/json';
    }
    const req = request({ host: '127.0.0.1', port, method, path, headers, agent: false }, (res) => {
      const chunks: Buffer[] = [];
      res.on('data', (c: Buffer) => chunks.push(c));
      res.on('end', () => {
        const text = Buffer.concat(chunks).toString('utf8');
        let body: unknown = text;
        try {
          body = text.length > 0 ? JSON.parse(text) : null;
        } catch {
          // not JSON: the assertion on body will show the text
        }
        resolve({ status: res.statusCode ?? 0, headers: res.headers, body });
      });
      res.on('error', reject);
    });
    req.on('error', reject);
    req.end(payload);
  });
}

/**
 * Poll `cond` until it returns a truthy value or the deadline passes (then throw, naming `what`):
 * scripts/lib/wait.ts's waitFor, so a failed assertion in `cond` fails at once instead of counting
 * as "not yet".
 */
export function waitFor<T>(what: string, cond: () => T | Promise<T>, timeoutMs = 10_000, everyMs = 20): Promise<NonNullable<T>> {
  return waitForShared<NonNullable<T>>(
    what,
    async () => {
      const v = await cond();
      return v ? (v as NonNullable<T>) : null;
    },
    timeoutMs,
    everyMs,
  );
}

/** Is a process with this pid alive? */
export function alive(pid: number): boolean {
  try {
    process.kill(pid, 0);
    return true;
  } catch (e) {
    return (e as NodeJS.ErrnoException).code === 'EPERM';
  }
}
