import { test } from 'node:test';
import assert from 'node:assert/strict';
import { StateMachine } from '../../../src/state/machine.ts';
import type { ApplyResult } from '../../../src/state/machine.ts';
import { SESSION_LIMITS } from '../../../src/state/sessions.ts';
import { encodeCommand, unpackValue } from '../../../src/state/command.ts';
import type { Command } from '../../../src/state/command.ts';
import { oauthDomains } from '../../../src/state/oauth-domains.ts';
import {
  ASSERTION_JTIS_KEYSPACE,
  CODES_KEYSPACE,
  EXPIRY_KEYSPACE,
  FAMILIES_KEYSPACE,
  LOGIN_SESSIONS_KEYSPACE,
  MAX_FAMILY_AT_JTIS,
  REFRESH_TOKENS_KEYSPACE,
  REVOKED_JTIS_KEYSPACE,
  DEVICE_CODES_KEYSPACE,
  USER_CODES_KEYSPACE,
  USED_CODE_RETENTION_MS,
  expiryIndexKey,
  parseExpiryIndexKey,
} from '../../../src/state/tokens.ts';
import type { RefreshRecordView } from '../../../src/state/oauth-ops.ts';
import { AUDIT_KEYSPACE } from '../../../src/state/audit.ts';
import type { AuditRecord } from '../../../src/state/audit-ops.ts';
import { MapState } from './helpers.ts';
import { prepareEntries } from '../../../src/node/applier.ts';

// ---- harness: the real StateMachine over a map, entries with chosen leader time ------------------

const T0 = 1_700_000_000_000;
let index = 0;

function harness() {
  const st = new MapState();
  const sm = new StateMachine(st, SESSION_LIMITS);
  for (const d of oauthDomains()) sm.register(d);
  const run = (c: Partial<Command> & Pick<Command, 'domain' | 'op'>): ApplyResult => {
    const i = ++index;
    const data = encodeCommand({ v: 1, sid: null, seq: 0, ack: 0, ts: T0, args: null, ...c });
    const b = sm.applyEntries(prepareEntries([{ term: 1, index: i, type: 'normal', data }]));
    st.commit(b);
    return b.results.get(i)![0]!;
  };
  const tok = (op: string, args: unknown, ts = T0): ApplyResult => run({ domain: 'tokens', op, args, ts });
  const ok = (op: string, args: unknown, ts = T0): Record<string, unknown> => {
    const r = tok(op, args, ts);
    if (!r.ok) assert.fail(`${op}: ${r.code} ${r.message}`);
    return r.value as Record<string, unknown>;
  };
  /** The command is refused with `code` and changes nothing. */
  const refused = (op: string, args: unknown, code: string, ts = T0, field?: string): void => {
    const before = st.snapshot();
    const r = tok(op, args, ts);
    assert.equal(r.ok, false, `${op} should be refused`);
    if (!r.ok) {
      assert.equal(r.code, code, r.message);
      if (field) assert.match(r.message, new RegExp(field.replace(/[.[\]]/g, '\\$&')));
    }
    assert.deepEqual(st.snapshot(), before, 'a refusal changes nothing');
  };
  /** The command answers `value` (a normal result) and changes nothing. */
  const unchanged = (op: string, args: unknown, value: unknown, ts = T0): void => {
    const before = st.snapshot();
    assert.deepEqual(plain(ok(op, args, ts)), value);
    assert.deepEqual(st.snapshot(), before, `${op} changes nothing`);
  };
  const read = (op: string, args: unknown): unknown => {
    const r = sm.read('tokens', op, args);
    if (!r.ok) assert.fail(`${op}: ${r.code} ${r.message}`);
    return plain(r.value);
  };
  const raw = <T>(ks: string, key: string): T | undefined => {
    const b = st.get(ks, key);
    return b === undefined ? undefined : unpackValue<T>(b);
  };
  return { st, sm, run, tok, ok, refused, unchanged, read, raw };
}

/** Buffers (what msgpack decodes bytes into) as plain Uint8Arrays, so deepEqual compares contents. */
function plain(v: unknown): unknown {
  if (v instanceof Uint8Array) return new Uint8Array(v);
  if (Array.isArray(v)) return v.map(plain);
  if (v !== null && typeof v === 'object') return Object.fromEntries(Object.entries(v).map(([k, x]) => [k, plain(x)]));
  return v;
}

const blob = (n: number, len = 8): Uint8Array => new Uint8Array(len).fill(n);
const HOUR = 3_600_000;

const family = (id: string, exp = T0 + 90 * 24 * HOUR, clientId = 'app') => ({ id, clientId, exp });
const prt = (hash: string, exp = T0 + 14 * 24 * HOUR, n = 1) => ({ hash, exp, sealed: blob(n) });
const at = (jti: string, exp = T0 + 600_000) => ({ jti, exp });

/** A code redeemed into family `fam` with refresh token `rt1` and access token `at1`. */
function withGrant(h: ReturnType<typeof harness>, opts: { famExp?: number } = {}): void {
  h.ok('code.create', { hash: 'code1', exp: T0 + 60_000, sealed: blob(9) });
  assert.deepEqual(h.ok('code.redeem', { hash: 'code1', family: family('fam', opts.famExp), rt: prt('rt1'), at: at('at1') }), { ok: true });
}

const rotate = (hash: string, next: string, jti: string, graceMs = 2_000, response = blob(7)) => ({ hash, next: prt(next), response, at: at(jti), graceMs });

// ---- expiry index ----------------------------------------------------------------------------------

test('expiry index keys sort by time and round-trip, keys may contain "|"', () => {
  const k = expiryIndexKey(1234, 'tok.jti', 'app some|jti');
  assert.equal(k, '000000000001234|tok.jti|app some|jti');
  assert.deepEqual(parseExpiryIndexKey(k), { exp: 1234, keyspace: 'tok.jti', key: 'app some|jti' });
  assert.ok(expiryIndexKey(999, 'tok.rt', 'a') < expiryIndexKey(1000, 'tok.code', 'a'));
  for (const bad of ['', 'x', '00000000000123|tok.rt|a', '00000000000012a|tok.rt|a', '000000000001234|tok.rt', '000000000001234|Tok|a', '000000000001234|tok.rt|']) {
    assert.equal(parseExpiryIndexKey(bad), null, bad);
  }
});

