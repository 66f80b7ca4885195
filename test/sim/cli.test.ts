// The `npm run sim` command line: a failing seed prints a replay command, and that command
// reproduces the same violation and writes the trace.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import { existsSync, mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';

const ROOT = join(import.meta.dirname, '..', '..');

function sim(args: readonly string[]): { status: number | null; lines: Record<string, unknown>[]; stderr: string } {
  const r = spawnSync(process.execPath, ['--import', 'tsx', 'scripts/sim.ts', ...args], { cwd: ROOT, encoding: 'utf8', timeout: 120_000 });
  const lines = r.stdout
    .split('\n')
    .filter((l) => l.startsWith('{'))
    .map((l) => JSON.parse(l) as Record<string, unknown>);
  return { status: r.status, lines, stderr: r.stderr };
}

test('cli: a failing seed prints its replay command, which reproduces the violation and dumps the trace', () => {
  const dir = mkdtempSync(join(tmpdir(), 'raftauth-sim-'));
  try {
    const first = sim(['--seeds', '3', '--mix', 'partitions', '--nodes', '3', '--steps', '300', '--bug', 'readWithoutReadIndex', '--stop-on-failure']);
    assert.equal(first.status, 1, first.stderr);
    const failure = first.lines.find((l) => l.failed === true);
    assert.ok(failure, `no failure line in ${JSON.stringify(first.lines)}`);
    assert.equal(failure.violation, 'linearizability');
    const replay = String(failure.replay);
    assert.match(replay, /^npm run sim -- --seed \d+ --mix partitions --nodes 3 --steps 300 --bug readWithoutReadIndex --trace \S+$/);
    // Run the printed command's arguments, with the trace going to our temp dir.
    const traceFile = join(dir, 'run.trace');
    const args = replay.replace(/^npm run sim -- /, '').replace(/--trace \S+$/, `--trace ${traceFile}`).split(' ');
    const again = sim(args);
    assert.equal(again.status, 1, again.stderr);
    const failure2 = again.lines.find((l) => l.failed === true);
    assert.deepEqual({ ...failure2, replay: null }, { ...failure, replay: null }, 'the replay reproduces the same violation, detail and time');
    assert.ok(existsSync(traceFile), 'the trace is written');
    const trace = readFileSync(traceFile, 'utf8');
    assert.match(trace, /deliver n\d->n\d /);
    assert.match(trace, /c\d op\d+ attempt \d+ -> n\d/);
    const summary = again.lines.find((l) => l.summary === true);
    assert.equal(summary?.failed, 1);
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
});

test('cli: a clean soak exits 0 with a summary line; bad options are refused', () => {
  const ok = sim(['--seeds', '4', '--steps', '100', '--mix', 'calm']);
  assert.equal(ok.status, 0, ok.stderr);
  const summary = ok.lines.find((l) => l.summary === true);
  assert.equal(summary?.seeds, 4);
  assert.equal(summary?.failed, 0);
  assert.equal(sim(['--mix', 'nope']).status, 2);
  assert.equal(sim(['--bug', 'nope']).status, 2);
  assert.equal(sim(['--nodes', '4']).status, 2);
});
