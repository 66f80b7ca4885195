import { test } from 'node:test';
import assert from 'node:assert/strict';
import { createHash, randomBytes } from 'node:crypto';
import { chmodSync, mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { MAX_SEAL_PLAINTEXT_BYTES, MasterKeyRing, SealError, Sealer, newDataKey, unwrapRing } from '../../../src/crypto/seal.ts';
import { packValue, unpackValue } from '../../../src/state/command.ts';
import type { DataKeyRing } from '../../../src/state/oauth-ops.ts';

const enc = new TextEncoder();

function sealerWith(...ids: string[]): { sealer: Sealer; keys: Map<string, Uint8Array> } {
  const keys = new Map(ids.map((id) => [id, randomBytes(32)] as const));
  return { sealer: new Sealer(keys, ids[0]!), keys };
}

function throwsSeal(f: () => unknown, re: RegExp): void {
  assert.throws(f, (e: unknown) => e instanceof SealError && re.test(e.message), `expected SealError matching ${re}`);
}

test('seal/open round trip; the format is version, id length, id, IV, ciphertext, tag', () => {
  const { sealer, keys } = sealerWith('dk1');
  const plain = enc.encode('hello sealed world');
  const s = sealer.seal(plain, 'rt:abc');
  assert.equal(s[0], 0x01);
  assert.equal(s[1], 3);
  assert.equal(Buffer.from(s.subarray(2, 5)).toString('latin1'), 'dk1');
  assert.equal(s.length, 2 + 3 + 12 + plain.length + 16);
  assert.deepEqual(Buffer.from(sealer.open(s, 'rt:abc')), Buffer.from(plain));
  // Ciphertext, not the plaintext, and a fresh IV each time.
  assert.equal(Buffer.from(s).includes(Buffer.from('hello')), false);
  assert.notDeepEqual(Buffer.from(sealer.seal(plain, 'rt:abc')), Buffer.from(s));
  // Another Sealer holding the same key opens it (what every worker does).
  assert.deepEqual(Buffer.from(new Sealer(new Map(keys), 'dk1').open(s, 'rt:abc')), Buffer.from(plain));
  // Empty plaintext and the limit itself are fine.
  assert.equal(sealer.open(sealer.seal(new Uint8Array(0), 'x'), 'x').length, 0);
  const big = randomBytes(MAX_SEAL_PLAINTEXT_BYTES);
  assert.deepEqual(Buffer.from(sealer.open(sealer.seal(big, 'x'), 'x')), big);
});

test('open refuses a wrong aad, any flipped bit, truncation, an unknown key id and an unknown version', () => {
  const { sealer } = sealerWith('dk1');
  const s = Buffer.from(sealer.seal(enc.encode('secret payload'), 'code:h1'));
  throwsSeal(() => sealer.open(s, 'code:h2'), /authentication failed/);
  throwsSeal(() => sealer.open(s, ''), /authentication failed/);
  // Every bit of IV, ciphertext and tag is covered.
  for (let i = 5; i < s.length; i++) {
    for (const bit of [0x01, 0x80]) {
      const t = Buffer.from(s);
      t[i] ^= bit;
      throwsSeal(() => sealer.open(t, 'code:h1'), /authentication failed/);
    }
  }
  for (const n of [0, 1, 2, 4, 5 + 12 + 15, s.length - 1]) throwsSeal(() => sealer.open(s.subarray(0, n), 'code:h1'), /bad format|authentication failed/);
  throwsSeal(() => sealer.open(s.subarray(0, 5 + 27), 'code:h1'), /truncated/);
  const v2 = Buffer.from(s);
  v2[0] = 0x02;
  throwsSeal(() => sealer.open(v2, 'code:h1'), /unknown version 2/);
  const other = sealerWith('dk2').sealer;
  throwsSeal(() => other.open(s, 'code:h1'), /unknown data key id "dk1"/);
  // Renaming the key id inside the blob cannot redirect it to another key that authenticates.
  const { sealer: two } = sealerWith('dkA', 'dkB');
  const a = Buffer.from(two.seal(enc.encode('x'), 'y'));
  a[4] = 'B'.charCodeAt(0);
  throwsSeal(() => two.open(a, 'y'), /authentication failed/);
  throwsSeal(() => sealer.open('nope' as unknown as Uint8Array, 'x'), /not bytes/);
});

test('seal refuses plaintext over 256 KiB; the Sealer refuses bad keys and a missing active id', () => {
  const { sealer } = sealerWith('dk1');
  throwsSeal(() => sealer.seal(new Uint8Array(MAX_SEAL_PLAINTEXT_BYTES + 1), 'x'), /exceeds/);
  assert.throws(() => new Sealer(new Map([['a', randomBytes(32)]]), 'b'), SealError);
  assert.throws(() => new Sealer(new Map([['a', randomBytes(16)]]), 'a'), SealError);
  assert.throws(() => new Sealer(new Map([['', randomBytes(32)]]), ''), SealError);
  assert.throws(() => new Sealer(new Map([['a'.repeat(256), randomBytes(32)]]), 'a'.repeat(256)), SealError);
  assert.throws(() => new Sealer(new Map([['é', randomBytes(32)]]), 'é'), SealError);
});

test('old data keys still open after a new active key, which seals', () => {
  const k1 = randomBytes(32);
  const k2 = randomBytes(32);
  const before = new Sealer(new Map([['k1', k1]]), 'k1');
  const old = before.seal(enc.encode('old'), 'a');
  const after = new Sealer(new Map([['k1', k1], ['k2', k2]]), 'k2');
  assert.equal(Buffer.from(after.open(old, 'a')).toString(), 'old');
  const fresh = after.seal(enc.encode('new'), 'a');
  assert.equal(fresh[1], 2);
  assert.equal(Buffer.from(fresh.subarray(2, 4)).toString(), 'k2');
  throwsSeal(() => before.open(fresh, 'a'), /unknown data key id "k2"/);
});

test('sealValue/openValue carry msgpack values, bytes included', () => {
  const { sealer } = sealerWith('dk1');
  const v = { clientId: 'c1', scope: ['openid'], n: 42, nested: { ok: true, none: null }, bytes: new Uint8Array([1, 2, 3]) };
  const s = sealer.sealValue(v, 'code:x');
  assert.deepEqual(Buffer.from(sealer.open(s, 'code:x')), Buffer.from(packValue(v)));
  const back = sealer.openValue<typeof v>(s, 'code:x');
  assert.equal(back.clientId, 'c1');
  assert.deepEqual(back.scope, ['openid']);
  assert.deepEqual(back.nested, { ok: true, none: null });
  assert.deepEqual([...back.bytes], [1, 2, 3]);
  throwsSeal(() => sealer.openValue(s, 'code:y'), /authentication failed/);
});

// ---------------------------------------------------------------------------------------------
// master keys

const KID_PREFIX = 'raftauth master key id';
const kidOf = (key: Buffer): string => createHash('sha256').update(KID_PREFIX).update(key).digest('base64url').slice(0, 16);

test('MasterKeyRing.parse: first key current, comments and blank lines skipped, base64 or base64url', () => {
  const k1 = randomBytes(32);
  const k2 = randomBytes(32);
  const text = `# current\n\n${k1.toString('base64url')}\r\n  # old key, kept for the rewrap\n  ${k2.toString('base64')}  \n`;
  const ring = MasterKeyRing.parse(text, 'test');
  assert.equal(ring.currentKid, kidOf(k1));
  assert.deepEqual(ring.kids(), [kidOf(k1), kidOf(k2)]);
  assert.equal(ring.currentKid.length, 16);
  // Padded base64 and unpadded base64 both read.
  assert.equal(MasterKeyRing.parse(k1.toString('base64').replace(/=+$/, ''), 't').currentKid, kidOf(k1));
});

const B64URL_ALPHABET = 'ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_';
/** The last character of 32 bytes in base64url carries 2 unused bits; flipping the lowest sets or clears one. */
const flipLowBit = (c: string): string => B64URL_ALPHABET[B64URL_ALPHABET.indexOf(c) ^ 1]!;

test('MasterKeyRing.parse errors name the source and line, never the key', () => {
  const good = randomBytes(32).toString('base64url');
  const short = randomBytes(31).toString('base64url');
  const cases: [string, RegExp][] = [
    [`${good}\nnot base64!\n`, /^keyfile line 2: not base64url or base64/],
    [`# c\n${short}\n`, /^keyfile line 2: a master key must be exactly 32 bytes, this one is 31/],
    [`${randomBytes(33).toString('base64url')}`, /^keyfile line 1: .*33/],
    [`${good}\n${good}\n`, /^keyfile line 2: the same key appears twice/],
    ['# only a comment\n\n', /^keyfile: contains no master key/],
    ['', /^keyfile: contains no master key/],
    // A mistyped last character (stray low bits) is not silently accepted.
    [good.slice(0, 42) + flipLowBit(good[42]!), /^keyfile line 1: not base64url or base64/],
    ['a'.repeat(70_000), /^keyfile: longer than/],
  ];
  for (const [text, re] of cases) {
    assert.throws(
      () => MasterKeyRing.parse(text, 'keyfile'),
      (e: unknown) => e instanceof SealError && re.test(e.message) && !e.message.includes(good) && !e.message.includes(short),
      `${JSON.stringify(text.slice(0, 60))} → ${re}`,
    );
  }
  // 17 distinct keys: over the limit.
  const many = Array.from({ length: 17 }, () => randomBytes(32).toString('base64url')).join('\n');
  assert.throws(() => MasterKeyRing.parse(many, 'k'), /more than 16/);
});

test('MasterKeyRing.generateText makes one fresh 32-byte key per file', () => {
  const t = MasterKeyRing.generateText();
  assert.match(t, /^[A-Za-z0-9_-]{43}\n$/);
  assert.notEqual(MasterKeyRing.generateText(), t);
  assert.equal(MasterKeyRing.parse(t, 'gen').kids().length, 1);
});

test('MasterKeyRing.load: env wins over the file; the file must be mode 0600-ish; neither is an error', (t) => {
  const dir = mkdtempSync(join(tmpdir(), 'raftauth-mk-'));
  t.after(() => rmSync(dir, { recursive: true, force: true }));
  const fileText = MasterKeyRing.generateText();
  const envText = MasterKeyRing.generateText();
  const file = join(dir, 'master.key');
  writeFileSync(file, fileText, { mode: 0o600 });
  chmodSync(file, 0o600);
  const fromFile = MasterKeyRing.load({ file, env: undefined });
  assert.equal(fromFile.currentKid, MasterKeyRing.parse(fileText, 'x').currentKid);
  const fromEnv = MasterKeyRing.load({ file, env: envText });
  assert.equal(fromEnv.currentKid, MasterKeyRing.parse(envText, 'x').currentKid);
  assert.equal(MasterKeyRing.load({ file: null, env: envText }).currentKid, fromEnv.currentKid);
  assert.throws(() => MasterKeyRing.load({ file: null, env: '' }), /environment variable RAFTAUTH_MASTER_KEY: contains no master key/);

  chmodSync(file, 0o400);
  assert.equal(MasterKeyRing.load({ file, env: undefined }).currentKid, fromFile.currentKid);
  for (const mode of [0o640, 0o604, 0o620, 0o644, 0o660]) {
    chmodSync(file, mode);
    assert.throws(
      () => MasterKeyRing.load({ file, env: undefined }),
      (e: unknown) => e instanceof SealError && e.message.includes(`chmod 600 ${file}`) && e.message.includes(mode.toString(8)),
      `mode ${mode.toString(8)}`,
    );
  }
  chmodSync(file, 0o600);
  assert.throws(() => MasterKeyRing.load({ file: null, env: undefined }), /no master key: set RAFTAUTH_MASTER_KEY/);
  assert.throws(() => MasterKeyRing.load({ file: join(dir, 'missing'), env: undefined }), (e: unknown) => e instanceof SealError && /cannot open: ENOENT/.test(e.message));
  assert.throws(() => MasterKeyRing.load({ file: dir, env: undefined }), (e: unknown) => e instanceof SealError && /not a regular file|cannot open/.test(e.message));
  const bad = join(dir, 'bad.key');
  writeFileSync(bad, '# x\nnot-a-key\n', { mode: 0o600 });
  assert.throws(() => MasterKeyRing.load({ file: bad, env: undefined }), (e: unknown) => e instanceof SealError && e.message.startsWith(`master key file ${bad} line 2: `));
});

test('wrap/unwrap a data key; the AAD binds the data key id and the master kid', () => {
  const master = MasterKeyRing.parse(MasterKeyRing.generateText(), 'm');
  const { id, key } = newDataKey();
  assert.equal(id.length, 16);
  assert.equal(key.length, 32);
  const { masterKid, wrapped } = master.wrap(key, id);
  assert.equal(masterKid, master.currentKid);
  assert.equal(wrapped.length, 60);
  assert.equal(Buffer.from(wrapped).includes(Buffer.from(key)), false);
  assert.deepEqual(Buffer.from(master.unwrap({ id, masterKid, wrapped })), Buffer.from(key));
  throwsSeal(() => master.unwrap({ id: 'other', masterKid, wrapped }), /authentication failed/);
  throwsSeal(() => master.unwrap({ id, masterKid: 'unknownkid', wrapped }), /unknown master key id unknownkid/);
  throwsSeal(() => master.unwrap({ id, masterKid, wrapped: wrapped.subarray(0, 59) }), /bad format/);
  const flipped = Buffer.from(wrapped);
  flipped[20] ^= 1;
  throwsSeal(() => master.unwrap({ id, masterKid, wrapped: flipped }), /authentication failed/);
  throwsSeal(() => master.wrap(key.subarray(0, 31), id), /32 bytes/);
  // Another master key (even with a forged kid) cannot unwrap.
  const stranger = MasterKeyRing.parse(MasterKeyRing.generateText(), 's');
  throwsSeal(() => stranger.unwrap({ id, masterKid, wrapped }), /unknown master key id/);
});

test('after a master key rotation, keys wrapped by the old key unwrap and rewrap under the new one', () => {
  const oldText = MasterKeyRing.generateText();
  const before = MasterKeyRing.parse(oldText, 'before');
  const { id, key } = newDataKey();
  const w1 = { id, ...before.wrap(key, id) };
  // The operator puts a new key first and keeps the old one below it.
  const newText = MasterKeyRing.generateText();
  const after = MasterKeyRing.parse(newText + oldText, 'after');
  assert.equal(after.kids().length, 2);
  assert.notEqual(after.currentKid, before.currentKid);
  assert.equal(after.kids()[1], before.currentKid);
  const unwrapped = after.unwrap(w1);
  assert.deepEqual(Buffer.from(unwrapped), Buffer.from(key));
  const w2 = { id, ...after.wrap(unwrapped, id) };
  assert.equal(w2.masterKid, after.currentKid);
  assert.deepEqual(Buffer.from(after.unwrap(w2)), Buffer.from(key));
  // The old key alone cannot read the rewrapped form, and without the old key the old form is unreadable.
  throwsSeal(() => before.unwrap(w2), /unknown master key id/);
  const newOnly = MasterKeyRing.parse(newText, 'new only');
  assert.deepEqual(Buffer.from(newOnly.unwrap(w2)), Buffer.from(key));
  throwsSeal(() => newOnly.unwrap(w1), /unknown master key id/);
});

test('unwrapRing builds a Sealer over the ring, from Buffers as msgpack delivers them', () => {
  const master = MasterKeyRing.parse(MasterKeyRing.generateText(), 'm');
  const a = newDataKey();
  const b = newDataKey();
  const ring: DataKeyRing = {
    version: 2,
    activeId: b.id,
    keys: [a, b].map((k) => ({ id: k.id, ...master.wrap(k.key, k.id), createdAt: 1 })),
  };
  const viaMsgpack = unpackValue<DataKeyRing>(packValue(ring));
  assert.ok(Buffer.isBuffer(viaMsgpack.keys[0]!.wrapped));
  const sealer = unwrapRing(viaMsgpack, master);
  const s = sealer.seal(enc.encode('x'), 'aad');
  assert.equal(Buffer.from(s.subarray(2, 2 + s[1]!)).toString(), b.id);
  // Data sealed directly with key a opens through the ring.
  const direct = new Sealer(new Map([[a.id, a.key]]), a.id).seal(enc.encode('from a'), 'aad');
  assert.equal(Buffer.from(sealer.open(direct, 'aad')).toString(), 'from a');
  throwsSeal(() => unwrapRing({ ...ring, activeId: 'missing' }, master), /active data key missing/);
  throwsSeal(() => unwrapRing({ ...ring, keys: [ring.keys[0]!, ring.keys[0]!] }, master), /appears twice/);
  throwsSeal(() => unwrapRing(ring, MasterKeyRing.parse(MasterKeyRing.generateText(), 'other')), /unknown master key id/);
});
