// etcd 3.4 as the baseline: a 3-member cluster on loopback from the Debian package `etcd-server`,
// driven through its v3 HTTP/JSON gateway (`POST /v3/kv/put`, base64 key and value), which is
// served on the client URL. Settings are etcd's defaults — heartbeat 100 ms, election timeout
// 1000 ms, fsync of the WAL on every commit — so the numbers are those of a stock etcd.
import { spawnSync } from 'node:child_process';
import { accessSync, constants } from 'node:fs';
import { randomBytes } from 'node:crypto';
import { delimiter, join } from 'node:path';
import type { Answer, Endpoint, HttpCall } from './client.ts';
import { freePorts, makeTempDir, spawnChild, waitFor, WaitAborted } from './procs.ts';
import { MemberCluster } from './member-cluster.ts';
import type { Child } from './procs.ts';
import type { SystemUnderTest } from './system.ts';

const MEMBERS = 3;
/** apt-get may download ~20 MB over a slow mirror; beyond this something is wrong. */
const INSTALL_TIMEOUT_MS = 10 * 60_000;
const START_TIMEOUT_MS = 30_000;
const STATUS_TIMEOUT_MS = 1_000;

/** The full path of an executable named `name` on PATH, or null. */
function onPath(name: string): string | null {
  for (const dir of (process.env.PATH ?? '').split(delimiter)) {
    if (dir === '') continue;
    const p = join(dir, name);
    try {
      accessSync(p, constants.X_OK);
      return p;
    } catch {
      // not here
    }
  }
  return null;
}

/**
 * The etcd binary and its version. When `etcd` is not on PATH, installs the Debian packages
 * etcd-server and etcd-client (the baseline) with apt-get, saying so on stderr; refuses
 * anything but etcd 3.4.x, which is what the targets were measured against.
 */
export function ensureEtcd(say: (line: string) => void): { bin: string; version: string; installedNow: boolean } {
  let bin = onPath('etcd');
  let installedNow = false;
  if (bin === null) {
    if (process.getuid?.() !== 0) throw new Error('etcd is not on PATH and this is not root: install it with `apt-get install -y etcd-server etcd-client`');
    say('etcd is not on PATH: installing the Debian packages etcd-server and etcd-client (apt-get update && apt-get install -y etcd-server etcd-client)');
    for (const args of [['update'], ['install', '-y', 'etcd-server', 'etcd-client']]) {
      // apt's output goes to our stderr (fd 2): stdout carries only the JSON report.
      const r = spawnSync('apt-get', args, { stdio: ['ignore', 2, 2], timeout: INSTALL_TIMEOUT_MS, env: { ...process.env, DEBIAN_FRONTEND: 'noninteractive' } });
      if (r.error) throw new Error(`apt-get ${args.join(' ')} failed: ${r.error.message}`);
      if (r.status !== 0) throw new Error(`apt-get ${args.join(' ')} exited with ${r.status ?? r.signal}`);
    }
    bin = onPath('etcd');
    if (bin === null) throw new Error('etcd is still not on PATH after installing etcd-server');
    installedNow = true;
  }
  const v = spawnSync(bin, ['--version'], { encoding: 'utf8', timeout: 10_000 });
  const m = /etcd Version:\s*(\S+)/.exec(v.stdout ?? '');
  if (!m) throw new Error(`could not read the version of ${bin}: ${v.stdout ?? ''}${v.stderr ?? ''}`);
  const version = m[1]!;
  if (!version.startsWith('3.4.')) throw new Error(`the baseline is etcd 3.4 (Debian etcd-server); ${bin} is ${version}`);
  return { bin, version, installedNow };
}

interface Member {
  readonly name: string;
  readonly clientPort: number;
  readonly peerPort: number;
  child: Child | null;
  dead: boolean;
}

function b64(s: string): string {
  return Buffer.from(s, 'utf8').toString('base64');
}

export class EtcdCluster extends MemberCluster<Member> implements SystemUnderTest {
  readonly version: string;
  readonly attemptTimeoutMs: number;
  readonly name = 'etcd' as const;
  readonly settings: Record<string, unknown>;