// ---- authorization codes ---------------------------------------------------------------------------

test('code.create stores the code with its index entry; a taken hash and bad args are refused', () => {
  const h = harness();
  assert.deepEqual(h.ok('code.create', { hash: 'c1', exp: T0 + 60_000, sealed: blob(1) }), {});
  assert.deepEqual(h.read('code.get', { hash: 'c1' }), { exp: T0 + 60_000, sealed: blob(1), used: null });
  assert.deepEqual(h.st.keys(EXPIRY_KEYSPACE), [expiryIndexKey(T0 + 60_000, CODES_KEYSPACE, 'c1')]);
  h.refused('code.create', { hash: 'c1', exp: T0 + 1, sealed: blob(2) }, 'ALREADY_EXISTS');
  h.refused('code.create', { hash: 'x'.repeat(129), exp: T0, sealed: blob(1) }, 'INVALID_ARGUMENT', T0, 'hash');
  h.refused('code.create', { hash: 'c 2', exp: T0, sealed: blob(1) }, 'INVALID_ARGUMENT', T0, 'hash');
  h.refused('code.create', { hash: 'c2', exp: -1, sealed: blob(1) }, 'INVALID_ARGUMENT', T0, 'exp');
  h.refused('code.create', { hash: 'c2', exp: 1.5, sealed: blob(1) }, 'INVALID_ARGUMENT', T0, 'exp');
  h.refused('code.create', { hash: 'c2', exp: 10 ** 15, sealed: blob(1) }, 'INVALID_ARGUMENT', T0, 'exp');
  h.refused('code.create', { hash: 'c2', exp: T0, sealed: 'abc' }, 'INVALID_ARGUMENT', T0, 'sealed');
  h.refused('code.create', { hash: 'c2', exp: T0, sealed: new Uint8Array(64 * 1024 + 1) }, 'INVALID_ARGUMENT', T0, 'sealed');
  h.refused('code.create', { hash: 'c2', exp: T0 }, 'INVALID_ARGUMENT', T0, 'sealed');
  h.refused('code.create', null, 'INVALID_ARGUMENT', T0, 'args');
  assert.deepEqual(h.ok('code.create', { hash: 'c2', exp: T0, sealed: new Uint8Array(64 * 1024) }), {});
});

test('code.redeem is single use: the first stores the family and refresh token, unknown and expired change nothing', () => {
  const h = harness();
  withGrant(h);
  assert.deepEqual(h.read('code.get', { hash: 'code1' }), { exp: T0 + 60_000, sealed: blob(9), used: { at: T0, family: 'fam' } });
  assert.deepEqual(h.read('family.get', { id: 'fam' }), { revoked: false, exp: T0 + 90 * 24 * HOUR });
  assert.deepEqual(h.read('rt.get', { hash: 'rt1' }), {
    family: 'fam',
    exp: T0 + 14 * 24 * HOUR,
    sealed: blob(1),
    state: 'active',
    rotatedAt: null,
    familyRevoked: false,
    familyExp: T0 + 90 * 24 * HOUR,
    clientId: 'app',
  } satisfies RefreshRecordView);
  assert.deepEqual(h.raw(FAMILIES_KEYSPACE, 'fam'), { clientId: 'app', exp: T0 + 90 * 24 * HOUR, revoked: null, atJtis: [['at1', T0 + 600_000]] });
  for (const [ks, key, exp] of [
    [FAMILIES_KEYSPACE, 'fam', T0 + 90 * 24 * HOUR],
    [REFRESH_TOKENS_KEYSPACE, 'rt1', T0 + 14 * 24 * HOUR],
  ] as const) {
    assert.ok(h.st.get(EXPIRY_KEYSPACE, expiryIndexKey(exp, ks, key)), `index entry for ${ks}/${key}`);
  }

  h.unchanged('code.redeem', { hash: 'nope', family: family('f2'), rt: prt('rt2'), at: at('at2') }, { ok: false, reason: 'unknown' });
  h.ok('code.create', { hash: 'code2', exp: T0 + 60_000, sealed: blob(9) });
  h.unchanged('code.redeem', { hash: 'code2', family: family('f2'), rt: prt('rt2'), at: at('at2') }, { ok: false, reason: 'expired' }, T0 + 60_000);
  assert.equal(h.read('family.get', { id: 'f2' }), null);
});

test('a reused code revokes the family of its first redemption and its access tokens, and that is written', () => {
  const h = harness();
  withGrant(h);
  const r = h.tok('code.redeem', { hash: 'code1', family: family('fam2'), rt: prt('rt9'), at: at('at9') }, T0 + 5_000);
  assert.deepEqual(r, { ok: true, value: { ok: false, reason: 'reused' } });
  assert.deepEqual(h.read('family.get', { id: 'fam' }), { revoked: true, exp: T0 + 90 * 24 * HOUR });
  assert.deepEqual(h.raw<{ revoked: unknown }>(FAMILIES_KEYSPACE, 'fam')!.revoked, { at: T0 + 5_000, reason: 'code_reuse' });
  assert.equal((h.read('rt.get', { hash: 'rt1' }) as RefreshRecordView).familyRevoked, true);
  assert.deepEqual(h.read('at.revoked', { jti: 'at1' }), { revoked: true });
  assert.ok(h.st.get(EXPIRY_KEYSPACE, expiryIndexKey(T0 + 600_000, REVOKED_JTIS_KEYSPACE, 'at1')));
  // The second redemption's tokens were never stored.
  assert.equal(h.read('family.get', { id: 'fam2' }), null);
  assert.equal(h.read('rt.get', { hash: 'rt9' }), null);
  assert.deepEqual(h.read('at.revoked', { jti: 'at9' }), { revoked: false });
  // The refresh token of the revoked family can no longer be used.
  h.unchanged('rt.rotate', rotate('rt1', 'rt2', 'at2'), { ok: false, reason: 'revoked' }, T0 + 6_000);
});

