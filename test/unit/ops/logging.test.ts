// Structured logs: every line a node logs is one JSON object carrying the node id and the current term.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { LocalCluster, put, waitFor } from '../node/helpers.ts';
import { createLogger } from '../../../src/server/log.ts';
import { withTerm } from '../../../src/node/log-context.ts';

function capture(node: number): { logger: ReturnType<typeof createLogger>; lines: Record<string, unknown>[] } {
  const lines: Record<string, unknown>[] = [];
  const logger = createLogger('info', { node }, {
    write: (s: string) => {
      // One line per event: exactly one JSON object per write, newline-terminated.
      assert.ok(s.endsWith('\n') && !s.slice(0, -1).includes('\n'), `one line per event: ${s}`);
      lines.push(JSON.parse(s) as Record<string, unknown>);
    },
  });
  return { logger, lines };
}

test('logs: every line of a node carries node and its current term, which follows term changes', async (t) => {
  const logs = new Map<number, ReturnType<typeof capture>>();
  for (const id of [1, 2, 3]) logs.set(id, capture(id));
  const c = new LocalCluster();
  await c.init([1, 2, 3]);
  t.after(() => c.close());
  // LocalCluster applies one set of option overrides to every node it starts; each node needs its
  // own logger (its own node binding), so the override is switched before each start.
  const overrides = (c as unknown as { overrides: { logger?: unknown } }).overrides;
  for (const id of [1, 2, 3]) {
    overrides.logger = logs.get(id)!.logger;
    await c.start(id);
  }
  const leader = await c.leader();
  await put(leader, 'a', '1');
  const firstTerm = (await leader.status()).term;
  // Force a new term: stop the leader; the others elect a new one.
  await c.stop(leader.id);
  const next = await c.leader();
  const secondTerm = (await next.status()).term;
  assert.ok(secondTerm > firstTerm);
  await waitFor('the new leader logged its election', () => logs.get(next.id)!.lines.some((l) => l.msg === 'leader changed' && l.leader === next.id));

  for (const [id, { lines }] of logs) {
    assert.ok(lines.length >= 2, `node ${id} logged`);
    for (const l of lines) {
      assert.equal(l.node, id, `node on every line: ${JSON.stringify(l)}`);
      assert.equal(typeof l.term, 'number', `term on every line: ${JSON.stringify(l)}`);
      assert.equal(typeof l.msg, 'string');
    }
  }
  // The term on the new leader's election line is the new term, and it grew over the node's lines.
  const nl = logs.get(next.id)!.lines;
  const elected = nl.find((l) => l.msg === 'leader changed' && l.leader === next.id)!;
  assert.equal(elected.term, secondTerm);
  const terms = nl.map((l) => l.term as number);
  for (let i = 1; i < terms.length; i++) assert.ok(terms[i]! >= terms[i - 1]!, 'terms never go back');
});

test('withTerm: reads the term per line, omits it while unknown, and leaves an explicit term alone', () => {
  const { logger, lines } = capture(4);
  let term: number | null = null;
  const log = withTerm(logger, () => term);
  log.info('before');
  term = 7;
  log.info({ x: 1 }, 'after');
  term = 8;
  log.warn('later');
  log.info({ term: 99 }, 'explicit');
  log.child({ worker: 2 }).info('child');
  assert.deepEqual(
    lines.map((l) => [l.msg, l.term, l.node]),
    [
      ['before', undefined, 4],
      ['after', 7, 4],
      ['later', 8, 4],
      ['explicit', 99, 4],
      ['child', 8, 4],
    ],
  );
  assert.equal(lines[1]!.x, 1);
  // Not pino: returned unchanged.
  const plain = { info(): void {} };
  assert.equal(withTerm(plain, () => 1), plain);
});
