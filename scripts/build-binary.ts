// `npm run build:binary`: builds dist/raftauth, one executable that runs every raftauth command
// with no node_modules beside it (a Node 20 single-executable application, "SEA":
// https://nodejs.org/docs/latest-v20.x/api/single-executable-applications.html).
//
//  1. The program is the compiled dist/ of `npm run build` (scripts/lib/dist.ts), built first if
//     it is missing or older than src/: the binary runs the same JavaScript as `node dist/main.js`.
//  2. esbuild bundles dist/main.js (the one entry module: CLI, node primary, HTTP worker) and
//     everything it imports into one CommonJS file (Node 20's SEA runs a CommonJS main script only,
//     whose `require` reaches built-in modules only). It rewrites none of the program's modules.
//  3. What cannot be JavaScript travels another way:
//     - classic-level's prebuilt LevelDB addon for this platform is an SEA asset; its `binding.js`
//       (node-gyp-build looking for a .node file beside the package) is replaced in the bundle by
//       dist/sea/addon.js, which writes the asset to a private temporary file and dlopens it;
//     - msgpackr's optional native accelerator (msgpackr-extract) is left out: msgpackr catches the
//       failed require and decodes in JavaScript, with the same results;
//     - raft.proto is parsed here and inlined (dist/transport/proto.js reads
//       RAFTAUTH_EMBEDDED_RAFT_PROTO when the bundler defines it);
//     - @simplewebauthn/browser's UMD bundle (served to the WebAuthn pages) is an SEA asset.
//  The node:cluster HTTP workers are the binary itself (src/server/process.ts forks
//  process.execPath when isSea(); src/main.ts runs the worker in a cluster worker).
//  4. `node --experimental-sea-config` turns bundle + assets into a blob; a copy of this node
//     binary gets the blob injected by postject, which also flips the SEA fuse.
//
// The binary is tied to this platform (the addon) and to this node version (the code cache).
//
// Usage: npm run build:binary   (node --import tsx scripts/build-binary.ts [--out FILE], default dist/raftauth)
import { build } from 'esbuild';
import type { Plugin } from 'esbuild';
// Types only: the code is loaded from @grpc/proto-loader's own dependency (raftProtoJson).
import type * as Protobuf from 'protobufjs';
import { spawnSync } from 'node:child_process';
import { chmodSync, copyFileSync, existsSync, mkdirSync, renameSync, rmSync, statSync, writeFileSync } from 'node:fs';
import { createRequire } from 'node:module';
import { dirname, join, resolve } from 'node:path';
import { fileURLToPath } from 'node:url';
import { parseArgs } from 'node:util';
import { SIMPLEWEBAUTHN_BROWSER_ASSET } from '../src/sea/assets.ts';
import { readPackageVersion } from '../src/version.ts';
import { DIST_DIR, DIST_MAIN, buildIfStale } from './lib/dist.ts';

const ROOT = resolve(dirname(fileURLToPath(import.meta.url)), '..');
const require = createRequire(import.meta.url);

/** The sentinel postject must flip so that node runs the injected blob (the SEA documentation's value). */
export const SEA_SENTINEL_FUSE = 'NODE_SEA_FUSE_fce680ab2cc467b6e072b8b5df1996b2';
/** The blob's resource name (ELF note / Mach-O section / PE resource) node looks for. */
const SEA_RESOURCE_NAME = 'NODE_SEA_BLOB';
/** Must equal CLASSIC_LEVEL_ADDON_ASSET in src/sea/addon.ts (checked in test/binary/). */
export const CLASSIC_LEVEL_ASSET_NAME = 'classic-level.node';

/** @simplewebauthn/browser's UMD bundle (its package exports only module entry points; the bundle sits beside them). */
function simpleWebAuthnBrowserBundle(): string {
  const entry = require.resolve('@simplewebauthn/browser');
  const file = join(dirname(entry), '..', 'dist', 'bundle', 'index.umd.min.js');
  if (!existsSync(file)) throw new Error(`the @simplewebauthn/browser bundle is missing: ${file}`);
  return file;
}
/** Output kept from a build tool (shown when it fails). */
const MAX_TOOL_OUTPUT_BYTES = 16 * 1024 * 1024;

