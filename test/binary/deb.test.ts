// The Debian package (`npm run package:deb`, scripts/package-deb.ts) and the systemd unit it ships.
//
// Builds the package once (the binary with it), then:
//  - lintian: no error and no warning, and no override that lintian no longer needs;
//  - the archive: files, modes, conffile, control fields, and the unit byte for byte as in
//    cluster-configs/systemd/; the unit's TimeoutStopSec covers the node's graceful stop with the
//    shipped config's values;
//  - unpacked with `dpkg-deb -x` into a scratch root, the certificates, admin token and master key
//    are made with the unpacked binary's own CLI and put beside the shipped /etc/raftauth/node.yaml,
//    and a one-node cluster starts from the unpacked /usr/bin/raftauth with that config (only the
//    addresses, the data directory and the issuer overridden, by RAFTAUTH_* variables, onto
//    loopback and temp directories): /readyz 200, OAuth keys made (the master key was found), then
//    a graceful SIGTERM stop within the unit's TimeoutStopSec;
//  - the same node under `strace -f` makes no system call outside the unit's SystemCallFilter
//    (expanded by `systemd-analyze syscall-filter`) while it starts, serves OAuth, the admin API and
//    a backup, and stops;
//  - as root: `dpkg -i` in a throwaway copy-on-write root (overlayfs over /, in a private mount
//    namespace, chroot; the host is not touched) runs the maintainer scripts for real (user,
//    directory owners, reinstall), `systemd-analyze verify` and `security` judge the installed
//    unit, the node runs there as the raftauth user with the file owners the install steps in
//    docs/operations.md give, and `dpkg --purge` keeps the data and the operator's keys.
//
// Multi-process (real node processes): run under flock /tmp/raftauth-mp.lock.
import assert from 'node:assert/strict';
import { spawn, spawnSync } from 'node:child_process';
import type { ChildProcess } from 'node:child_process';
import { copyFileSync, existsSync, mkdirSync, mkdtempSync, readFileSync, readdirSync, rmSync, statSync } from 'node:fs';
import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { dirname, join } from 'node:path';
import { after, before, describe, it } from 'node:test';
import { fileURLToPath } from 'node:url';
import { CONFIG_SOURCE, DEB_PATHS, PACKAGE_NAME, UNIT_SOURCE, debianVersion, lintianErrors, runLintian } from '../../scripts/package-deb.ts';
import { freePort, waitFor as waitForShared } from '../../scripts/lib/wait.ts';
import { parseConfig } from '../../src/server/config.ts';
import { WORKER_EXIT_GRACE_MS } from '../../src/server/process.ts';
import { runCommand } from '../../scripts/lib/proc.ts';
import type { CommandResult } from '../../scripts/lib/proc.ts';

const REPO_ROOT = fileURLToPath(new URL('../..', import.meta.url));

/** Deadlines: the package build (binary + dpkg-deb + nothing else), a node coming up, one request, a CLI call, a root-side step. */
const PACKAGE_TIMEOUT_MS = 10 * 60_000;
const NODE_UP_TIMEOUT_MS = 60_000;
const HTTP_TIMEOUT_MS = 5_000;
const CLI_TIMEOUT_MS = 30_000;
const DPKG_TIMEOUT_MS = 5 * 60_000;
const POLL_MS = 50;
const LOG_TAIL_CHARS = 4_000;
/**
 * What the unit's TimeoutStopSec allows node.stop() (admin API, raft loop, transport, LevelDB)
 * after the HTTP drain: the "node.stop()" line of the sum in cluster-configs/systemd/raftauth.service.
 */
const NODE_STOP_BUDGET_MS = 10_000;

function waitFor<T>(what: string, cond: () => Promise<T | undefined | null | false>, timeoutMs: number): Promise<T> {
  return waitForShared(what, cond, timeoutMs, POLL_MS);
}

/** An environment for the children: nothing of this test runner's node options, no RAFTAUTH_* of the caller's. */
function cleanEnv(extra: Record<string, string>): NodeJS.ProcessEnv {
  const env: NodeJS.ProcessEnv = {};
  for (const [k, v] of Object.entries(process.env)) {
    if (k === 'NODE_OPTIONS' || k === 'NODE_PATH' || k.startsWith('NODE_TEST') || k.startsWith('RAFTAUTH_')) continue;
    env[k] = v;
  }
  return { ...env, ...extra };
}

