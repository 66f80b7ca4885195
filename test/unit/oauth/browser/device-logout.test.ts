// The device verification page (RFC 8628 §3.3) and logout (RP-Initiated Logout 1.0, minimal).
import { test } from 'node:test';
import assert from 'node:assert/strict';
import type { DeviceApproval } from '../../../../src/oauth/records.ts';
import { CookieJar, PASSWORD, authorizeAndLogin, deviceRequest, authorizeUrl, browserTest, form, hiddenField, login, pkce, sessionCount, spaParams } from './helpers.ts';
import type { BrowserTest } from './helpers.ts';

interface DeviceView {
  status: string;
  approval: Uint8Array | null;
}

/** A pending device request as /device_authorization stores it. */
async function deviceView(bt: BrowserTest, hash: string): Promise<DeviceView> {
  const r = await bt.t.node.read({ domain: 'tokens', op: 'device.get', args: { hash }, timeoutMs: 1000 });
  assert.ok(r.ok);
  return r.value as DeviceView;
}

/** Sign in on the device page (the login form returns to /device?user_code=…) and follow the redirect. */
async function signInOnDevicePage(bt: BrowserTest, jar: CookieJar, userCodeInUrl: string | null) {
  const url = userCodeInUrl === null ? '/device' : `/device?user_code=${encodeURIComponent(userCodeInUrl)}`;
  const page = await bt.t.app.inject({ method: 'GET', url, headers: jar.header() });
  jar.take(page);
  assert.equal(page.statusCode, 200);
  assert.match(page.body, /Sign in to connect a device/);
  const res = await login(bt, jar, hiddenField(page.body, 'interaction'), 'alice', PASSWORD);
  assert.equal(res.statusCode, 303, res.body);
  assert.equal(res.headers.location, url);
  const back = await bt.t.app.inject({ method: 'GET', url, headers: jar.header() });
  jar.take(back);
  return back;
}

async function devicePost(bt: BrowserTest, jar: CookieJar, fields: Record<string, string>) {
  const f = form(fields);
  return bt.t.app.inject({ method: 'POST', url: '/device', headers: { ...f.headers, ...jar.header() }, payload: f.payload });
}

test('device page: sign in, confirm the code, approve: the device record is approved with a sealed approval', async () => {
  const bt = await browserTest();
  try {
    const { userCode, hash } = await deviceRequest(bt);
    const jar = new CookieJar();
    // verification_uri_complete, typed in lower case without the dash: still found.
    const page = await signInOnDevicePage(bt, jar, userCode.toLowerCase().replace('-', ''));
    assert.equal(page.statusCode, 200, page.body);
    assert.match(page.body, /<strong>Single Page App<\/strong> on a device asks to:/);
    assert.match(page.body, new RegExp(`<p class="code">${userCode}</p>`));
    assert.match(page.body, /See your name/);
    const csrf = hiddenField(page.body, 'csrf');
    assert.equal(hiddenField(page.body, 'user_code'), userCode);

    // CSRF refused, nothing decided.
    const forged = await devicePost(bt, jar, { user_code: userCode, csrf: 'x'.repeat(43), decision: 'approve' });
    assert.equal(forged.statusCode, 403);
    assert.equal((await deviceView(bt, hash)).status, 'pending');

    const res = await devicePost(bt, jar, { user_code: userCode, csrf, decision: 'approve' });
    assert.equal(res.statusCode, 200, res.body);
    assert.match(res.body, /Device connected/);
    const v = await deviceView(bt, hash);
    assert.equal(v.status, 'approved');
    const approval = bt.sealer.openValue<DeviceApproval>(v.approval!, 'approval:' + hash);
    assert.equal(approval.auth.sub, bt.aliceSub);
    assert.deepEqual(approval.auth.amr, ['pwd']);
    assert.deepEqual(approval.scope, ['openid', 'profile']);

    // The same code again: already decided, said clearly.
    const again = await bt.t.app.inject({ method: 'GET', url: `/device?user_code=${userCode}`, headers: jar.header() });
    assert.equal(again.statusCode, 400);
    assert.match(again.body, /already been used/);
    const repost = await devicePost(bt, jar, { user_code: userCode, csrf, decision: 'deny' });
    assert.equal(repost.statusCode, 400);
    assert.equal((await deviceView(bt, hash)).status, 'approved');
  } finally {
    await bt.t.close();
  }
});

