// The command line: a bad config stops the process with exit 2 and a message naming the key; a
// good one runs until SIGINT, logging JSON lines that name the node (and the worker, in workers).
import { test } from 'node:test';
import type { TestContext } from 'node:test';
import assert from 'node:assert/strict';
import { spawn } from 'node:child_process';
import { writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { configPathFromArgs } from '../../../src/server/cli.ts';
import { DurableStorage } from '../../../src/storage/durable-storage.ts';
import { call, tempDir, tlsFiles, waitFor } from './helpers.ts';

const FIXTURE = fileURLToPath(new URL('./fixtures/cli.ts', import.meta.url));
const MAIN = fileURLToPath(new URL('../../../src/main.ts', import.meta.url));

interface Run {
  readonly lines: Record<string, unknown>[];
  stderr: string;
  readonly exited: Promise<{ code: number | null; signal: string | null }>;
  kill(signal: NodeJS.Signals): void;
}

function run(t: TestContext, args: string[], env: Record<string, string> = {}, entry = FIXTURE): Run {
  const child = spawn(process.execPath, ['--import', 'tsx', entry, ...args], { stdio: ['ignore', 'pipe', 'pipe'], env: { ...process.env, ...env } });
  t.after(() => {
    if (child.exitCode === null && child.signalCode === null) child.kill('SIGKILL');
  });
  const r: Run = {
    lines: [],
    stderr: '',
    exited: new Promise((resolve) => child.on('exit', (code, signal) => resolve({ code, signal }))),
    kill: (s) => void child.kill(s),
  };
  let buf = '';
  child.stdout!.on('data', (d: Buffer) => {
    buf += d.toString('utf8');
    let nl;
    while ((nl = buf.indexOf('\n')) >= 0) {
      r.lines.push(JSON.parse(buf.slice(0, nl)) as Record<string, unknown>);
      buf = buf.slice(nl + 1);
    }
  });
  child.stderr!.on('data', (d: Buffer) => (r.stderr += d.toString('utf8')));
  return r;
}

async function configFile(t: TestContext, http: string): Promise<string> {
  const dir = await tempDir(t);
  const file = join(dir, 'node7.yaml');
  await writeFile(
    file,
    `node: { id: 7, dataDir: data }
cluster:
  initialMembers:
    - { id: 7, raftAddress: "127.0.0.1:17007", httpAddress: "127.0.0.1:18007" }
http: ${http}
log: { level: info }
${await tlsFiles(dir)}`,
  );
  return file;
}

test('argument forms', () => {
  assert.equal(configPathFromArgs(['a.yaml']), 'a.yaml');
  assert.equal(configPathFromArgs(['--config', 'a.yaml']), 'a.yaml');
  assert.equal(configPathFromArgs(['--config=a.yaml']), 'a.yaml');
  assert.equal(configPathFromArgs([]), null);
  assert.equal(configPathFromArgs(['--verbose']), null);
  assert.equal(configPathFromArgs(['a.yaml', 'b.yaml']), null);
});

test('a bad config exits 2 with the message naming the key; so does bad usage', async (t) => {
  const file = await configFile(t, '{ listen: "127.0.0.1:0", workers: 0 }');
  const bad = run(t, [file], { RAFTAUTH_RAFT_HEARTBEAT_TICK: '0' });
  assert.deepEqual(await bad.exited, { code: 2, signal: null });
  assert.match(bad.stderr, /^config error in .*node7\.yaml: raft\.heartbeatTick \(from RAFTAUTH_RAFT_HEARTBEAT_TICK\) must be an integer >= 1/);
  const usage = run(t, []);
  assert.deepEqual(await usage.exited, { code: 2, signal: null });
  assert.match(usage.stderr, /^usage: raftauth --config/);
});

test('a good config serves until SIGINT, then exits 0; log lines name the node and the worker', async (t) => {
  const file = await configFile(t, '{ listen: "127.0.0.1:0", workers: 1 }');
  const r = run(t, ['--config', file]);
  const listening = await waitFor('the worker to listen', () => r.lines.find((l) => l.msg === 'worker listening'), 20_000);
  assert.equal(listening.node, 7);
  const port = listening.port as number;
  const answer = await call(port, 'GET', '/v1/status');
  assert.deepEqual([answer.status, answer.headers['x-raftauth-node'], answer.headers['x-raftauth-worker']], [200, '7', '1']);
  const workerLine = await waitFor('a worker log line', () => r.lines.find((l) => l.msg === 'worker serving HTTP'));
  assert.deepEqual([workerLine.node, workerLine.worker], [7, 1]);
  r.kill('SIGINT');
  assert.deepEqual(await r.exited, { code: 0, signal: null });
  const msgs = r.lines.map((l) => l.msg);
  for (const m of ['signal: stopping gracefully', 'stopping', 'worker stopping', 'worker stopped', 'stopped']) assert.ok(msgs.includes(m), `log lacks ${m}: ${JSON.stringify(msgs)}`);
  assert.ok(r.lines.every((l) => l.node === 7 && typeof l.time === 'string'), 'every line is JSON naming the node');
  assert.equal(r.stderr, '');
});

test('a store another process holds: the real node exits 1 saying so, without a stack trace (issue 13, defect 3)', async (t) => {
  const file = await configFile(t, '{ listen: "127.0.0.1:0", workers: 0 }');
  const dataDir = join(file, '..', 'data');
  const held = await DurableStorage.open(dataDir);
  t.after(() => held.close());
  const r = run(t, ['--config', file], {}, MAIN);
  assert.deepEqual(await r.exited, { code: 1, signal: null });
  assert.equal(r.stderr, `raftauth node 7 failed to start: LOCKED: another process holds the store at ${dataDir} (its LevelDB lock ${join(dataDir, 'db', 'LOCK')}): is this node already running? Stop that process first, or give this one another node.dataDir\n`);
});