test('a redeemed code is remembered for a day: a replay after its expiry (and after sweeps) is still reuse and revokes the grant', () => {
  const h = harness();
  withGrant(h);
  // The index entry moved from the code's exp to redemption + USED_CODE_RETENTION_MS.
  const kept = expiryIndexKey(T0 + USED_CODE_RETENTION_MS, CODES_KEYSPACE, 'code1');
  assert.ok(h.st.keys(EXPIRY_KEYSPACE).includes(kept));
  assert.ok(!h.st.keys(EXPIRY_KEYSPACE).includes(expiryIndexKey(T0 + 60_000, CODES_KEYSPACE, 'code1')));
  // A sweep an hour later (the code itself long expired) keeps it.
  assert.deepEqual(h.ok('sweep', { keys: [kept] }, T0 + HOUR), { deleted: 0 });
  assert.deepEqual(h.ok('code.redeem', { hash: 'code1', family: family('fam2'), rt: prt('rt2'), at: at('at2') }, T0 + 2 * HOUR), { ok: false, reason: 'reused' });
  assert.equal((h.read('rt.get', { hash: 'rt1' }) as { familyRevoked: boolean }).familyRevoked, true);
  // After the retention the sweep deletes it; a replay is then only "unknown".
  assert.deepEqual(h.ok('sweep', { keys: [kept] }, T0 + USED_CODE_RETENTION_MS), { deleted: 1 });
  assert.deepEqual(h.ok('code.redeem', { hash: 'code1', family: family('fam3'), rt: prt('rt3'), at: at('at3') }, T0 + USED_CODE_RETENTION_MS + 1), { ok: false, reason: 'unknown' });
});

test('a reused code without a family still revokes the access token of the first redemption', () => {
  const h = harness();
  h.ok('code.create', { hash: 'code1', exp: T0 + 60_000, sealed: blob(9) });
  assert.deepEqual(h.ok('code.redeem', { hash: 'code1', family: null, rt: null, at: at('at1') }), { ok: true });
  assert.deepEqual(h.read('code.get', { hash: 'code1' }), { exp: T0 + 60_000, sealed: blob(9), used: { at: T0, family: null } });
  assert.deepEqual(h.read('at.revoked', { jti: 'at1' }), { revoked: false });
  assert.deepEqual(h.ok('code.redeem', { hash: 'code1', family: null, rt: null, at: at('at2') }, T0 + 1), { ok: false, reason: 'reused' });
  assert.deepEqual(h.read('at.revoked', { jti: 'at1' }), { revoked: true });
  assert.deepEqual(h.read('at.revoked', { jti: 'at2' }), { revoked: false });
});

test('code.redeem argument checks and collisions refuse without marking the code used', () => {
  const h = harness();
  h.ok('code.create', { hash: 'code1', exp: T0 + 60_000, sealed: blob(9) });
  h.refused('code.redeem', { hash: 'code1', family: null, rt: prt('rt1'), at: at('at1') }, 'INVALID_ARGUMENT', T0, 'rt needs a family');
  h.refused('code.redeem', { hash: 'code1', family: family('fam'), rt: prt('rt1'), at: { jti: 'a b', exp: T0 } }, 'INVALID_ARGUMENT', T0, 'at.jti');
  h.refused('code.redeem', { hash: 'code1', family: { id: 'fam', clientId: 'bad client', exp: T0 }, rt: null, at: at('at1') }, 'INVALID_ARGUMENT', T0, 'family.clientId');
  h.refused('code.redeem', { hash: 'code1', family: family('fam'), at: at('at1') }, 'INVALID_ARGUMENT', T0, 'rt');
  h.ok('code.create', { hash: 'code0', exp: T0 + 60_000, sealed: blob(9) });
  h.ok('code.redeem', { hash: 'code0', family: family('taken'), rt: prt('rt0'), at: at('at0') });
  h.refused('code.redeem', { hash: 'code1', family: family('taken'), rt: prt('rt1'), at: at('at1') }, 'ALREADY_EXISTS');
  h.refused('code.redeem', { hash: 'code1', family: family('fam'), rt: prt('rt0'), at: at('at1') }, 'ALREADY_EXISTS');
  assert.deepEqual((h.read('code.get', { hash: 'code1' }) as { used: unknown }).used, null);
});

test('the first refresh token never outlives its family', () => {
  const h = harness();
  withGrant(h, { famExp: T0 + HOUR });
  assert.equal((h.read('rt.get', { hash: 'rt1' }) as RefreshRecordView).exp, T0 + HOUR);
  assert.ok(h.st.get(EXPIRY_KEYSPACE, expiryIndexKey(T0 + HOUR, REFRESH_TOKENS_KEYSPACE, 'rt1')));
});

// ---- refresh tokens ----------------------------------------------------------------------------------

test('refresh rotation chain: each token rotates once into the next, in the same family', () => {
  const h = harness();
  withGrant(h);
  assert.deepEqual(h.ok('rt.rotate', rotate('rt1', 'rt2', 'at2', 2_000, blob(21)), T0 + 10_000), { ok: true, outcome: 'rotated' });
  assert.deepEqual(h.ok('rt.rotate', rotate('rt2', 'rt3', 'at3', 2_000, blob(22)), T0 + 20_000), { ok: true, outcome: 'rotated' });
  const v1 = h.read('rt.get', { hash: 'rt1' }) as RefreshRecordView;
  const v2 = h.read('rt.get', { hash: 'rt2' }) as RefreshRecordView;
  const v3 = h.read('rt.get', { hash: 'rt3' }) as RefreshRecordView;
  assert.deepEqual([v1.state, v1.rotatedAt, v2.state, v2.rotatedAt, v3.state, v3.rotatedAt], ['rotated', T0 + 10_000, 'rotated', T0 + 20_000, 'active', null]);
  assert.deepEqual([v2.family, v3.family, v3.clientId, v3.familyRevoked], ['fam', 'fam', 'app', false]);
  const r1 = h.raw<{ successor: string; grace: unknown }>(REFRESH_TOKENS_KEYSPACE, 'rt1')!;
  const r2 = h.raw<{ successor: string; grace: Uint8Array; prev: string }>(REFRESH_TOKENS_KEYSPACE, 'rt2')!;
  assert.equal(r1.successor, 'rt2');
  assert.equal(r1.grace, null, 'the grace blob of rt1 is dropped once rt2 rotates');
  assert.deepEqual(plain(r2.grace), blob(22));
  assert.equal(r2.prev, 'rt1');
  assert.deepEqual(
    h.raw<{ atJtis: unknown }>(FAMILIES_KEYSPACE, 'fam')!.atJtis,
    [['at1', T0 + 600_000], ['at2', T0 + 600_000], ['at3', T0 + 600_000]],
  );
  // Rotated tokens stay (reuse detection) until their own exp, with their index entries.
  assert.ok(h.st.get(EXPIRY_KEYSPACE, expiryIndexKey(T0 + 14 * 24 * HOUR, REFRESH_TOKENS_KEYSPACE, 'rt1')));
});

