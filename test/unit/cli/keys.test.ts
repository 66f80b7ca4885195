// `raftauth keys …` against the real admin APIs of a real three-node cluster of in-process
// RaftNodes on 127.0.0.1 (real-admin.ts): list on any node, rotate and rewrap following the
// followers' real 409 NOT_LEADER to the leader; generate-master writes a key file.
import assert from 'node:assert/strict';
import { mkdtemp, readFile, rm, stat, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, before, describe, it } from 'node:test';
import { runRaftauth } from '../../../src/cli/main.ts';
import { MasterKeyRing } from '../../../src/crypto/seal.ts';
import { captureIo } from './io.ts';
import { AdminCluster } from './real-admin.ts';

const TOKEN = 't'.repeat(43);

interface KeysAnswer {
  signingKeys: { version: number; keys: { kid: string; alg: string; state: string; createdAt: number; activatedAt: number | null; publishUntil: number | null }[] };
  dataKeys: { version: number; activeId: string; keys: { id: string; masterKid: string; createdAt: number }[] };
  masterKeys: { current: string; all: string[] };
}

describe('raftauth keys (real admin APIs, three-node cluster)', () => {
  let dir: string;
  let admin: AdminCluster;
  // The data key is created under the old master key; every admin API holds the new one (current)
  // and the old one, as after an operator added a master key: something is left to rewrap.
  const oldKeyText = MasterKeyRing.generateText();
  const oldMaster = MasterKeyRing.parse(oldKeyText, 'old master key');
  const newKeyText = MasterKeyRing.generateText();
  const both = MasterKeyRing.parse(newKeyText + oldKeyText, 'new then old');
  let leader = 0;
  let follower = 0;

  before(async () => {
    dir = await mkdtemp(join(tmpdir(), 'raftauth-cli-keys-'));
    await writeFile(join(dir, 'token'), `${TOKEN}\n`);
    admin = await AdminCluster.start([1, 2, 3], { token: TOKEN, master: both, bootstrapMaster: oldMaster });
    leader = await admin.leaderId();
    follower = [1, 2, 3].find((id) => id !== leader)!;
  });
  after(async () => {
    await admin?.close();
    await rm(dir, { recursive: true, force: true });
  });

  /** The follower's admin URL first, then the others: a leader-only request meets NOT_LEADER first. */
  const run = async (args: string[], conn = true) => {
    const io = captureIo({}, dir);
    const urls = [follower, ...[1, 2, 3].filter((id) => id !== follower)].map((id) => admin.url(id));
    const code = await runRaftauth(['keys', ...args, ...(conn ? ['--admin', urls.join(','), '--token-file', 'token'] : [])], io);
    return { code, out: io.stdout(), err: io.stderr() };
  };
  const keysOn = async (id: number): Promise<KeysAnswer> => {
    const res = await fetch(`${admin.url(id)}/admin/v1/keys`, { headers: { authorization: `Bearer ${TOKEN}` } });
    assert.equal(res.status, 200);
    return (await res.json()) as KeysAnswer;
  };
  const iso = (ms: number | null): string => (ms === null ? '-' : new Date(ms).toISOString());
  const re = (s: string): string => s.replace(/[.*+?^${}()|[\]\\]/g, '\\$&');

  it('list prints the signing keys, the data keys and which master key wraps them', async () => {
    const before = admin.requests.length;
    const r = await run(['list']);
    assert.equal(r.code, 0, r.err);
    assert.deepEqual(admin.requests.slice(before).map((q) => `${q.node} ${q.method} ${q.url}`), [`${follower} GET /admin/v1/keys`], 'any node answers a list');
    const k = await keysOn(follower);
    assert.match(r.out, new RegExp(`^signing keys \\(ring version ${k.signingKeys.version}\\):$`, 'm'));
    assert.equal(k.signingKeys.keys.length, 2);
    for (const s of k.signingKeys.keys) {
      assert.match(r.out, new RegExp(`^${re(s.kid)}\\s+${s.alg}\\s+${s.state}\\s+${re(iso(s.createdAt))}\\s+${re(iso(s.activatedAt))}\\s+${re(iso(s.publishUntil))}$`, 'm'));
    }
    const dk = k.dataKeys.keys[0]!;
    assert.match(r.out, new RegExp(`^${re(dk.id)}\\s+yes\\s+${re(oldMaster.currentKid)}\\s+${re(iso(dk.createdAt))}$`, 'm'));
    assert.match(r.out, new RegExp(`master keys of the answering node: ${re(both.currentKid)} \\(current\\), ${re(oldMaster.currentKid)}$`, 'm'));
    const j = await run(['list', '--json']);
    assert.deepEqual(JSON.parse(j.out), k);
  });

  it('rotate and rewrap follow NOT_LEADER to the leader', async () => {
    const v0 = (await keysOn(leader)).signingKeys.version;
    let before = admin.requests.length;
    const r = await run(['rotate']);
    assert.equal(r.code, 0, r.err);
    const posts = (from: number) => admin.requests.slice(from).filter((q) => q.method === 'POST').map((q) => `${q.node} ${q.url}`);
    assert.deepEqual(posts(before), [`${follower} /admin/v1/keys/rotate`, `${leader} /admin/v1/keys/rotate`], 'first the follower (409), then the leader');
    const k = await keysOn(leader);
    assert.equal(k.signingKeys.version, v0 + 1);
    const active = k.signingKeys.keys.find((x) => x.state === 'active')!;
    const next = k.signingKeys.keys.find((x) => x.state === 'next')!;
    assert.equal(r.out, `signing keys rotated: ${active.kid} is active, ${next.kid} is next (ring version ${k.signingKeys.version})\n`);

    const newKid = both.currentKid;
    assert.notEqual(newKid, oldMaster.currentKid);
    const dk0 = (await keysOn(leader)).dataKeys;
    before = admin.requests.length;
    const w = await run(['rewrap']);
    assert.equal(w.code, 0, w.err);
    assert.deepEqual(posts(before), [`${follower} /admin/v1/keys/rewrap`, `${leader} /admin/v1/keys/rewrap`]);
    const dk = (await keysOn(leader)).dataKeys;
    assert.equal(w.out, `${dk0.keys.length} data key(s) rewrapped under master key ${newKid} (ring version ${dk.version})\n`);
    assert.deepEqual(dk.keys.map((x) => x.masterKid), dk0.keys.map(() => newKid));
    const again = await run(['rewrap']);
    assert.equal(again.out, `every data key is already wrapped by master key ${newKid}; nothing to do\n`);
    assert.equal((await keysOn(leader)).dataKeys.version, dk.version);
  });

  it('argument errors exit 2 and send nothing', async () => {
    const before = admin.requests.length;
    for (const args of [['rotate', 'now'], ['list', '--all'], ['frobnicate'], []]) {
      const r = await run(args);
      assert.equal(r.code, 2, `${args.join(' ')}: ${r.err}`);
    }
    for (const args of [['generate-master', 'file'], ['generate-master', '--out'], ['generate-master', '--out', '']]) {
      const r = await run(args, false);
      assert.equal(r.code, 2, `${args.join(' ')}: ${r.err}`);
    }
    assert.equal(admin.requests.length, before);
  });

  it('generate-master prints a key file, or writes one at mode 0600 and never overwrites it', async () => {
    const p = await run(['generate-master'], false);
    assert.equal(p.code, 0, p.err);
    const printed = MasterKeyRing.parse(p.out, 'stdout');
    assert.equal(printed.kids().length, 1);
    const again = await run(['generate-master'], false);
    assert.notEqual(MasterKeyRing.parse(again.out, 'stdout').currentKid, printed.currentKid);

    const w = await run(['generate-master', '--out', 'master.key'], false);
    assert.equal(w.code, 0, w.err);
    const file = join(dir, 'master.key');
    assert.equal((await stat(file)).mode & 0o777, 0o600);
    const text = await readFile(file, 'utf8');
    assert.equal(w.out.includes(text.trim().split('\n').pop()!), false); // the key itself is not printed
    const ring = MasterKeyRing.load({ file, env: undefined }); // passes the 0600 check
    assert.equal(ring.kids().length, 1);

    const o = await run(['generate-master', '--out', 'master.key'], false);
    assert.equal(o.code, 1);
    assert.match(o.err, /exists; not overwriting/);
    assert.equal(await readFile(file, 'utf8'), text);
  });
});