function run(cmd: string, args: readonly string[], opts: { env?: NodeJS.ProcessEnv; cwd?: string; timeoutMs: number }): Promise<CommandResult> {
  return runCommand(cmd, args, { cwd: opts.cwd ?? REPO_ROOT, env: opts.env ?? cleanEnv({}), timeoutMs: opts.timeoutMs });
}

async function runOk(cmd: string, args: readonly string[], opts: { env?: NodeJS.ProcessEnv; cwd?: string; timeoutMs?: number } = {}): Promise<string> {
  const r = await run(cmd, args, { ...opts, timeoutMs: opts.timeoutMs ?? CLI_TIMEOUT_MS });
  assert.equal(r.code, 0, `${cmd} ${args.join(' ')} exited ${r.code}:\n${r.stdout}${r.stderr}`);
  return r.stdout;
}

/** The tools this test needs, and which Debian package has each (.ci/run installs them). */
const TOOLS: Readonly<Record<string, string>> = { 'dpkg-deb': 'dpkg', 'dpkg-shlibdeps': 'dpkg-dev', lintian: 'lintian', strace: 'strace', 'systemd-analyze': 'systemd' };

function missingTools(): string[] {
  return Object.entries(TOOLS)
    .filter(([t]) => spawnSync('sh', ['-c', `command -v ${t}`], { stdio: 'ignore' }).status !== 0)
    .map(([t, p]) => `${t} (Debian package ${p})`);
}

/** `Key=value` lines of a unit file's sections, in order (comments and blank lines dropped). */
function unitDirectives(text: string): { key: string; value: string }[] {
  return text
    .split('\n')
    .map((l) => l.trim())
    .filter((l) => l !== '' && !l.startsWith('#') && !l.startsWith('['))
    .map((l) => {
      const i = l.indexOf('=');
      assert.ok(i > 0, `not a directive: ${l}`);
      return { key: l.slice(0, i), value: l.slice(i + 1) };
    });
}

function unitValue(text: string, key: string): string {
  const v = unitDirectives(text).filter((d) => d.key === key);
  assert.equal(v.length, 1, `the unit sets ${key} once`);
  return v[0]!.value;
}

/** systemd time span of the form the unit uses ("30s", "10min", "1min 30s") in milliseconds. */
function timeSpanMs(span: string): number {
  const units: Record<string, number> = { ms: 1, s: 1_000, sec: 1_000, min: 60_000, m: 60_000, h: 3_600_000 };
  let total = 0;
  for (const part of span.trim().split(/\s+/)) {
    const m = /^(\d+)([a-z]+)$/.exec(part);
    assert.ok(m && units[m[2]!] !== undefined, `cannot read the time span ${JSON.stringify(span)}`);
    total += Number(m[1]) * units[m[2]!]!;
  }
  return total;
}