  private constructor(
    version: string,
    dir: string,
    members: Member[],
    attemptTimeoutMs: number,
  ) {
    super(dir, members, members.map((m): Endpoint => ({ member: m.name, host: '127.0.0.1', port: m.clientPort })));
    this.version = version;
    this.attemptTimeoutMs = attemptTimeoutMs;
    this.settings = {
      members: MEMBERS,
      heartbeatIntervalMs: 100,
      electionTimeoutMs: 1000,
      fsync: 'on (etcd default: WAL fsync on every commit)',
      api: 'v3 HTTP/JSON gateway, POST /v3/kv/put',
      clientAttemptTimeoutMs: attemptTimeoutMs,
      logLevel: 'warn',
      dataDir: dir,
    };
  }

  static async start(bin: string, version: string, parentDir: string, attemptTimeoutMs: number): Promise<EtcdCluster> {
    const dir = await makeTempDir('raftauth-bench-etcd-', parentDir);
    const ports = await freePorts(MEMBERS * 2);
    const members: Member[] = Array.from({ length: MEMBERS }, (_, i) => ({ name: `m${i + 1}`, clientPort: ports[2 * i]!, peerPort: ports[2 * i + 1]!, child: null, dead: false }));
    const initialCluster = members.map((m) => `${m.name}=http://127.0.0.1:${m.peerPort}`).join(',');
    const token = `bench-${randomBytes(6).toString('hex')}`;
    // etcd reads ETCD_* variables as flags: a stray one in the caller's shell must not change the baseline.
    const env: NodeJS.ProcessEnv = {};
    for (const [k, v] of Object.entries(process.env)) if (!k.startsWith('ETCD')) env[k] = v;
    const c = new EtcdCluster(version, dir, members, attemptTimeoutMs);
    try {
      for (const m of members) {
        const client = `http://127.0.0.1:${m.clientPort}`;
        const peer = `http://127.0.0.1:${m.peerPort}`;
        m.child = spawnChild(
          `etcd ${m.name}`,
          bin,
          [
            '--name', m.name,
            '--data-dir', join(dir, m.name),
            '--listen-client-urls', client,
            '--advertise-client-urls', client,
            '--listen-peer-urls', peer,
            '--initial-advertise-peer-urls', peer,
            '--initial-cluster', initialCluster,
            '--initial-cluster-state', 'new',
            '--initial-cluster-token', token,
            '--logger', 'zap',
            '--log-level', 'warn',
          ],
          join(dir, `${m.name}.log`),
          { env },
        );
      }
      await c.leader(START_TIMEOUT_MS);
      return c;
    } catch (e) {
      await c.stop();
      throw e;
    }
  }

  putCall(key: string, value: string): HttpCall {
    return { method: 'POST', path: '/v3/kv/put', headers: {}, body: Buffer.from(JSON.stringify({ key: b64(key), value: b64(value) })) };
  }

  putOk(a: Answer): boolean {
    return a.status === 200;
  }

  private async status(i: number): Promise<{ memberId: string; leader: string; term: number }> {
    const a = await this.statusPool.attempt(i, { method: 'POST', path: '/v3/maintenance/status', headers: {}, body: Buffer.from('{}') }, STATUS_TIMEOUT_MS);
    if (a.status !== 200) throw new Error(`etcd ${this.members[i]!.name} status: HTTP ${a.status} ${a.body}`);
    const o = JSON.parse(a.body) as { header?: { member_id?: string }; leader?: string; raftTerm?: string };
    return { memberId: String(o.header?.member_id ?? ''), leader: String(o.leader ?? '0'), term: Number(o.raftTerm ?? 0) };
  }

  async term(): Promise<number> {
    const live = this.members.map((m, i) => ({ m, i })).filter(({ m }) => !m.dead);
    const st = await Promise.all(live.map(({ i }) => this.status(i)));
    return Math.max(...st.map((s) => s.term));
  }

  async leader(timeoutMs: number): Promise<number> {
    return waitFor(
      'the etcd members to agree on a leader',
      async () => {
        const live = this.members.map((m, i) => ({ m, i })).filter(({ m }) => !m.dead);
        for (const { m } of live) if (m.child && !m.child.running) throw new WaitAborted(`etcd ${m.name} exited ${JSON.stringify(m.child.exit)}:\n${m.child.logTail()}`);
        const st = await Promise.all(live.map(({ i }) => this.status(i)));
        const leaders = new Set(st.map((s) => s.leader));
        if (leaders.size !== 1) return null;
        const leaderId = st[0]!.leader;
        const k = st.findIndex((s) => s.memberId === leaderId);
        return k < 0 ? null : live[k]!.i + 1; // +1: 0 is falsy for waitFor
      },
      timeoutMs,
    ).then((x) => x - 1);
  }
}
