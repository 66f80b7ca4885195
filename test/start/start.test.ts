// `npm start` end to end (scripts/start-local.ts run directly, as npm would; its nodes run the
// built dist/, which must be fresh): a 3-node cluster on
// free loopback ports in a temp directory, a write and a read through the front URL, the CLI
// against the real cluster, SIGINT, and every node process (primaries and their HTTP workers)
// gone. A second start in the same directory reuses the certificates and the data.
import assert from 'node:assert/strict';
import { spawn } from 'node:child_process';
import type { ChildProcess } from 'node:child_process';
import { existsSync, readFileSync, statSync } from 'node:fs';
import { mkdtemp, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, before, describe, it } from 'node:test';
import { stringify } from 'yaml';
import { readClusterFile } from '../../src/cli/cluster-file.ts';
import type { ClusterFile } from '../../src/cli/cluster-file.ts';
import { runRaftauth } from '../../src/cli/main.ts';
import { REPO_ROOT, loopbackSpec } from '../../scripts/lib/local-cluster.ts';
import { requireFreshDist } from '../../scripts/lib/dist.ts';
import { childrenOf } from '../../scripts/lib/proc.ts';

const START_SCRIPT = join(REPO_ROOT, 'scripts', 'start-local.ts');
/** Three nodes on a shared 2-core machine: generous, and only a bound. */
const START_TIMEOUT_MS = 90_000;
const STOP_TIMEOUT_MS = 30_000;

async function waitFor<T>(what: string, cond: () => T | null | undefined | false, timeoutMs: number, diag: () => string = () => ''): Promise<T> {
  const deadline = Date.now() + timeoutMs;
  for (;;) {
    const v = cond();
    if (v) return v;
    if (Date.now() > deadline) throw new Error(`timed out after ${timeoutMs} ms waiting for ${what}\n${diag()}`);
    await new Promise((r) => setTimeout(r, 50));
  }
}

function alive(pid: number): boolean {
  try {
    process.kill(pid, 0);
    return true;
  } catch (e) {
    return (e as NodeJS.ErrnoException).code === 'EPERM';
  }
}


interface Run {
  child: ChildProcess;
  output: () => string;
  exit: Promise<number | null>;
}

function startLocal(descFile: string, dir: string, extra: readonly string[] = []): Run {
  let out = '';
  const child = spawn(process.execPath, ['--import', 'tsx', START_SCRIPT, '--cluster', descFile, '--dir', dir, '--front-port', '0', ...extra], { cwd: REPO_ROOT, stdio: ['ignore', 'pipe', 'pipe'] });
  child.stdout!.on('data', (d) => (out += d));
  child.stderr!.on('data', (d) => (out += d));
  const exit = new Promise<number | null>((r) => child.once('exit', (code) => r(code)));
  return { child, output: () => out, exit };
}

async function clientCredentials(info: ClusterFile): Promise<{ status: number; body: Record<string, unknown> }> {
  const c = info.demo!.confidentialClient;
  const res = await fetch(`${info.front}/token`, {
    method: 'POST',
    headers: { authorization: `Basic ${Buffer.from(`${c.client_id}:${c.client_secret}`).toString('base64')}`, 'content-type': 'application/x-www-form-urlencoded' },
    body: 'grant_type=client_credentials&scope=api%3Aread',
    signal: AbortSignal.timeout(10_000),
  });
  return { status: res.status, body: (await res.json()) as Record<string, unknown> };
}

async function kvPut(front: string, key: string, value: string): Promise<Response> {
  return fetch(`${front}/v1/kv/${key}`, { method: 'PUT', headers: { 'content-type': 'application/json' }, body: JSON.stringify({ value }), signal: AbortSignal.timeout(10_000) });
}

