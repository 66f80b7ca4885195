// The import-cycle check of `npm run lint` (docs/architecture.md "Layers"): eslint fences what each
// layer may import (eslint.config.js), and this finds cycles, which a per-file rule cannot see.
//
// Two graphs are checked, both over every import of the project's own files — value and type
// imports, re-exports (`export … from`) and dynamic `import()` alike, because a cycle through types
// still ties the layers together and a dynamic import is still a dependency:
//  - files: no file may reach itself through its imports;
//  - layers (the directories under src/, and the files directly in src/ each on its own): the
//    layers' dependencies must form a DAG, so the direction in docs/architecture.md holds even where
//    no single file closes a loop.
//
//   node --import tsx scripts/check-layers.ts [srcDir]   exit 0: no cycle; 1: cycles (listed); 2: usage
//   (default: the project's src/, with PENDING_REMOVAL; another srcDir is checked without it)
import { readdirSync, readFileSync, statSync } from 'node:fs';
import { dirname, join, relative, resolve, sep } from 'node:path';
import { fileURLToPath } from 'node:url';
import ts from 'typescript';

export interface ImportEdge {
  /** Importing file, relative to the source root, with '/' separators. */
  readonly from: string;
  /** Imported file, same form. */
  readonly to: string;
  /** `import type`, `export type`, or every named binding marked `type`. */
  readonly typeOnly: boolean;
  readonly dynamic: boolean;
}

function listTs(dir: string): string[] {
  const out: string[] = [];
  for (const name of readdirSync(dir).sort()) {
    const p = join(dir, name);
    if (statSync(p).isDirectory()) out.push(...listTs(p));
    else if (name.endsWith('.ts') && !name.endsWith('.d.ts')) out.push(p);
  }
  return out;
}

const toKey = (root: string, file: string): string => relative(root, file).split(sep).join('/');

function isTypeOnlyImport(n: ts.ImportDeclaration): boolean {
  const c = n.importClause;
  if (!c) return false; // a side-effect import runs the module
  if (c.isTypeOnly) return true;
  if (c.name) return false; // a default import is a value
  const b = c.namedBindings;
  if (!b || ts.isNamespaceImport(b)) return false;
  return b.elements.length > 0 && b.elements.every((e) => e.isTypeOnly);
}

function isTypeOnlyExport(n: ts.ExportDeclaration): boolean {
  if (n.isTypeOnly) return true;
  const c = n.exportClause;
  return c !== undefined && ts.isNamedExports(c) && c.elements.length > 0 && c.elements.every((e) => e.isTypeOnly);
}

/** Every import between the project's files under `root` (specifiers that are relative paths; packages are not the project's). */
export function importGraph(root: string): ImportEdge[] {
  const absRoot = resolve(root);
  const edges: ImportEdge[] = [];
  for (const file of listTs(absRoot)) {
    const sf = ts.createSourceFile(file, readFileSync(file, 'utf8'), ts.ScriptTarget.ES2022, false, ts.ScriptKind.TS);
    const add = (spec: string, typeOnly: boolean, dynamic: boolean): void => {
      if (!spec.startsWith('.')) return;
      const target = resolve(dirname(file), spec);
      if (!target.startsWith(absRoot + sep)) return; // outside the tree checked (e.g. package.json)
      edges.push({ from: toKey(absRoot, file), to: toKey(absRoot, target), typeOnly, dynamic });
    };
    const visit = (n: ts.Node): void => {
      if (ts.isImportDeclaration(n) && ts.isStringLiteral(n.moduleSpecifier)) add(n.moduleSpecifier.text, isTypeOnlyImport(n), false);
      else if (ts.isExportDeclaration(n) && n.moduleSpecifier && ts.isStringLiteral(n.moduleSpecifier)) add(n.moduleSpecifier.text, isTypeOnlyExport(n), false);
      else if (ts.isCallExpression(n) && n.expression.kind === ts.SyntaxKind.ImportKeyword && n.arguments[0] && ts.isStringLiteralLike(n.arguments[0])) add(n.arguments[0].text, false, true);
      else if (ts.isImportTypeNode(n) && ts.isLiteralTypeNode(n.argument) && ts.isStringLiteral(n.argument.literal)) add(n.argument.literal.text, true, false);
      ts.forEachChild(n, visit);
    };
    visit(sf);
  }
  return edges;
}

/** The layer of a file: its first directory under the root, or the file itself when it sits in the root. */
export function layerOf(file: string): string {
  const i = file.indexOf('/');
  return i < 0 ? file : file.slice(0, i);
}

/**
 * The cycles of a directed graph: its strongly connected components with more than one node, and
 * nodes with an edge to themselves (Tarjan's algorithm, iterative so deep graphs cannot overflow
 * the stack). Each cycle's nodes are sorted; the list is sorted by its first node.
 */
