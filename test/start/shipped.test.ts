// Every shipped cluster description (cluster-configs/*.yaml) starts with `npm start` on fresh data
// and serves (issue 13, defect 8: zones-5 failed one start in two, creating the demo user before
// the cluster had its data key). One at a time, on the description's own ports (so this file runs
// alone, under the machine-wide lock of the multi-process tests), each in a fresh directory with
// any free front port: ready, a client-credentials token through the front, `raftauth status`
// given one admin URL reaches every member, and Ctrl-C stops every node.
import assert from 'node:assert/strict';
import { spawn } from 'node:child_process';
import { existsSync, readdirSync } from 'node:fs';
import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, before, describe, it } from 'node:test';
import { readClusterFile } from '../../src/cli/cluster-file.ts';
import type { ClusterFile } from '../../src/cli/cluster-file.ts';
import { runRaftauth } from '../../src/cli/main.ts';
import { REPO_ROOT, loadClusterSpec } from '../../scripts/lib/local-cluster.ts';
import { WaitAborted, waitFor } from '../../scripts/lib/wait.ts';

const START_SCRIPT = join(REPO_ROOT, 'scripts', 'start-local.ts');
const CONFIGS = join(REPO_ROOT, 'cluster-configs');
/** Five tsx-compiled nodes on a shared 2-core machine: generous, and only a bound. */
const START_TIMEOUT_MS = 120_000;
const STOP_TIMEOUT_MS = 30_000;

const shipped = readdirSync(CONFIGS).filter((f) => f.endsWith('.yaml')).sort();

function alive(pid: number): boolean {
  try {
    process.kill(pid, 0);
    return true;
  } catch (e) {
    return (e as NodeJS.ErrnoException).code === 'EPERM';
  }
}

describe('every shipped cluster description starts on fresh data', () => {
  let tmp: string;
  const started: { child: ReturnType<typeof spawn>; dir: string }[] = [];

  before(async () => {
    tmp = await mkdtemp(join(tmpdir(), 'raftauth-shipped-'));
  });
  after(async () => {
    // A failed test must not leave nodes behind (they run in their own process groups).
    for (const s of started) {
      if (s.child.exitCode === null && s.child.signalCode === null) s.child.kill('SIGKILL');
      const file = join(s.dir, 'cluster.json');
      for (const n of existsSync(file) ? readClusterFile(file).nodes : []) {
        try {
          process.kill(-n.pid, 'SIGKILL');
        } catch {
          // already gone
        }
      }
    }
    await rm(tmp, { recursive: true, force: true });
  });

  it('ships descriptions', () => {
    assert.ok(shipped.length >= 3, shipped.join(', '));
  });

  for (const name of shipped) {
    it(name, async () => {
      const file = join(CONFIGS, name);
      const spec = loadClusterSpec(file);
      const dir = join(tmp, spec.name);
      let out = '';
      const child = spawn(process.execPath, ['--import', 'tsx', START_SCRIPT, '--cluster', file, '--dir', dir, '--front-port', '0'], { cwd: REPO_ROOT, stdio: ['ignore', 'pipe', 'pipe'] });
      started.push({ child, dir });
      child.stdout!.on('data', (d) => (out += d));
      child.stderr!.on('data', (d) => (out += d));
      const exit = new Promise<number | null>((r) => child.once('exit', (code) => r(code)));
      const clusterFile = join(dir, 'cluster.json');
      let info: ClusterFile;
      try {
        info = await waitFor(
          `${name} to be ready (cluster.json)`,
          () => {
            if (child.exitCode !== null) throw new WaitAborted(`start-local exited with ${child.exitCode}`);
            return existsSync(clusterFile) ? readClusterFile(clusterFile) : null;
          },
          START_TIMEOUT_MS,
          100,
        );
      } catch (e) {
        throw new Error(`${(e as Error).message}\n${out.slice(-6000)}`, { cause: e });
      }
      assert.deepEqual(info.nodes.map((n) => n.id), spec.nodes.map((n) => n.id));

      const c = info.demo!.confidentialClient;
      const res = await fetch(`${info.front}/token`, {
        method: 'POST',
        headers: { authorization: `Basic ${Buffer.from(`${c.client_id}:${c.client_secret}`).toString('base64')}`, 'content-type': 'application/x-www-form-urlencoded' },
        body: 'grant_type=client_credentials&scope=api%3Aread',
        signal: AbortSignal.timeout(10_000),
      });
      assert.equal(res.status, 200, await res.clone().text());

      // One admin URL is enough: the member table carries the others' admin addresses.
      let stdout = '';
      let stderr = '';
      const io = { out: (t: string) => void (stdout += t), err: (t: string) => void (stderr += t), env: {}, cwd: tmp };
      assert.equal(await runRaftauth(['status', '--json', '--admin', info.nodes[0]!.admin, '--token-file', join(dir, 'admin.token')], io), 0, stderr);
      const report = JSON.parse(stdout) as { members: { id: number; role: string }[]; unreachable: unknown[] };
      assert.deepEqual(report.unreachable, []);
      assert.deepEqual(report.members.map((m) => m.id), spec.nodes.map((n) => n.id));
      assert.equal(report.members.filter((m) => m.role === 'leader').length, 1, stdout);
      assert.ok(report.members.every((m) => m.role === 'leader' || m.role === 'follower'), stdout);

      const pids = info.nodes.map((n) => n.pid);
      child.kill('SIGINT');
      const code = await Promise.race([exit, new Promise<'timeout'>((r) => setTimeout(() => r('timeout'), STOP_TIMEOUT_MS).unref())]);
      assert.equal(code, 0, out.slice(-3000));
      await waitFor('every node process gone', () => pids.every((p) => !alive(p)), 5_000);
    });
  }
});
