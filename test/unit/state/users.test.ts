import { test } from 'node:test';
import assert from 'node:assert/strict';
import { DomainError } from '../../../src/state/machine.ts';
import { packValue, unpackValue } from '../../../src/state/command.ts';
import { T0, domainHarness } from './helpers.ts';
import { USERS_KEYSPACE, USERNAMES_KEYSPACE } from '../../../src/state/users.ts';
import { validateUserRecord } from '../../../src/state/validate.ts';
import type { UserRecord } from '../../../src/state/oauth-ops.ts';

function harness() {
  const h = domainHarness('users');
  return { st: h.st, run: h.run, refused: h.refused, read: h.read };
}

function user(over: Partial<UserRecord> = {}): UserRecord {
  return {
    sub: 'sub-alice',
    username: 'Alice',
    password_hash: '$scrypt$ln=10,r=8,p=1$c2FsdA$aGFzaA',
    name: 'Alice Liddell',
    email: 'alice@example.com',
    email_verified: true,
    disabled: false,
    created_at: T0,
    updated_at: T0,
    ...over,
  };
}

test('create stores the record and the lower-cased username index; reads by sub and by username', () => {
  const h = harness();
  const u = user();
  assert.deepEqual(h.run('create', { user: u }), { ok: true, value: {} });
  assert.deepEqual(h.st.get(USERS_KEYSPACE, 'sub-alice'), packValue(u));
  assert.equal(unpackValue(h.st.get(USERNAMES_KEYSPACE, 'alice')!), 'sub-alice');
  assert.deepEqual(h.read('get', { sub: 'sub-alice' }), u);
  assert.deepEqual(h.read('byUsername', { username: 'ALICE' }), u);
  assert.equal(h.read('byUsername', { username: 'bob' }), null);
  assert.equal(h.read('get', { sub: 'nobody' }), null);
});

test('create refuses a taken sub or a username taken in any case', () => {
  const h = harness();
  h.run('create', { user: user() });
  h.refused('create', { user: user({ username: 'other' }) }, 'ALREADY_EXISTS');
  h.refused('create', { user: user({ sub: 'sub-2', username: 'aLiCe' }) }, 'ALREADY_EXISTS');
  assert.deepEqual(h.run('create', { user: user({ sub: 'sub-bob', username: 'bob' }) }), { ok: true, value: {} });
});

test('update keeps created_at and moves the username index; a taken username is refused', () => {
  const h = harness();
  h.run('create', { user: user() });
  h.run('create', { user: user({ sub: 'sub-bob', username: 'bob' }) });
  assert.deepEqual(h.run('update', { user: user({ username: 'ALICE', name: null, created_at: 1, updated_at: T0 + 1 }) }), { ok: true, value: {} });
  assert.deepEqual(h.read('get', { sub: 'sub-alice' }), user({ username: 'ALICE', name: null, updated_at: T0 + 1 }));
  assert.deepEqual(h.st.keys(USERNAMES_KEYSPACE), ['alice', 'bob']);
  h.refused('update', { user: user({ username: 'Bob' }) }, 'ALREADY_EXISTS');
  assert.deepEqual(h.run('update', { user: user({ username: 'alice2' }) }), { ok: true, value: {} });
  assert.deepEqual(h.st.keys(USERNAMES_KEYSPACE), ['alice2', 'bob']);
  assert.equal(h.read('byUsername', { username: 'alice' }), null);
  h.refused('update', { user: user({ sub: 'ghost', username: 'ghost' }) }, 'NOT_FOUND');
});

test('delete removes the record and its username index', () => {
  const h = harness();
  h.run('create', { user: user() });
  assert.deepEqual(h.run('delete', { sub: 'sub-alice' }), { ok: true, value: { existed: true } });
  assert.deepEqual(h.st.keys(USERS_KEYSPACE), []);
  assert.deepEqual(h.st.keys(USERNAMES_KEYSPACE), []);
  assert.deepEqual(h.run('delete', { sub: 'sub-alice' }), { ok: true, value: { existed: false } });
  // The username is free again.
  assert.deepEqual(h.run('create', { user: user({ sub: 'sub-new' }) }), { ok: true, value: {} });
});

test('validateUserRecord refuses each invalid shape, naming the field, and apply changes nothing', () => {
  const h = harness();
  const cases: [string, unknown, RegExp][] = [
    ['empty username', user({ username: '' }), /username/],
    ['username too long', user({ username: 'u'.repeat(129) }), /username/],
    ['username with a control char', user({ username: 'a\u0000b' }), /username/],
    ['sub empty', user({ sub: '' }), /sub/],
    ['sub too long', user({ sub: 's'.repeat(129) }), /sub/],
    ['sub with a space', user({ sub: 'a b' }), /sub/],
    ['name too long', user({ name: 'n'.repeat(257) }), /user\.name/],
    ['email too long', user({ email: 'e'.repeat(250) + '@x.org' + 'x' }), /email/],
    ['email without @', user({ email: 'alice' }), /email/],
    ['password hash not PHC', user({ password_hash: 'plain' }), /password_hash/],
    ['disabled not boolean', user({ disabled: 0 as never }), /disabled/],
    ['updated_at fractional', user({ updated_at: 1.5 }), /updated_at/],
    ['unknown field', { ...user(), role: 'admin' }, /unknown field role/],
    ['missing field', (({ email_verified: _e, ...rest }) => rest)(user()), /email_verified is missing/],
  ];
  for (const [what, u, field] of cases) {
    assert.throws(() => validateUserRecord(u), (e: unknown) => e instanceof DomainError && e.code === 'INVALID_ARGUMENT' && field.test(e.message), what);
    h.refused('create', { user: u }, 'INVALID_ARGUMENT', field);
  }
  assert.deepEqual(h.run('create', { user: user({ username: 'u'.repeat(128), name: 'n'.repeat(256), email: null }) }), { ok: true, value: {} });
  h.refused('delete', { sub: '' }, 'INVALID_ARGUMENT', /sub/);
  h.refused('rename', {}, 'UNKNOWN_OPERATION');
});
