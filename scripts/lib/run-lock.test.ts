// The launcher lock of `npm start` (issue 13, defect 3): held while its launcher or any of its
// nodes runs, taken over when everything it names is gone (or the pid now runs something else),
// and the description's busy ports are named.
import { test } from 'node:test';
import type { TestContext } from 'node:test';
import assert from 'node:assert/strict';
import { spawn } from 'node:child_process';
import { existsSync, readFileSync } from 'node:fs';
import { mkdtemp, rm, writeFile } from 'node:fs/promises';
import { createServer } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { ClusterRunningError, RUN_LOCK_FILE, acquireRunLock, busyPorts, runs } from './run-lock.ts';
import { loopbackSpec } from './local-cluster.ts';

async function tempDir(t: TestContext): Promise<string> {
  const dir = await mkdtemp(join(tmpdir(), 'raftauth-run-lock-'));
  t.after(() => rm(dir, { recursive: true, force: true }));
  return dir;
}

/** A live process whose command line contains `marker` (a stand-in for a launcher or a node). */
async function sleeper(t: TestContext, marker: string): Promise<number> {
  const child = spawn(process.execPath, ['-e', 'setInterval(() => {}, 1000)', marker], { stdio: 'ignore' });
  t.after(() => void child.kill('SIGKILL'));
  await new Promise<void>((resolve, reject) => {
    child.once('spawn', resolve);
    child.once('error', reject);
  });
  return child.pid!;
}

/** A pid that is not running any more. */
async function deadPid(): Promise<number> {
  const child = spawn(process.execPath, ['-e', ''], { stdio: 'ignore' });
  await new Promise((r) => child.once('exit', r));
  return child.pid!;
}

test('the lock is held while its launcher runs, and free again once released', async (t) => {
  const dir = await tempDir(t);
  const launcher = await sleeper(t, 'fake-start-local.ts');
  const first = await acquireRunLock(dir, { pid: launcher, command: 'fake-start-local.ts' });
  const rec = JSON.parse(readFileSync(join(dir, RUN_LOCK_FILE), 'utf8')) as { pid: number };
  assert.equal(rec.pid, launcher);
  await assert.rejects(acquireRunLock(dir), (e: unknown) => {
    assert.ok(e instanceof ClusterRunningError);
    assert.match(e.message, new RegExp(`^another \`npm start\` \\(pid ${launcher}\\) is running the cluster in ${dir.replace(/[.]/g, '\\.')} .*kill ${launcher}`));
    return true;
  });
  await first.release();
  assert.equal(existsSync(join(dir, RUN_LOCK_FILE)), false);
  const second = await acquireRunLock(dir);
  await second.release();
});

test('a launcher that is gone while its nodes run still holds the lock; the message names the nodes', async (t) => {
  const dir = await tempDir(t);
  const node2 = await sleeper(t, '/x/n2/node.yaml');
  const lock = await acquireRunLock(dir, { pid: await deadPid(), command: 'start-local.ts' });
  await lock.recordNodes([
    { id: 1, pid: await deadPid(), configFile: '/x/n1/node.yaml' },
    { id: 2, pid: node2, configFile: '/x/n2/node.yaml' },
  ]);
  await assert.rejects(acquireRunLock(dir), (e: unknown) => {
    assert.ok(e instanceof ClusterRunningError);
    assert.match(e.message, new RegExp(`nodes of an earlier \`npm start\` in .* still run \\(node 2: pid ${node2}\\), but its launcher .* is gone; stop them first \\(kill ${node2}\\)`));
    return true;
  });
});

test('a stale lock is taken over: everything it names is gone, or its pid now runs another command', async (t) => {
  const dir = await tempDir(t);
  await writeFile(join(dir, RUN_LOCK_FILE), JSON.stringify({ pid: await deadPid(), command: 'start-local.ts', startedAt: 'then', nodes: [{ id: 1, pid: await deadPid(), configFile: '/x/n1/node.yaml' }] }));
  const a = await acquireRunLock(dir);
  await a.release();
  // A reused pid: alive, but not a launcher (where /proc can tell).
  const other = await sleeper(t, 'something-else');
  if (existsSync('/proc/self/cmdline')) {
    assert.equal(runs(other, 'start-local.ts'), false);
    await writeFile(join(dir, RUN_LOCK_FILE), JSON.stringify({ pid: other, command: 'start-local.ts', startedAt: 'then', nodes: [] }));
    const b = await acquireRunLock(dir);
    assert.equal((JSON.parse(readFileSync(join(dir, RUN_LOCK_FILE), 'utf8')) as { pid: number }).pid, process.pid);
    await b.release();
  }
  // Something that is not our lock is not removed.
  await writeFile(join(dir, RUN_LOCK_FILE), 'not json');
  await assert.rejects(acquireRunLock(dir), /is not a lock this launcher wrote; if no cluster runs from .*, remove it/);
  assert.equal(readFileSync(join(dir, RUN_LOCK_FILE), 'utf8'), 'not json');
});

test('busyPorts names each port of the description something listens on', async (t) => {
  const dir = await tempDir(t);
  const spec = await loopbackSpec({ dir, nodes: 2 });
  assert.deepEqual(await busyPorts(spec), []);
  const s = createServer();
  await new Promise<void>((r) => s.listen(spec.nodes[1]!.ports.http, '127.0.0.1', r));
  t.after(() => void s.close());
  assert.deepEqual(await busyPorts(spec), [`127.0.0.1:${spec.nodes[1]!.ports.http} (node 2's http port)`]);
});