test('grace window: the same rotation presented again within graceMs gets the stored response and writes nothing', () => {
  const h = harness();
  withGrant(h);
  h.ok('rt.rotate', rotate('rt1', 'rt2', 'at2', 2_000, blob(42, 32)), T0 + 10_000);
  // ts - rotatedAt = 2000 <= graceMs: inside (the boundary is inclusive).
  h.unchanged('rt.rotate', rotate('rt1', 'rt2b', 'at2b'), { ok: true, outcome: 'grace', response: blob(42, 32) }, T0 + 12_000);
  assert.equal(h.read('rt.get', { hash: 'rt2b' }), null);
  assert.equal((h.read('rt.get', { hash: 'rt2' }) as RefreshRecordView).state, 'active');
});

test('reuse outside the grace window revokes the family and every unexpired access token it issued', () => {
  const h = harness();
  withGrant(h);
  h.ok('rt.rotate', { ...rotate('rt1', 'rt2', 'at2'), at: at('at2', T0 + HOUR) }, T0 + 10_000);
  // at1 expired at T0 + 600 000; at2 is still valid at the reuse.
  assert.deepEqual(h.ok('rt.rotate', rotate('rt1', 'rt2b', 'at2b'), T0 + 700_000), { ok: false, reason: 'reused' });
  assert.deepEqual(h.raw<{ revoked: unknown }>(FAMILIES_KEYSPACE, 'fam')!.revoked, { at: T0 + 700_000, reason: 'refresh_token_reuse' });
  assert.deepEqual(h.read('at.revoked', { jti: 'at2' }), { revoked: true });
  assert.deepEqual(h.read('at.revoked', { jti: 'at1' }), { revoked: false }, 'an expired access token is not remembered');
  assert.equal(h.read('rt.get', { hash: 'rt2b' }), null);
  // The legitimate successor is dead too, and the family keeps its first revocation reason.
  h.unchanged('rt.rotate', rotate('rt2', 'rt3', 'at3'), { ok: false, reason: 'revoked' }, T0 + 700_001);
  h.unchanged('rt.rotate', rotate('rt1', 'rt3', 'at3'), { ok: false, reason: 'revoked' }, T0 + 700_002);
});

test('within the grace window but after the successor was used, a rotated token is reuse', () => {
  const h = harness();
  withGrant(h);
  h.ok('rt.rotate', rotate('rt1', 'rt2', 'at2'), T0 + 10_000);
  h.ok('rt.rotate', rotate('rt2', 'rt3', 'at3'), T0 + 10_500);
  assert.deepEqual(h.ok('rt.rotate', rotate('rt1', 'rt9', 'at9'), T0 + 11_000), { ok: false, reason: 'reused' });
  assert.equal(h.read('family.get', { id: 'fam' }) !== null && (h.read('family.get', { id: 'fam' }) as { revoked: boolean }).revoked, true);
  assert.deepEqual(h.read('at.revoked', { jti: 'at3' }), { revoked: true });
});

test('a rotation retried with the same (sid, seq) returns its first result and is not seen as reuse', () => {
  const h = harness();
  withGrant(h);
  const sid = 'worker-session-1';
  const opened = h.run({ domain: 'session', op: 'open', sid, ts: T0 + 1_000, args: { ttlMs: 60_000 } });
  assert.equal(opened.ok, true);
  const cmd = { domain: 'tokens', op: 'rt.rotate', sid, seq: 1, args: rotate('rt1', 'rt2', 'at2', 0) } as const;
  const first = h.run({ ...cmd, ts: T0 + 10_000 });
  // Retried after a leader change, long after any grace window (graceMs is 0 here).
  const again = h.run({ ...cmd, ts: T0 + 40_000 });
  assert.deepEqual(first, { ok: true, value: { ok: true, outcome: 'rotated' } });
  assert.deepEqual(again, first);
  assert.deepEqual(h.read('family.get', { id: 'fam' }), { revoked: false, exp: T0 + 90 * 24 * HOUR });
  assert.equal((h.read('rt.get', { hash: 'rt2' }) as RefreshRecordView).state, 'active');
  // The same rotation outside a session is reuse: the session is what makes the retry safe.
  assert.deepEqual(h.ok('rt.rotate', rotate('rt1', 'rt2', 'at2', 0), T0 + 41_000), { ok: false, reason: 'reused' });
});

test('rt.rotate: unknown, expired (token or family), swept family, clamped successor, bad args', () => {
  const h = harness();
  withGrant(h, { famExp: T0 + 2 * HOUR });
  h.unchanged('rt.rotate', rotate('nope', 'rt2', 'at2'), { ok: false, reason: 'unknown' });
  // next.exp (14 days) is clamped to the family's absolute expiry.
  h.ok('rt.rotate', rotate('rt1', 'rt2', 'at2'), T0 + 1_000);
  assert.equal((h.read('rt.get', { hash: 'rt2' }) as RefreshRecordView).exp, T0 + 2 * HOUR);
  h.refused('rt.rotate', rotate('rt2', 'rt2', 'at3'), 'INVALID_ARGUMENT', T0 + 1_000, 'next.hash');
  h.refused('rt.rotate', rotate('rt2', 'rt1', 'at3'), 'ALREADY_EXISTS', T0 + 1_000);
  h.refused('rt.rotate', rotate('rt2', 'rt3', 'at3', 60_001), 'INVALID_ARGUMENT', T0 + 1_000, 'graceMs');
  h.refused('rt.rotate', { ...rotate('rt2', 'rt3', 'at3'), response: new Uint8Array(0) }, 'INVALID_ARGUMENT', T0 + 1_000, 'response');
  h.refused('rt.rotate', { ...rotate('rt2', 'rt3', 'at3'), next: { hash: 'rt3', exp: T0 } }, 'INVALID_ARGUMENT', T0 + 1_000, 'next.sealed');
  h.unchanged('rt.rotate', rotate('rt2', 'rt3', 'at3'), { ok: false, reason: 'expired' }, T0 + 2 * HOUR);

  // A token whose own idle expiry passed (family still valid).
  const g = harness();
  g.ok('code.create', { hash: 'c', exp: T0 + 60_000, sealed: blob(1) });
  g.ok('code.redeem', { hash: 'c', family: family('f'), rt: prt('r1', T0 + 5_000), at: at('a1') });
  g.unchanged('rt.rotate', rotate('r1', 'r2', 'a2'), { ok: false, reason: 'expired' }, T0 + 5_000);
  // Its family swept (expired) while the token record remains: treated as revoked.
  const k = expiryIndexKey(T0 + 90 * 24 * HOUR, FAMILIES_KEYSPACE, 'f');
  assert.deepEqual(g.ok('sweep', { keys: [k] }, T0 + 90 * 24 * HOUR), { deleted: 1 });
  assert.deepEqual(g.read('rt.get', { hash: 'r1' }), { family: 'f', exp: T0 + 5_000, sealed: blob(1), state: 'active', rotatedAt: null, familyRevoked: true, familyExp: 0, clientId: '' });
  g.unchanged('rt.rotate', rotate('r1', 'r2', 'a2'), { ok: false, reason: 'revoked' }, T0 + 90 * 24 * HOUR);
});