/** Expands a SystemCallFilter item (a @group or a syscall name) into syscall names, as systemd-analyze lists them. */
function expandFilterItem(item: string, seen = new Set<string>()): string[] {
  if (!item.startsWith('@')) return [item];
  if (seen.has(item)) return [];
  seen.add(item);
  const r = spawnSync('systemd-analyze', ['syscall-filter', item], { encoding: 'utf8' });
  assert.equal(r.status, 0, `systemd-analyze syscall-filter ${item}: ${r.stderr}`);
  const out: string[] = [];
  for (const line of r.stdout.split('\n').slice(1)) {
    const t = line.replace(/#.*/, '').trim();
    if (t === '') continue;
    out.push(...expandFilterItem(t, seen));
  }
  assert.ok(out.length > 0, `${item} expanded to no system calls`);
  return out;
}

/** The system calls a unit's SystemCallFilter= lines allow (an allow list first, then `~` removals), per systemd.exec(5). */
function allowedSyscalls(unit: string): Set<string> {
  const lines = unitDirectives(unit).filter((d) => d.key === 'SystemCallFilter').map((d) => d.value);
  assert.ok(lines.length > 0 && !lines[0]!.startsWith('~'), 'the unit starts its SystemCallFilter with an allow list');
  const allowed = new Set<string>();
  for (const line of lines) {
    const deny = line.startsWith('~');
    for (const item of (deny ? line.slice(1) : line).split(/\s+/).filter((x) => x !== '')) {
      for (const s of expandFilterItem(item)) {
        if (deny) allowed.delete(s);
        else allowed.add(s);
      }
    }
  }
  return allowed;
}

/** Syscall names in an `strace -f` log (`PID name(args…` lines; resumed halves repeat a name already seen). */
function tracedSyscalls(log: string): Set<string> {
  const names = new Set<string>();
  for (const m of log.matchAll(/^\d+\s+([a-z_][a-z0-9_]*)\(/gm)) names.add(m[1]!);
  return names;
}

/** Why dpkg cannot be tried in a throwaway root here (root, a private mount namespace, overlayfs, chroot, setpriv), or null. */
function throwawayRootMissing(): string | null {
  if (process.getuid?.() !== 0) return 'not root (dpkg -i in a throwaway root needs mount and chroot)';
  for (const t of ['unshare', 'chroot', 'setpriv', 'mount']) {
    if (spawnSync('sh', ['-c', `command -v ${t}`], { stdio: 'ignore' }).status !== 0) return `${t} is not installed`;
  }
  const probe = mkdtempSync(join(tmpdir(), 'raftauth-overlay-probe-'));
  try {
    for (const d of ['lower', 'upper', 'work', 'merged']) mkdirSync(join(probe, d));
    const r = spawnSync('unshare', ['--mount', '--propagation', 'private', '--', 'mount', '-t', 'overlay', 'overlay', '-o', `lowerdir=${probe}/lower,upperdir=${probe}/upper,workdir=${probe}/work`, `${probe}/merged`], { encoding: 'utf8' });
    return r.status === 0 ? null : `cannot mount an overlay in a private mount namespace: ${r.stderr.trim()}`;
  } finally {
    rmSync(probe, { recursive: true, force: true });
  }
}

/**
 * A copy-on-write root: overlayfs with the host's / as the lower layer and a scratch directory as
 * the upper one, mounted in a private mount namespace that lives as long as the command, and
 * entered with chroot. dpkg, adduser and the node write only to the upper layer; the host's root
 * is never written. The upper layer persists between commands, so one command installs and a
 * later one starts or purges.
 */
class ThrowawayRoot {
  readonly upper: string;
  readonly work: string;
  readonly merged: string;

  constructor(dir: string) {
    this.upper = join(dir, 'upper');
    this.work = join(dir, 'work');
    this.merged = join(dir, 'merged');
    for (const d of [this.upper, this.work, this.merged]) mkdirSync(d, { recursive: true });
  }

  /** Places a host file at `path` inside the root (in the upper layer, before any mount). */
  put(from: string, path: string): void {
    const to = join(this.upper, path);
    mkdirSync(dirname(to), { recursive: true });
    copyFileSync(from, to);
  }

  /** `script` (sh, `set -e`) run as root inside: the command and arguments to spawn. The last `exec` keeps the PID. */
  command(script: string): [string, string[]] {
    const setup = [
      'set -e',
      `mount -t overlay overlay -o lowerdir=/,upperdir=${this.upper},workdir=${this.work} ${this.merged}`,
      `mount --bind /proc ${this.merged}/proc`,
      `mount --bind /dev ${this.merged}/dev`,
      `exec chroot ${this.merged} /bin/sh -c "set -e; $1"`,
    ].join('\n');
    return ['unshare', ['--mount', '--propagation', 'private', '--', 'sh', '-c', setup, 'sh', script]];
  }

  run(script: string, env: Record<string, string> = {}, timeoutMs = DPKG_TIMEOUT_MS): Promise<CommandResult> {
    const [cmd, args] = this.command(script);
    return run(cmd, args, { env: cleanEnv(env), timeoutMs });
  }

  async ok(script: string, env: Record<string, string> = {}): Promise<string> {
    const r = await this.run(script, env);
    assert.equal(r.code, 0, `in the throwaway root: ${script}\nexit ${r.code}:\n${r.stdout}${r.stderr}`);
    return r.stdout;
  }
}

/** Minimal HTTP client for loopback requests (status and text), bounded in time. */
async function http(url: string, init: RequestInit = {}): Promise<{ status: number; text: string }> {
  const r = await fetch(url, { ...init, signal: AbortSignal.timeout(HTTP_TIMEOUT_MS) });
  return { status: r.status, text: await r.text() };
}

interface NodeProc {
  readonly child: ChildProcess;
  log(): string;
  exited(): Promise<{ code: number | null; signal: NodeJS.Signals | null }>;
}

function startProcess(cmd: string, args: readonly string[], env: NodeJS.ProcessEnv, cwd: string): NodeProc {
  // Its own process group, so the cleanup reaches its HTTP worker too.
  const child = spawn(cmd, args, { cwd, env, stdio: ['ignore', 'pipe', 'pipe'], detached: true });
  let log = '';
  const keep = (c: Buffer): void => {
    log = (log + c.toString()).slice(-LOG_TAIL_CHARS);
  };
  child.stdout!.on('data', keep);
  child.stderr!.on('data', keep);
  const exit = new Promise<{ code: number | null; signal: NodeJS.Signals | null }>((resolve) => child.on('exit', (code, signal) => resolve({ code, signal })));
  return { child, log: () => log, exited: () => exit };
}

function killGroup(p: NodeProc | null): void {
  if (!p || p.child.pid === undefined || p.child.exitCode !== null || p.child.signalCode !== null) return;
  try {
    process.kill(-p.child.pid, 'SIGKILL');
  } catch {
    // already gone
  }
}

/** Loopback ports and the RAFTAUTH_* overrides that move the shipped config onto them (and the store to dataDir, unless null). */
async function loopbackOverrides(dataDir: string | null): Promise<{ http: number; admin: number; env: Record<string, string> }> {
  const [raft, httpPort, admin] = [await freePort(), await freePort(), await freePort()];
  return {
    http: httpPort,
    admin,
    env: {
      ...(dataDir !== null ? { RAFTAUTH_NODE_DATA_DIR: dataDir } : {}),
      RAFTAUTH_CLUSTER_INITIAL_MEMBERS: `[{ id: 1, raftAddress: "127.0.0.1:${raft}", httpAddress: "127.0.0.1:${httpPort}" }]`,
      RAFTAUTH_ADMIN_LISTEN: `127.0.0.1:${admin}`,
      RAFTAUTH_OAUTH_ISSUER: `http://127.0.0.1:${httpPort}`,
      // One worker: a shared 2-core machine (the template's 'auto' would fork one per core).
      RAFTAUTH_HTTP_WORKERS: '1',
    },
  };
}

/** Waits for /readyz 200 and for the signing keys (the leader made them: the master key was read). */
async function waitServing(p: NodeProc, httpPort: number): Promise<void> {
  const alive = (): void => {
    if (p.child.exitCode !== null || p.child.signalCode !== null) throw new Error(`the node exited (${p.child.exitCode ?? p.child.signalCode}):\n${p.log()}`);
  };
  await waitFor(
    '/readyz 200',
    async () => {
      alive();
      return (await http(`http://127.0.0.1:${httpPort}/readyz`)).status === 200;
    },
    NODE_UP_TIMEOUT_MS,
  ).catch((e: unknown) => {
    throw new Error(`${(e as Error).message}\n${p.log()}`);
  });
  await waitFor(
    'the signing keys in /jwks.json',
    async () => {
      alive();
      const j = await http(`http://127.0.0.1:${httpPort}/jwks.json`);
      return j.status === 200 && (JSON.parse(j.text) as { keys: unknown[] }).keys.length > 0;
    },
    NODE_UP_TIMEOUT_MS,
  );
}

describe('the Debian package (npm run package:deb)', { timeout: 20 * 60_000 }, () => {
  const missing = missingTools();
  const skip = missing.length > 0 ? `needs ${missing.join(', ')}` : false;
  let scratch = '';
  let deb = '';
  let root = '';
  const procs: NodeProc[] = [];

  before(async () => {
    if (skip) return;
    scratch = await mkdtemp(join(tmpdir(), 'raftauth-deb-test-'));
    const out = join(scratch, 'out');
    const t0 = Date.now();
    // Fast xz: the archive's contents are what is tested; lintian runs below, in the test.
    await runOk('npm', ['run', '--silent', 'package:deb', '--', '--out', out, '--xz-level', '1', '--no-lintian'], { timeoutMs: PACKAGE_TIMEOUT_MS });
    const debs = readdirSync(out).filter((f) => f.endsWith('.deb'));
    assert.equal(debs.length, 1, `one package in ${out}: ${debs.join(', ')}`);
    deb = join(out, debs[0]!);
    process.stdout.write(`# built ${debs[0]} in ${Date.now() - t0} ms\n`);
    root = join(scratch, 'root');
    await runOk('dpkg-deb', ['-x', deb, root]);

    // As docs/operations.md's install steps, in the unpacked tree: the CA and the node's
    // certificate from the unpacked binary's CLI, copied under the names the shipped node.yaml
    // uses; the master key made by the CLI in place (0600).
    const binary = join(root, DEB_PATHS.binary);
    const etc = join(root, 'etc', 'raftauth');
    const cache = join(root, 'var', 'cache', 'raftauth');
    mkdirSync(cache, { recursive: true, mode: 0o700 });
    const cli = (args: string[]): Promise<string> => runOk(binary, args, { env: cleanEnv({ TMPDIR: cache }) });
    const ca = join(scratch, 'ca');
    await cli(['certs', 'init', '--dir', ca, '--admin-token']);
    await cli(['certs', 'issue', '--dir', ca, '--id', '1']);
    copyFileSync(join(ca, 'ca.crt'), join(etc, 'ca.crt'));
    copyFileSync(join(ca, 'node1.crt'), join(etc, 'node.crt'));
    copyFileSync(join(ca, 'node1.key'), join(etc, 'node.key'));
    copyFileSync(join(ca, 'admin.token'), join(etc, 'admin.token'));
    await cli(['keys', 'generate-master', '--out', join(etc, 'master.key')]);
  });

  after(async () => {
    for (const p of procs) killGroup(p);
    if (scratch) await rm(scratch, { recursive: true, force: true });
  });

  it('passes lintian: no error, no warning, no stale override', { skip }, () => {
    const lines = runLintian(deb);
    assert.deepEqual(lintianErrors(lines), [], lines.join('\n'));
    assert.deepEqual(
      lines.filter((l) => l.startsWith('W: ')),
      [],
      'a warning is fixed, or overridden in packaging/deb/lintian-overrides with its reason',
    );
    assert.deepEqual(
      lines.filter((l) => /\b(unused-override|mismatched-override|malformed-override)\b/.test(l)),
      [],
      'every override in packaging/deb/lintian-overrides is still needed',
    );
    // The overrides are the ones the file documents (O: = overridden and shown).
    const overridden = lines.filter((l) => l.startsWith('O: ')).map((l) => l.split(' ')[2]);
    const declared = readFileSync(join(REPO_ROOT, 'packaging', 'deb', 'lintian-overrides'), 'utf8')
      .split('\n')
      .filter((l) => l.startsWith(`${PACKAGE_NAME}: `))
      .map((l) => l.split(' ')[1]);
    assert.deepEqual([...new Set(overridden)].sort(), [...new Set(declared)].sort());
  });

  it('holds the binary, the unit, the conffile and the directories, with computed control fields', { skip }, async () => {
    const field = async (name: string): Promise<string> => (await runOk('dpkg-deb', ['-f', deb, name])).trim();
    assert.equal(await field('Package'), PACKAGE_NAME);
    assert.equal(await field('Architecture'), (await runOk('dpkg', ['--print-architecture'])).trim());
    const pkgVersion = (JSON.parse(readFileSync(join(REPO_ROOT, 'package.json'), 'utf8')) as { version: string }).version;
    assert.equal(await field('Version'), debianVersion(pkgVersion));
    const depends = await field('Depends');
    assert.match(depends, /^adduser, /, 'postinst runs adduser');
    assert.match(depends, /\blibc6 \(>= [\d.]+\)/, 'dpkg-shlibdeps found the C library');
    assert.match(depends, /\blibstdc\+\+6 \(>= [\d.]+\)/, 'the binary and the LevelDB addon need libstdc++');
    assert.match(await field('Installed-Size'), /^\d+$/);

    const listing = await runOk('dpkg-deb', ['-c', deb]);
    const entry = (path: string): string => {
      const line = listing.split('\n').find((l) => l.endsWith(` ./${path}`) || l.endsWith(` ./${path}/`));
      assert.ok(line, `${path} in the package:\n${listing}`);
      return line;
    };
    assert.match(entry(DEB_PATHS.binary), /^-rwxr-xr-x root\/root /);
    assert.match(entry(DEB_PATHS.unit), /^-rw-r--r-- root\/root /);
    assert.match(entry(DEB_PATHS.config), /^-rw-r--r-- root\/root /);
    assert.match(entry(DEB_PATHS.stateDir), /^drwxr-xr-x root\/root /);
    for (const p of [`${DEB_PATHS.docDir}/copyright`, `${DEB_PATHS.docDir}/changelog.gz`, DEB_PATHS.manPage, DEB_PATHS.lintianOverrides]) entry(p);

    const control = join(scratch, 'control');
    await runOk('dpkg-deb', ['-e', deb, control]);
    assert.equal(readFileSync(join(control, 'conffiles'), 'utf8'), `/${DEB_PATHS.config}\n`);
    for (const s of ['postinst', 'prerm', 'postrm']) assert.equal(statSync(join(control, s)).mode & 0o777, 0o755, s);

    // What the package ships is the repository's unit and template, byte for byte.
    assert.deepEqual(readFileSync(join(root, DEB_PATHS.unit)), readFileSync(UNIT_SOURCE));
    assert.deepEqual(readFileSync(join(root, DEB_PATHS.config)), readFileSync(CONFIG_SOURCE));
    const unit = readFileSync(UNIT_SOURCE, 'utf8');
    assert.equal(unitValue(unit, 'ExecStart'), `/${DEB_PATHS.binary} start --config /${DEB_PATHS.config}`);
    // Everything Node.js-licensed and every embedded npm package is in the copyright file.
    const copyright = readFileSync(join(root, DEB_PATHS.docDir, 'copyright'), 'utf8');
    for (const dep of Object.keys((JSON.parse(readFileSync(join(REPO_ROOT, 'package.json'), 'utf8')) as { dependencies: Record<string, string> }).dependencies)) {
      assert.ok(copyright.includes(`Files: node_modules/${dep}/*`), `${dep} in the copyright file`);
    }
    assert.match(copyright, /^Files: node\/\*$/m);
  });

  it('starts a one-node cluster from the unpacked tree, with the shipped config', { skip }, async () => {
    const binary = join(root, DEB_PATHS.binary);
    const cache = join(root, 'var', 'cache', 'raftauth');
    const dataDir = join(root, 'var', 'lib', 'raftauth', 'data');
    const o = await loopbackOverrides(dataDir);
    const configFile = join(root, DEB_PATHS.config);

    // The unit's TimeoutStopSec covers the graceful stop with this config's values (process.ts stop()).
    const config = parseConfig(readFileSync(configFile, 'utf8'), configFile, o.env);
    const stopBoundMs = config.http.shutdownDelayMs + config.http.requestTimeoutMs + 1_000 + WORKER_EXIT_GRACE_MS + NODE_STOP_BUDGET_MS;
    const timeoutStopMs = timeSpanMs(unitValue(readFileSync(UNIT_SOURCE, 'utf8'), 'TimeoutStopSec'));
    assert.ok(timeoutStopMs >= stopBoundMs, `TimeoutStopSec ${timeoutStopMs} ms must cover the graceful stop, ${stopBoundMs} ms`);

    const node = startProcess(binary, ['start', '--config', configFile], cleanEnv({ TMPDIR: cache, ...o.env }), join(root, 'var', 'lib', 'raftauth'));
    procs.push(node);
    await waitServing(node, o.http);
    assert.ok(existsSync(join(dataDir)), 'the store is under /var/lib/raftauth/data');
    assert.deepEqual(readdirSync(cache), [], 'the LevelDB addon copy is gone from TMPDIR');
    const discovery = JSON.parse((await http(`http://127.0.0.1:${o.http}/.well-known/openid-configuration`)).text) as { issuer: string };
    assert.equal(discovery.issuer, o.env.RAFTAUTH_OAUTH_ISSUER);

    const t0 = performance.now();
    node.child.kill('SIGTERM');
    const exit = await waitFor('the node to exit', async () => (node.child.exitCode !== null || node.child.signalCode !== null ? node.exited() : null), timeoutStopMs);
    const stopMs = performance.now() - t0;
    assert.deepEqual(exit, { code: 0, signal: null }, node.log());
    assert.ok(stopMs >= config.http.shutdownDelayMs, `the node kept serving for shutdownDelayMs before it stopped (${stopMs.toFixed(0)} ms)`);
    process.stdout.write(`# graceful stop took ${stopMs.toFixed(0)} ms (TimeoutStopSec ${timeoutStopMs} ms)\n`);
  });

  it("makes no system call outside the unit's SystemCallFilter (strace -f)", { skip }, async () => {
    const binary = join(root, DEB_PATHS.binary);
    const cache = join(root, 'var', 'cache', 'raftauth');
    const etc = join(root, 'etc', 'raftauth');
    const o = await loopbackOverrides(join(scratch, 'strace-data'));
    const trace = join(scratch, 'strace.log');
    const strace = startProcess('strace', ['-f', '-qq', '-o', trace, binary, 'start', '--config', join(root, DEB_PATHS.config)], cleanEnv({ TMPDIR: cache, ...o.env }), join(root, 'var', 'lib', 'raftauth'));
    procs.push(strace);
    await waitServing(strace, o.http);

    // What a node does in service: the admin API (a client), OAuth (a token), metrics, a backup.
    const token = readFileSync(join(etc, 'admin.token'), 'utf8').trim();
    const admin = `http://127.0.0.1:${o.admin}/admin/v1`;
    const created = await http(`${admin}/clients`, {
      method: 'POST',
      headers: { authorization: `Bearer ${token}`, 'content-type': 'application/json' },
      body: JSON.stringify({ client_id: 'deb-test', client_name: 'deb', grant_types: ['client_credentials'], scopes: ['api'] }),
    });
    assert.equal(created.status, 201, created.text);
    const secret = (JSON.parse(created.text) as { client_secret: string }).client_secret;
    const tok = await http(`http://127.0.0.1:${o.http}/token`, {
      method: 'POST',
      headers: { authorization: `Basic ${Buffer.from(`deb-test:${secret}`).toString('base64')}`, 'content-type': 'application/x-www-form-urlencoded' },
      body: 'grant_type=client_credentials',
    });
    assert.equal(tok.status, 200, tok.text);
    assert.equal((await http(`http://127.0.0.1:${o.http}/metrics`)).status, 200);
    const snap = await http(`${admin}/snapshot`, { headers: { authorization: `Bearer ${token}` } });
    assert.equal(snap.status, 200);

    // SIGTERM to the node (strace's child), as systemd sends it to the main process.
    const nodePid = Number(readFileSync(`/proc/${strace.child.pid}/task/${strace.child.pid}/children`, 'utf8').trim().split(/\s+/)[0]);
    assert.ok(Number.isSafeInteger(nodePid) && nodePid > 0, 'the node is strace\'s child');
    process.kill(nodePid, 'SIGTERM');
    const exit = await waitFor('strace and the node to exit', async () => (strace.child.exitCode !== null || strace.child.signalCode !== null ? strace.exited() : null), NODE_UP_TIMEOUT_MS);
    assert.deepEqual(exit, { code: 0, signal: null }, strace.log());

    const used = tracedSyscalls(readFileSync(trace, 'utf8'));
    assert.ok(used.has('execve') && (used.has('clone') || used.has('clone3')), `the trace holds the node's and its worker's calls: ${[...used].join(' ')}`);
    const allowed = allowedSyscalls(readFileSync(UNIT_SOURCE, 'utf8'));
    const outside = [...used].filter((s) => !allowed.has(s)).sort();
    assert.deepEqual(outside, [], `system calls the unit's SystemCallFilter would refuse (EPERM); used: ${[...used].sort().join(' ')}`);
  });
  const noRoot = skip || throwawayRootMissing() || false;
  it('installs with dpkg, runs as the raftauth user with the documented file owners, and purges (throwaway root)', { skip: noRoot }, async () => {
    const tr = new ThrowawayRoot(join(scratch, 'throwaway'));
    tr.put(deb, '/root/raftauth.deb');
    // Installed, then installed again over itself: the upgrade path (prerm upgrade, postinst
    // configure <old version>) must keep the owners.
    await tr.ok('dpkg -i /root/raftauth.deb >/dev/null; dpkg -i /root/raftauth.deb >/dev/null');
    const passwd = (await tr.ok('getent passwd raftauth')).trim().split(':');
    assert.deepEqual([passwd[0], passwd[5], passwd[6]], ['raftauth', '/var/lib/raftauth', '/usr/sbin/nologin']);
    const stat = async (paths: string[]): Promise<string[]> => (await tr.ok(`stat -c '%U:%G %a %n' ${paths.join(' ')}`)).trim().split('\n');
    assert.deepEqual(await stat(['/etc/raftauth', '/var/lib/raftauth', '/usr/bin/raftauth', '/etc/raftauth/node.yaml', '/lib/systemd/system/raftauth.service']), [
      'root:raftauth 750 /etc/raftauth',
      'raftauth:raftauth 700 /var/lib/raftauth',
      'root:root 755 /usr/bin/raftauth',
      'root:root 644 /etc/raftauth/node.yaml',
      'root:root 644 /lib/systemd/system/raftauth.service',
    ]);

    // systemd's own judgement of the installed unit (binary, man page and all): no complaint,
    // and an exposure of at most 2.0 of 10 ("OK") by systemd-analyze security.
    const verify = await tr.run('systemd-analyze verify raftauth.service 2>&1');
    assert.equal(verify.code, 0, verify.stdout + verify.stderr);
    assert.equal(verify.stdout.trim(), '', 'systemd-analyze verify has nothing to say');
    const security = await tr.run('systemd-analyze security --offline=true --threshold=20 raftauth.service');
    assert.equal(security.code, 0, security.stdout + security.stderr);
    process.stdout.write(`# ${security.stdout.trim().split('\n').pop()}\n`);

    // docs/operations.md's install steps ("Bare metal: three machines", steps 2 and 3) for one
    // host: certificates and master key from the CLI, installed under the names node.yaml uses
    // with the owners and modes the docs give.
    await tr.ok(
      [
        'raftauth certs init --dir /root/certs --admin-token >/dev/null',
        'raftauth certs issue --dir /root/certs --id 1 >/dev/null',
        'install -o root -g raftauth -m 0644 /root/certs/ca.crt /etc/raftauth/ca.crt',
        'install -o root -g raftauth -m 0644 /root/certs/node1.crt /etc/raftauth/node.crt',
        'install -o root -g raftauth -m 0640 /root/certs/node1.key /etc/raftauth/node.key',
        'install -o root -g raftauth -m 0640 /root/certs/admin.token /etc/raftauth/admin.token',
        'raftauth keys generate-master --out /root/certs/master.key >/dev/null',
        'install -o raftauth -g raftauth -m 0600 /root/certs/master.key /etc/raftauth/master.key',
      ].join('; '),
    );

    // The node as the unit runs it, as far as it can be without systemd: user and group raftauth,
    // no capabilities, no new privileges, umask 0077, TMPDIR in the cache directory systemd would
    // make, the working directory the state directory, the default data directory.
    const o = await loopbackOverrides(null);
    const [cmd, args] = tr.command(
      [
        'install -d -o raftauth -g raftauth -m 0700 /var/cache/raftauth',
        'cd /var/lib/raftauth',
        'umask 0077',
        'exec setpriv --reuid=raftauth --regid=raftauth --init-groups --no-new-privs --inh-caps=-all --bounding-set=-all /usr/bin/raftauth start --config /etc/raftauth/node.yaml',
      ].join('; '),
    );
    const node = startProcess(cmd, args, cleanEnv({ TMPDIR: '/var/cache/raftauth', ...o.env }), REPO_ROOT);
    procs.push(node);
    await waitServing(node, o.http);
    node.child.kill('SIGTERM');
    const exit = await waitFor('the node to exit', async () => (node.child.exitCode !== null || node.child.signalCode !== null ? node.exited() : null), NODE_UP_TIMEOUT_MS);
    assert.deepEqual(exit, { code: 0, signal: null }, node.log());
    assert.deepEqual(await stat(['/var/lib/raftauth/data']), ['raftauth:raftauth 700 /var/lib/raftauth/data']);

    // Purge: the package's files and bookkeeping go; the store, the operator's keys and the user stay.
    await tr.ok('dpkg --purge raftauth >/dev/null 2>&1');
    const after = await tr.ok(
      'for p in /usr/bin/raftauth /lib/systemd/system/raftauth.service /etc/raftauth/node.yaml /etc/raftauth/master.key /etc/raftauth/node.key /var/lib/raftauth/data /var/cache/raftauth; do if [ -e $p ]; then echo "kept $p"; else echo "gone $p"; fi; done; dpkg-statoverride --list | grep -c raftauth || true; getent passwd raftauth >/dev/null && echo user kept',
    );
    assert.deepEqual(after.trim().split('\n'), [
      'gone /usr/bin/raftauth',
      'gone /lib/systemd/system/raftauth.service',
      'gone /etc/raftauth/node.yaml',
      'kept /etc/raftauth/master.key',
      'kept /etc/raftauth/node.key',
      'kept /var/lib/raftauth/data',
      'gone /var/cache/raftauth',
      '0',
      'user kept',
    ]);
  });
});
