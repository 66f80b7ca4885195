// The import-cycle check (scripts/check-layers.ts): it must fail on a planted cycle — between files,
// through types only, through a re-export or a dynamic import, and between layers where no file
// closes a loop — pass the same trees once the cycle is cut, and pass the project's own src/.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { execFileSync, spawnSync } from 'node:child_process';
import { mkdirSync, mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { checkLayers, findCycles, importGraph } from './check-layers.ts';

const SCRIPT = fileURLToPath(new URL('./check-layers.ts', import.meta.url));

/** A source tree in a temp dir: path → contents. */
function tree(files: Record<string, string>): { root: string; [Symbol.dispose](): void } {
  const root = mkdtempSync(join(tmpdir(), 'raftauth-layers-'));
  for (const [p, text] of Object.entries(files)) {
    mkdirSync(dirname(join(root, p)), { recursive: true });
    writeFileSync(join(root, p), text);
  }
  return { root, [Symbol.dispose]: () => rmSync(root, { recursive: true, force: true }) };
}

function runCli(root: string): { status: number | null; out: string } {
  const r = spawnSync(process.execPath, ['--import', 'tsx', SCRIPT, root], { encoding: 'utf8' });
  return { status: r.status, out: r.stdout + r.stderr };
}

test('findCycles: components of more than one node and self-loops, nothing for a DAG', () => {
  assert.deepEqual(findCycles([['a', 'b'], ['b', 'c'], ['a', 'c']]), []);
  assert.deepEqual(findCycles([['a', 'b'], ['b', 'c'], ['c', 'a'], ['c', 'd']]), [['a', 'b', 'c']]);
  assert.deepEqual(findCycles([['x', 'x'], ['x', 'y']]), [['x']]);
  assert.deepEqual(findCycles([['a', 'b'], ['b', 'a'], ['c', 'd'], ['d', 'c'], ['b', 'c']]), [['a', 'b'], ['c', 'd']]);
});

test('findCycles handles a long chain closed at its end without deep recursion', () => {
  const n = 50_000;
  const edges: [string, string][] = [];
  for (let i = 0; i < n; i++) edges.push([`n${i}`, `n${i + 1}`]);
  assert.deepEqual(findCycles(edges), []);
  edges.push([`n${n}`, 'n0']);
  assert.equal(findCycles(edges)[0]!.length, n + 1);
});

test('a planted file cycle fails the check (exit 1, names the files); cut, it passes (exit 0)', () => {
  const files = {
    'node/a.ts': "import { b } from './b.ts';\nexport const a = (): number => b();\n",
    'node/b.ts': "import { c } from '../raft/c.ts';\nexport const b = (): number => c;\n",
    'raft/c.ts': 'export const c = 1;\n',
  };
  {
    using t = tree(files);
    assert.equal(runCli(t.root).status, 0);
  }
  using t = tree({ ...files, 'node/b.ts': "import { a } from './a.ts';\nexport const b = (): number => a();\n" });
  const r = runCli(t.root);
  assert.equal(r.status, 1, r.out);
  assert.match(r.out, /import cycle between files: node\/a\.ts, node\/b\.ts/);
});

test('type-only imports, re-exports and dynamic imports are edges too', () => {
  using t = tree({
    'state/a.ts': "import type { B } from './b.ts';\nexport interface A { b: B }\n",
    'state/b.ts': "export type { A as B } from './a.ts';\n",
    'ops/c.ts': "export async function c(): Promise<unknown> { return import('./d.ts'); }\n",
    'ops/d.ts': "import { c } from './c.ts';\nexport const d = c;\n",
  });
  const edges = importGraph(t.root);
  assert.ok(edges.some((e) => e.from === 'state/a.ts' && e.to === 'state/b.ts' && e.typeOnly));
  assert.ok(edges.some((e) => e.from === 'state/b.ts' && e.to === 'state/a.ts' && e.typeOnly));
  assert.ok(edges.some((e) => e.from === 'ops/c.ts' && e.to === 'ops/d.ts' && e.dynamic));
  assert.deepEqual(checkLayers(t.root, []).fileCycles, [
    ['ops/c.ts', 'ops/d.ts'],
    ['state/a.ts', 'state/b.ts'],
  ]);
});

test('a cycle between layers fails even when no file closes a loop', () => {
  using t = tree({
    'state/a.ts': "import { n } from '../node/n.ts';\nexport const a = n;\n",
    'node/n.ts': 'export const n = 1;\n',
    'node/m.ts': "import { b } from '../state/b.ts';\nexport const m = b;\n",
    'state/b.ts': 'export const b = 2;\n',
  });
  const report = checkLayers(t.root, []);
  assert.deepEqual(report.fileCycles, []);
  assert.deepEqual(report.layerCycles, [['node', 'state']]);
  const r = runCli(t.root);
  assert.equal(r.status, 1, r.out);
  assert.match(r.out, /import cycle between layers: node, state/);
  assert.match(r.out, /node\/m\.ts -> state\/b\.ts/);
  assert.match(r.out, /state\/a\.ts -> node\/n\.ts/);
});

test('imports of packages and of files outside the tree are not the project graph', () => {
  using t = tree({ 'a/x.ts': "import { Packr } from 'msgpackr';\nimport p from '../../package.json' with { type: 'json' };\nexport const x = [Packr, p];\n" });
  assert.deepEqual(importGraph(t.root), []);
});

test('a PENDING_REMOVAL entry whose import is gone fails the check', () => {
  using t = tree({ 'mfa/s.ts': 'export const s = 1;\n' });
  const report = checkLayers(t.root, [['mfa/s.ts', 'oauth/context.ts']]);
  assert.deepEqual(report.stalePending, [['mfa/s.ts', 'oauth/context.ts']]);
  using u = tree({ 'mfa/s.ts': "import { c } from '../oauth/context.ts';\nexport const s = c;\n", 'oauth/context.ts': "import { s } from '../mfa/s.ts';\nexport const c = s;\n" });
  const r = checkLayers(u.root, [['mfa/s.ts', 'oauth/context.ts']]);
  assert.deepEqual([r.stalePending, r.fileCycles, r.layerCycles], [[], [], []]);
});

test("the project's src/ has no import cycle (what npm run lint runs)", () => {
  const out = execFileSync(process.execPath, ['--import', 'tsx', SCRIPT], { encoding: 'utf8' });
  assert.match(out, /no import cycles/);
});
