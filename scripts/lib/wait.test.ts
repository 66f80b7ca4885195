// Self-tests of the waiting helpers every multi-process test leans on: a waitFor that swallowed a
// failed assertion let "never gets a leader" pass while a leader was visible (issue 14, item 1).
import assert from 'node:assert/strict';
import { AssertionError } from 'node:assert';
import { test } from 'node:test';
import { spawn, spawnSync } from 'node:child_process';
import { mkdtemp, readFile, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { FREE_PORT_RANGE, WaitAborted, WaitTimeout, assertNever, freePort, reservePort, waitFor } from './wait.ts';

/** A node status as the "never gets a leader" checks sample it. */
interface Status {
  readonly leader: number;
}

/** A probe that answers the given leaders in turn, then the last one forever; counts its calls. */
function statuses(leaders: readonly number[]): { probe: () => Status; calls: () => number } {
  let i = 0;
  return { probe: () => ({ leader: leaders[Math.min(i++, leaders.length - 1)]! }), calls: () => i };
}

const noLeader = (s: Status): string | null => (s.leader === 0 ? null : `knows leader ${s.leader}`);

test('waitFor: a failed assertion in the condition fails the wait at once, on the sample that broke it', async () => {
  let calls = 0;
  await assert.rejects(
    waitFor(
      'a condition that asserts',
      () => {
        calls++;
        assert.equal(calls, 0, 'the sample is wrong');
        return true;
      },
      10_000,
      1,
    ),
    (e: unknown) => e instanceof AssertionError && /the sample is wrong/.test(e.message),
  );
  // Rethrown on the first call: a swallowed assertion would be retried until the deadline.
  assert.equal(calls, 1, 'not retried');
});

test('waitFor: an ordinary error is "not yet" (quoted on timeout); WaitAborted ends the wait', async () => {
  let calls = 0;
  const v = await waitFor(
    'the third call',
    () => {
      if (++calls < 3) throw new Error('not ready');
      return 'ready';
    },
    60_000,
    1,
  );
  assert.deepEqual([v, calls], ['ready', 3]);
  await assert.rejects(
    waitFor('never', () => {
      throw new Error('still not ready');
    }, 0, 1),
    (e: unknown) => e instanceof WaitTimeout && /still not ready/.test(e.message),
  );
  calls = 0;
  await assert.rejects(
    waitFor('an aborted wait', () => {
      calls++;
      throw new WaitAborted('the process died');
    }, 60_000, 1),
    WaitAborted,
  );
  assert.equal(calls, 1);
});

test('assertNever: passes when no sample shows a leader and the window closes on its event', async () => {
  const s = statuses([0]);
  const seen = await assertNever({ what: 'node 4 knows a leader', probe: s.probe, violation: noLeader, until: () => s.calls() >= 10, timeoutMs: 60_000, pollMs: 1 });
  assert.deepEqual(seen, { samples: 10, missed: 0 });
});

test('assertNever: fails when a leader appears, even on one sample between samples without one', async () => {
  // The case a swallowing waitFor hid: the leader is seen on sample 4 only, and the window's event
  // (here: 10 samples) comes later.
  const s = statuses([0, 0, 0, 2, 0]);
  await assert.rejects(
    assertNever({ what: 'node 4 knows a leader', probe: s.probe, violation: noLeader, until: () => s.calls() >= 10, timeoutMs: 60_000, pollMs: 1 }),
    (e: unknown) => e instanceof AssertionError && e.message === 'node 4 knows a leader on sample 4: knows leader 2',
  );
  assert.equal(s.calls(), 4, 'fails on the sample, not at the end of the window');
  // The old form of the check, for contrast: the assertion inside a waitFor condition. It must fail
  // too now (waitFor rethrows assertions); before the fix it returned after sample 10.
  const old = statuses([0, 0, 0, 2, 0]);
  await assert.rejects(
    waitFor(
      'the old never-check',
      () => {
        assert.equal(old.probe().leader, 0);
        return old.calls() >= 10;
      },
      60_000,
      1,
    ),
    AssertionError,
  );
  assert.equal(old.calls(), 4);
});

test('assertNever: a window that never closes fails with WaitTimeout; probe errors are missed samples; minSamples holds the window open', async () => {
  const s = statuses([0]);
  await assert.rejects(
    assertNever({ what: 'x', probe: s.probe, violation: noLeader, until: () => false, timeoutMs: 0, pollMs: 1 }),
    (e: unknown) => e instanceof WaitTimeout && /did not close \(1 samples, 0 missed\)/.test(e.message),
  );
  let n = 0;
  const flaky = (): Status => {
    if (++n % 2 === 0) throw new Error('HTTP timeout');
    return { leader: 0 };
  };
  const seen = await assertNever({ what: 'x', probe: flaky, violation: noLeader, until: () => true, minSamples: 3, timeoutMs: 60_000, pollMs: 1 });
  assert.deepEqual(seen, { samples: 3, missed: 2 });
});

test('freePort: never hands out the same port twice in one process (CI, 2026-12-08: EADDRINUSE on a port handed out twice)', async () => {
  // 2,000 draws from 12,000 ports: drawn independently, a repeat is all but certain (~170 expected).
  const ports = new Set<number>();
  for (let i = 0; i < 2_000; i++) {
    const p = await freePort();
    assert.ok(p >= FREE_PORT_RANGE.min && p < FREE_PORT_RANGE.max, `port ${p} in range`);
    assert.ok(!ports.has(p), `port ${p} handed out twice (after ${i} calls)`);
    ports.add(p);
  }
});

test('reservePort: a port another live process reserved is refused; a reservation of a process that is gone is taken over', async () => {
  const dir = await mkdtemp(join(tmpdir(), 'raftauth-ports-test-'));
  try {
    // Held by a live process (the parent: alive while this test runs).
    await writeFile(join(dir, '20001'), String(process.ppid));
    assert.equal(reservePort(20_001, dir), false);
    assert.equal(await readFile(join(dir, '20001'), 'utf8'), String(process.ppid), 'left alone');
    // Held by a process that has exited.
    const gone = spawnSync(process.execPath, ['-e', 'process.stdout.write(String(process.pid))'], { encoding: 'utf8' });
    await writeFile(join(dir, '20002'), gone.stdout);
    assert.equal(reservePort(20_002, dir), true);
    assert.equal(await readFile(join(dir, '20002'), 'utf8'), String(process.pid), 'taken over');
    // Fresh, then held by this very process: a second reservation is refused.
    assert.equal(reservePort(20_003, dir), true);
    assert.equal(reservePort(20_003, dir), false);
    // Garbage in a reservation file names no live process: stale.
    await writeFile(join(dir, '20004'), 'not a pid');
    assert.equal(reservePort(20_004, dir), true);
  } finally {
    await rm(dir, { recursive: true, force: true });
  }
});

test('freePort: two processes drawing at once never get the same port', async () => {
  // Each child draws, reports, and holds its reservations (stays alive) until its stdin closes.
  const script = `import { freePort } from ${JSON.stringify(new URL('./wait.ts', import.meta.url).href)};
const ps = []; for (let i = 0; i < 1500; i++) ps.push(await freePort());
process.stdout.write(JSON.stringify(ps) + '\\n');
process.stdin.resume(); process.stdin.on('end', () => process.exit(0));`;
  const children = [0, 1].map(() => spawn(process.execPath, ['--import', 'tsx', '--input-type=module', '-e', script], { stdio: ['pipe', 'pipe', 'inherit'] }));
  try {
    const [a, b] = await Promise.all(
      children.map(
        (c) =>
          new Promise<number[]>((resolve, reject) => {
            let out = '';
            c.stdout!.on('data', (d: Buffer) => {
              out += d.toString();
              if (out.endsWith('\n')) resolve(JSON.parse(out) as number[]);
            });
            c.on('error', reject);
            c.on('exit', (code) => reject(new Error(`child exited ${code} before reporting`)));
          }),
      ),
    );
    const inA = new Set(a);
    assert.equal(inA.size, a!.length);
    const shared = b!.filter((p) => inA.has(p));
    assert.deepEqual(shared, [], 'ports handed out to both processes');
  } finally {
    for (const c of children) c.stdin!.end();
  }
});
