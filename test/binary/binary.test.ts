// The single binary (scripts/build-binary.ts): bundle the built dist/ (npm run build; the test
// fails at once if dist/ is missing or older than src/) into a binary in a temp directory, copy it
// alone into an empty directory (no node_modules anywhere above it, no raft.proto beside it), and run a
// 3-node cluster from it: the node in each primary (LevelDB through the addon carried as an SEA
// asset, gRPC with the inlined raft.proto) and one HTTP worker per node forked from the binary
// itself. Writes through one node and reads the value back linearizably through the others.
//
// Also checks, without building, that the protobuf definitions the binary inlines encode exactly as
// the .proto file loaded from disk does (a node run from source and one run from the binary must
// understand each other byte for byte).
import assert from 'node:assert/strict';
import { spawn } from 'node:child_process';
import type { ChildProcess } from 'node:child_process';
import { chmodSync, copyFileSync, existsSync, mkdirSync, readdirSync, readFileSync, statSync, writeFileSync } from 'node:fs';
import { mkdtemp, rm } from 'node:fs/promises';
import { request } from 'node:http';
import { tmpdir } from 'node:os';
import { dirname, join } from 'node:path';
import { after, before, describe, it } from 'node:test';
import { fileURLToPath } from 'node:url';
import * as protoLoader from '@grpc/proto-loader';
import type * as grpc from '@grpc/grpc-js';
import { CLASSIC_LEVEL_ASSET_NAME, SEA_SENTINEL_FUSE, classicLevelPrebuild, raftProtoJson } from '../../scripts/build-binary.ts';
import { requireFreshDist } from '../../scripts/lib/dist.ts';
import { createClusterCa, issueNodeCert, nodeIdFromCert, writePem } from '../../src/crypto/certs.ts';
import { CLASSIC_LEVEL_ADDON_ASSET } from '../../src/sea/addon.ts';
import { PROTO_PATH, SERVICE_NAME } from '../../src/transport/proto.ts';
import { freePort, waitFor as waitForShared } from '../../scripts/lib/wait.ts';
import { runCommand } from '../../scripts/lib/proc.ts';
import type { CommandResult } from '../../scripts/lib/proc.ts';

const REPO_ROOT = fileURLToPath(new URL('../..', import.meta.url));
const BUILD_SCRIPT = join(REPO_ROOT, 'scripts', 'build-binary.ts');

/** Deadlines: the build (bundle, blob, inject: ~5 s alone, more on a shared 2-core machine), the cluster coming up, one request. */
const BUILD_TIMEOUT_MS = 60_000;
const CLUSTER_UP_TIMEOUT_MS = 30_000;
const HTTP_TIMEOUT_MS = 5_000;
const EXIT_TIMEOUT_MS = 10_000;
const POLL_MS = 50;
const MAX_RESPONSE_BYTES = 1024 * 1024;
const LOG_TAIL_CHARS = 3_000;
const NODE_IDS = [1, 2, 3] as const;

// ---------------------------------------------------------------------------------------------
// helpers

function waitFor<T>(what: string, cond: () => Promise<T | undefined | null | false>, timeoutMs: number): Promise<T> {
  return waitForShared(what, cond, timeoutMs, POLL_MS);
}

interface HttpResult {
  status: number;
  body: unknown;
}

function http(method: string, port: number, path: string, body?: unknown): Promise<HttpResult> {
  return new Promise((resolve, reject) => {
    const payload = body === undefined ? undefined : Buffer.from(JSON.stringify(body));
    const req = request(
      {
        host: '127.0.0.1',
        port,
        method,
        path,
        agent: false,
        timeout: HTTP_TIMEOUT_MS,
        headers: payload ? { 'content-type': 'application/json', 'content-length': payload.length } : {},
      },
      (res) => {
        const chunks: Buffer[] = [];
        let bytes = 0;
        res.on('data', (c: Buffer) => {
          bytes += c.length;
          if (bytes > MAX_RESPONSE_BYTES) req.destroy(new Error(`response over ${MAX_RESPONSE_BYTES} bytes`));
          else chunks.push(c);
        });
        res.on('end', () => {
          const text = Buffer.concat(chunks).toString('utf8');
          try {
            resolve({ status: res.statusCode ?? 0, body: text === '' ? null : JSON.parse(text) });
          } catch {
            reject(new Error(`${method} ${path}: not JSON (${res.statusCode}): ${text.slice(0, 200)}`));
          }
        });
        res.on('error', reject);
      },
    );
    req.on('timeout', () => req.destroy(new Error(`${method} ${path} timed out after ${HTTP_TIMEOUT_MS} ms`)));
    req.on('error', reject);
    req.end(payload);
  });
}