export function findCycles(edges: Iterable<readonly [string, string]>): string[][] {
  const next = new Map<string, Set<string>>();
  const selfLoops = new Set<string>();
  for (const [a, b] of edges) {
    if (!next.has(a)) next.set(a, new Set());
    if (!next.has(b)) next.set(b, new Set());
    next.get(a)!.add(b);
    if (a === b) selfLoops.add(a);
  }
  const index = new Map<string, number>();
  const low = new Map<string, number>();
  const onStack = new Set<string>();
  const stack: string[] = [];
  const out: string[][] = [];
  let counter = 0;
  for (const start of [...next.keys()].sort()) {
    if (index.has(start)) continue;
    const work: { node: string; it: Iterator<string> }[] = [];
    const open = (v: string): void => {
      index.set(v, counter);
      low.set(v, counter);
      counter++;
      stack.push(v);
      onStack.add(v);
      work.push({ node: v, it: [...next.get(v)!].sort()[Symbol.iterator]() });
    };
    open(start);
    while (work.length > 0) {
      const top = work[work.length - 1]!;
      const step = top.it.next();
      if (!step.done) {
        const w = step.value;
        if (!index.has(w)) open(w);
        else if (onStack.has(w)) low.set(top.node, Math.min(low.get(top.node)!, index.get(w)!));
        continue;
      }
      work.pop();
      const v = top.node;
      if (work.length > 0) {
        const parent = work[work.length - 1]!.node;
        low.set(parent, Math.min(low.get(parent)!, low.get(v)!));
      }
      if (low.get(v) === index.get(v)) {
        const scc: string[] = [];
        let w: string;
        do {
          w = stack.pop()!;
          onStack.delete(w);
          scc.push(w);
        } while (w !== v);
        if (scc.length > 1 || selfLoops.has(v)) out.push(scc.sort());
      }
    }
  }
  return out.sort((a, b) => (a[0]! < b[0]! ? -1 : a[0]! > b[0]! ? 1 : 0));
}

/**
 * Imports that close a known cycle and are being removed on another branch, left out of the graph
 * meanwhile. Each entry must still exist: once its import is gone the check fails until the entry
 * is deleted, so the list cannot outlive its reason. Empty since the typed contract (issue 14,
 * decision 3) removed the last ones (mfa/ and audit/ importing oauth/).
 */
export const PENDING_REMOVAL: readonly (readonly [from: string, to: string])[] = [];

export interface LayerReport {
  /** PENDING_REMOVAL entries whose import no longer exists (delete them). */
  readonly stalePending: (readonly [string, string])[];
  readonly fileCycles: string[][];
  readonly layerCycles: string[][];
  /** For each layer cycle, the imports that make its edges (so the message says which file to fix). */
  readonly layerEdges: ImportEdge[];
}

export function checkLayers(root: string, pending: readonly (readonly [string, string])[] = PENDING_REMOVAL): LayerReport {
  const all = importGraph(root);
  const isPending = (e: ImportEdge): boolean => pending.some(([from, to]) => e.from === from && e.to === to);
  const stalePending = pending.filter(([from, to]) => !all.some((e) => e.from === from && e.to === to));
  const edges = all.filter((e) => !isPending(e));
  const fileCycles = findCycles(edges.map((e) => [e.from, e.to] as const));
  const crossing = edges.filter((e) => layerOf(e.from) !== layerOf(e.to));
  const layerCycles = findCycles(crossing.map((e) => [layerOf(e.from), layerOf(e.to)] as const));
  const inCycle = new Map<string, number>();
  layerCycles.forEach((c, i) => c.forEach((l) => inCycle.set(l, i)));
  const layerEdges = crossing.filter((e) => inCycle.has(layerOf(e.from)) && inCycle.get(layerOf(e.from)) === inCycle.get(layerOf(e.to)));
  return { stalePending, fileCycles, layerCycles, layerEdges };
}

export function formatReport(r: LayerReport): string {
  const lines: string[] = [];
  for (const [from, to] of r.stalePending) lines.push(`${from} no longer imports ${to}: delete the entry from PENDING_REMOVAL (scripts/check-layers.ts)`);
  for (const c of r.fileCycles) lines.push(`import cycle between files: ${c.join(', ')}`);
  for (const c of r.layerCycles) {
    lines.push(`import cycle between layers: ${c.join(', ')}; the imports that close it:`);
    for (const e of r.layerEdges.filter((x) => c.includes(layerOf(x.from)))) lines.push(`  ${e.from} -> ${e.to}${e.typeOnly ? ' (type)' : ''}${e.dynamic ? ' (dynamic)' : ''}`);
  }
  return lines.join('\n');
}

if (import.meta.url === `file://${process.argv[1]}`) {
  const args = process.argv.slice(2);
  if (args.length > 1 || args.some((a) => a.startsWith('-'))) {
    process.stderr.write('usage: node --import tsx scripts/check-layers.ts [srcDir]\n');
    process.exit(2);
  }
  // PENDING_REMOVAL names files of the project's src/; another tree is checked without it.
  const root = args[0] ?? fileURLToPath(new URL('../src', import.meta.url));
  const report = checkLayers(root, args[0] === undefined ? PENDING_REMOVAL : []);
  if (report.stalePending.length > 0 || report.fileCycles.length > 0 || report.layerCycles.length > 0) {
    process.stderr.write(`${formatReport(report)}\n(docs/architecture.md "Layers": dependencies point one way)\n`);
    process.exit(1);
  }
  process.stdout.write(`no import cycles among the files or the layers of ${relative(process.cwd(), root) || '.'}\n`);
}
