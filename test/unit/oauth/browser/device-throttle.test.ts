// RFC 8628 §5.1 on the device verification page: user codes that name no waiting device are
// counted per signed-in user and per address (the mfa domain's device.lookup), with backoff and
// lockout; a throttled user gets a 429 page saying when to retry, and nothing is looked up or
// decided.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { THROTTLE } from '../../../../src/state/mfa-ops.ts';
import { backoffMs } from '../../../../src/state/mfa.ts';
import { unpackValue } from '../../../../src/state/command.ts';
import type { AuditRecord } from '../../../../src/state/audit-ops.ts';
import { CookieJar, PASSWORD, browserTest, deviceRequest, form, hiddenField, login } from './helpers.ts';
import type { BrowserTest } from './helpers.ts';

async function deviceStatus(bt: BrowserTest, hash: string): Promise<string> {
  const r = await bt.t.node.read({ domain: 'tokens', op: 'device.get', args: { hash }, timeoutMs: 1000 });
  assert.ok(r.ok);
  return (r.value as { status: string }).status;
}

async function signedIn(bt: BrowserTest): Promise<CookieJar> {
  const jar = new CookieJar();
  const page = await bt.t.app.inject({ method: 'GET', url: '/device', headers: jar.header() });
  jar.take(page);
  const res = await login(bt, jar, hiddenField(page.body, 'interaction'), 'alice', PASSWORD);
  assert.equal(res.statusCode, 303, res.body);
  return jar;
}

const get = (bt: BrowserTest, jar: CookieJar, code: string) => bt.t.app.inject({ method: 'GET', url: `/device?user_code=${encodeURIComponent(code)}`, headers: jar.header() });

function post(bt: BrowserTest, jar: CookieJar, fields: Record<string, string>) {
  const f = form(fields);
  return bt.t.app.inject({ method: 'POST', url: '/device', headers: { ...f.headers, ...jar.header() }, payload: f.payload });
}

/** A code of the right shape that no device asked for. */
function wrongCode(except: string): string {
  return except === 'BBBB-BBBB' ? 'CCCC-CCCC' : 'BBBB-BBBB';
}

function auditOf(bt: BrowserTest, type: string): AuditRecord[] {
  const m = bt.t.node.state.get('audit');
  return [...(m?.values() ?? [])].map((v) => unpackValue<AuditRecord>(v)).filter((r) => r.type === type);
}

test('device page: wrong codes are counted; after the free ones the user is backed off (429, Retry-After) and even the right code is not looked up', async () => {
  const bt = await browserTest();
  try {
    const { userCode, hash } = await deviceRequest(bt, ['openid']);
    const jar = await signedIn(bt);
    const wrong = wrongCode(userCode);
    for (let i = 0; i < THROTTLE.freeFailures; i++) {
      const r = await get(bt, jar, wrong);
      assert.equal(r.statusCode, 400);
      assert.match(r.body, /No device is waiting/);
    }
    // Malformed input cannot name a request and is not counted.
    for (const bad of ['AAAA-AAAA', 'x'.repeat(100)]) assert.equal((await get(bt, jar, bad)).statusCode, 400);
    // This miss starts the backoff: said at once.
    const start = await get(bt, jar, wrong);
    assert.equal(start.statusCode, 429);
    assert.equal(start.headers['retry-after'], String(backoffMs(1) / 1000));
    const until = new Date(bt.t.clock.now + backoffMs(1)).toISOString().slice(11, 19);
    assert.match(start.body, new RegExp(`Try again after ${until} UTC`));

    // Across calls: the right code is refused unseen while the backoff lasts.
    const held = await get(bt, jar, userCode);
    assert.equal(held.statusCode, 429);
    assert.doesNotMatch(held.body, /Single Page App/);

    const failed = auditOf(bt, 'mfa.failed').filter((r) => r.details.factor === 'device_code');
    assert.equal(failed.length, THROTTLE.freeFailures + 1);
    assert.ok(failed.every((r) => r.sub === bt.aliceSub && r.ip === '127.0.0.1'));

    // After the backoff the right code works, and approving still works.
    bt.t.clock.now += backoffMs(1);
    const page = await get(bt, jar, userCode);
    assert.equal(page.statusCode, 200, page.body);
    const res = await post(bt, jar, { user_code: userCode, csrf: hiddenField(page.body, 'csrf'), decision: 'approve' });
    assert.equal(res.statusCode, 200, res.body);
    assert.equal(await deviceStatus(bt, hash), 'approved');
  } finally {
    await bt.t.close();
  }
});

test('device page: a throttled approval (POST) is refused with 429 and decides nothing', async () => {
  const bt = await browserTest();
  try {
    const { userCode, hash } = await deviceRequest(bt, ['openid']);
    const jar = await signedIn(bt);
    const page = await get(bt, jar, userCode);
    assert.equal(page.statusCode, 200);
    const csrf = hiddenField(page.body, 'csrf');
    const wrong = wrongCode(userCode);
    // Guessing through the POST counts too.
    for (let i = 0; i <= THROTTLE.freeFailures; i++) await post(bt, jar, { user_code: wrong, csrf, decision: 'approve' });
    const auditBefore = bt.t.node.state.get('audit')?.size ?? 0;
    const res = await post(bt, jar, { user_code: userCode, csrf, decision: 'approve' });
    assert.equal(res.statusCode, 429);
    assert.match(res.body, /Too many attempts/);
    assert.equal(await deviceStatus(bt, hash), 'pending');
    assert.equal(bt.t.node.state.get('audit')?.size ?? 0, auditBefore, 'a throttled attempt writes no audit record either');
  } finally {
    await bt.t.close();
  }
});

test('device page: lockAfterFailures wrong codes lock the account: the page says so and password sign-in is locked too', async () => {
  const bt = await browserTest();
  try {
    const { userCode } = await deviceRequest(bt, ['openid']);
    const jar = await signedIn(bt);
    const wrong = wrongCode(userCode);
    for (let i = 0; i < THROTTLE.lockAfterFailures; i++) {
      await get(bt, jar, wrong);
      bt.t.clock.now += THROTTLE.maxBackoffMs;
    }
    const locked = auditOf(bt, 'user.locked');
    assert.equal(locked.length, 1);
    assert.equal(locked[0]!.details.factor, 'device_code');
    const r = await get(bt, jar, userCode);
    assert.equal(r.statusCode, 429);
    // The device request expired meanwhile, but the lock answers first: nothing is looked up.
    assert.match(r.body, /Try again after/);
    const again = new CookieJar();
    const p = await bt.t.app.inject({ method: 'GET', url: '/device', headers: again.header() });
    again.take(p);
    const signIn = await login(bt, again, hiddenField(p.body, 'interaction'), 'alice', PASSWORD);
    assert.equal(signIn.statusCode, 429);
  } finally {
    await bt.t.close();
  }
});