/** An environment for the children: nothing of this test runner's node options, no module search path. */
function run(cmd: string, args: readonly string[], env: NodeJS.ProcessEnv, timeoutMs: number): Promise<CommandResult> {
  return runCommand(cmd, args, { cwd: REPO_ROOT, env, timeoutMs });
}

function cleanEnv(extra: Record<string, string>): NodeJS.ProcessEnv {
  const env: NodeJS.ProcessEnv = {};
  for (const [k, v] of Object.entries(process.env)) {
    if (k === 'NODE_OPTIONS' || k === 'NODE_PATH' || k.startsWith('NODE_TEST') || k.startsWith('RAFTAUTH_')) continue;
    env[k] = v;
  }
  return { ...env, ...extra };
}


/** Why the binary cannot be built here, or null when it can. */
function buildPrerequisiteMissing(): string | null {
  try {
    classicLevelPrebuild();
  } catch (e) {
    return (e as Error).message;
  }
  // A node built without single-executable support (some distribution packages) has no fuse to flip.
  if (!readFileSync(process.execPath).includes(SEA_SENTINEL_FUSE)) return `${process.execPath} has no SEA fuse (built without single-executable support)`;
  return null;
}

// ---------------------------------------------------------------------------------------------

describe('what the binary build carries in another form', () => {
  it('encodes every method exactly like the .proto loaded from disk', () => {
    const options: protoLoader.Options = { keepCase: false, longs: String, enums: String, defaults: true, oneofs: true };
    const fromDisk = protoLoader.loadSync(PROTO_PATH, options)[SERVICE_NAME] as grpc.ServiceDefinition;
    const fromJson = protoLoader.fromJSON(raftProtoJson(PROTO_PATH) as Parameters<typeof protoLoader.fromJSON>[0], options)[SERVICE_NAME] as grpc.ServiceDefinition;
    assert.deepEqual(Object.keys(fromJson).sort(), Object.keys(fromDisk).sort());
    const confState = { voters: [1, '9007199254740991'], learners: [4], votersOutgoing: [], learnersNext: [5], autoLeave: true };
    const samples: Record<string, { req: unknown; res?: unknown }> = {
      // The hot streams carry Frames (their bytes are src/transport/frames.ts's layout).
      Stream: { req: { data: Buffer.from([1, 1, 0, 0, 0, 1]) }, res: { accepted: 3, batches: 2 } },
      ProposeStream: { req: { data: Buffer.from([1, 2, 9]) }, res: { data: Buffer.from([1, 3, 0, 0, 0, 0]) } },
      Snapshot: { req: { header: { from: 1, to: 2, term: 3, metadata: { index: 10, term: 3, confState } } }, res: { receivedBytes: '4096' } },
    };
    assert.deepEqual(Object.keys(samples).sort(), Object.keys(fromDisk).sort(), 'a sample per method');
    for (const [name, s] of Object.entries(samples)) {
      const a = fromDisk[name]!;
      const b = fromJson[name]!;
      assert.equal(b.path, a.path);
      assert.equal(b.requestStream, a.requestStream);
      assert.equal(b.responseStream, a.responseStream);
      const reqBytes = a.requestSerialize(s.req);
      assert.ok(reqBytes.length > 0, `${name} request encodes to something`);
      assert.deepEqual(b.requestSerialize(s.req), reqBytes, `${name} request bytes`);
      assert.deepEqual(b.requestDeserialize(reqBytes), a.requestDeserialize(reqBytes), `${name} request decoded`);
      const resBytes = a.responseSerialize(s.res);
      assert.deepEqual(b.responseSerialize(s.res), resBytes, `${name} response bytes`);
      assert.deepEqual(b.responseDeserialize(resBytes), a.responseDeserialize(resBytes), `${name} response decoded`);
    }
  });

  it('names the addon asset the same in the build and in the loader', () => {
    assert.equal(CLASSIC_LEVEL_ASSET_NAME, CLASSIC_LEVEL_ADDON_ASSET);
  });
});

