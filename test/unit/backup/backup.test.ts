// raftauth snapshot save|restore and recover --force-new-cluster, on real in-process nodes
// (LevelDB stores, mTLS gRPC transport on loopback), through the CLI where an operator would use it.
import assert from 'node:assert/strict';
import { existsSync } from 'node:fs';
import { mkdir, mkdtemp, readFile, readdir, readlink, rm, stat, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { crc32 } from 'node:zlib';
import { after, before, describe, it } from 'node:test';
import { runRaftauth } from '../../../src/cli/main.ts';
import { MAX_CONCURRENT_BACKUPS } from '../../../src/ops/admin.ts';
import { BackupError, forceNewCluster, restoreBackup, saveBackup, verifyBackupFile } from '../../../src/ops/backup.ts';
import { DurableStorage } from '../../../src/storage/durable-storage.ts';
import { SnapshotFileWriter, PREAMBLE_BYTES, FRAME_OVERHEAD_BYTES } from '../../../src/storage/snapshot-format.ts';
import { resolveStorageConfig } from '../../../src/storage/config.ts';
import { encodeCommand } from '../../../src/state/command.ts';
import { MEMBERS_KEYSPACE, memberRecord } from '../../../src/node/members.ts';
import type { MemberAddress } from '../../../src/node/members.ts';
import type { Entry } from '../../../src/raft/types.ts';
import { LocalCluster, get, put, waitFor } from '../node/helpers.ts';
import { captureIo } from '../cli/io.ts';
import { TOKEN, serveAdmin, writeNodeConfigs } from './helpers.ts';

const enc = new TextEncoder();
const dec = new TextDecoder();

async function records(dir: string, keyspace: string): Promise<Map<string, string>> {
  const st = await DurableStorage.open(dir);
  try {
    const rows = await st.iterate(keyspace, { limit: 1000 });
    return new Map(rows.map((r) => [dec.decode(r.key), dec.decode(r.value)]));
  } finally {
    await st.close();
  }
}

/** A small valid backup file written directly (no cluster needed). */
async function writeBackupFile(path: string, kv: Record<string, string>): Promise<void> {
  const w = new SnapshotFileWriter(path, join(path, '..'), resolveStorageConfig());
  await w.begin({ index: 42, term: 3, confState: { voters: [1, 2, 3], learners: [], votersOutgoing: [], learnersNext: [], autoLeave: false } });
  for (const k of Object.keys(kv).sort()) await w.add({ keyspace: 'kv', key: enc.encode(k), value: enc.encode(kv[k]!) });
  await w.add({ keyspace: MEMBERS_KEYSPACE, key: enc.encode('1'), value: memberRecord({ raftAddress: '127.0.0.1:1', httpAddress: '127.0.0.1:2' }) });
  await w.add({ keyspace: 'sys.sessions', key: enc.encode('abcdefgh'), value: enc.encode('x') });
  await w.finish();
}

describe('snapshot save and restore', () => {
  let work: string;
  before(async () => {
    work = await mkdtemp(join(tmpdir(), 'raftauth-backup-test-'));
  });
  after(async () => {
    await rm(work, { recursive: true, force: true });
  });

  it('saves a running 3-node cluster and restores it into a new 3-node cluster with new ids and ports', async () => {
    const old = new LocalCluster();
    const fresh = new LocalCluster();
    let admin: { url: string; close: () => Promise<void> } | null = null;
    try {
      await old.init([1, 2, 3]);
      for (const id of [1, 2, 3]) await old.start(id);
      const leader = await old.leader();
      const expected = new Map<string, string>();
      for (let i = 0; i < 40; i++) {
        await put(leader, `k${i}`, `v${i}`);
        expected.set(`k${i}`, `v${i}`);
      }
      // Overwrites and deletes are in the backup as their result.
      await put(leader, 'k0', 'v0-new');
      expected.set('k0', 'v0-new');
      const del = await leader.write({ domain: 'kv', op: 'delete', args: { key: 'k1' }, timeoutMs: 10_000 });
      assert.equal(del.ok, true);
      expected.delete('k1');

      // Save from a follower: any node serves a backup after its ReadIndex barrier.
      const follower = [...old.nodes.values()].find((n) => n !== leader)!;
      admin = await serveAdmin(follower);
      const tokenFile = join(work, 'admin.token');
      await writeFile(tokenFile, TOKEN, { mode: 0o600 });
      const out = join(work, 'cluster.backup');
      const appliedBeforeSave = (await leader.status()).applied;
      const io = captureIo();
      const code = await runRaftauth(['snapshot', 'save', '--admin', admin.url, '--token-file', tokenFile, '--out', out], io);
      assert.equal(code, 0, io.stderr());
      assert.match(io.stdout(), /saved .*cluster\.backup/);
      assert.equal((await stat(out)).mode & 0o777, 0o600);
      // The barrier: the backup is at least as new as everything the leader had applied before.
      const backup = await verifyBackupFile(out);
      assert.ok(backup.metadata.index >= appliedBeforeSave, `backup at ${backup.metadata.index}, leader had applied ${appliedBeforeSave}`);
      const kvIn = new Map(backup.records.filter((r) => r.keyspace === 'kv').map((r) => [dec.decode(r.key), dec.decode(r.value)]));
      assert.deepEqual(kvIn, expected);
      assert.ok(backup.records.some((r) => r.keyspace === 'sys.sessions'), 'the old cluster had client sessions');
      // Never overwrite a backup; no temp file is left behind.
      const io2 = captureIo();
      assert.equal(await runRaftauth(['snapshot', 'save', '--admin', admin.url, '--token-file', tokenFile, '--out', out], io2), 1);
      assert.match(io2.stderr(), /exists/);
      assert.deepEqual((await readdir(work)).sort(), ['admin.token', 'cluster.backup']);
      // A wrong token is refused and writes nothing.
      await writeFile(join(work, 'bad.token'), 'x'.repeat(40));
      const io3 = captureIo();
      assert.equal(await runRaftauth(['snapshot', 'save', '--admin', admin.url, '--token-file', join(work, 'bad.token'), '--out', join(work, 'other.backup')], io3), 1);
      assert.match(io3.stderr(), /UNAUTHORIZED/);
      assert.equal(existsSync(join(work, 'other.backup')), false);
      // Nothing written since: a second backup is the same snapshot (the node's newest file, reused).
      const sameIndex = await saveBackup({ adminUrls: [admin.url], token: TOKEN, outPath: join(work, 'again.backup'), timeoutMs: 10_000 });
      assert.equal(sameIndex.metadata.index, backup.metadata.index);
      assert.deepEqual(await readFile(join(work, 'again.backup')), await readFile(out));
      // Two backups at once after a write: both complete, at the same new index (one snapshot is
      // written, the other request finds it recorded), and both hold the write.
      await put(leader, 'concurrent', 'c');
      const [b1, b2] = await Promise.all(['c1', 'c2'].map((n) => saveBackup({ adminUrls: ['http://127.0.0.1:1', admin!.url], token: TOKEN, outPath: join(work, `${n}.backup`), timeoutMs: 10_000 })));
      assert.ok(b1!.metadata.index > backup.metadata.index);
      assert.equal(b1!.metadata.index, b2!.metadata.index);
      for (const n of ['c1', 'c2']) {
        const v = await verifyBackupFile(join(work, `${n}.backup`));
        assert.ok(v.records.some((r) => r.keyspace === 'kv' && dec.decode(r.key) === 'concurrent'));
      }
      for (const n of ['again', 'c1', 'c2']) await rm(join(work, `${n}.backup`));
      await admin.close();
      admin = null;
      await old.close();

      // The new cluster: other ids, other ports, restored node by node through the CLI.
      await fresh.init([11, 12, 13]);
      const cfgDir = join(work, 'cfg');
      const configs = await writeNodeConfigs(cfgDir, fresh, [11, 12, 13]);
      for (const id of [11, 12, 13]) {
        const rio = captureIo();
        assert.equal(await runRaftauth(['snapshot', 'restore', '--file', out, '--config', configs.get(id)!], rio), 0, rio.stderr());
        assert.match(rio.stdout(), new RegExp(`restored node ${id}`));
      }
      // Before any start: the member table is the new one, and the old sessions are gone.
      const members = await records(fresh.dataDir(11), MEMBERS_KEYSPACE);
      assert.deepEqual([...members.keys()].sort(), ['11', '12', '13']);
      assert.deepEqual(JSON.parse(members.get('12')!) as MemberAddress, fresh.addresses.get(12));
      assert.equal((await records(fresh.dataDir(11), 'sys.sessions')).size, 0);
      assert.equal((await records(fresh.dataDir(11), 'sys.results')).size, 0);
      // Restoring again into a now non-empty data directory is refused.
      const again = captureIo();
      assert.equal(await runRaftauth(['snapshot', 'restore', '--file', out, '--config', configs.get(11)!], again), 1);
      assert.match(again.stderr(), /not empty/);

      for (const id of [11, 12, 13]) await fresh.start(id);
      const newLeader = await fresh.leader();
      for (const n of fresh.nodes.values()) {
        for (const [k, v] of expected) assert.equal(await get(n, k), v, `node ${n.id} key ${k}`);
        assert.equal(await get(n, 'k1'), null);
      }
      await put(newLeader, 'after-restore', 'yes');
      for (const n of fresh.nodes.values()) await waitFor(`node ${n.id} applies the new write`, async () => (await get(n, 'after-restore', 'local')) === 'yes');
      const st = await newLeader.status();
      assert.deepEqual(st.voters, [11, 12, 13]);
      assert.deepEqual(st.learners, []);
      assert.equal(newLeader.memberHttpAddress(13), fresh.addresses.get(13)!.httpAddress);
    } finally {
      await admin?.close();
      await old.close();
      await fresh.close();
    }
  });

  it('serves at most MAX_CONCURRENT_BACKUPS at once, and frees a slot (and its file) when a client goes away', async () => {
    const c = new LocalCluster();
    let admin: { url: string; close: () => Promise<void> } | null = null;
    const aborts: AbortController[] = [];
    const gcClosed: string[] = [];
    const onWarning = (w: Error): void => {
      if (/on garbage collection/.test(w.message)) gcClosed.push(w.message);
    };
    process.on('warning', onWarning);
    try {
      await c.init([1, 2, 3]);
      for (const id of [1, 2, 3]) await c.start(id);
      await put(await c.leader(), 'x', '1');
      await waitFor('node 1 applied the write', async () => (await get(c.nodes.get(1)!, 'x', 'local')) === '1');
      // Without a majority the ReadIndex barrier cannot complete: backups wait on node 1.
      await c.stop(2);
      await c.stop(3);
      admin = await serveAdmin(c.nodes.get(1)!);
      const url = `${admin.url}/admin/v1/snapshot`;
      const headers = { authorization: `Bearer ${TOKEN}` };
      const waiting: Promise<unknown>[] = [];
      for (let i = 0; i < MAX_CONCURRENT_BACKUPS; i++) {
        const ac = new AbortController();
        aborts.push(ac);
        waiting.push(fetch(url, { headers, signal: ac.signal }).catch((e: unknown) => e));
      }
      await waitFor('a backup beyond the limit is refused with 429', async () => {
        const r = await fetch(url, { headers, signal: AbortSignal.timeout(1_000) });
        return r.status === 429 && /TOO_MANY_BACKUPS/.test(await r.text());
      });
      // The clients give up; their slots are free again. With a majority back, a backup works.
      for (const ac of aborts) ac.abort();
      await Promise.all(waiting);
      await c.start(2);
      const out = join(work, 'after-limit.backup');
      const r = await waitFor('a backup succeeds once the waiting clients went away', async () => {
        try {
          return await saveBackup({ adminUrls: [admin!.url], token: TOKEN, outPath: out, timeoutMs: 5_000 });
        } catch {
          return null;
        }
      }, 15_000);
      assert.ok(r.records >= 1);
      // The abandoned requests' snapshot streams were closed: no snapshot file stays open. (The
      // deadline is short on purpose: Node closes a leaked FileHandle on garbage collection, with a
      // warning, some seconds later; both are checked.)
      const snapDir = join(c.dataDir(1), 'snap');
      await waitFor('no snapshot file left open', async () => {
        const fds = await readdir('/proc/self/fd');
        const targets = await Promise.all(fds.map((fd) => readlink(join('/proc/self/fd', fd)).catch(() => '')));
        return !targets.some((t) => t.startsWith(snapDir));
      }, 2_000);
      assert.deepEqual(gcClosed, []);
      await rm(out);
    } finally {
      process.off('warning', onWarning);
      for (const ac of aborts) ac.abort();
      await admin?.close();
      await c.close();
    }
  });

  it('refuses a tampered, truncated or foreign backup file and writes nothing', async () => {
    const file = join(work, 'small.backup');
    await writeBackupFile(file, { a: '1', b: '2', c: '3' });
    const members = new Map<number, MemberAddress>([[5, { raftAddress: '127.0.0.1:7005', httpAddress: '127.0.0.1:8005' }]]);
    const good = await verifyBackupFile(file);
    assert.equal(good.records.length, 5);
    const bytes = new Uint8Array(await readFile(file));

    // One value byte changed and the frame's CRC fixed up: only the SHA-256 trailer can tell.
    const headerLen = new DataView(bytes.buffer).getUint32(PREAMBLE_BYTES + 1);
    const recFrame = PREAMBLE_BYTES + FRAME_OVERHEAD_BYTES + headerLen;
    const recLen = new DataView(bytes.buffer).getUint32(recFrame + 1);
    const forged = bytes.slice();
    const at = forged.indexOf('1'.charCodeAt(0), recFrame + 5);
    assert.ok(at > recFrame && at < recFrame + 5 + recLen);
    forged[at] = '9'.charCodeAt(0);
    new DataView(forged.buffer).setUint32(recFrame + 5 + recLen, crc32(forged.subarray(recFrame, recFrame + 5 + recLen)));
    // A flipped byte without the CRC fixed up; the file cut short; something that is no backup.
    const flipped = bytes.slice();
    flipped[recFrame + 8] = flipped[recFrame + 8]! ^ 0xff;
    const cases: [string, Uint8Array, RegExp][] = [
      ['forged', forged, /SHA-256/],
      ['flipped', flipped, /CRC/],
      ['truncated', bytes.subarray(0, bytes.length - 10), /truncated/],
      ['foreign', enc.encode('{"not":"a backup"}'), /magic/],
    ];
    for (const [name, content, why] of cases) {
      const bad = join(work, `${name}.backup`);
      await writeFile(bad, content);
      const dataDir = join(work, `restore-${name}`);
      await assert.rejects(restoreBackup({ file: bad, nodeId: 5, dataDir, members }), (e: unknown) => {
        assert.ok(e instanceof BackupError, String(e));
        assert.equal(e.code, 'INVALID_BACKUP');
        assert.match(e.message, why);
        return true;
      });
      assert.equal(existsSync(dataDir), false, `${name}: nothing written`);
    }

    // The same refusal through the CLI: exit 1, the data directory untouched.
    const fresh = new LocalCluster();
    try {
      await fresh.init([5]);
      const configs = await writeNodeConfigs(join(work, 'cfg-tamper'), fresh, [5]);
      const io = captureIo();
      assert.equal(await runRaftauth(['snapshot', 'restore', '--file', join(work, 'forged.backup'), '--config', configs.get(5)!], io), 1);
      assert.match(io.stderr(), /not a valid backup/);
      assert.equal(existsSync(fresh.dataDir(5)), false);
      // The good file restores, with the member table replaced and the sessions dropped.
      const ok = captureIo();
      assert.equal(await runRaftauth(['snapshot', 'restore', '--file', file, '--config', configs.get(5)!], ok), 0, ok.stderr());
      assert.deepEqual([...(await records(fresh.dataDir(5), 'kv')).entries()], [['a', '1'], ['b', '2'], ['c', '3']]);
      assert.deepEqual([...(await records(fresh.dataDir(5), MEMBERS_KEYSPACE)).keys()], ['5']);
      assert.equal((await records(fresh.dataDir(5), 'sys.sessions')).size, 0);
      // A one-node cluster restored from it serves the data.
      const n = await fresh.start(5);
      await fresh.leader();
      assert.equal(await get(n, 'b'), '2');
    } finally {
      await fresh.close();
    }
  });

  it('refuses a non-empty data directory and a node that is not among the members', async () => {
    const file = join(work, 'small2.backup');
    await writeBackupFile(file, { a: '1' });
    const members = new Map<number, MemberAddress>([[5, { raftAddress: '127.0.0.1:7005', httpAddress: '127.0.0.1:8005' }]]);
    const dataDir = join(work, 'busy');
    await mkdir(dataDir);
    await writeFile(join(dataDir, 'keep.me'), 'precious');
    await assert.rejects(restoreBackup({ file, nodeId: 5, dataDir, members }), (e: unknown) => e instanceof BackupError && e.code === 'EXISTS' && /not empty/.test(e.message));
    assert.equal(await readFile(join(dataDir, 'keep.me'), 'utf8'), 'precious');
    await assert.rejects(restoreBackup({ file, nodeId: 6, dataDir: join(work, 'other'), members }), (e: unknown) => e instanceof BackupError && e.code === 'INVALID_REQUEST' && /not among/.test(e.message));
    assert.equal(existsSync(join(work, 'other')), false);
    // An empty directory is fine.
    const empty = join(work, 'empty');
    await mkdir(empty);
    const r = await restoreBackup({ file, nodeId: 5, dataDir: empty, members });
    assert.deepEqual(r.confState.voters, [5]);
    assert.equal(r.source.index, 42);
  });
});

describe('recover --force-new-cluster', () => {
  let work: string;
  before(async () => {
    work = await mkdtemp(join(tmpdir(), 'raftauth-recover-test-'));
  });
  after(async () => {
    await rm(work, { recursive: true, force: true });
  });

  it('applies committed but unapplied entries and drops uncommitted ones', async () => {
    const dir = join(work, 'store');
    const self: MemberAddress = { raftAddress: '127.0.0.1:7001', httpAddress: '127.0.0.1:8001' };
    const st = await DurableStorage.open(dir);
    const cmd = (seq: number, key: string, value: string): Uint8Array => encodeCommand({ v: 1, sid: null, seq: 0, ack: 0, ts: 1_700_000_000_000 + seq, domain: 'kv', op: 'put', args: { key, value } });
    try {
      assert.equal(
        await st.bootstrap({ voters: [1, 2, 3], learners: [], votersOutgoing: [], learnersNext: [], autoLeave: false }, [
          { keyspace: MEMBERS_KEYSPACE, key: enc.encode('1'), value: memberRecord(self) },
          { keyspace: MEMBERS_KEYSPACE, key: enc.encode('2'), value: memberRecord({ raftAddress: '127.0.0.1:7002', httpAddress: '127.0.0.1:8002' }) },
        ]),
        true,
      );
      const entries: Entry[] = [
        { index: 2, term: 2, type: 'normal', data: new Uint8Array(0) },
        { index: 3, term: 2, type: 'normal', data: cmd(1, 'applied', 'a') },
        { index: 4, term: 2, type: 'normal', data: cmd(2, 'committed', 'c') },
        { index: 5, term: 2, type: 'normal', data: cmd(3, 'applied', 'overwritten-by-committed') },
        { index: 6, term: 2, type: 'normal', data: cmd(4, 'uncommitted', 'u') },
      ];
      await st.commit({ hardState: { term: 2, vote: 1, commit: 5 }, entries });
      // Applied through 3 only (as if the node crashed after learning the commit index 5).
      await st.commit({ state: { puts: [['kv', 'applied', enc.encode('a')]] }, applied: 3 });
    } finally {
      await st.close();
    }
    const r = await forceNewCluster({ nodeId: 1, dataDir: dir, timestamp: 't1' });
    assert.equal(r.appliedBefore, 3);
    assert.equal(r.commit, 5);
    assert.equal(r.lastIndex, 6);
    assert.equal(r.entriesApplied, 2);
    assert.equal(r.backupDir, `${dir}.before-recover-t1`);
    assert.deepEqual(r.address, self);
    const kv = await records(dir, 'kv');
    assert.deepEqual([...kv.entries()].sort(), [['applied', 'overwritten-by-committed'], ['committed', 'c']]);
    assert.deepEqual([...(await records(dir, MEMBERS_KEYSPACE)).keys()], ['1']);
    const after = await DurableStorage.open(dir);
    try {
      assert.deepEqual(after.confState.voters, [1]);
      assert.equal(after.applied, 1);
      assert.equal(after.lastIndex(), 1);
    } finally {
      await after.close();
    }
    // The backup copy is the store as it was: applied 3, commit 5, six entries.
    const old = await DurableStorage.open(r.backupDir);
    try {
      assert.equal(old.applied, 3);
      assert.equal(old.hardState.commit, 5);
      assert.equal(old.lastIndex(), 6);
      assert.deepEqual(old.confState.voters, [1, 2, 3]);
    } finally {
      await old.close();
    }
    // Nothing left over beside the data directory but the backup.
    assert.deepEqual((await readdir(work)).sort(), ['store', 'store.before-recover-t1']);
    // Refused: the same timestamp again (the backup directory exists), and an empty directory.
    await assert.rejects(forceNewCluster({ nodeId: 1, dataDir: dir, timestamp: 't1' }), (e: unknown) => e instanceof BackupError && e.code === 'EXISTS');
    await assert.rejects(forceNewCluster({ nodeId: 1, dataDir: join(work, 'nothing') }), (e: unknown) => e instanceof BackupError && /no store/.test(e.message));
  });

  it('turns node 1 of a lost 3-node cluster into a one-node cluster with every acknowledged write, then adds a member that catches up', async () => {
    const c = new LocalCluster();
    try {
      await c.init([1, 2, 3]);
      for (const id of [1, 2, 3]) await c.start(id);
      const leader = await c.leader();
      for (let i = 0; i < 30; i++) await put(leader, `k${i}`, `v${i}`);
      // Node 1 has every acknowledged write in its log (perhaps not yet applied: recovery applies it).
      const commit = (await leader.status()).commit;
      await waitFor('node 1 has the whole log', async () => (await c.nodes.get(1)!.status()).commit >= commit);
      const configs = await writeNodeConfigs(join(work, 'cfg'), c, [1, 2, 3]);
      // A running node is refused: its store is locked.
      await assert.rejects(forceNewCluster({ nodeId: 1, dataDir: c.dataDir(1) }), (e: unknown) => e instanceof BackupError && e.code === 'INVALID_REQUEST' && /in use: stop the node/.test(e.message));
      for (const id of [1, 2, 3]) await c.stop(id);

      const io = captureIo();
      assert.equal(await runRaftauth(['recover', '--force-new-cluster', '--config', configs.get(1)!], io), 0, io.stderr());
      assert.match(io.stdout(), /one-node cluster of node 1/);
      const backups = (await readdir(join(c.dataDir(1), '..'))).filter((n) => n.startsWith('n1.before-recover-'));
      assert.equal(backups.length, 1);

      // Started with its unchanged config (which still lists 2 and 3): it leads alone.
      const n1 = await c.start(1);
      await waitFor('node 1 leads alone', async () => (await n1.status()).role === 'leader');
      assert.deepEqual((await n1.status()).voters, [1]);
      for (let i = 0; i < 30; i++) assert.equal(await get(n1, `k${i}`), `v${i}`);
      await put(n1, 'after-recover', 'yes');

      // Add node 4 as the operator would: learner, start it joining with an empty store, promote.
      const a4 = await c.reserve(4);
      const added = await n1.addLearner(4, a4);
      assert.equal(added.ok, true);
      const n4 = await c.start(4, { join: true, initial: [1] });
      await waitFor('node 4 catches up', async () => (await get(n4, 'after-recover', 'local')) === 'yes', 15_000);
      const promoted = await n1.promote(4);
      assert.equal(promoted.ok, true);
      assert.deepEqual((await n1.status()).voters, [1, 4]);
      for (let i = 0; i < 30; i++) assert.equal(await get(n4, `k${i}`), `v${i}`);
      await put(n1, 'two-voters', 'ok');
      await waitFor('node 4 applies a write of the two-node cluster', async () => (await get(n4, 'two-voters', 'local')) === 'ok');
    } finally {
      await c.close();
    }
  });
});

describe('CLI argument errors exit 2', () => {
  const cases: string[][] = [
    ['snapshot'],
    ['snapshot', 'bogus'],
    ['snapshot', 'save'],
    ['snapshot', 'save', '--out'],
    ['snapshot', 'save', '--out', 'x.backup', '--nope'],
    ['snapshot', 'save', '--out', 'x.backup', '--admin', 'not a url', '--token-file', '/dev/null'],
    ['snapshot', 'save', '--out', 'x.backup', '--admin', 'http://127.0.0.1:1'],
    ['snapshot', 'save', '--out', 'x.backup', '--admin', 'http://127.0.0.1:1', '--token-file', '/dev/null', '--timeout-ms', '0'],
    ['snapshot', 'restore', '--file', 'x.backup'],
    ['snapshot', 'restore', '--config', 'node.yaml'],
    ['snapshot', 'restore', '--file', 'x.backup', '--config', '/nonexistent/node.yaml'],
    ['snapshot', 'restore', '--file', 'x.backup', '--config', 'node.yaml', 'extra'],
    ['recover', '--config', 'node.yaml'],
    ['recover', '--force-new-cluster'],
    ['recover', '--force-new-cluster', '--config', '/nonexistent/node.yaml'],
    ['recover', '--force-new-cluster=yes', '--config', 'node.yaml'],
  ];
  for (const argv of cases) {
    it(argv.join(' '), async () => {
      const io = captureIo({}, tmpdir());
      assert.equal(await runRaftauth(argv, io), 2, io.stderr());
      assert.match(io.stderr(), /usage/);
    });
  }
});