export interface BuildOptions {
  /** Where the executable goes. Default dist/raftauth. */
  readonly outFile?: string;
  /** Progress lines. Default: none. */
  readonly log?: (line: string) => void;
}

export interface BuildResult {
  readonly binaryPath: string;
  readonly bundleBytes: number;
  readonly binaryBytes: number;
}

/**
 * classic-level's prebuilt addon for this platform, picked as node-gyp-build would pick it for the
 * running process (glibc; musl builds are not carried). Linux only: on macOS and Windows the
 * injected binary also has to be re-signed (and Mach-O needs its own segment name), which this
 * build does not do.
 */
export function classicLevelPrebuild(): string {
  if (process.platform !== 'linux') throw new Error(`the single binary is built on Linux only (this is ${process.platform})`);
  const pkg = dirname(require.resolve('classic-level/package.json'));
  const file = join(pkg, 'prebuilds', `${process.platform}-${process.arch}`, 'classic-level.node');
  if (!existsSync(file)) throw new Error(`no prebuilt classic-level addon for ${process.platform}-${process.arch} (looked for ${file})`);
  return file;
}

/** The raft.proto the bundled program would load from disk: dist's copy of src/transport/raft.proto. */
export const DIST_RAFT_PROTO = join(DIST_DIR, 'transport', 'raft.proto');

/**
 * raft.proto as protobufjs JSON (keepCase false, as src/transport/proto.ts loads it), parsed by the
 * protobufjs that @grpc/proto-loader itself uses, so that fromJSON at run time reads what it wrote.
 */
export function raftProtoJson(file: string = DIST_RAFT_PROTO): unknown {
  const fromLoader = createRequire(require.resolve('@grpc/proto-loader'));
  const protobuf = fromLoader('protobufjs') as typeof Protobuf;
  const root = new protobuf.Root().loadSync(file, { keepCase: false });
  root.resolveAll();
  return root.toJSON();
}

/** Replaces classic-level's binding.js and msgpackr's optional native module in the bundle. */
function nativeAddonsPlugin(): Plugin {
  const addonModule = join(DIST_DIR, 'sea', 'addon.js');
  return {
    name: 'raftauth-native-addons',
    setup(b) {
      b.onLoad({ filter: /[\\/]classic-level[\\/]binding\.js$/ }, () => ({
        contents: `module.exports = require(${JSON.stringify(addonModule)}).loadClassicLevelBinding();\n`,
        loader: 'js',
        resolveDir: ROOT,
      }));
      b.onResolve({ filter: /^msgpackr-extract$/ }, () => ({ path: 'msgpackr-extract', namespace: 'raftauth-absent' }));
      b.onLoad({ filter: /.*/, namespace: 'raftauth-absent' }, () => ({
        // msgpackr wraps this require in try/catch and falls back to its JavaScript decoder.
        contents: `throw new Error('msgpackr-extract is not carried in the single binary');\n`,
        loader: 'js',
      }));
    },
  };
}

/** Runs node with args; the output is shown only when it fails (both tools used here chatter on success). */
function runNode(what: string, args: readonly string[]): void {
  // NODE_OPTIONS of the caller (a test runner's, a debugger's) must not reach the tools.
  const env = { ...process.env };
  delete env.NODE_OPTIONS;
  const r = spawnSync(process.execPath, args, { stdio: ['ignore', 'pipe', 'pipe'], env, encoding: 'utf8', maxBuffer: MAX_TOOL_OUTPUT_BYTES });
  if (r.error || r.status !== 0) {
    throw new Error(`${what} failed (${r.error?.message ?? `exit code ${r.status}, signal ${r.signal}`}):\n${r.stdout ?? ''}${r.stderr ?? ''}`);
  }
}