test('a family remembers at most 100 access tokens: expired ones are dropped first, then the oldest', () => {
  const h = harness();
  withGrant(h); // at1 expires at T0 + 600 000
  // at2..at100 are long-lived except at50, which expires in the middle of the list.
  let ts = T0 + 1;
  for (let i = 2; i <= 100; i++) h.ok('rt.rotate', { ...rotate(`rt${i - 1}`, `rt${i}`, `at${i}`), at: at(`at${i}`, i === 50 ? T0 + 1_000 : T0 + 10 * HOUR) }, ts++);
  const jtis = (): string[] => h.raw<{ atJtis: [string, number][] }>(FAMILIES_KEYSPACE, 'fam')!.atJtis.map(([j]) => j);
  assert.equal(jtis().length, MAX_FAMILY_AT_JTIS);
  // At T0 + 600 000 at1 and at50 have expired: both go, nothing valid is dropped.
  h.ok('rt.rotate', { ...rotate('rt100', 'rt101', 'at101'), at: at('at101', T0 + 10 * HOUR) }, T0 + 600_000);
  assert.equal(jtis().length, 99);
  assert.ok(!jtis().includes('at1') && !jtis().includes('at50'));
  h.ok('rt.rotate', { ...rotate('rt101', 'rt102', 'at102'), at: at('at102', T0 + 10 * HOUR) }, T0 + 600_001);
  assert.deepEqual([jtis().length, jtis()[0]], [100, 'at2']);
  // Full and nothing expired: the oldest goes.
  h.ok('rt.rotate', { ...rotate('rt102', 'rt103', 'at103'), at: at('at103', T0 + 10 * HOUR) }, T0 + 600_002);
  assert.deepEqual([jtis().length, jtis()[0], jtis()[99]], [100, 'at3', 'at103']);
});

test('rt.revoke revokes the family only for the client it was issued to (RFC 7009 §2.1)', () => {
  const h = harness();
  withGrant(h);
  h.unchanged('rt.revoke', { hash: 'rt1', clientId: 'other' }, { revoked: false });
  h.unchanged('rt.revoke', { hash: 'nope', clientId: 'app' }, { revoked: false });
  h.refused('rt.revoke', { hash: 'rt1', clientId: 'bad client' }, 'INVALID_ARGUMENT', T0, 'clientId');
  assert.deepEqual(h.ok('rt.revoke', { hash: 'rt1', clientId: 'app' }, T0 + 1), { revoked: true });
  assert.deepEqual(h.raw<{ revoked: unknown }>(FAMILIES_KEYSPACE, 'fam')!.revoked, { at: T0 + 1, reason: 'revoked_by_client' });
  assert.deepEqual(h.read('at.revoked', { jti: 'at1' }), { revoked: true });
  h.unchanged('rt.rotate', rotate('rt1', 'rt2', 'at2'), { ok: false, reason: 'revoked' }, T0 + 2);
});

test('at.revoke remembers a jti until its exp; an expired one is not stored', () => {
  const h = harness();
  assert.deepEqual(h.ok('at.revoke', { jti: 'j1', exp: T0 + 1_000 }), {});
  assert.deepEqual(h.read('at.revoked', { jti: 'j1' }), { revoked: true });
  assert.deepEqual(h.st.keys(EXPIRY_KEYSPACE), [expiryIndexKey(T0 + 1_000, REVOKED_JTIS_KEYSPACE, 'j1')]);
  // Revoked again with a later exp: the record and its index entry move.
  h.ok('at.revoke', { jti: 'j1', exp: T0 + 2_000 });
  assert.deepEqual(h.st.keys(EXPIRY_KEYSPACE), [expiryIndexKey(T0 + 2_000, REVOKED_JTIS_KEYSPACE, 'j1')]);
  h.unchanged('at.revoke', { jti: 'j2', exp: T0 }, {});
  assert.deepEqual(h.read('at.revoked', { jti: 'j2' }), { revoked: false });
  h.refused('at.revoke', { jti: 'j'.repeat(129), exp: T0 + 1 }, 'INVALID_ARGUMENT', T0, 'jti');
});

// ---- device authorization grant ------------------------------------------------------------------

const device = (over: Record<string, unknown> = {}) => ({ hash: 'dev1', userCodeHash: 'uc1', exp: T0 + 600_000, intervalMs: 5_000, sealed: blob(3), ...over });