describe('npm start (scripts/start-local.ts)', () => {
  let tmp: string;
  let descFile: string;
  let dir: string;
  const runs: Run[] = [];

  before(async () => {
    // start-local.ts would build a missing or stale dist/ itself; the test runs what `npm test` built, or fails saying so.
    requireFreshDist();
    tmp = await mkdtemp(join(tmpdir(), 'raftauth-start-'));
    dir = join(tmp, 'local');
    // The shipped local-3.yaml with its fixed ports could collide with other tests on this
    // machine: the same description on free ports.
    const spec = await loopbackSpec({ dir, nodes: 3 });
    descFile = join(tmp, 'test-3.yaml');
    await writeFile(
      descFile,
      stringify({
        name: 'test-3',
        dir,
        settings: { raft: { tickMs: 50 }, http: { workers: 1 }, log: { level: 'info' } },
        nodes: spec.nodes.map((n) => ({ id: n.id, ports: n.ports })),
      }),
    );
  });
  after(async () => {
    // A failed test must not leave nodes behind: they run in their own process groups (so Ctrl-C
    // stops them in order) and would outlive a SIGKILLed launcher, holding their ports.
    const file = join(dir, 'cluster.json');
    const pids = existsSync(file) ? readClusterFile(file).nodes.map((n) => n.pid) : [];
    for (const r of runs) if (r.child.exitCode === null && r.child.signalCode === null) r.child.kill('SIGKILL');
    for (const pid of pids) {
      try {
        process.kill(-pid, 'SIGKILL'); // the node's process group: its primary and HTTP workers
      } catch {
        // already gone
      }
    }
    await rm(tmp, { recursive: true, force: true });
  });

  async function startAndWait(): Promise<{ run: Run; info: ClusterFile }> {
    const run = startLocal(descFile, dir);
    runs.push(run);
    const file = join(dir, 'cluster.json');
    const info = await waitFor(
      'cluster.json',
      () => {
        if (run.child.exitCode !== null) throw new Error(`start-local exited with ${run.child.exitCode}:\n${run.output()}`);
        return existsSync(file) ? readClusterFile(file) : null;
      },
      START_TIMEOUT_MS,
      run.output,
    );
    return { run, info };
  }

  async function interruptAndCheck(run: Run, info: ClusterFile): Promise<void> {
    const primaries = info.nodes.map((n) => n.pid);
    const workers = primaries.flatMap(childrenOf);
    assert.ok(workers.length >= 3, `each node has an HTTP worker (found ${workers.length})`);
    run.child.kill('SIGINT');
    const code = await Promise.race([run.exit, new Promise<'timeout'>((r) => setTimeout(() => r('timeout'), STOP_TIMEOUT_MS).unref())]);
    assert.equal(code, 0, run.output().slice(-3000));
    await waitFor('every node process gone', () => [...primaries, ...workers].every((p) => !alive(p)), 5_000, () => `alive: ${[...primaries, ...workers].filter(alive).join(', ')}`);
    assert.equal(existsSync(join(dir, 'cluster.json')), false, 'cluster.json is removed on stop');
    assert.equal(existsSync(join(dir, 'launcher.json')), false, 'the launcher lock is released on stop');
    assert.match(run.output(), /\[start\] all nodes stopped/);
  }

  it('starts, serves through the front, answers the CLI, and stops every node on SIGINT', async () => {
    const { run, info } = await startAndWait();
    assert.deepEqual(info.nodes.map((n) => n.id), [1, 2, 3]);
    for (const n of info.nodes) assert.match(n.admin, /^http:\/\/127\.0\.0\.1:\d+$/);
    // The issuer is http://localhost:<port>, a secure context where browsers allow WebAuthn (issue 13, defect 4).
    assert.match(info.front, /^http:\/\/localhost:\d+$/);
    const out = run.output();
    assert.match(out, /\[start\] created .*ca\.key/);
    assert.match(out, /^\[n1\] \{/m, 'node 1 logs prefixed');
    assert.match(out, /^\[n3\] \{/m, 'node 3 logs prefixed');
    assert.match(out, new RegExp(`front: +${info.front.replace(/[.]/g, '\\.')}`));

    // The demo credentials fetch a token through the front at once (the README's quick start).
    assert.ok(info.demo, 'cluster.json carries the demo credentials');
    assert.equal(statSync(join(dir, 'cluster.json')).mode & 0o077, 0, 'cluster.json is private: it holds the demo secret');
    const tok = await clientCredentials(info);
    assert.equal(tok.status, 200, JSON.stringify(tok.body));
    assert.equal(tok.body.token_type, 'Bearer');
    const meta = (await (await fetch(`${info.front}/.well-known/openid-configuration`)).json()) as { issuer: string };
    assert.equal(meta.issuer, info.front, 'the issuer is the front URL');

    const put = await kvPut(info.front, 'greeting', 'hello');
    assert.equal(put.status, 200, await put.text());
    const got = await fetch(`${info.front}/v1/kv/greeting`);
    assert.deepEqual(await got.json(), { value: 'hello' });

    // The CLI against the real cluster, finding everything from cluster.json.
    const io = { out: (t: string) => void (stdout += t), err: (t: string) => void (stderr += t), env: {}, cwd: tmp };
    let stdout = '';
    let stderr = '';
    assert.equal(await runRaftauth(['status', '--json', '--cluster', join(dir, 'cluster.json')], io), 0, stderr);
    const report = JSON.parse(stdout) as { leader: number; members: { id: number; role: string; voter: boolean }[] };
    assert.ok(report.leader >= 1, stdout);
    assert.deepEqual(report.members.map((m) => [m.id, m.voter]), [[1, true], [2, true], [3, true]]);
    assert.equal(report.members.filter((m) => m.role === 'leader').length, 1);
    const target = report.members.find((m) => m.role !== 'leader')!.id;
    stdout = '';
    assert.equal(await runRaftauth(['transfer-leader', String(target), '--cluster', join(dir, 'cluster.json')], io), 0, stderr);
    assert.match(stdout, new RegExp(`node ${target} is the leader`));

    // A second `npm start` while this one runs (issue 13, defect 3): refused at once, and the
    // running cluster is untouched: its cluster.json stays, its demo secret still works. Once in
    // the same directory (the launcher's lock), once in another directory on the same ports.
    const clusterJson = readFileSync(join(dir, 'cluster.json'), 'utf8');
    const second = startLocal(descFile, dir);
    runs.push(second);
    assert.equal(await second.exit, 1, second.output());
    assert.match(second.output(), new RegExp(`another \`npm start\` \\(pid ${run.child.pid}\\) is running the cluster in ${dir.replace(/[.]/g, '\\.')}`));
    const elsewhere = startLocal(descFile, join(tmp, 'elsewhere'));
    runs.push(elsewhere);
    assert.equal(await elsewhere.exit, 1, elsewhere.output());
    assert.match(elsewhere.output(), /\[start\] refused: 9 ports of the description "test-3" are in use: 127\.0\.0\.1:\d+ \(node 1's raft port\), /);
    for (const r of [second, elsewhere]) {
      assert.doesNotMatch(r.output(), /\[start\] ready|\[n\d\]/, 'no node was started and nothing claims to be ready');
      assert.doesNotMatch(r.output(), /^\s+at /m, 'no stack trace');
    }
    assert.equal(readFileSync(join(dir, 'cluster.json'), 'utf8'), clusterJson, 'the running cluster\'s cluster.json is untouched');
    const again = await clientCredentials(info);
    assert.equal(again.status, 200, JSON.stringify(again.body));

    await interruptAndCheck(run, info);
  });

  it('a second start reuses the certificates and the data', async () => {
    const { run, info } = await startAndWait();
    assert.doesNotMatch(run.output(), /\[start\] created/);
    // The demo client kept its secret across the restart.
    const tok = await clientCredentials(info);
    assert.equal(tok.status, 200, JSON.stringify(tok.body));
    const got = await fetch(`${info.front}/v1/kv/greeting`);
    assert.deepEqual(await got.json(), { value: 'hello' });
    await interruptAndCheck(run, info);
  });
});
