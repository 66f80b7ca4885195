// What each kind of process loads at boot (docs/operations.md, "Boot time"). Module loading was
// most of a node's boot: the primary loaded the whole CLI (certificate issuing with
// @peculiar/x509, the admin client) and the HTTP app (fastify, every OAuth route,
// @simplewebauthn/server) that only the workers serve, and the transport reached the certificate
// builder through crypto/certs.ts. Now a primary loads the start path, reads its config, forks its
// workers, and only then loads the node's modules; a worker loads the WebAuthn library once it
// listens.
//
// The program runs in a child process as a node would (src/main.ts --config FILE) with a config
// file that does not exist, so it stops (exit 2) right after loading the start path's static
// imports; a module-loading hook records every module it loaded. The node's modules and an HTTP
// worker's are checked the same way, by importing their modules.
import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import { mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { test } from 'node:test';
import { fileURLToPath, pathToFileURL } from 'node:url';

const REPO_ROOT = fileURLToPath(new URL('../../..', import.meta.url));
const MAIN = join(REPO_ROOT, 'src', 'main.ts');
const RUN_TIMEOUT_MS = 120_000;

/** The URLs of the modules node loaded running `args` (after the loader flags), in order, and how it exited. */
function loadedModules(args: readonly string[]): { urls: string[]; status: number | null; stderr: string } {
  const dir = mkdtempSync(join(tmpdir(), 'raftauth-boot-imports-'));
  try {
    const out = join(dir, 'loaded.txt');
    writeFileSync(out, '');
    const hooks = join(dir, 'hooks.mjs');
    writeFileSync(hooks, `import { appendFileSync } from 'node:fs';\nexport async function load(url, context, nextLoad) {\n  appendFileSync(${JSON.stringify(out)}, url + '\\n');\n  return nextLoad(url, context);\n}\n`);
    const register = join(dir, 'register.mjs');
    writeFileSync(register, `import { register } from 'node:module';\nregister(${JSON.stringify(pathToFileURL(hooks).href)});\n`);
    const env = { ...process.env };
    delete env.NODE_OPTIONS;
    for (const k of Object.keys(env)) if (k.startsWith('RAFTAUTH_') || k.startsWith('NODE_TEST')) delete env[k];
    const r = spawnSync(process.execPath, ['--import', 'tsx', '--import', pathToFileURL(register).href, ...args], {
      cwd: REPO_ROOT,
      env,
      encoding: 'utf8',
      timeout: RUN_TIMEOUT_MS,
    });
    const urls = readFileSync(out, 'utf8').split('\n').filter((l) => l !== '');
    return { urls, status: r.status, stderr: r.stderr };
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
}

const projectModule = (urls: readonly string[], path: string): boolean => urls.some((u) => u.endsWith(`/src/${path}`));
const packageLoaded = (urls: readonly string[], name: string): boolean => urls.some((u) => u.includes(`/node_modules/${name}/`));

/** What neither the start path nor the node needs at boot. */
const NOT_AT_BOOT = ['cli/commands/cluster.ts', 'cli/commands/certs.ts', 'cli/admin-client.ts', 'crypto/certs.ts', 'server/http.ts', 'server/worker.ts', 'ops/admin.ts', 'oauth/index.ts', 'mfa/webauthn.ts'];
const PACKAGES_NOT_AT_BOOT = ['@peculiar/x509', '@simplewebauthn/server', 'fastify', 'qrcode'];

test("a node's primary reads its config after loading the start path only: not the node (loaded after the workers fork), the other commands or the HTTP app", () => {
  const missing = join(tmpdir(), `raftauth-no-such-config-${process.pid}.yaml`);
  const { urls, status, stderr } = loadedModules([MAIN, '--config', missing]);
  assert.equal(status, 2, `the config error exits 2:\n${stderr}`);
  assert.match(stderr, /cannot read the file/);
  // What it needs: without these the test would prove nothing.
  for (const m of ['cli/commands/start.ts', 'server/cli.ts', 'server/config.ts', 'server/process.ts']) assert.ok(projectModule(urls, m), `the primary loads src/${m}`);
  for (const m of ['server/start-node.ts', 'node/node.ts', 'transport/transport.ts', ...NOT_AT_BOOT]) assert.ok(!projectModule(urls, m), `the primary does not load src/${m} before its workers fork`);
  for (const p of ['@grpc/grpc-js', 'classic-level', ...PACKAGES_NOT_AT_BOOT]) assert.ok(!packageLoaded(urls, p), `the primary does not load ${p} before its workers fork`);
});

test("the node's modules leave out the certificate builder, the admin app and the HTTP app", () => {
  const startNode = pathToFileURL(join(REPO_ROOT, 'src', 'server', 'start-node.ts')).href;
  const { urls, status, stderr } = loadedModules(['--input-type=module', '-e', `await import(${JSON.stringify(startNode)})`]);
  assert.equal(status, 0, stderr);
  for (const m of ['server/start-node.ts', 'node/node.ts', 'transport/tls.ts', 'crypto/node-identity.ts']) assert.ok(projectModule(urls, m), `the node loads src/${m}`);
  for (const p of ['@grpc/grpc-js', 'classic-level']) assert.ok(packageLoaded(urls, p), `the node loads ${p}`);
  for (const m of NOT_AT_BOOT) assert.ok(!projectModule(urls, m), `the node does not load src/${m} at boot`);
  for (const p of PACKAGES_NOT_AT_BOOT) assert.ok(!packageLoaded(urls, p), `the node does not load ${p} at boot`);
});

test('a CLI command loads its own module only when it runs: `raftauth help start` loads no other command', () => {
  const { urls, status, stderr } = loadedModules([MAIN, 'help', 'start']);
  assert.equal(status, 0, stderr);
  assert.ok(projectModule(urls, 'cli/commands/start.ts'));
  for (const m of ['cli/commands/cluster.ts', 'cli/commands/certs.ts', 'cli/commands/users.ts', 'server/start-node.ts']) assert.ok(!projectModule(urls, m), `help start does not load src/${m}`);
});

test("an HTTP worker's modules leave the WebAuthn library out: it is loaded once the worker listens", () => {
  const worker = pathToFileURL(join(REPO_ROOT, 'src', 'server', 'worker.ts')).href;
  const { urls, status, stderr } = loadedModules(['--input-type=module', '-e', `await import(${JSON.stringify(worker)})`]);
  assert.equal(status, 0, stderr);
  for (const m of ['server/worker.ts', 'server/http.ts', 'oauth/index.ts', 'mfa/webauthn.ts']) assert.ok(projectModule(urls, m), `the worker loads src/${m}`);
  for (const p of ['@simplewebauthn/server', '@peculiar/x509']) assert.ok(!packageLoaded(urls, p), `the worker does not load ${p} before it listens`);
});
