// Test 6: a damaged raft log record (DESIGN principle 6: fail loudly, lose nothing). One byte of a
// stored log entry's payload is flipped on a stopped follower, behind its CRC-32 frame
// (storage/records.ts). The node must refuse to start (exit 1) with a message naming the raft log
// and the entry's index, rather than serve from a damaged store; the two others go on and still
// commit writes (a majority, Raft §5.3).
import assert from 'node:assert/strict';
import { join } from 'node:path';
import { test } from 'node:test';
import { ClassicLevel } from 'classic-level';
import { LOG_PREFIX, logKey, parseLogKey } from '../../src/storage/keys.ts';
import { ProcessCluster } from './harness.ts';

const IDS = [1, 2, 3];
/** Exit code of a node that fails to start (src/server/cli.ts EXIT_START_FAILED). */
const EXIT_START_FAILED = 1;
/** Bytes of the CRC-32 frame in front of every stored value. */
const FRAME_BYTES = 4;

/** Flip one payload byte of the log entry at `index` in a stopped node's store; returns its old length. */
async function damageLogEntry(dataDir: string, index: number): Promise<number> {
  const db = new ClassicLevel<Uint8Array, Uint8Array>(join(dataDir, 'db'), { keyEncoding: 'view', valueEncoding: 'view' });
  await db.open();
  try {
    const key = logKey(index);
    const v = await db.get(key);
    assert.ok(v !== undefined && v.length > FRAME_BYTES, `log entry ${index} is stored`);
    const damaged = Uint8Array.from(v);
    const at = FRAME_BYTES + Math.floor((damaged.length - FRAME_BYTES) / 2);
    damaged[at] = damaged[at]! ^ 0x01;
    await db.put(key, damaged);
    return v.length;
  } finally {
    await db.close();
  }
}

/** The first and last log index stored in a stopped node's store. */
async function storedLogRange(dataDir: string): Promise<[number, number]> {
  const db = new ClassicLevel<Uint8Array, Uint8Array>(join(dataDir, 'db'), { keyEncoding: 'view', valueEncoding: 'view' });
  await db.open();
  try {
    const end = Uint8Array.from(LOG_PREFIX);
    end[end.length - 1]!++;
    const indexes: number[] = [];
    for await (const k of db.keys({ gte: LOG_PREFIX, lt: end })) {
      const i = parseLogKey(k);
      if (i !== null) indexes.push(i);
    }
    assert.ok(indexes.length > 0, 'the stopped node has log entries');
    return [indexes[0]!, indexes.at(-1)!];
  } finally {
    await db.close();
  }
}

test('a corrupted raft log record: the node refuses to start naming the log and the index; the others go on', { timeout: 90_000 }, async () => {
  const c = await ProcessCluster.create(IDS, { name: 'corrupt' });
  try {
    await Promise.all(IDS.map((id) => c.startServing(id)));
    const leader = await c.waitLeader(IDS);
    for (let i = 0; i < 20; i++) assert.equal((await c.put(leader, `k${i}`, `v${i}`)).status, 200);
    const victim = IDS.find((id) => id !== leader)!;
    await c.waitCaughtUp([victim], leader);
    assert.deepEqual(await c.stop(victim), { code: 0, signal: null });

    const [first, last] = await storedLogRange(c.dataDir(victim));
    const index = Math.floor((first + last) / 2);
    await damageLogEntry(c.dataDir(victim), index);

    await c.start(victim);
    const exit = await c.waitExit(victim, 30_000);
    const log = c.logText(victim);
    assert.equal(exit.code, EXIT_START_FAILED, `node ${victim} must refuse to start (exit ${EXIT_START_FAILED}); got ${JSON.stringify(exit)}\n${c.logTail(victim)}`);
    const line = log.split('\n').find((l) => l.includes('STORAGE_CORRUPT'));
    assert.ok(line !== undefined, `no STORAGE_CORRUPT message in:\n${c.logTail(victim)}`);
    assert.match(line, new RegExp(`raft log entry at index ${index}\\b`), `the message must name the raft log and index ${index}: ${line}`);
    assert.match(line, /checksum mismatch/);
    console.log(`# corruption: node ${victim}, log entry ${index} of ${first}..${last} damaged; refused with: ${line.slice(0, 160)}`);

    // The two others still form a majority and commit.
    const others = IDS.filter((id) => id !== victim);
    const l2 = await c.waitLeader(others);
    for (const id of others) {
      const w = await c.put(id, `after-corruption-${id}`, 'ok');
      assert.equal(w.status, 200, JSON.stringify(w.body));
    }
    for (const id of others) {
      for (const k of others) {
        const r = await c.get(id, `after-corruption-${k}`);
        assert.deepEqual([r.status, r.body.value], [200, 'ok']);
      }
    }
    assert.ok(others.includes(l2));
  } finally {
    await c.close();
  }
});
