// An in-process cluster of real RaftNodes (LevelDB storage, mTLS gRPC transport) on loopback.
import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { createClusterCa, issueNodeCert } from '../../../src/crypto/certs.ts';
import type { ClusterCa } from '../../../src/crypto/certs.ts';
import { RaftNode } from '../../../src/node/node.ts';
import type { RaftNodeOptions } from '../../../src/node/node.ts';
import type { MemberAddress } from '../../../src/node/members.ts';

export { freePort } from '../../../scripts/lib/wait.ts';
import { freePort } from '../../../scripts/lib/wait.ts';
import { waitFor as waitForShared } from '../../../scripts/lib/wait.ts';
import { stateApplier } from '../../../src/state/applier.ts';

/** Wait for `cond` to hold, polling, with a deadline. Never a fixed sleep. */
export function waitFor<T>(what: string, cond: () => Promise<T | undefined | null | false> | T | undefined | null | false, timeoutMs = 10_000): Promise<T> {
  return waitForShared(what, cond, timeoutMs);
}

export const silentLogger = {
  debug(): void {},
  info(): void {},
  warn(): void {},
  error(o: object, m: string): void {
    if (process.env.NODE_TEST_VERBOSE) console.error('ERROR', m, JSON.stringify(o));
  },
};

export class LocalCluster {
  private readonly overrides: Partial<RaftNodeOptions>;
  readonly nodes = new Map<number, RaftNode>();
  readonly addresses = new Map<number, MemberAddress>();
  private ca!: ClusterCa;
  private base = '';

  constructor(overrides: Partial<RaftNodeOptions> = {}) {
    this.overrides = overrides;
  }

  async init(ids: number[]): Promise<void> {
    this.ca = await createClusterCa();
    this.base = await mkdtemp(join(tmpdir(), 'raftauth-node-test-'));
    for (const id of ids) await this.reserve(id);
  }

  async reserve(id: number): Promise<MemberAddress> {
    const a = { raftAddress: `127.0.0.1:${await freePort()}`, httpAddress: `127.0.0.1:${await freePort()}` };
    this.addresses.set(id, a);
    return a;
  }

  dataDir(id: number): string {
    return join(this.base, `n${id}`);
  }

  async start(id: number, opts: { join?: boolean; initial?: number[] } = {}): Promise<RaftNode> {
    const cert = await issueNodeCert(this.ca, id);
    const addr = this.addresses.get(id)!;
    const initial = new Map<number, MemberAddress>();
    for (const m of opts.initial ?? [...this.addresses.keys()]) initial.set(m, this.addresses.get(m)!);
    const node = await RaftNode.start({
      id,
      dataDir: this.dataDir(id),
      initialMembers: initial,
      join: opts.join ?? false,
      raftListen: { host: '127.0.0.1', port: Number(addr.raftAddress.split(':')[1]) },
      tls: { caPem: this.ca.certPem, certPem: cert.certPem, keyPem: cert.keyPem },
      tickMs: 20,
      electionTick: 10,
      heartbeatTick: 1,
      logger: silentLogger,
      applier: stateApplier(),
      onFatal: (e) => {
        throw e;
      },
      ...this.overrides,
    });
    this.nodes.set(id, node);
    return node;
  }

  async stop(id: number): Promise<void> {
    const n = this.nodes.get(id);
    this.nodes.delete(id);
    await n?.stop();
  }

  async leader(timeoutMs = 10_000): Promise<RaftNode> {
    return waitFor('a leader', async () => {
      for (const n of this.nodes.values()) {
        const s = await n.status();
        if (s.role === 'leader') return n;
      }
      return undefined;
    }, timeoutMs);
  }

  async close(): Promise<void> {
    for (const id of [...this.nodes.keys()]) await this.stop(id);
    if (this.base) await rm(this.base, { recursive: true, force: true });
  }
}

export async function put(n: RaftNode, key: string, value: string): Promise<void> {
  const r = await n.write({ domain: 'kv', op: 'put', args: { key, value }, timeoutMs: 10_000 });
  if (!r.ok) throw new Error(`put failed: ${r.code} ${r.message}`);
}

export async function get(n: RaftNode, key: string, consistency: 'linearizable' | 'local' = 'linearizable'): Promise<string | null> {
  const r = await n.read({ domain: 'kv', op: 'get', args: { key }, timeoutMs: 10_000, consistency });
  if (!r.ok) throw new Error(`get failed: ${r.code} ${r.message}`);
  return (r.value as { value: string | null }).value;
}
