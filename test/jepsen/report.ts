// The run's report: two plots drawn as SVG by hand (latency of every operation over time by type,
// with the fault windows shaded; throughput per second by type) and converted to PNG by headless
// chromium, and report.html with the verdicts, the faults and the availability table.
import { execFile } from 'node:child_process';
import { existsSync } from 'node:fs';
import { writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { pathToFileURL } from 'node:url';
import type { OpRecord } from './history.ts';
import type { FaultWindow } from './nemesis.ts';

const W = 1200;
const H = 420;
const M = { l: 70, r: 170, t: 30, b: 45 };
const CHROMIUM_CANDIDATES = ['/usr/bin/chromium', '/usr/bin/chromium-browser', '/usr/bin/google-chrome'];
const CHROMIUM_TIMEOUT_MS = 60_000;
/** One colour per operation type (the five workloads have up to 18 types; tab20's colours, no red). */
const PALETTE = ['#1f77b4', '#ff7f0e', '#2ca02c', '#9467bd', '#8c564b', '#e377c2', '#17becf', '#bcbd22', '#7f7f7f', '#aec7e8', '#ffbb78', '#98df8a', '#c5b0d5', '#c49c94', '#f7b6d2', '#9edae5', '#dbdb8d', '#393b79'];

function esc(s: string): string {
  return s.replace(/&/g, '&amp;').replace(/</g, '&lt;').replace(/>/g, '&gt;').replace(/"/g, '&quot;');
}

/** The series an operation is plotted in: workload and operation. */
export function opType(o: OpRecord): string {
  return o.workload === 'kv' ? `kv ${o.f}` : `${o.workload} ${o.f}`;
}

function frame(title: string, xMax: number, yLabel: string, yTicks: { v: number; y: number; label: string }[], windows: readonly FaultWindow[], x: (t: number) => number): string[] {
  const parts: string[] = [];
  parts.push(`<rect width="${W}" height="${H}" fill="white"/>`);
  parts.push(`<text x="${M.l}" y="18" font-size="14" font-family="sans-serif" font-weight="bold">${esc(title)}</text>`);
  for (const w of windows) {
    const x0 = x(w.start / 1000);
    const x1 = Math.max(x0 + 1, x(w.end / 1000));
    const fill = w.fault.startsWith('partition') ? '#f4b6b6' : w.fault.startsWith('kill') ? '#b6c8f4' : w.fault.startsWith('pause') ? '#f4e2b6' : '#c9f4b6';
    parts.push(`<rect x="${x0.toFixed(1)}" y="${M.t}" width="${(x1 - x0).toFixed(1)}" height="${H - M.t - M.b}" fill="${fill}" opacity="0.55"/>`);
    // A label only where it fits: a long run has dozens of windows.
    if (x1 - x0 >= w.fault.length * 5) parts.push(`<text x="${(x0 + 2).toFixed(1)}" y="${M.t + 10}" font-size="9" font-family="sans-serif" fill="#555">${esc(w.fault)}</text>`);
  }
  parts.push(`<line x1="${M.l}" y1="${H - M.b}" x2="${W - M.r}" y2="${H - M.b}" stroke="black"/>`);
  parts.push(`<line x1="${M.l}" y1="${M.t}" x2="${M.l}" y2="${H - M.b}" stroke="black"/>`);
  const step = Math.max(1, Math.ceil(xMax / 12 / 5) * 5);
  for (let s = 0; s <= xMax; s += step) {
    parts.push(`<line x1="${x(s)}" y1="${H - M.b}" x2="${x(s)}" y2="${H - M.b + 4}" stroke="black"/><text x="${x(s)}" y="${H - M.b + 16}" font-size="10" text-anchor="middle" font-family="sans-serif">${s}</text>`);
  }
  parts.push(`<text x="${(M.l + W - M.r) / 2}" y="${H - 8}" font-size="11" text-anchor="middle" font-family="sans-serif">time since start (s)</text>`);
  for (const t of yTicks) {
    parts.push(`<line x1="${M.l - 4}" y1="${t.y}" x2="${W - M.r}" y2="${t.y}" stroke="#ddd"/><text x="${M.l - 6}" y="${t.y + 3}" font-size="10" text-anchor="end" font-family="sans-serif">${t.label}</text>`);
  }
  parts.push(`<text x="14" y="${(M.t + H - M.b) / 2}" font-size="11" text-anchor="middle" font-family="sans-serif" transform="rotate(-90 14 ${(M.t + H - M.b) / 2})">${esc(yLabel)}</text>`);
  return parts;
}

function legend(types: readonly string[], extra: string[] = []): string[] {
  const parts: string[] = [];
  types.forEach((t, i) => {
    const y = M.t + 12 + i * 16;
    parts.push(`<rect x="${W - M.r + 12}" y="${y - 8}" width="10" height="10" fill="${PALETTE[i % PALETTE.length]}"/><text x="${W - M.r + 28}" y="${y + 1}" font-size="11" font-family="sans-serif">${esc(t)}</text>`);
  });
  extra.forEach((t, i) => {
    parts.push(`<text x="${W - M.r + 12}" y="${M.t + 24 + (types.length + i) * 16}" font-size="10" font-family="sans-serif" fill="#444">${esc(t)}</text>`);
  });
  return parts;
}

/** Latency of every operation (log scale) at its invocation time; fails as crosses, indeterminate ones at the top. */
export function latencySvg(ops: readonly OpRecord[], windows: readonly FaultWindow[], endMs: number): string {
  const types = [...new Set(ops.map(opType))].sort();
  const xMax = Math.max(1, Math.ceil(endMs / 1000));
  const x = (s: number): number => M.l + (s / xMax) * (W - M.l - M.r);
  const maxLat = Math.max(10, ...ops.map((o) => o.ret - o.call));
  const lo = 0; // log10(1 ms)
  const hi = Math.ceil(Math.log10(maxLat));
  const y = (ms: number): number => H - M.b - ((Math.log10(Math.max(1, ms)) - lo) / (hi - lo)) * (H - M.t - M.b - 12);
  const ticks = [];
  for (let e = lo; e <= hi; e++) ticks.push({ v: 10 ** e, y: y(10 ** e), label: `${10 ** e}` });
  const parts = frame('Latency per operation (log scale); faults shaded', xMax, 'latency (ms)', ticks, windows, x);
  for (const o of ops) {
    const i = types.indexOf(opType(o));
    const c = PALETTE[i % PALETTE.length];
    const cx = x(o.call / 1000).toFixed(1);
    const cy = y(o.ret - o.call).toFixed(1);
    if (o.outcome === 'ok') parts.push(`<circle cx="${cx}" cy="${cy}" r="1.8" fill="${c}" opacity="0.7"/>`);
    else if (o.outcome === 'fail') parts.push(`<path d="M${Number(cx) - 2.5},${Number(cy) - 2.5}l5,5m0,-5l-5,5" stroke="${c}" stroke-width="1.2"/>`);
    else parts.push(`<path d="M${cx},${Number(cy) - 3}l3,5h-6z" fill="none" stroke="${c}" stroke-width="1"/>`);
  }
  parts.push(...legend(types, ['● ok   ✕ fail   △ indeterminate']));
  return `<svg xmlns="http://www.w3.org/2000/svg" width="${W}" height="${H}" viewBox="0 0 ${W} ${H}">${parts.join('')}</svg>`;
}

/** Operations completed `ok` per second, by type. */
export function throughputSvg(ops: readonly OpRecord[], windows: readonly FaultWindow[], endMs: number): string {
  const types = [...new Set(ops.map(opType))].sort();
  const secs = Math.max(1, Math.ceil(endMs / 1000));
  const counts = new Map<string, number[]>(types.map((t) => [t, new Array<number>(secs + 1).fill(0)]));
  for (const o of ops) if (o.outcome === 'ok') counts.get(opType(o))![Math.min(secs, Math.floor(o.ret / 1000))]!++;
  const yMax = Math.max(5, ...[...counts.values()].flat());
  const x = (s: number): number => M.l + (s / secs) * (W - M.l - M.r);
  const y = (v: number): number => H - M.b - (v / yMax) * (H - M.t - M.b - 12);
  const ticks = [];
  const tickStep = Math.max(1, Math.ceil(yMax / 6));
  for (let v = 0; v <= yMax; v += tickStep) ticks.push({ v, y: y(v), label: String(v) });
  const parts = frame('Throughput: successful operations per second; faults shaded', secs, 'ok ops / s', ticks, windows, x);
  types.forEach((t, i) => {
    const pts = counts.get(t)!.map((v, s) => `${x(s + 0.5).toFixed(1)},${y(v).toFixed(1)}`).join(' ');
    parts.push(`<polyline points="${pts}" fill="none" stroke="${PALETTE[i % PALETTE.length]}" stroke-width="1.5"/>`);
  });
  parts.push(...legend(types));
  return `<svg xmlns="http://www.w3.org/2000/svg" width="${W}" height="${H}" viewBox="0 0 ${W} ${H}">${parts.join('')}</svg>`;
}

function chromium(): string | null {
  return CHROMIUM_CANDIDATES.find((p) => existsSync(p)) ?? null;
}

/** SVG file → PNG with headless chromium. Rejects with chromium's output when no PNG came out. */
export async function svgToPng(svgFile: string, pngFile: string): Promise<void> {
  const bin = chromium();
  if (bin === null) throw new Error(`no chromium at ${CHROMIUM_CANDIDATES.join(', ')}`);
  await new Promise<void>((resolve, reject) => {
    execFile(
      bin,
      ['--headless', '--no-sandbox', '--disable-gpu', '--hide-scrollbars', '--disable-dev-shm-usage', `--window-size=${W},${H}`, `--screenshot=${pngFile}`, pathToFileURL(svgFile).toString()],
      { timeout: CHROMIUM_TIMEOUT_MS },
      (err, stdout, stderr) => {
        if (existsSync(pngFile)) resolve();
        else reject(new Error(`chromium made no PNG: ${err?.message ?? ''} ${stderr.slice(-500)} ${stdout.slice(-200)}`));
      },
    );
  });
}

export interface ReportInput {
  readonly dir: string;
  readonly title: string;
  readonly ops: readonly OpRecord[];
  readonly windows: readonly FaultWindow[];
  readonly endMs: number;
  /** summary.json's content: shown as tables. */
  readonly summary: Record<string, unknown>;
}

function table(rows: readonly Record<string, unknown>[]): string {
  if (rows.length === 0) return '<p>none</p>';
  const cols = [...new Set(rows.flatMap((r) => Object.keys(r)))];
  const cell = (v: unknown): string => esc(typeof v === 'number' ? (Number.isInteger(v) ? String(v) : v.toFixed(3)) : typeof v === 'string' ? v : JSON.stringify(v) ?? '');
  return `<table><tr>${cols.map((c) => `<th>${esc(c)}</th>`).join('')}</tr>${rows.map((r) => `<tr>${cols.map((c) => `<td>${cell(r[c])}</td>`).join('')}</tr>`).join('')}</table>`;
}

/** Write latency.svg/png, throughput.svg/png and report.html. Returns the PNG errors (empty when both were made). */
export async function writeReport(r: ReportInput): Promise<string[]> {
  const errors: string[] = [];
  const plots = [
    ['latency', latencySvg(r.ops, r.windows, r.endMs)],
    ['throughput', throughputSvg(r.ops, r.windows, r.endMs)],
  ] as const;
  for (const [name, svg] of plots) {
    await writeFile(join(r.dir, `${name}.svg`), svg);
    try {
      await svgToPng(join(r.dir, `${name}.svg`), join(r.dir, `${name}.png`));
    } catch (e) {
      errors.push(`${name}.png: ${(e as Error).message}`);
    }
  }
  const s = r.summary as {
    verdicts?: Record<string, { valid: unknown; counts?: Record<string, unknown>; violations?: { kind: string; message: string }[]; perNode?: Record<string, Record<string, unknown>> }>;
    availability?: { windows: Record<string, unknown>[] };
  };
  const verdictRows = Object.entries(s.verdicts ?? {}).map(([name, v]) => ({ checker: name, valid: v.valid, violations: v.violations?.length ?? 0, file: `${name}.json` }));
  // Each checker's counts (what the workload did: rounds, acceptances, lockouts, audit records…),
  // its first violations, and the audit log per node.
  const details = Object.entries(s.verdicts ?? {})
    .filter(([, v]) => v.counts !== undefined || (v.violations?.length ?? 0) > 0 || v.perNode !== undefined)
    .map(([name, v]) => {
      const parts = [`<h3>${esc(name)}</h3>`];
      if (v.counts) parts.push(table([v.counts]));
      if (v.perNode) parts.push(table(Object.entries(v.perNode).map(([node, p]) => ({ node, ...p }))));
      if (v.violations && v.violations.length > 0) parts.push(`<ul class="bad">${v.violations.slice(0, 20).map((x) => `<li><b>${esc(x.kind)}</b>: ${esc(x.message)}</li>`).join('')}</ul>${v.violations.length > 20 ? `<p>… ${v.violations.length - 20} more in ${esc(name)}.json</p>` : ''}`);
      return parts.join('');
    })
    .join('');
  const html = `<!doctype html><html><head><meta charset="utf-8"><title>${esc(r.title)}</title>
<style>body{font-family:sans-serif;margin:24px;max-width:1250px}table{border-collapse:collapse;margin:8px 0 20px}td,th{border:1px solid #ccc;padding:3px 8px;font-size:13px;text-align:left}th{background:#f0f0f0}.ok{color:#080}.bad{color:#b00}img{border:1px solid #ddd;max-width:100%}pre{background:#f7f7f7;padding:8px;overflow:auto;font-size:12px}</style></head><body>
<h1>${esc(r.title)}</h1>
<p class="${s.verdicts && Object.values(s.verdicts).every((v) => v.valid === true) ? 'ok' : 'bad'}"><b>${esc(String((r.summary as { result?: string }).result ?? ''))}</b></p>
<h2>Verdicts</h2>${table(verdictRows)}
<h2>Per checker</h2>${details}
<h2>Latency</h2><img src="latency.png" alt="latency over time">
<h2>Throughput</h2><img src="throughput.png" alt="throughput over time">
<h2>Availability on the majority side, per fault</h2>${table((s.availability?.windows ?? []).map((w) => ({ ...w, majority: (w.majority as number[]).join(',') })))}
<h2>Summary</h2><pre>${esc(JSON.stringify(r.summary, null, 2))}</pre>
<p>Files: <a href="history.jsonl">history.jsonl</a>, <a href="summary.json">summary.json</a>, node logs in <code>nodes/</code>.</p>
${errors.length ? `<p class="bad">Plot errors: ${esc(errors.join('; '))}</p>` : ''}
</body></html>`;
  await writeFile(join(r.dir, 'report.html'), html);
  return errors;
}
