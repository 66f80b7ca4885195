// Self-tests of the waiting helpers every multi-process test leans on: a waitFor that swallowed a
// failed assertion let "never gets a leader" pass while a leader was visible (issue 14, item 1).
import assert from 'node:assert/strict';
import { AssertionError } from 'node:assert';
import { test } from 'node:test';
import { WaitAborted, WaitTimeout, assertNever, waitFor } from './wait.ts';

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