test('device flow: pending, slow_down grows the interval by 5 s, approved, redeemed once', () => {
  const h = harness();
  assert.deepEqual(h.ok('device.create', device()), {});
  assert.deepEqual(h.read('device.get', { hash: 'dev1' }), { hash: 'dev1', status: 'pending', exp: T0 + 600_000, sealed: blob(3), approval: null });
  assert.deepEqual(h.read('device.byUserCode', { userCodeHash: 'uc1' }), h.read('device.get', { hash: 'dev1' }));
  h.refused('device.create', device({ userCodeHash: 'uc2' }), 'ALREADY_EXISTS');
  h.refused('device.create', device({ hash: 'dev2' }), 'ALREADY_EXISTS');
  h.refused('device.create', device({ hash: 'dev2', userCodeHash: 'uc2', intervalMs: -1 }), 'INVALID_ARGUMENT', T0, 'intervalMs');

  assert.deepEqual(h.ok('device.poll', { hash: 'dev1' }, T0 + 1_000), { status: 'authorization_pending' });
  assert.deepEqual(h.ok('device.poll', { hash: 'dev1' }, T0 + 5_999), { status: 'slow_down' });
  assert.equal(h.raw<{ interval: number }>(DEVICE_CODES_KEYSPACE, 'dev1')!.interval, 10_000);
  // 5 s after the last poll is now too soon too: the interval is 10 s "for all subsequent requests".
  assert.deepEqual(h.ok('device.poll', { hash: 'dev1' }, T0 + 10_999), { status: 'slow_down' });
  assert.equal(h.raw<{ interval: number }>(DEVICE_CODES_KEYSPACE, 'dev1')!.interval, 15_000);
  assert.deepEqual(h.ok('device.poll', { hash: 'dev1' }, T0 + 25_999), { status: 'authorization_pending' });
  assert.equal(h.raw<{ lastPoll: number }>(DEVICE_CODES_KEYSPACE, 'dev1')!.lastPoll, T0 + 25_999);

  h.unchanged('device.redeem', { hash: 'dev1', family: family('fam'), rt: prt('rt1'), at: at('at1') }, { ok: false, reason: 'not_approved' }, T0 + 26_000);
  h.refused('device.decide', { userCodeHash: 'uc1', approve: true, approval: null }, 'INVALID_ARGUMENT', T0 + 26_000, 'approval');
  h.refused('device.decide', { userCodeHash: 'uc1', approve: false, approval: blob(5) }, 'INVALID_ARGUMENT', T0 + 26_000, 'approval');
  assert.deepEqual(h.ok('device.decide', { userCodeHash: 'uc1', approve: true, approval: blob(5) }, T0 + 30_000), { ok: true });
  h.unchanged('device.decide', { userCodeHash: 'uc1', approve: false, approval: null }, { ok: false, reason: 'decided' }, T0 + 30_001);
  h.unchanged('device.decide', { userCodeHash: 'nope', approve: false, approval: null }, { ok: false, reason: 'unknown' }, T0 + 30_001);
  assert.deepEqual(h.read('device.get', { hash: 'dev1' }), { hash: 'dev1', status: 'approved', exp: T0 + 600_000, sealed: blob(3), approval: blob(5) });

  h.unchanged('device.poll', { hash: 'dev1' }, { status: 'approved' }, T0 + 31_000);
  assert.deepEqual(h.ok('device.redeem', { hash: 'dev1', family: family('fam'), rt: prt('rt1'), at: at('at1') }, T0 + 31_000), { ok: true });
  assert.equal((h.read('device.get', { hash: 'dev1' }) as { status: string }).status, 'consumed');
  assert.equal((h.read('rt.get', { hash: 'rt1' }) as RefreshRecordView).familyRevoked, false);
  h.unchanged('device.redeem', { hash: 'dev1', family: family('fam2'), rt: prt('rt2'), at: at('at2') }, { ok: false, reason: 'consumed' }, T0 + 31_001);
  h.unchanged('device.poll', { hash: 'dev1' }, { status: 'consumed' }, T0 + 31_002);
  h.unchanged('device.redeem', { hash: 'nope', family: null, rt: null, at: at('at2') }, { ok: false, reason: 'unknown' }, T0 + 31_003);
});

test('device flow: denied, expired, decided after expiry', () => {
  const h = harness();
  h.ok('device.create', device());
  h.ok('device.create', device({ hash: 'dev2', userCodeHash: 'uc2' }));
  assert.deepEqual(h.ok('device.decide', { userCodeHash: 'uc1', approve: false, approval: null }), { ok: true });
  h.unchanged('device.poll', { hash: 'dev1' }, { status: 'access_denied' }, T0 + 1);
  h.unchanged('device.redeem', { hash: 'dev1', family: null, rt: null, at: at('a') }, { ok: false, reason: 'not_approved' }, T0 + 2);
  h.unchanged('device.decide', { userCodeHash: 'uc2', approve: true, approval: blob(1) }, { ok: false, reason: 'expired' }, T0 + 600_000);
  h.unchanged('device.poll', { hash: 'dev2' }, { status: 'expired_token' }, T0 + 600_000);
  h.unchanged('device.redeem', { hash: 'dev2', family: null, rt: null, at: at('a') }, { ok: false, reason: 'expired' }, T0 + 600_000);
});

// ---- login sessions and assertion replay ----------------------------------------------------------

test('login sessions: create, read, delete with the index entry', () => {
  const h = harness();
  assert.deepEqual(h.ok('session.create', { hash: 's1', exp: T0 + HOUR, sealed: blob(4) }), {});
  assert.deepEqual(h.read('session.get', { hash: 's1' }), { exp: T0 + HOUR, sealed: blob(4) });
  h.refused('session.create', { hash: 's1', exp: T0 + HOUR, sealed: blob(4) }, 'ALREADY_EXISTS');
  assert.deepEqual(h.ok('session.delete', { hash: 's1' }), { existed: true });
  assert.equal(h.read('session.get', { hash: 's1' }), null);
  assert.deepEqual(h.st.keys(EXPIRY_KEYSPACE), []);
  assert.deepEqual(h.st.keys(LOGIN_SESSIONS_KEYSPACE), []);
  h.unchanged('session.delete', { hash: 's1' }, { existed: false });
});

test('session.replace with a code: the upgraded session and the authorization code in one command; all or nothing', () => {
  const h = harness();
  const alice = { ip: '::1', sub: 'alice' };
  h.ok('session.create', { hash: 's1', exp: T0 + HOUR, sealed: blob(1), meta: alice });
  const code = { hash: 'c1', exp: T0 + 60_000, sealed: blob(7) };
  assert.deepEqual(h.ok('session.replace', { hash: 's2', exp: T0 + HOUR, sealed: blob(2), meta: alice, previous: { hash: 's1', meta: alice }, code }), { existed: true });
  assert.deepEqual(h.read('code.get', { hash: 'c1' }), { exp: T0 + 60_000, sealed: blob(7), used: null });
  assert.deepEqual(h.st.keys(LOGIN_SESSIONS_KEYSPACE), ['s2']);
  // A code hash that exists refuses the whole command: the old session stays, no new one.
  h.refused('session.replace', { hash: 's3', exp: T0 + HOUR, sealed: blob(3), meta: alice, previous: { hash: 's2', meta: alice }, code }, 'ALREADY_EXISTS');
  assert.deepEqual(h.st.keys(LOGIN_SESSIONS_KEYSPACE), ['s2']);
  // A malformed code, likewise.
  h.refused('session.replace', { hash: 's3', exp: T0 + HOUR, sealed: blob(3), meta: alice, previous: { hash: 's2', meta: alice }, code: { hash: 'c2', exp: T0, sealed: new Uint8Array(0) } }, 'INVALID_ARGUMENT', T0, 'sealed');
  assert.equal(h.read('code.get', { hash: 'c2' }), null);
  // session.create takes one too.
  h.ok('session.create', { hash: 's4', exp: T0 + HOUR, sealed: blob(4), meta: alice, code: { hash: 'c3', exp: T0 + 60_000, sealed: blob(8) } });
  assert.deepEqual(h.read('code.get', { hash: 'c3' }), { exp: T0 + 60_000, sealed: blob(8), used: null });
});

