// The built program as an operator installs it: package.json, package-lock.json and dist/ (npm
// run build; the test fails at once if dist/ is missing or older than src/) copied into an empty
// temp directory, `npm ci --omit=dev` there (production dependencies only: no tsx, no TypeScript),
// then
//  - the CLI from dist/main.js run as a command (its shebang, from another directory): help,
//    certificates, a master key, and later `status` against the cluster;
//  - a 3-node cluster, each node `node --enable-source-maps dist/main.js --config FILE` with one
//    HTTP worker forked from dist/main.js without any loader: every node answers /readyz 200 and
//    all agree on one leader; SIGTERM stops each one with exit code 0.
// npm reaches the registry (or its cache) for the install.
import assert from 'node:assert/strict';
import { spawn } from 'node:child_process';
import type { ChildProcess } from 'node:child_process';
import { cpSync, existsSync, readFileSync, writeFileSync } from 'node:fs';
import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { dirname, join, relative } from 'node:path';
import { after, before, describe, it } from 'node:test';
import { DIST_DIR, NODE_ARGS, REPO_ROOT, requireFreshDist } from '../../scripts/lib/dist.ts';
import { freePort, waitFor } from '../../scripts/lib/wait.ts';
import { childrenOf, runCommand } from '../../scripts/lib/proc.ts';
import type { CommandResult } from '../../scripts/lib/proc.ts';

/** npm ci of the production dependencies: a download on a cold cache, on a shared 2-core machine. */
const INSTALL_TIMEOUT_MS = 300_000;
const CLI_TIMEOUT_MS = 30_000;
const CLUSTER_UP_TIMEOUT_MS = 60_000;
/** A node's graceful stop: shutdownDelayMs (1 s) and the drain, with room on a loaded machine. */
const STOP_TIMEOUT_MS = 30_000;
const HTTP_TIMEOUT_MS = 5_000;
const POLL_MS = 50;
const LOG_TAIL_CHARS = 4_000;
const NODE_IDS = [1, 2, 3] as const;

/** A command run in `cwd` with a fresh shell's environment (cleanEnv). */
function run(cmd: string, args: readonly string[], cwd: string, timeoutMs: number): Promise<CommandResult> {
  return runCommand(cmd, args, { cwd, env: cleanEnv(), timeoutMs });
}

/** An environment as a fresh shell would give: nothing of npm's (npm test sets npm_config_*), the test runner's or raftauth's. */
function cleanEnv(): NodeJS.ProcessEnv {
  const env: NodeJS.ProcessEnv = {};
  for (const [k, v] of Object.entries(process.env)) {
    if (k === 'NODE_OPTIONS' || k === 'NODE_PATH' || k.startsWith('NODE_TEST') || k.startsWith('RAFTAUTH_') || k.toLowerCase().startsWith('npm_')) continue;
    env[k] = v;
  }
  return env;
}


async function getJson(url: string): Promise<{ status: number; body: unknown }> {
  const res = await fetch(url, { signal: AbortSignal.timeout(HTTP_TIMEOUT_MS) });
  const text = await res.text();
  let body: unknown = text;
  try {
    body = JSON.parse(text);
  } catch {
    // not JSON: kept as text for the message
  }
  return { status: res.status, body };
}


function cmdline(pid: number): string[] {
  return readFileSync(`/proc/${pid}/cmdline`, 'utf8').split('\0').filter((a) => a !== '');
}

