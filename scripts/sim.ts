// The simulator's command line: soak many seeds, or replay one exactly.
//
//   npm run sim -- --seeds 200 --steps 600                 # seeds 1..200, fault mixes in rotation
//   npm run sim -- --seed 42 --mix chaos --nodes 5 --trace sim-42.trace   # replay one run
//   npm run sim -- --seeds 50 --mix figure8 --bug commitPriorTermByCounting
//
// Prints one JSON line per failing seed (with its replay command) and one JSON summary line.
// Exit status 1 if any seed failed.
import { writeFileSync } from 'node:fs';
import { parseArgs } from 'node:util';
import { MIX_NAMES } from '../test/sim/faults.ts';
import { BUG_NAMES, DEFAULT_STEPS, replayCommand, runSim, type BugName, type SimOptions } from '../test/sim/run.ts';

const { values } = parseArgs({
  options: {
    seeds: { type: 'string' },
    seed: { type: 'string' },
    'first-seed': { type: 'string' },
    steps: { type: 'string' },
    mix: { type: 'string' },
    nodes: { type: 'string' },
    bug: { type: 'string', multiple: true },
    trace: { type: 'string' },
    'stop-on-failure': { type: 'boolean' },
    'no-leader-loss-campaign': { type: 'boolean' },
    help: { type: 'boolean' },
  },
  strict: true,
});

if (values.help) {
  process.stdout.write(
    [
      'usage: npm run sim -- [--seeds N | --seed S] [--first-seed S] [--steps M] [--mix NAME] [--nodes 3|5] [--bug NAME]... [--trace FILE] [--stop-on-failure]',
      `  mixes: ${MIX_NAMES.join(', ')} (default: all, in rotation)`,
      `  bugs:  ${BUG_NAMES.join(', ')}`,
      `  --steps: fault-phase length in 10 ms ticks (default ${DEFAULT_STEPS})`,
      '  --trace FILE: write the event trace of the (single, or first failing) run to FILE',
      '  --no-leader-loss-campaign: followers wait out the election timeout after losing the leader (replays seeds kept from before it)',
      '',
    ].join('\n'),
  );
  process.exit(0);
}

function int(name: string, v: string | undefined, dflt: number): number {
  if (v === undefined) return dflt;
  const n = Number(v);
  if (!Number.isSafeInteger(n)) {
    process.stderr.write(`--${name} must be an integer, got '${v}'\n`);
    process.exit(2);
  }
  return n;
}

const steps = int('steps', values.steps, DEFAULT_STEPS);
const nodesOpt = values.nodes === undefined ? null : int('nodes', values.nodes, 3);
if (nodesOpt !== null && nodesOpt !== 3 && nodesOpt !== 5) {
  process.stderr.write('--nodes must be 3 or 5\n');
  process.exit(2);
}
if (values.mix !== undefined && !MIX_NAMES.includes(values.mix)) {
  process.stderr.write(`unknown --mix '${values.mix}' (known: ${MIX_NAMES.join(', ')})\n`);
  process.exit(2);
}
const bugs = (values.bug ?? []) as BugName[];
for (const b of bugs) {
  if (!BUG_NAMES.includes(b)) {
    process.stderr.write(`unknown --bug '${b}' (known: ${BUG_NAMES.join(', ')})\n`);
    process.exit(2);
  }
}

const seeds: number[] = [];
if (values.seed !== undefined) seeds.push(int('seed', values.seed, 1));
else {
  const first = int('first-seed', values['first-seed'], 1);
  const n = int('seeds', values.seeds, 100);
  for (let i = 0; i < n; i++) seeds.push(first + i);
}

/** The options a seed runs with when --mix / --nodes are not given: a fixed rotation. */
function optionsFor(seed: number, trace: boolean): SimOptions {
  const mix = values.mix ?? MIX_NAMES[((seed % MIX_NAMES.length) + MIX_NAMES.length) % MIX_NAMES.length]!;
  const nodes = (nodesOpt ?? (Math.floor(seed / MIX_NAMES.length) % 2 === 0 ? 3 : 5)) as 3 | 5;
  return { seed, mix, nodes, steps, bugs, trace, ...(values['no-leader-loss-campaign'] ? { leaderLossCampaign: false } : {}) };
}

const started = performance.now();
let failed = 0;
let unknown = 0;
let traced = false;
const failures: { seed: number; kind: string }[] = [];
for (const seed of seeds) {
  const wantTrace = values.trace !== undefined && seeds.length === 1;
  const o = optionsFor(seed, wantTrace);
  let r = runSim(o);
  if (r.linearizability.verdict === 'unknown') unknown++;
  if (!r.ok) {
    failed++;
    failures.push({ seed, kind: r.violations[0]!.kind });
    if (values.trace !== undefined && !traced && r.trace === null) r = runSim({ ...o, trace: true });
    const first = r.violations[0]!;
    process.stdout.write(
      JSON.stringify({ failed: true, seed, mix: o.mix, nodes: o.nodes, bugs, violation: first.kind, atMs: first.timeUs / 1000, detail: first.detail, replay: replayCommand(o, values.trace) }) + '\n',
    );
    process.stderr.write(`seed ${seed} FAILED (${first.kind} at ${first.timeUs / 1000} ms): ${first.detail}\n  replay: ${replayCommand(o, values.trace)}\n`);
  }
  if (values.trace !== undefined && !traced && r.trace !== null && (seeds.length === 1 || !r.ok)) {
    writeFileSync(values.trace, r.trace.join('\n') + '\n');
    traced = true;
    process.stderr.write(`trace of seed ${seed} written to ${values.trace} (${r.trace.length} lines)\n`);
  }
  if (seeds.length === 1) process.stdout.write(JSON.stringify({ seed, mix: o.mix, nodes: o.nodes, ok: r.ok, linearizability: r.linearizability, settings: r.settings, stats: r.stats }) + '\n');
  if (!r.ok && values['stop-on-failure']) break;
}
process.stdout.write(
  JSON.stringify({ summary: true, seeds: seeds.length, failed, linearizabilityUnknown: unknown, steps, mix: values.mix ?? 'rotation', bugs, failures: failures.slice(0, 20), wallMs: Math.round(performance.now() - started) }) + '\n',
);
process.exit(failed > 0 ? 1 : 0);
