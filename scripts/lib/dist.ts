// The compiled program, dist/ (`npm run build`): src/ compiled by tsc (tsconfig.build.json: ESM,
// `.ts` import specifiers rewritten to `.js`, source maps), plus every file of src/ that is not
// TypeScript (raft.proto), copied to the same relative path. Nodes, HTTP workers and the CLI run
// from it (`node --enable-source-maps dist/main.js …`), and the single binary is bundled from it
// (scripts/build-binary.ts). docs/operations.md "Building" says why tsc and not esbuild.
//
// Freshness: the build writes dist/.build.json last, after a complete compile; the build is stale
// when it is missing or when anything under src/ (a file, or a directory whose entries changed:
// a file added or removed) or a tsconfig is newer than it. The tests that run nodes call
// requireFreshDist() and fail with that reason rather than run old code; `npm start`, the
// benchmarks and build:binary call buildIfStale().
import { spawnSync } from 'node:child_process';
import { chmodSync, copyFileSync, existsSync, mkdirSync, readdirSync, rmSync, statSync, writeFileSync } from 'node:fs';
import { createRequire } from 'node:module';
import { dirname, join, relative } from 'node:path';
import { fileURLToPath } from 'node:url';

/** The repository, derived from this file's location. */
export const REPO_ROOT = fileURLToPath(new URL('../..', import.meta.url));
export const SRC_DIR = join(REPO_ROOT, 'src');
export const DIST_DIR = join(REPO_ROOT, 'dist');
/** The program's one entry module: CLI, node primary and HTTP worker (src/main.ts). */
export const DIST_MAIN = join(DIST_DIR, 'main.js');
/** Written last by a complete build; its mtime is the build's time. */
export const BUILD_STAMP = join(DIST_DIR, '.build.json');
export const TSCONFIG_BUILD = join(REPO_ROOT, 'tsconfig.build.json');
/** Inputs of the build besides src/. */
const CONFIG_INPUTS = [join(REPO_ROOT, 'tsconfig.json'), TSCONFIG_BUILD];
/**
 * Entries of dist/ the build does not own, kept when it cleans dist/: the single binary (npm run
 * build:binary writes dist/raftauth, and its work files beside it while it runs).
 */
const NOT_OURS = /^raftauth(\.build|\.tmp)?$/;
/** How node is run on the compiled program. */
export const NODE_ARGS = ['--enable-source-maps'] as const;
/** tsc's output kept for the error message of a failed build. */
const MAX_TSC_OUTPUT_BYTES = 16 * 1024 * 1024;

/** The argv (after node) that runs the compiled program with `args`. */
export function distArgs(args: readonly string[]): string[] {
  return [...NODE_ARGS, DIST_MAIN, ...args];
}

/** Every file and directory under dir (dir included), depth first. */
function walk(dir: string, out: string[] = []): string[] {
  out.push(dir);
  for (const e of readdirSync(dir, { withFileTypes: true })) {
    const p = join(dir, e.name);
    if (e.isDirectory()) walk(p, out);
    else out.push(p);
  }
  return out;
}

/** Why dist/ cannot be run as the current source (missing, incomplete, or older than src/), or null when it can. */
export function distProblem(): string | null {
  if (!existsSync(BUILD_STAMP) || !existsSync(DIST_MAIN)) return `dist/ is not built (no ${relative(REPO_ROOT, BUILD_STAMP)})`;
  const builtMs = statSync(BUILD_STAMP).mtimeMs;
  for (const p of [...walk(SRC_DIR), ...CONFIG_INPUTS]) {
    if (statSync(p).mtimeMs > builtMs) return `dist/ is older than ${relative(REPO_ROOT, p) || p}`;
  }
  return null;
}

/** Throws, saying what to run, unless dist/ is built from the current source. */
export function requireFreshDist(): void {
  const problem = distProblem();
  if (problem !== null) throw new Error(`${problem}: run \`npm run build\` first (npm test does)`);
}

export interface BuildResult {
  readonly ms: number;
  /** Files written to dist/ (JavaScript, source maps, assets). */
  readonly files: number;
}

/** Build dist/ from src/ (see the top of this file). Throws with tsc's diagnostics when the source does not compile. */
export function buildDist(log: (line: string) => void = () => {}): BuildResult {
  const t0 = performance.now();
  // The stamp goes first and comes back last: an interrupted build is never taken for a complete one.
  rmSync(BUILD_STAMP, { force: true });
  mkdirSync(DIST_DIR, { recursive: true });
  // Output of a source file that no longer exists must not linger (a module could still import it).
  for (const e of readdirSync(DIST_DIR)) if (!NOT_OURS.test(e)) rmSync(join(DIST_DIR, e), { recursive: true, force: true });

  const tsc = createRequire(import.meta.url).resolve('typescript/bin/tsc');
  log(`tsc -p ${relative(REPO_ROOT, TSCONFIG_BUILD)}`);
  // NODE_OPTIONS of the caller (a test runner's loader, a debugger) must not reach the compiler.
  const env = { ...process.env };
  delete env.NODE_OPTIONS;
  const r = spawnSync(process.execPath, [tsc, '-p', TSCONFIG_BUILD], { cwd: REPO_ROOT, env, encoding: 'utf8', stdio: ['ignore', 'pipe', 'pipe'], maxBuffer: MAX_TSC_OUTPUT_BYTES });
  if (r.error || r.status !== 0) {
    throw new Error(`tsc failed (${r.error?.message ?? `exit code ${r.status}, signal ${r.signal}`}); dist/ is left unbuilt:\n${r.stdout ?? ''}${r.stderr ?? ''}`);
  }

  let assets = 0;
  for (const p of walk(SRC_DIR)) {
    if (p.endsWith('.ts') || statSync(p).isDirectory()) continue;
    const to = join(DIST_DIR, relative(SRC_DIR, p));
    mkdirSync(dirname(to), { recursive: true });
    copyFileSync(p, to);
    assets++;
  }
  // package.json "bin": runnable as a command (its first line is `#!/usr/bin/env node`).
  chmodSync(DIST_MAIN, 0o755);
  const files = walk(DIST_DIR).filter((p) => !statSync(p).isDirectory()).length;
  log(`copied ${assets} asset file(s) from src/`);
  writeFileSync(BUILD_STAMP, `${JSON.stringify({ builtAt: new Date().toISOString(), node: process.versions.node }, null, 2)}\n`);
  const ms = Math.round(performance.now() - t0);
  log(`built dist/ (${files} files) in ${ms} ms`);
  return { ms, files };
}

/** Build dist/ unless it is fresh; true when it built. */
export function buildIfStale(log: (line: string) => void = () => {}): boolean {
  const problem = distProblem();
  if (problem === null) return false;
  log(`${problem}: building`);
  buildDist(log);
  return true;
}