describe('dist/ with production dependencies only', { timeout: INSTALL_TIMEOUT_MS + 180_000 }, () => {
  let root = '';
  let app = '';
  let main = '';
  const nodes: { id: number; child: ChildProcess; log: () => string; exited: Promise<Pick<CommandResult, 'code' | 'signal' | 'output'>> }[] = [];

  before(async () => {
    requireFreshDist();
    root = await mkdtemp(join(tmpdir(), 'raftauth-dist-'));
    app = join(root, 'app');
    // What an operator copies: the manifest, the lock file and the build. Not the single binary
    // that build:binary may have left in dist/ (it is not part of the JavaScript build).
    cpSync(join(REPO_ROOT, 'package.json'), join(app, 'package.json'));
    cpSync(join(REPO_ROOT, 'package-lock.json'), join(app, 'package-lock.json'));
    cpSync(DIST_DIR, join(app, 'dist'), { recursive: true, filter: (src) => !/^raftauth(\.build|\.tmp)?($|\/)/.test(relative(DIST_DIR, src)) });
    main = join(app, 'dist', 'main.js');
    const t0 = Date.now();
    const npm = await run('npm', ['ci', '--omit=dev', '--no-audit', '--no-fund'], app, INSTALL_TIMEOUT_MS);
    assert.equal(npm.code, 0, `npm ci --omit=dev failed:\n${npm.output.slice(-LOG_TAIL_CHARS)}`);
    process.stdout.write(`# npm ci --omit=dev in ${Date.now() - t0} ms\n`);
  });

  after(async () => {
    for (const { child } of nodes) {
      // Each node runs in its own process group (detached): this reaches its HTTP worker too.
      if (child.pid !== undefined && child.exitCode === null && child.signalCode === null) {
        try {
          process.kill(-child.pid, 'SIGKILL');
        } catch {
          // already gone
        }
      }
    }
    if (root) await rm(root, { recursive: true, force: true });
  });

  it('has the production dependencies and none of the development ones; nothing to resolve from above', () => {
    const pkg = JSON.parse(readFileSync(join(app, 'package.json'), 'utf8')) as { dependencies: Record<string, string> };
    for (const d of Object.keys(pkg.dependencies)) assert.ok(existsSync(join(app, 'node_modules', d, 'package.json')), `production dependency ${d} installed`);
    // Development-only packages, as the lock file marks them (some devDependencies, such as
    // @types/node, are also dependencies of production packages and rightly installed).
    const lock = JSON.parse(readFileSync(join(app, 'package-lock.json'), 'utf8')) as { packages: Record<string, { dev?: boolean }> };
    const devOnly = Object.entries(lock.packages).filter(([path, p]) => path !== '' && p.dev === true).map(([path]) => path);
    for (const d of ['tsx', 'typescript', 'esbuild']) assert.ok(devOnly.includes(`node_modules/${d}`), `the lock file marks ${d} development-only`);
    for (const path of devOnly) assert.ok(!existsSync(join(app, path)), `development-only ${path} not installed`);
    for (let d = dirname(app); ; d = dirname(d)) {
      assert.ok(!existsSync(join(d, 'node_modules')), `${d} has a node_modules; the copy must resolve packages from its own only`);
      if (dirname(d) === d) break;
    }
  });

  it('runs the CLI and a 3-node cluster', async () => {
    // The CLI as a command (package.json "bin" is dist/main.js), from another directory.
    const help = await run(main, ['--help'], root, CLI_TIMEOUT_MS);
    assert.equal(help.code, 0, help.output);
    assert.match(help.output, /^usage: raftauth <command>/);
    const certs = join(root, 'certs');
    for (const args of [
      ['certs', 'init', '--dir', certs, '--admin-token'],
      ['certs', 'issue', '--dir', certs, '--id', NODE_IDS.join(',')],
      ['keys', 'generate-master', '--out', join(certs, 'master.key')],
    ]) {
      const r = await run(main, args, root, CLI_TIMEOUT_MS);
      assert.equal(r.code, 0, `raftauth ${args.join(' ')}:\n${r.output}`);
    }

    const ports = new Map<number, { raft: number; http: number; admin: number }>();
    for (const id of NODE_IDS) ports.set(id, { raft: await freePort(), http: await freePort(), admin: await freePort() });
    const members = NODE_IDS.map((id) => `    - { id: ${id}, raftAddress: "127.0.0.1:${ports.get(id)!.raft}", httpAddress: "127.0.0.1:${ports.get(id)!.http}" }`).join('\n');
    for (const id of NODE_IDS) {
      const dir = join(root, `node${id}`);
      const cfg = join(dir, 'node.yaml');
      cpSync(join(certs, 'admin.token'), join(dir, 'admin.token'));
      writeFileSync(
        cfg,
        [
          `node: { id: ${id}, dataDir: data }`,
          'cluster:',
          '  initialMembers:',
          members,
          'raft: { tickMs: 50 }',
          `tls: { ca: "${join(certs, 'ca.crt')}", cert: "${join(certs, `node${id}.crt`)}", key: "${join(certs, `node${id}.key`)}" }`,
          `http: { workers: 1, listen: "127.0.0.1:${ports.get(id)!.http}" }`,
          `admin: { listen: "127.0.0.1:${ports.get(id)!.admin}", tokenFile: admin.token }`,
          'log: { level: info }',
          `crypto: { masterKeyFile: "${join(certs, 'master.key')}" }`,
          `oauth: { issuer: "http://127.0.0.1:${ports.get(NODE_IDS[0])!.http}" }`,
          '',
        ].join('\n'),
      );
      // How a node is started (docs/operations.md): node with source maps on dist/main.js.
      const child = spawn(process.execPath, [...NODE_ARGS, main, '--config', cfg], { cwd: dir, env: cleanEnv(), stdio: ['ignore', 'pipe', 'pipe'], detached: true });
      let log = '';
      const keep = (c: Buffer): void => {
        log = (log + c.toString()).slice(-LOG_TAIL_CHARS);
      };
      child.stdout!.on('data', keep);
      child.stderr!.on('data', keep);
      const exited = new Promise<Pick<CommandResult, 'code' | 'signal' | 'output'>>((resolve) => child.once('exit', (code, signal) => resolve({ code, signal, output: log })));
      nodes.push({ id, child, log: () => log, exited });
    }
    const logs = (): string => nodes.map((n) => `--- node ${n.id} (exit ${n.child.exitCode ?? n.child.signalCode ?? 'running'}):\n${n.log()}`).join('\n');

    try {
      const leader = await waitFor(
        'every node ready (/readyz 200) and one leader known to all',
        async () => {
          for (const n of nodes) if (n.child.exitCode !== null || n.child.signalCode !== null) throw new Error(`node ${n.id} exited`);
          const leaders = new Set<number>();
          for (const id of NODE_IDS) {
            const ready = await getJson(`http://127.0.0.1:${ports.get(id)!.http}/readyz`);
            if (ready.status !== 200) return null;
            const st = await getJson(`http://127.0.0.1:${ports.get(id)!.http}/v1/status`);
            if (st.status !== 200) return null;
            leaders.add((st.body as { leader: number }).leader);
          }
          const [l] = [...leaders];
          return leaders.size === 1 && l !== undefined && l !== 0 ? l : null;
        },
        CLUSTER_UP_TIMEOUT_MS,
        POLL_MS,
      );
      assert.ok((NODE_IDS as readonly number[]).includes(leader));

      // Each primary's HTTP worker is dist/main.js again, under node's own flags and no loader.
      for (const n of nodes) {
        const workers = childrenOf(n.child.pid!);
        assert.equal(workers.length, 1, `node ${n.id} has its one HTTP worker`);
        // (node:cluster passes the primary's arguments on: the worker ignores them.)
        const argv = cmdline(workers[0]!);
        assert.deepEqual(argv.slice(0, NODE_ARGS.length + 2), [process.execPath, ...NODE_ARGS, main], `node ${n.id}'s worker command line: ${argv.join(' ')}`);
        assert.ok(!argv.some((a) => a.includes('tsx') || a === '--import' || a === '--loader'), `no loader in ${argv.join(' ')}`);
      }

      // A CLI command against the running cluster, through every admin API.
      const adminUrls = NODE_IDS.map((id) => `http://127.0.0.1:${ports.get(id)!.admin}`).join(',');
      const status = await run(main, ['status', '--json', '--admin', adminUrls, '--token-file', join(certs, 'admin.token')], root, CLI_TIMEOUT_MS);
      assert.equal(status.code, 0, status.output);
      const report = JSON.parse(status.output) as { leader: number; members: { id: number }[] };
      assert.equal(report.leader, leader, status.output);
      assert.deepEqual(report.members.map((m) => m.id).sort(), [...NODE_IDS]);
    } catch (e) {
      throw new Error(`${(e as Error).message}\n${logs()}`, { cause: e });
    }

    // A graceful stop from dist/: SIGTERM, exit code 0, for every node.
    for (const n of nodes) n.child.kill('SIGTERM');
    for (const n of nodes) {
      const done = await Promise.race([n.exited, new Promise<null>((r) => setTimeout(() => r(null), STOP_TIMEOUT_MS).unref())]);
      assert.ok(done !== null, `node ${n.id} stopped within ${STOP_TIMEOUT_MS} ms:\n${n.log()}`);
      assert.deepEqual([done.code, done.signal], [0, null], `node ${n.id} exit:\n${done.output}`);
    }
  });
});