test('session.replace: the new session and the end of the old one in one command, audited as session.create + session.delete', () => {
  const audits = (h: ReturnType<typeof harness>) =>
    h.st.keys(AUDIT_KEYSPACE).map((k) => {
      const r = h.raw<AuditRecord>(AUDIT_KEYSPACE, k)!;
      return { type: r.type, sub: r.sub, clientId: r.clientId, ip: r.ip, details: r.details };
    });
  const oldMeta = { ip: '::1', sub: 'alice' };
  const newMeta = { ip: '::1', sub: 'alice2' };
  // Today's two commands, for the audit records to compare with.
  const two = harness();
  two.ok('session.create', { hash: 's1', exp: T0 + HOUR, sealed: blob(1), meta: oldMeta });
  two.ok('session.create', { hash: 's2', exp: T0 + 2 * HOUR, sealed: blob(2), meta: newMeta });
  two.ok('session.delete', { hash: 's1', reason: 'replaced', meta: oldMeta });

  const h = harness();
  h.ok('session.create', { hash: 's1', exp: T0 + HOUR, sealed: blob(1), meta: oldMeta });
  assert.deepEqual(h.ok('session.replace', { hash: 's2', exp: T0 + 2 * HOUR, sealed: blob(2), meta: newMeta, previous: { hash: 's1', meta: oldMeta } }), { existed: true });
  assert.equal(h.read('session.get', { hash: 's1' }), null);
  assert.deepEqual(h.read('session.get', { hash: 's2' }), { exp: T0 + 2 * HOUR, sealed: blob(2) });
  assert.deepEqual(h.st.keys(LOGIN_SESSIONS_KEYSPACE), ['s2']);
  assert.deepEqual(h.st.keys(EXPIRY_KEYSPACE), [expiryIndexKey(T0 + 2 * HOUR, LOGIN_SESSIONS_KEYSPACE, 's2')]);
  assert.deepEqual(audits(h), audits(two));
  assert.deepEqual(
    audits(h).map((a) => [a.type, a.sub, a.details]),
    [
      ['login.succeeded', 'alice', { sessionExp: T0 + HOUR }],
      ['login.succeeded', 'alice2', { sessionExp: T0 + 2 * HOUR }],
      ['logout', 'alice', { reason: 'replaced' }],
    ],
  );
  // The old session already gone (swept, signed out elsewhere): the new one still starts, nothing else is audited.
  assert.deepEqual(h.ok('session.replace', { hash: 's3', exp: T0 + HOUR, sealed: blob(3), meta: newMeta, previous: { hash: 's1', meta: oldMeta } }), { existed: false });
  assert.deepEqual(h.st.keys(LOGIN_SESSIONS_KEYSPACE), ['s2', 's3']);
  assert.deepEqual(audits(h).at(-1)!.type, 'login.succeeded');
  // Refusals change nothing: the old session stays when the new one cannot be created.
  h.refused('session.replace', { hash: 's3', exp: T0 + HOUR, sealed: blob(3), meta: newMeta, previous: { hash: 's2', meta: oldMeta } }, 'ALREADY_EXISTS');
  h.refused('session.replace', { hash: 's2', exp: T0 + HOUR, sealed: blob(3), meta: newMeta, previous: { hash: 's2', meta: oldMeta } }, 'INVALID_ARGUMENT', T0, 'previous.hash');
  h.refused('session.replace', { hash: 's4', exp: T0 + HOUR, sealed: blob(3), meta: newMeta }, 'INVALID_ARGUMENT', T0, 'previous');
  h.refused('session.replace', { hash: 's4', exp: T0 + HOUR, sealed: blob(3), meta: newMeta, previous: { hash: '' } }, 'INVALID_ARGUMENT', T0, 'previous.hash');
  h.refused('session.replace', { hash: 's4', exp: T0 + HOUR, sealed: blob(3), meta: newMeta, previous: { hash: 's2', meta: { ip: '::1', who: 'x' } } }, 'INVALID_ARGUMENT', T0, 'meta');
  h.refused('session.replace', { hash: 's4', exp: T0 + HOUR, sealed: new Uint8Array(0), meta: newMeta, previous: { hash: 's2' } }, 'INVALID_ARGUMENT', T0, 'sealed');
  assert.deepEqual(h.st.keys(LOGIN_SESSIONS_KEYSPACE), ['s2', 's3']);
});

test('assertion.use: a (client, jti) is fresh once until its exp (RFC 7523 §3)', () => {
  const h = harness();
  assert.deepEqual(h.ok('assertion.use', { clientId: 'app', jti: 'j|1 x', exp: T0 + 60_000 }), { fresh: true });
  h.unchanged('assertion.use', { clientId: 'app', jti: 'j|1 x', exp: T0 + 90_000 }, { fresh: false }, T0 + 1);
  assert.deepEqual(h.ok('assertion.use', { clientId: 'other', jti: 'j|1 x', exp: T0 + 60_000 }, T0 + 2), { fresh: true });
  // After its exp the jti may be used again; the index entry moves to the new exp.
  assert.deepEqual(h.ok('assertion.use', { clientId: 'app', jti: 'j|1 x', exp: T0 + 120_000 }, T0 + 60_000), { fresh: true });
  assert.deepEqual(
    h.st.keys(EXPIRY_KEYSPACE),
    [expiryIndexKey(T0 + 60_000, ASSERTION_JTIS_KEYSPACE, 'other j|1 x'), expiryIndexKey(T0 + 120_000, ASSERTION_JTIS_KEYSPACE, 'app j|1 x')],
  );
  h.refused('assertion.use', { clientId: 'app', jti: '', exp: T0 + 1 }, 'INVALID_ARGUMENT', T0 + 60_000, 'jti');
  h.refused('assertion.use', { clientId: 'app', jti: 'x'.repeat(129), exp: T0 + 1 }, 'INVALID_ARGUMENT', T0 + 60_000, 'jti');
  h.refused('assertion.use', { clientId: 'app', jti: 7, exp: T0 + 1 }, 'INVALID_ARGUMENT', T0 + 60_000, 'jti');
  assert.deepEqual(h.ok('assertion.use', { clientId: 'app', jti: 'tab\there', exp: T0 + 70_000 }, T0 + 60_000), { fresh: true });
});

