// The write-path prototype under test (README "Prototype"; the node is prototype/node.ts): 3 nodes
// on loopback, node 1 the fixed leader, run from source with tsx. One temp dir holds the throwaway
// CA and node certificates (made with the project's own src/crypto/certs.ts), data and logs. Each
// node runs in its own process group, so the CPU split by process kind (procs.ts) sees the primary
// and its HTTP worker as it does for raftauth.
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { createClusterCa, issueNodeCert, writePem } from '../../src/crypto/certs.ts';
import type { Answer, Endpoint, HttpCall } from './client.ts';
import { freePorts, makeTempDir, spawnChild, waitFor, WaitAborted } from './procs.ts';
import { MemberCluster } from './member-cluster.ts';
import { kvPutCall } from './raftauth.ts';
import type { Child } from './procs.ts';
import type { ProtoSystemName, SystemUnderTest } from './system.ts';
import { protoVariant } from './system.ts';
import { PROTO_CONFIG_ENV, PROTO_MEMBERS } from './prototype/wire.ts';
import type { ProtoNodeConfig } from './prototype/wire.ts';

const REPO_ROOT = fileURLToPath(new URL('../..', import.meta.url));
const NODE_ENTRY = fileURLToPath(new URL('./prototype/node.ts', import.meta.url));
const START_TIMEOUT_MS = 60_000;
const STATUS_TIMEOUT_MS = 1_000;

interface Member {
  readonly id: number;
  readonly httpPort: number;
  child: Child | null;
  dead: boolean;
}

export class ProtoCluster extends MemberCluster<Member> implements SystemUnderTest {
  readonly name: ProtoSystemName;
  readonly version = 'scripts/bench/prototype (no raft core, no elections, no sessions, no OAuth)';
  readonly settings: Record<string, unknown>;
  readonly attemptTimeoutMs: number;

  private constructor(name: ProtoSystemName, dir: string, members: Member[], attemptTimeoutMs: number) {
    super(dir, members, members.map((m): Endpoint => ({ member: String(m.id), host: '127.0.0.1', port: m.httpPort })));
    this.name = name;
    this.attemptTimeoutMs = attemptTimeoutMs;
    const v = protoVariant(name);
    this.settings = {
      members: PROTO_MEMBERS,
      leader: 'node 1, fixed (no elections)',
      httpWorkersPerNode: v.worker ? 1 : 0,
      http: v.worker ? 'node:http in one HTTP worker (node:cluster), IPC serialization advanced, one Buffer per event-loop turn each way' : 'node:http in the primary (no IPC hop)',
      peerTransport: `@grpc/grpc-js bidirectional streams, raw-bytes serializers, one frame per event-loop turn, ${v.tls ? 'mutual TLS 1.3 (as src/transport)' : 'no TLS'}`,
      batching: 'every write of one leader turn is one log entry',
      fsync: 'on: one fsynced LevelDB batch in flight per node (leader appends in parallel with replication); apply: one unsynced batch in flight on the leader, in the next fsynced batch on followers',
      api: 'PUT /v1/kv/:key',
      runtime: 'node --import tsx (from source)',
      clientAttemptTimeoutMs: attemptTimeoutMs,
      dataDir: dir,
    };
  }

  static async start(name: ProtoSystemName, attemptTimeoutMs: number, parentDir: string): Promise<ProtoCluster> {
    const v = protoVariant(name);
    const dir = await makeTempDir(`raftauth-bench-${name}-`, parentDir);
    const ports = await freePorts(PROTO_MEMBERS * 2);
    const members: Member[] = Array.from({ length: PROTO_MEMBERS }, (_, i) => ({ id: i + 1, httpPort: ports[i]!, child: null, dead: false }));
    const peerPorts = ports.slice(PROTO_MEMBERS);
    const c = new ProtoCluster(name, dir, members, attemptTimeoutMs);
    try {
      if (v.tls) {
        const ca = await createClusterCa();
        await writePem(dir, 'ca', ca);
        for (const m of members) await writePem(dir, `node${m.id}`, await issueNodeCert(ca, m.id));
      }
      // BENCH_RAFTAUTH_NODE_ARGS: node flags for every node and its worker, as for raftauth (README, profiling).
      const nodeArgs = (process.env.BENCH_RAFTAUTH_NODE_ARGS ?? '').split(' ').filter((x) => x.length > 0);
      for (const m of members) {
        const config: ProtoNodeConfig = { id: m.id, httpPort: m.httpPort, peerPorts, dataDir: join(dir, `data${m.id}`), tlsDir: v.tls ? dir : null, worker: v.worker };
        m.child = spawnChild(`${name} node ${m.id}`, process.execPath, [...nodeArgs, '--import', 'tsx', NODE_ENTRY], join(dir, `node${m.id}.log`), {
          cwd: REPO_ROOT,
          env: { ...process.env, [PROTO_CONFIG_ENV]: JSON.stringify(config) },
        });
      }
      await c.leader(START_TIMEOUT_MS);
      return c;
    } catch (e) {
      await c.stop();
      throw e;
    }
  }

  putCall(key: string, value: string, budgetMs: number): HttpCall {
    return kvPutCall(key, value, budgetMs);
  }

  putOk(a: Answer): boolean {
    return a.status === 200;
  }

  /** Node 1 leads, always: ready once every live node answers its status (its peer streams are up). */
  async leader(timeoutMs: number): Promise<number> {
    return waitFor(
      `the ${this.name} nodes to connect`,
      async () => {
        for (const m of this.members) if (!m.dead && m.child && !m.child.running) throw new WaitAborted(`${this.name} node ${m.id} exited ${JSON.stringify(m.child.exit)}:\n${m.child.logTail()}`);
        const live = this.members.map((m, i) => ({ m, i })).filter(({ m }) => !m.dead);
        const answers = await Promise.all(live.map(({ i }) => this.statusPool.attempt(i, { method: 'GET', path: '/v1/status', headers: {}, body: Buffer.alloc(0) }, STATUS_TIMEOUT_MS).catch(() => null)));
        return answers.every((a) => a?.status === 200) ? 1 : null;
      },
      timeoutMs,
    ).then(() => 0);
  }

  async term(): Promise<number> {
    return 1; // no elections
  }
}
