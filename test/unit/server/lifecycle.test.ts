// The primary as a real process: SIGTERM stops it gracefully with exit 0 and its workers with it;
// when the primary is killed outright its workers notice the IPC channel close and exit.
import { test } from 'node:test';
import type { TestContext } from 'node:test';
import assert from 'node:assert/strict';
import { spawn } from 'node:child_process';
import type { ChildProcess } from 'node:child_process';
import { fileURLToPath } from 'node:url';
import { alive, call, primaryConfigFile, waitFor } from './helpers.ts';

const FIXTURE = fileURLToPath(new URL('./fixtures/primary.ts', import.meta.url));

async function startPrimary(t: TestContext): Promise<{ child: ChildProcess; port: number; workers: number[]; exited: Promise<{ code: number | null; signal: string | null }> }> {
  const file = await primaryConfigFile(t);
  const child = spawn(process.execPath, ['--import', 'tsx', FIXTURE, file], { stdio: ['ignore', 'pipe', 'inherit'] });
  const exited = new Promise<{ code: number | null; signal: string | null }>((resolve) => child.on('exit', (code, signal) => resolve({ code, signal })));
  t.after(() => {
    if (child.exitCode === null && child.signalCode === null) child.kill('SIGKILL');
  });
  const line = await new Promise<string>((resolve, reject) => {
    let buf = '';
    const timer = setTimeout(() => reject(new Error(`primary did not report within 20 s; output so far: ${buf}`)), 20_000);
    child.stdout!.on('data', (d: Buffer) => {
      buf += d.toString('utf8');
      const nl = buf.indexOf('\n');
      if (nl >= 0) {
        clearTimeout(timer);
        resolve(buf.slice(0, nl));
      }
    });
    void exited.then((e) => reject(new Error(`primary exited early: ${JSON.stringify(e)}`)));
  });
  const { port, workers } = JSON.parse(line) as { port: number; workers: number[] };
  t.after(() => {
    for (const pid of workers) if (alive(pid)) process.kill(pid, 'SIGKILL');
  });
  return { child, port, workers, exited };
}

test('SIGTERM: graceful stop, workers exit, primary exits 0', async (t) => {
  const { child, port, workers, exited } = await startPrimary(t);
  assert.equal(workers.length, 2);
  const r = await call(port, 'PUT', '/v1/kv/k', { body: { value: 'v' } });
  assert.equal(r.status, 200);
  assert.ok(['1', '2'].includes(String(r.headers['x-raftauth-worker'])));
  child.kill('SIGTERM');
  assert.deepEqual(await exited, { code: 0, signal: null });
  await waitFor('the workers to be gone', () => workers.every((p) => !alive(p)));
});

test('the primary killed outright takes its workers with it', async (t) => {
  const { child, port, workers, exited } = await startPrimary(t);
  assert.equal((await call(port, 'GET', '/v1/status')).status, 200);
  child.kill('SIGKILL');
  assert.equal((await exited).signal, 'SIGKILL');
  await waitFor('the orphaned workers to exit', () => workers.every((p) => !alive(p)));
  await assert.rejects(call(port, 'GET', '/v1/status'), /ECONNREFUSED/);
});