describe('dist/raftauth (single executable)', { timeout: 120_000 }, () => {
  const missing = buildPrerequisiteMissing();
  let root = '';
  let binary = '';
  let addonTmp = '';
  const children: { id: number; child: ChildProcess; log: () => string }[] = [];

  const killAll = (): void => {
    for (const { child } of children) {
      // Each node runs in its own process group (detached): this reaches its HTTP worker too.
      if (child.pid !== undefined && child.exitCode === null && child.signalCode === null) {
        try {
          process.kill(-child.pid, 'SIGKILL');
        } catch {
          // already gone
        }
      }
    }
  };

  before(async () => {
    if (missing) return;
    requireFreshDist();
    root = await mkdtemp(join(tmpdir(), 'raftauth-binary-'));
    const built = join(root, 'build', 'raftauth');
    const t0 = Date.now();
    const r = await run(process.execPath, ['--import', 'tsx', BUILD_SCRIPT, '--out', built], cleanEnv({}), BUILD_TIMEOUT_MS);
    assert.equal(r.code, 0, `build failed:\n${r.output.slice(-LOG_TAIL_CHARS)}`);
    process.stdout.write(`# built the binary in ${Date.now() - t0} ms\n`);
    // The binary alone, in a directory of its own, with nothing to resolve packages from.
    const runDir = join(root, 'run');
    binary = join(runDir, 'raftauth');
    mkdirSync(runDir);
    copyFileSync(built, binary);
    chmodSync(binary, 0o755);
    await rm(join(root, 'build'), { recursive: true, force: true });
    addonTmp = join(root, 'tmp');
    mkdirSync(addonTmp, { mode: 0o700 });
  });

  after(async () => {
    killAll();
    if (root) await rm(root, { recursive: true, force: true });
  });

  it('runs a 3-node cluster from the binary alone', { skip: missing ? `cannot build the binary here: ${missing}` : false }, async () => {
    const runDir = dirname(binary);
    for (let d = runDir; ; d = dirname(d)) {
      assert.ok(!existsSync(join(d, 'node_modules')), `${d} has a node_modules; the binary must run without one`);
      if (dirname(d) === d) break;
    }
    assert.deepEqual(readdirSync(runDir), ['raftauth']);

    // Without arguments the binary is the CLI and says how to use it (exit code 2).
    const usage = await run(binary, [], cleanEnv({ TMPDIR: addonTmp }), HTTP_TIMEOUT_MS);
    assert.equal(usage.code, 2, usage.output);
    assert.match(usage.output, /usage: raftauth/);

    // `certs init|issue` from the binary (x509 and WebCrypto inside the bundle): keys 0600, and
    // the node certificate names its node.
    const certsDir = join(root, 'certs-from-binary');
    const init = await run(binary, ['certs', 'init', '--dir', certsDir, '--admin-token'], cleanEnv({ TMPDIR: addonTmp }), HTTP_TIMEOUT_MS * 2);
    assert.equal(init.code, 0, init.output);
    const issue = await run(binary, ['certs', 'issue', '--dir', certsDir, '--id', '7'], cleanEnv({ TMPDIR: addonTmp }), HTTP_TIMEOUT_MS * 2);
    assert.equal(issue.code, 0, issue.output);
    for (const key of ['ca.key', 'node7.key', 'admin.token']) assert.equal(statSync(join(certsDir, key)).mode & 0o777, 0o600, key);
    assert.equal(nodeIdFromCert(readFileSync(join(certsDir, 'node7.crt'))), 7);

    // Certificates, token, configs: each node in its own directory.
    const ca = await createClusterCa();
    const ports = new Map<number, { raft: number; http: number; admin: number }>();
    for (const id of NODE_IDS) ports.set(id, { raft: await freePort(), http: await freePort(), admin: await freePort() });
    const members = NODE_IDS.map((id) => `    - { id: ${id}, raftAddress: "127.0.0.1:${ports.get(id)!.raft}", httpAddress: "127.0.0.1:${ports.get(id)!.http}" }`).join('\n');
    const token = 'binary-test-admin-token-0123456789abcdef';
    // The master key that wraps the cluster's data keys, made by the binary's own CLI (0600).
    const masterFile = join(root, 'master.key');
    const gen = await run(binary, ['keys', 'generate-master', '--out', masterFile], cleanEnv({ TMPDIR: addonTmp }), HTTP_TIMEOUT_MS * 2);
    assert.equal(gen.code, 0, gen.output);
    assert.equal(statSync(masterFile).mode & 0o777, 0o600);
    const issuer = `http://127.0.0.1:${ports.get(NODE_IDS[0])!.http}`;
    for (const id of NODE_IDS) {
      const dir = join(root, `node${id}`);
      await writePem(dir, 'ca', ca);
      await writePem(dir, `node${id}`, await issueNodeCert(ca, id, ['127.0.0.1']));
      writeFileSync(join(dir, 'admin.token'), `${token}\n`, { mode: 0o600 });
      writeFileSync(
        join(dir, 'node.yaml'),
        [
          `node: { id: ${id}, dataDir: data }`,
          'cluster:',
          '  initialMembers:',
          members,
          'raft: { tickMs: 50 }',
          `tls: { ca: ca.crt, cert: node${id}.crt, key: node${id}.key }`,
          `http: { workers: 1, listen: "127.0.0.1:${ports.get(id)!.http}" }`,
          `admin: { listen: "127.0.0.1:${ports.get(id)!.admin}", tokenFile: admin.token }`,
          'log: { level: info }',
          `crypto: { masterKeyFile: "${masterFile}" }`,
          `oauth: { issuer: "${issuer}" }`,
          '',
        ].join('\n'),
      );
    }

    // The LevelDB addon comes from the binary's asset through a private file under TMPDIR: with
    // no usable TMPDIR a node cannot start, and says why.
    const noTmp = await run(binary, ['start', '--config', join(root, 'node1', 'node.yaml')], cleanEnv({ TMPDIR: join(root, 'no-such-dir') }), HTTP_TIMEOUT_MS * 2);
    assert.notEqual(noTmp.code, 0, noTmp.output);
    assert.match(noTmp.output, /cannot write native addon classic-level\.node to a private temporary directory/);

    for (const id of NODE_IDS) {
      const cfg = join(root, `node${id}`, 'node.yaml');
      // Both spellings of the command line: `start --config FILE` and `--config FILE`.
      const args = id === 1 ? ['start', '--config', cfg] : ['--config', cfg];
      const child = spawn(binary, args, { cwd: runDir, env: cleanEnv({ TMPDIR: addonTmp }), stdio: ['ignore', 'pipe', 'pipe'], detached: true });
      let log = '';
      const keep = (c: Buffer): void => {
        log = (log + c.toString()).slice(-LOG_TAIL_CHARS);
      };
      child.stdout!.on('data', keep);
      child.stderr!.on('data', keep);
      children.push({ id, child, log: () => log });
    }
    const logs = (): string => children.map((c) => `--- node ${c.id} (exit ${c.child.exitCode ?? c.child.signalCode ?? 'running'}):\n${c.log()}`).join('\n');

    try {
      // Up: every node's HTTP worker answers and agrees on one leader.
      const leader = await waitFor(
        'a leader known to all three nodes',
        async () => {
          for (const c of children) if (c.child.exitCode !== null) throw new Error(`node ${c.id} exited with ${c.child.exitCode}`);
          const seen = new Set<number>();
          for (const id of NODE_IDS) {
            const r = await http('GET', ports.get(id)!.http, '/v1/status');
            if (r.status !== 200) return null;
            seen.add((r.body as { leader: number }).leader);
          }
          const [l] = [...seen];
          return seen.size === 1 && l !== undefined && l !== 0 ? l : null;
        },
        CLUSTER_UP_TIMEOUT_MS,
      ).catch((e: unknown) => {
        throw new Error(`${(e as Error).message}\n${logs()}`);
      });
      assert.ok(NODE_IDS.includes(leader as 1 | 2 | 3));

      // The nodes' native addon was loaded from the asset and its temporary copy removed.
      assert.deepEqual(readdirSync(addonTmp), [], 'no addon copy left in TMPDIR');

      // The admin API (on its own address, with the token) answers from the binary too.
      const admin = await new Promise<HttpResult>((resolve, reject) => {
        const req = request(
          { host: '127.0.0.1', port: ports.get(1)!.admin, path: '/admin/v1/status', agent: false, timeout: HTTP_TIMEOUT_MS, headers: { authorization: `Bearer ${token}` } },
          (res) => {
            let text = '';
            res.on('data', (c: Buffer) => (text += c.toString()));
            res.on('end', () => resolve({ status: res.statusCode ?? 0, body: JSON.parse(text) }));
          },
        );
        req.on('error', reject);
        req.end();
      });
      assert.equal(admin.status, 200);
      assert.equal((admin.body as { id: number }).id, 1);

      // Another CLI command from the binary: `status` through the admin APIs.
      const adminUrls = NODE_IDS.map((id) => `http://127.0.0.1:${ports.get(id)!.admin}`).join(',');
      const status = await run(binary, ['status', '--json', '--admin', adminUrls, '--token-file', join(root, 'node1', 'admin.token')], cleanEnv({ TMPDIR: addonTmp }), HTTP_TIMEOUT_MS * 4);
      assert.equal(status.code, 0, status.output);
      const st = JSON.parse(status.output) as { leader: number; members: { id: number }[] };
      assert.equal(st.leader, leader, status.output);
      assert.deepEqual(st.members.map((m) => m.id).sort(), [...NODE_IDS], status.output);

      // Write through a follower (forwarded to the leader), read linearizably through every node.
      const follower = NODE_IDS.find((id) => id !== leader)!;
      const value = `from-the-binary-${Date.now()}`;
      const w = await http('PUT', ports.get(follower)!.http, '/v1/kv/binary-test', { value });
      assert.equal(w.status, 200, JSON.stringify(w.body));
      for (const id of NODE_IDS) {
        const r = await http('GET', ports.get(id)!.http, '/v1/kv/binary-test');
        assert.equal(r.status, 200, `node ${id}: ${JSON.stringify(r.body)}`);
        assert.equal((r.body as { value: string }).value, value, `node ${id} reads the written value`);
      }

      // OAuth from the binary: the leader creates the keys; a client made through the admin API
      // gets a token (jose, the sealing, the scrypt-free client secret path); the WebAuthn page's
      // browser library comes from the binary's asset, not from a node_modules.
      await waitFor('the signing keys on every node', async () => {
        for (const id of NODE_IDS) {
          const j = await http('GET', ports.get(id)!.http, '/jwks.json');
          const keys = (j.body as { keys?: unknown[] }).keys;
          if (j.status !== 200 || !Array.isArray(keys) || keys.length === 0) return null;
        }
        return true;
      }, CLUSTER_UP_TIMEOUT_MS);
      const created = await fetch(`http://127.0.0.1:${ports.get(leader)!.admin}/admin/v1/clients`, {
        method: 'POST',
        headers: { authorization: `Bearer ${token}`, 'content-type': 'application/json' },
        body: JSON.stringify({ client_id: 'binary-client', client_name: 'binary', grant_types: ['client_credentials'], scopes: ['api'] }),
      });
      const cbody = (await created.json()) as { client_secret?: string };
      assert.equal(created.status, 201, JSON.stringify(cbody));
      const tok = await waitFor('a client_credentials token from a follower', async () => {
        const r = await fetch(`http://127.0.0.1:${ports.get(follower)!.http}/token`, {
          method: 'POST',
          headers: { authorization: `Basic ${Buffer.from(`binary-client:${cbody.client_secret}`).toString('base64')}`, 'content-type': 'application/x-www-form-urlencoded' },
          body: 'grant_type=client_credentials',
        });
        return r.status === 200 ? ((await r.json()) as { access_token: string }) : null;
      }, CLUSTER_UP_TIMEOUT_MS);
      assert.match(tok.access_token, /^eyJ/);
      const lib = await fetch(`http://127.0.0.1:${ports.get(follower)!.http}/mfa/assets/simplewebauthn-browser.js`);
      assert.equal(lib.status, 200);
      assert.match(await lib.text(), /SimpleWebAuthnBrowser/);

      // Graceful stop on SIGTERM: exit code 0, worker included.
      for (const c of children) c.child.kill('SIGTERM');
      for (const c of children) {
        const code = await waitFor(`node ${c.id} to exit`, async () => (c.child.exitCode !== null || c.child.signalCode !== null ? { code: c.child.exitCode } : null), EXIT_TIMEOUT_MS);
        assert.equal(code.code, 0, `node ${c.id} exit code\n${logs()}`);
      }
    } finally {
      killAll();
    }
  });
});
