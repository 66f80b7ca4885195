// The filler's records are what the contract accepts: every write passes its op's own args schema
// (the check apply runs first), and the sealed fields open with the key and aad the server uses.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { randomBytes } from 'node:crypto';
import { Sealer } from '../../src/crypto/seal.ts';
import { openPasswordHash, verifyPassword } from '../../src/crypto/password.ts';
import { USERS_WRITES } from '../../src/state/users.ts';
import { MFA_WRITES } from '../../src/state/mfa.ts';
import { TOKENS_WRITES } from '../../src/state/tokens.ts';
import { AUDIT_WRITES } from '../../src/state/audit.ts';
import { KV_WRITES } from '../../src/state/kv.ts';
import type { WriteTable } from '../../src/state/contract.ts';
import { DomainError } from '../../src/state/machine.ts';
import { AUDIT_EVENTS_PER_UNIT, BEHIND_KEYS, BEHIND_VALUE_BYTES, FAMILIES_PER_UNIT, RECORDS_PER_UNIT, WRITES_PER_UNIT, base32Of, behindWrite, expiringWrite, unitSub, unitWrites, unitsFor } from './fill-records.ts';
import type { FillContext } from './fill-records.ts';
import { FILL_PASSWORD, fillPasswordPhc } from './state-filler.ts';

const TABLES: Record<string, WriteTable> = { users: USERS_WRITES, mfa: MFA_WRITES, tokens: TOKENS_WRITES, audit: AUDIT_WRITES };

const sealer = new Sealer(new Map([['dk1', randomBytes(32)]]), 'dk1');
const NOW = 1_800_000_000_000;

async function ctx(runId = 'r1'): Promise<FillContext> {
  return { sealer, clientId: 'bench-client', passwordPhc: await fillPasswordPhc(), runId, now: () => NOW };
}

test('every write of a unit passes its op schema, in the documented mix', async () => {
  const c = await ctx();
  for (const unit of [0, 1, 999_999]) {
    const ws = unitWrites(c, unit);
    assert.equal(ws.length, WRITES_PER_UNIT);
    for (const w of ws) {
      const op = TABLES[w.domain]![w.op];
      assert.ok(op, `${w.domain}.${w.op} is a contract write`);
      assert.doesNotThrow(() => op.args.parse(w.args, ''), `${w.domain}.${w.op} args`);
    }
    assert.deepEqual(
      ws.map((w) => `${w.domain}.${w.op}`),
      ['users.create', 'mfa.totp.enroll', 'mfa.totp.accept', ...Array.from({ length: FAMILIES_PER_UNIT }, () => ['tokens.code.create', 'tokens.code.redeem']).flat(), 'audit.append'],
    );
    const events = (ws.at(-1)!.args as { events: unknown[] }).events;
    assert.equal(events.length, AUDIT_EVENTS_PER_UNIT);
  }
  assert.equal(RECORDS_PER_UNIT, 2 + FAMILIES_PER_UNIT + AUDIT_EVENTS_PER_UNIT);
});

test('a schema refuses a broken filler record (the check is not vacuous)', async () => {
  const c = await ctx();
  const user = unitWrites(c, 3)[0]!;
  const broken = { ...user.args, user: { ...(user.args.user as object), password_hash: 'plain' } };
  assert.throws(() => USERS_WRITES.create.args.parse(broken, ''), (e: unknown) => e instanceof DomainError && e.code === 'INVALID_ARGUMENT');
});

test('sealed fields open with the aad the server uses; the password verifies', async () => {
  const c = await ctx();
  const ws = unitWrites(c, 7);
  const sub = unitSub(c, 7);
  const user = ws[0]!.args.user as { sub: string; password_hash: string };
  assert.equal(user.sub, sub);
  assert.ok(await verifyPassword(FILL_PASSWORD, openPasswordHash(sealer, sub, user.password_hash)));
  const secret = sealer.openValue<string>(ws[1]!.args.sealed as Uint8Array, `totp:${sub}`);
  assert.match(secret, /^[A-Z2-7]{32}$/);
  const code = ws[3]!.args as { hash: string; sealed: Uint8Array };
  assert.equal(sealer.openValue<{ clientId: string }>(code.sealed, `code:${code.hash}`).clientId, 'bench-client');
  const redeem = ws[4]!.args as { hash: string; rt: { hash: string; sealed: Uint8Array } };
  assert.equal(redeem.hash, code.hash, 'the redeem names the code created just before');
  assert.equal(sealer.openValue<{ auth: { sub: string } }>(redeem.rt.sealed, `rt:${redeem.rt.hash}`).auth.sub, sub);
});

test('ids are distinct across units and runs, and stable for one (run, unit)', async () => {
  const a = await ctx('a');
  const b = await ctx('b');
  const ids = new Set<string>();
  for (let u = 0; u < 200; u++) for (const w of unitWrites(a, u)) if (typeof w.args.hash === 'string') ids.add(w.args.hash);
  assert.equal(ids.size, 200 * FAMILIES_PER_UNIT * 1, 'one code hash per family (the redeem repeats it)');
  assert.notEqual(unitSub(a, 1), unitSub(b, 1));
  assert.equal(unitSub(a, 1), unitSub(a, 1));
});

test('expiring writes pass tokens.code.create; unitsFor rounds up', async () => {
  const c = await ctx();
  const w = expiringWrite(c, 5, NOW + 1000);
  assert.doesNotThrow(() => TOKENS_WRITES['code.create'].args.parse(w.args, ''));
  assert.equal(unitsFor(RECORDS_PER_UNIT * 3), 3);
  assert.equal(unitsFor(RECORDS_PER_UNIT * 3 + 1), 4);
});

test('log-only writes are KV puts over a fixed key set (the record count does not grow)', async () => {
  const c = await ctx();
  const keys = new Set<string>();
  for (let i = 0; i < 3 * BEHIND_KEYS; i++) {
    const w = behindWrite(c, i);
    assert.equal(`${w.domain}.${w.op}`, 'kv.put');
    assert.doesNotThrow(() => KV_WRITES.put.args.parse(w.args, ''));
    assert.equal((w.args.value as string).length, BEHIND_VALUE_BYTES);
    keys.add(w.args.key as string);
  }
  assert.equal(keys.size, BEHIND_KEYS);
});

test('base32Of is RFC 4648 base32 (its test vectors, unpadded)', () => {
  const enc = (s: string): string => base32Of(Buffer.from(s));
  assert.equal(enc(''), '');
  assert.equal(enc('f'), 'MY');
  assert.equal(enc('fo'), 'MZXQ');
  assert.equal(enc('foo'), 'MZXW6');
  assert.equal(enc('foob'), 'MZXW6YQ');
  assert.equal(enc('fooba'), 'MZXW6YTB');
  assert.equal(enc('foobar'), 'MZXW6YTBOI');
});