test('device page: deny records the denial without an approval; unknown, malformed and expired codes are explained', async () => {
  const bt = await browserTest();
  try {
    const { userCode, hash } = await deviceRequest(bt);
    const jar = new CookieJar();
    const enter = await signInOnDevicePage(bt, jar, null);
    assert.match(enter.body, /Enter the code shown on your device/);
    assert.match(enter.body, /<form method="get" action="\/device">/);

    for (const [input, msg] of [
      ['BCDF-GHJ', /not a valid code/],
      ['AAAA-AAAA', /not a valid code/],
      ['x'.repeat(100), /not a valid code/],
      [userCode === 'BBBB-BBBB' ? 'CCCC-CCCC' : 'BBBB-BBBB', /No device is waiting/],
    ] as const) {
      const res = await bt.t.app.inject({ method: 'GET', url: `/device?user_code=${encodeURIComponent(input)}`, headers: jar.header() });
      assert.equal(res.statusCode, 400, input);
      assert.match(res.body, msg, input);
    }

    const page = await bt.t.app.inject({ method: 'GET', url: `/device?user_code=${userCode}`, headers: jar.header() });
    const res = await devicePost(bt, jar, { user_code: userCode, csrf: hiddenField(page.body, 'csrf'), decision: 'deny' });
    assert.equal(res.statusCode, 200);
    assert.match(res.body, /Request denied/);
    const v = await deviceView(bt, hash);
    assert.equal(v.status, 'denied');
    assert.equal(v.approval, null);

    const late = await deviceRequest(bt);
    bt.t.clock.now += 601_000;
    const expired = await bt.t.app.inject({ method: 'GET', url: `/device?user_code=${late.userCode}`, headers: jar.header() });
    assert.equal(expired.statusCode, 400);
    assert.match(expired.body, /expired/);
  } finally {
    await bt.t.close();
  }
});

test('device POST without a session is refused', async () => {
  const bt = await browserTest();
  try {
    const { userCode, hash } = await deviceRequest(bt);
    const res = await devicePost(bt, new CookieJar(), { user_code: userCode, csrf: 'x', decision: 'approve' });
    assert.equal(res.statusCode, 400);
    assert.match(res.body, /sign-in has ended/);
    assert.equal((await deviceView(bt, hash)).status, 'pending');
  } finally {
    await bt.t.close();
  }
});

test('logout: GET asks, POST with the csrf value deletes the session; the next /authorize asks for login again', async () => {
  const bt = await browserTest();
  try {
    const jar = new CookieJar();
    await authorizeAndLogin(bt, jar, spaParams(pkce()));
    assert.equal(sessionCount(bt), 1);
    const ask = await bt.t.app.inject({ method: 'GET', url: '/logout', headers: jar.header() });
    assert.equal(ask.statusCode, 200);
    assert.match(ask.body, /signed in as Alice Liddell \(alice\)/);
    assert.equal(sessionCount(bt), 1, 'a GET does not sign out');
    const csrf = hiddenField(ask.body, 'csrf');

    const forged = await bt.t.app.inject({ method: 'POST', url: '/logout', headers: { ...form({}).headers, ...jar.header() }, payload: 'csrf=nope' });
    assert.equal(forged.statusCode, 403);
    assert.equal(sessionCount(bt), 1);

    const f = form({ csrf });
    const out = await bt.t.app.inject({ method: 'POST', url: '/logout', headers: { ...f.headers, ...jar.header() }, payload: f.payload });
    assert.equal(out.statusCode, 200);
    assert.match(out.body, /You are signed out/);
    const cookieBefore = jar.cookies.get('raftauth_session')!;
    jar.take(out);
    assert.equal(jar.cookies.has('raftauth_session'), false, 'the cookie is cleared');
    assert.equal(sessionCount(bt), 0, 'the session record is deleted');

    // Even a browser that kept the old cookie is signed out.
    const stale = new CookieJar();
    stale.cookies.set('raftauth_session', cookieBefore);
    for (const j of [jar, stale]) {
      const res = await bt.t.app.inject({ method: 'GET', url: authorizeUrl(spaParams(pkce())), headers: j.header() });
      assert.match(res.body, /<h1>Sign in<\/h1>/);
    }
    const nobody = await bt.t.app.inject({ method: 'GET', url: '/logout' });
    assert.match(nobody.body, /You are not signed in/);
  } finally {
    await bt.t.close();
  }
});

test('sessions expire after sessionTtlS', async () => {
  const bt = await browserTest();
  try {
    const jar = new CookieJar();
    await authorizeAndLogin(bt, jar, spaParams(pkce()));
    bt.t.clock.now += bt.t.config.sessionTtlS * 1000 - 1000;
    const still = await bt.t.app.inject({ method: 'GET', url: authorizeUrl(spaParams(pkce())), headers: jar.header() });
    assert.equal(still.statusCode, 302);
    bt.t.clock.now += 1000;
    const gone = await bt.t.app.inject({ method: 'GET', url: authorizeUrl(spaParams(pkce())), headers: jar.header() });
    assert.match(gone.body, /<h1>Sign in<\/h1>/);
  } finally {
    await bt.t.close();
  }
});