// ---- sweep ----------------------------------------------------------------------------------------

test('sweep deletes only expired records and their index entries, skips future and malformed keys', () => {
  const h = harness();
  withGrant(h, { famExp: T0 + 10 * HOUR }); // code1 redeemed: kept a day; family T0+10h, rt1 T0+10h (clamped)
  h.ok('code.create', { hash: 'unused', exp: T0 + 10_000, sealed: blob(2) }); // never redeemed: goes at its exp
  h.ok('device.create', device({ exp: T0 + 30_000 }));
  h.ok('session.create', { hash: 's1', exp: T0 + 50_000, sealed: blob(1) });
  h.ok('session.create', { hash: 's2', exp: T0 + 5 * HOUR, sealed: blob(1) });
  h.ok('at.revoke', { jti: 'j1', exp: T0 + 40_000 });
  h.ok('assertion.use', { clientId: 'app', jti: 'a1', exp: T0 + 20_000 });
  const now = T0 + 60_000;
  // What the leader proposes: the index in key order up to its clock.
  const due = h.st.keys(EXPIRY_KEYSPACE).filter((k) => parseExpiryIndexKey(k)!.exp <= now);
  assert.equal(due.length, 6); // assertion, device, user code, revoked jti, session, code
  const future = expiryIndexKey(T0 + 5 * HOUR, LOGIN_SESSIONS_KEYSPACE, 's2');
  const foreign = expiryIndexKey(T0, 'clients', 'app');
  const r = h.ok('sweep', { keys: [...due, future, foreign, 'garbage', 42, expiryIndexKey(T0, CODES_KEYSPACE, 'gone')] }, now);
  assert.deepEqual(r, { deleted: 6 });
  assert.deepEqual(h.st.keys(EXPIRY_KEYSPACE), [
    expiryIndexKey(T0 + 5 * HOUR, LOGIN_SESSIONS_KEYSPACE, 's2'),
    expiryIndexKey(T0 + 10 * HOUR, FAMILIES_KEYSPACE, 'fam'),
    expiryIndexKey(T0 + 10 * HOUR, REFRESH_TOKENS_KEYSPACE, 'rt1'),
    expiryIndexKey(T0 + USED_CODE_RETENTION_MS, CODES_KEYSPACE, 'code1'),
  ]);
  assert.deepEqual(h.st.keys(CODES_KEYSPACE), ['code1']);
  for (const ks of [DEVICE_CODES_KEYSPACE, USER_CODES_KEYSPACE, REVOKED_JTIS_KEYSPACE, ASSERTION_JTIS_KEYSPACE]) assert.deepEqual(h.st.keys(ks), [], ks);
  assert.deepEqual(h.st.keys(LOGIN_SESSIONS_KEYSPACE), ['s2']);
  assert.ok(h.read('rt.get', { hash: 'rt1' }));
  h.refused('sweep', { keys: new Array(1001).fill('x') }, 'INVALID_ARGUMENT', now, 'keys');
  h.refused('sweep', { keys: 'x' }, 'INVALID_ARGUMENT', now, 'keys');
});

test('sweep re-checks the record: one rewritten with a later expiry stays, and a family takes nothing with it', () => {
  const h = harness();
  h.ok('assertion.use', { clientId: 'app', jti: 'a1', exp: T0 + 1_000 });
  const stale = expiryIndexKey(T0 + 1_000, ASSERTION_JTIS_KEYSPACE, 'app a1');
  h.ok('assertion.use', { clientId: 'app', jti: 'a1', exp: T0 + 9_000 }, T0 + 1_000);
  // A stale proposal (the leader scanned before the rewrite) deletes nothing.
  assert.deepEqual(h.ok('sweep', { keys: [stale] }, T0 + 2_000), { deleted: 0 });
  assert.deepEqual(h.ok('assertion.use', { clientId: 'app', jti: 'a1', exp: T0 + 9_000 }, T0 + 2_000), { fresh: false });

  withGrant(h, { famExp: T0 + HOUR });
  h.ok('rt.rotate', rotate('rt1', 'rt2', 'at2'), T0 + 3_000);
  assert.deepEqual(h.ok('sweep', { keys: [expiryIndexKey(T0 + HOUR, FAMILIES_KEYSPACE, 'fam')] }, T0 + HOUR), { deleted: 1 });
  assert.equal(h.read('family.get', { id: 'fam' }), null);
  assert.deepEqual(h.st.keys(REFRESH_TOKENS_KEYSPACE), ['rt1', 'rt2']);
  const rts = h.st.keys(EXPIRY_KEYSPACE).filter((k) => parseExpiryIndexKey(k)!.keyspace === REFRESH_TOKENS_KEYSPACE);
  assert.deepEqual(h.ok('sweep', { keys: rts }, T0 + HOUR), { deleted: 2 });
  assert.deepEqual(h.st.keys(REFRESH_TOKENS_KEYSPACE), []);
});

test('unknown operations and reads are refused', () => {
  const h = harness();
  h.refused('nope', {}, 'UNKNOWN_OPERATION');
  h.refused('toString', {}, 'UNKNOWN_OPERATION');
  const r = h.sm.read('tokens', 'nope', {});
  assert.equal(r.ok ? 'ok' : r.code, 'UNKNOWN_OPERATION');
  const bad = h.sm.read('tokens', 'rt.get', { hash: 'a b' });
  assert.equal(bad.ok ? 'ok' : bad.code, 'INVALID_ARGUMENT');
});