export async function buildBinary(options: BuildOptions = {}): Promise<BuildResult> {
  const log = options.log ?? ((): void => {});
  if (process.versions.node.split('.')[0] !== '20') {
    // The SEA config keys and the CommonJS-only main script used here are Node 20's.
    log(`warning: built and tested with Node 20; this is Node ${process.versions.node}`);
  }
  buildIfStale(log);
  const binaryPath = resolve(options.outFile ?? join(DIST_DIR, 'raftauth'));
  const work = `${binaryPath}.build`;
  rmSync(work, { recursive: true, force: true });
  mkdirSync(work, { recursive: true });
  try {
    const bundlePath = join(work, 'raftauth.cjs');
    const blobPath = join(work, 'raftauth.blob');
    const addonPath = classicLevelPrebuild();

    log(`bundling ${DIST_MAIN} -> ${bundlePath}`);
    await build({
      absWorkingDir: ROOT,
      entryPoints: [DIST_MAIN],
      outfile: bundlePath,
      bundle: true,
      platform: 'node',
      target: `node${process.versions.node}`,
      format: 'cjs',
      // The SEA's main script has no import.meta; every use in the program is guarded: process.ts
      // and mfa.ts ask isSea() first, proto.ts uses RAFTAUTH_EMBEDDED_RAFT_PROTO and version.ts
      // RAFTAUTH_VERSION (it reads package.json beside src/ at run time; the binary has none).
      logOverride: { 'empty-import-meta': 'silent' },
      define: { RAFTAUTH_EMBEDDED_RAFT_PROTO: JSON.stringify(raftProtoJson()), RAFTAUTH_VERSION: JSON.stringify(readPackageVersion(new URL('../package.json', import.meta.url))) },
      plugins: [nativeAddonsPlugin()],
      legalComments: 'none',
      logLevel: 'warning',
    });

    const seaConfigPath = join(work, 'sea-config.json');
    writeFileSync(
      seaConfigPath,
      JSON.stringify(
        {
          main: bundlePath,
          output: blobPath,
          disableExperimentalSEAWarning: true,
          // Compiled code in the blob: start-up (every CLI command, every HTTP worker) skips parsing the bundle.
          useCodeCache: true,
          assets: { [CLASSIC_LEVEL_ASSET_NAME]: addonPath, [SIMPLEWEBAUTHN_BROWSER_ASSET]: simpleWebAuthnBrowserBundle() },
        },
        null,
        2,
      ),
    );
    log(`generating the SEA blob (assets ${CLASSIC_LEVEL_ASSET_NAME} from ${addonPath}, ${SIMPLEWEBAUTHN_BROWSER_ASSET})`);
    runNode('node --experimental-sea-config', ['--experimental-sea-config', seaConfigPath]);

    log(`injecting into a copy of ${process.execPath}`);
    const tmpBinary = join(work, 'raftauth');
    copyFileSync(process.execPath, tmpBinary);
    chmodSync(tmpBinary, 0o755);
    // In a child process: postject's ELF library prints harmless warnings straight to fd 2.
    runNode('postject', [require.resolve('postject/dist/cli.js'), tmpBinary, SEA_RESOURCE_NAME, blobPath, '--sentinel-fuse', SEA_SENTINEL_FUSE]);

    // Only a complete binary replaces the previous one.
    mkdirSync(dirname(binaryPath), { recursive: true });
    copyFileSync(tmpBinary, `${binaryPath}.tmp`);
    chmodSync(`${binaryPath}.tmp`, 0o755);
    renameSync(`${binaryPath}.tmp`, binaryPath);
    const result = { binaryPath, bundleBytes: statSync(bundlePath).size, binaryBytes: statSync(binaryPath).size };
    log(`built ${binaryPath} (${(result.binaryBytes / 1e6).toFixed(1)} MB; bundle ${(result.bundleBytes / 1e6).toFixed(1)} MB)`);
    return result;
  } finally {
    rmSync(work, { recursive: true, force: true });
  }
}

if (import.meta.url === `file://${process.argv[1]}`) {
  const { values } = parseArgs({ options: { out: { type: 'string' } }, strict: true });
  buildBinary({ ...(values.out !== undefined ? { outFile: values.out } : {}), log: (l) => process.stdout.write(`build:binary: ${l}\n`) }).catch((e: unknown) => {
    process.stderr.write(`build:binary failed: ${(e as Error)?.stack ?? String(e)}\n`);
    process.exit(1);
  });
}
