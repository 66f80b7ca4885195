// Login, sessions, prompts and code issuance through the pages, as a browser does it (cookies
// carried by hand between app.inject calls).
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { TEST_ISSUER } from '../../../support/oauth-app.ts';
import { tokenHash } from '../../../../src/crypto/tokens.ts';
import { unpackValue } from '../../../../src/state/command.ts';
import { CookieJar, PASSWORD, SPA_REDIRECT, authorizeAndLogin, authorizeUrl, browserTest, codeRecord, form, hiddenField, login, pkce, redirectParams, sessionCount, spaParams } from './helpers.ts';

test('a wrong password, an unknown user and a disabled user get the same message and no session', async () => {
  const bt = await browserTest();
  try {
    await bt.t.addUser('mallory', PASSWORD, { disabled: true });
    const jar = new CookieJar();
    const page = await bt.t.app.inject({ method: 'GET', url: authorizeUrl(spaParams(pkce())), headers: jar.header() });
    jar.take(page);
    const interaction = hiddenField(page.body, 'interaction');
    const auditsBefore = bt.t.node.entries('audit').length;
    for (const [user, pw] of [
      ['alice', 'wrong password'],
      ['nobody', PASSWORD],
      ['mallory', PASSWORD],
      ['', PASSWORD],
      ['alice', 'x'.repeat(2000)],
      ['a'.repeat(500), PASSWORD],
    ] as const) {
      const res = await login(bt, jar, interaction, user, pw);
      assert.equal(res.statusCode, 400, `${user}: ${res.body}`);
      assert.match(res.body, /Invalid username or password/);
      assert.equal(res.headers['set-cookie'], undefined, 'no cookie on a failed login');
      assert.equal(res.headers.location, undefined);
      // The page can be submitted again with the same interaction.
      assert.equal(hiddenField(res.body, 'interaction'), interaction);
    }
    assert.equal(sessionCount(bt), 0);
    // Each failure is a security event (issue 6): login.failed, with the user when the name is one.
    const audited = bt.t.node.entries('audit').slice(auditsBefore).map(([, v]) => unpackValue<{ type: string; sub: string | null; details: Record<string, unknown> }>(v));
    assert.deepEqual(
      audited.map((r) => [r.type, r.sub === null ? null : r.sub === bt.aliceSub ? 'alice' : 'mallory', r.details.reason]),
      [
        ['login.failed', 'alice', 'invalid'],
        ['login.failed', null, 'invalid'],
        ['login.failed', 'mallory', 'invalid'],
        ['login.failed', null, 'invalid'],
        // An over-long password is refused before the user is looked up.
        ['login.failed', null, 'invalid'],
        ['login.failed', null, 'invalid'],
      ],
    );
    // The username typed is kept in the form, escaped.
    const res = await login(bt, jar, interaction, '"><b>x', 'nope');
    assert.match(res.body, /name="username" value="&#34;&#62;&#60;b&#62;x"/);
  } finally {
    await bt.t.close();
  }
});

test('the right password starts a session and the code goes to the client, stored sealed with the grant', async () => {
  const bt = await browserTest();
  try {
    const jar = new CookieJar();
    const p = pkce();
    const res = await authorizeAndLogin(bt, jar, spaParams(p, { nonce: 'n-0S6', scope: 'openid profile email' }));
    assert.equal(res.statusCode, 303, res.body);
    const q = redirectParams(res, SPA_REDIRECT);
    assert.equal(q.get('state'), 'st-1');
    assert.equal(q.get('iss'), TEST_ISSUER);
    const code = q.get('code')!;
    assert.match(code, /^[A-Za-z0-9_-]{43}$/);
    assert.ok(jar.cookies.has('raftauth_session'), 'session cookie set');
    const setCookies = ([] as string[]).concat(res.headers['set-cookie'] as string | string[]);
    const sc = setCookies.find((c) => c.startsWith('raftauth_session='))!;
    assert.match(sc, /HttpOnly/);
    assert.match(sc, /SameSite=Lax/);
    assert.match(sc, /Path=\//);
    assert.doesNotMatch(sc, /Secure/, 'http issuer: no Secure (the https case is tested separately)');
    assert.equal(sessionCount(bt), 1);

    const rec = codeRecord(bt, code);
    assert.ok(rec, 'the code record is in state, under the hash of the code');
    assert.equal(rec.exp, bt.t.clock.now + bt.t.config.codeTtlS * 1000);
    const pl = rec.payload;
    assert.equal(pl.clientId, 'spa');
    assert.equal(pl.redirectUri, SPA_REDIRECT);
    assert.equal(pl.codeChallenge, p.challenge);
    assert.equal(pl.codeChallengeMethod, 'S256');
    assert.deepEqual(pl.scope, ['openid', 'profile', 'email']);
    assert.equal(pl.nonce, 'n-0S6');
    assert.equal(pl.audience, TEST_ISSUER);
    assert.equal(pl.sessionHash, tokenHash(jar.cookies.get('raftauth_session')!));
    assert.deepEqual(pl.auth, { sub: bt.aliceSub, authTime: Math.floor(bt.t.clock.now / 1000), acr: 'urn:raftauth:acr:pwd', amr: ['pwd'] });
    // Nothing secret in clear in the replicated record.
    const raw = Buffer.from(bt.t.node.state.get('tok.code')!.get(tokenHash(code))!).toString('latin1');
    for (const secret of [code, p.challenge, 'n-0S6', bt.aliceSub]) assert.ok(!raw.includes(secret), `${secret} is not in clear`);
    // The session record opens with its aad and holds the same authentication.
    const sessRaw = bt.t.node.state.get('tok.sess')!.get(pl.sessionHash as string)!;
    const sess = bt.sealer.openValue<{ auth: unknown; csrf: string }>(unpackValue<{ sealed: Uint8Array }>(sessRaw).sealed, 'sess:' + (pl.sessionHash as string));
    assert.deepEqual(sess.auth, pl.auth);
    assert.match(sess.csrf, /^[A-Za-z0-9_-]{43}$/);
  } finally {
    await bt.t.close();
  }
});

test('with a session, /authorize skips login; max_age and prompt=login force it again; prompt=none succeeds', async () => {
  const bt = await browserTest();
  try {
    const jar = new CookieJar();
    const p = pkce();
    assert.equal((await authorizeAndLogin(bt, jar, spaParams(p))).statusCode, 303);
    const firstSession = jar.cookies.get('raftauth_session')!;

    const again = await bt.t.app.inject({ method: 'GET', url: authorizeUrl(spaParams(p, { state: 'st-2' })), headers: jar.header() });
    assert.equal(again.statusCode, 302, again.body);
    const q = redirectParams(again, SPA_REDIRECT);
    assert.equal(q.get('state'), 'st-2');
    assert.ok(codeRecord(bt, q.get('code')!));

    const none = await bt.t.app.inject({ method: 'GET', url: authorizeUrl(spaParams(p, { prompt: 'none' })), headers: jar.header() });
    assert.ok(redirectParams(none, SPA_REDIRECT).get('code'));

    bt.t.clock.now += 5_000;
    // max_age=10: the login 5 s ago is recent enough.
    const recent = await bt.t.app.inject({ method: 'GET', url: authorizeUrl(spaParams(p, { max_age: '10' })), headers: jar.header() });
    assert.ok(redirectParams(recent, SPA_REDIRECT).get('code'));
    // max_age=0: it is not; prompt=none then cannot show the login page.
    const stale = await bt.t.app.inject({ method: 'GET', url: authorizeUrl(spaParams(p, { max_age: '0', prompt: 'none' })), headers: jar.header() });
    assert.equal(redirectParams(stale, SPA_REDIRECT).get('error'), 'login_required');
    for (const extra of [{ max_age: '0' }, { prompt: 'login' }, { prompt: 'select_account' }]) {
      bt.t.clock.now += 2_000;
      const res = await authorizeAndLogin(bt, jar, spaParams(p, extra));
      // The fresh login satisfies the prompt: no second login page, a code with the new auth_time.
      const code = redirectParams(res, SPA_REDIRECT).get('code')!;
      const auth = codeRecord(bt, code)!.payload.auth as { authTime: number };
      assert.equal(auth.authTime, Math.floor(bt.t.clock.now / 1000), JSON.stringify(extra));
    }
    // Each login replaced the session (new cookie value, old record deleted).
    assert.notEqual(jar.cookies.get('raftauth_session'), firstSession);
    assert.equal(sessionCount(bt), 1);
  } finally {
    await bt.t.close();
  }
});

test('login_hint pre-fills the username, escaped', async () => {
  const bt = await browserTest();
  try {
    const res = await bt.t.app.inject({ method: 'GET', url: authorizeUrl(spaParams(pkce(), { login_hint: 'alice"><script>x</script>' })) });
    assert.equal(res.statusCode, 200);
    assert.match(res.body, /name="username" value="alice&#34;&#62;&#60;script&#62;x&#60;\/script&#62;"/);
    assert.doesNotMatch(res.body, /<script>x/);
  } finally {
    await bt.t.close();
  }
});

test('the login page and its headers: CSP, no framing, no caching, no referrer', async () => {
  // An issuer where WebAuthn cannot work, so the page is the bare password form (passkey.test.ts
  // checks the page with its passkey option and script).
  const bt = await browserTest({ issuer: 'http://127.0.0.1:8080' });
  try {
    const res = await bt.t.app.inject({ method: 'GET', url: authorizeUrl(spaParams(pkce())) });
    assert.equal(res.statusCode, 200);
    assert.equal(res.headers['content-type'], 'text/html; charset=utf-8');
    assert.equal(res.headers['cache-control'], 'no-store');
    assert.equal(res.headers['x-frame-options'], 'DENY');
    assert.equal(res.headers['referrer-policy'], 'no-referrer');
    // The redirect origin is allowed as a form action: the 303 answering the login form goes there.
    assert.equal(res.headers['content-security-policy'], "default-src 'none'; style-src 'unsafe-inline'; form-action 'self' https://spa.example; frame-ancestors 'none'; base-uri 'none'");
    assert.match(res.body, /<form method="post" action="\/login">/);
    assert.doesNotMatch(res.body, /<script|src=|href=/, 'no script, no external resources');
    const binding = ([] as string[]).concat(res.headers['set-cookie'] as string | string[]).find((c) => c.startsWith('raftauth_interaction='));
    assert.ok(binding);
    assert.match(binding, /HttpOnly/);
    assert.match(binding, new RegExp(`Max-Age=${bt.t.config.interactionTtlS}`));
  } finally {
    await bt.t.close();
  }
});

test('on an https issuer the cookies are __Host- prefixed and Secure', async () => {
  const bt = await browserTest({ issuer: 'https://auth.example' });
  try {
    const jar = new CookieJar();
    const res = await authorizeAndLogin(bt, jar, spaParams(pkce()));
    assert.equal(redirectParams(res, SPA_REDIRECT).get('iss'), 'https://auth.example');
    assert.ok(jar.cookies.has('__Host-raftauth_session'));
    assert.ok(jar.cookies.has('__Host-raftauth_interaction'));
    for (const c of ([] as string[]).concat(res.headers['set-cookie'] as string | string[])) assert.match(c, /; Secure/);
    // The unprefixed name is not accepted on https (it could have been set by a sibling subdomain).
    const plain = new CookieJar();
    plain.cookies.set('raftauth_session', jar.cookies.get('__Host-raftauth_session')!);
    const page = await bt.t.app.inject({ method: 'GET', url: authorizeUrl(spaParams(pkce())), headers: plain.header() });
    assert.match(page.body, /<h1>Sign in<\/h1>/);
  } finally {
    await bt.t.close();
  }
});

test('login CSRF: a login POST without this browser’s interaction cookie is refused', async () => {
  const bt = await browserTest();
  try {
    // The attacker starts a request in their own browser …
    const attacker = new CookieJar();
    const page = await bt.t.app.inject({ method: 'GET', url: authorizeUrl(spaParams(pkce())) });
    attacker.take(page);
    const interaction = hiddenField(page.body, 'interaction');
    // … and makes the victim's browser (no cookie, or its own) submit it.
    for (const victim of [new CookieJar(), (() => { const j = new CookieJar(); j.cookies.set('raftauth_interaction', 'A'.repeat(43)); return j; })()]) {
      const res = await login(bt, victim, interaction, 'alice', PASSWORD);
      assert.equal(res.statusCode, 403, res.body);
      assert.match(res.body, /started in another browser/);
      assert.equal(res.headers.location, undefined);
    }
    assert.equal(sessionCount(bt), 0);
    // A tampered interaction does not open.
    const tampered = interaction.slice(0, -4) + (interaction.endsWith('AAAA') ? 'BBBB' : 'AAAA');
    const res = await login(bt, attacker, tampered, 'alice', PASSWORD);
    assert.equal(res.statusCode, 400);
    assert.match(res.body, /not valid/);
    // No interaction at all.
    const f = form({ username: 'alice', password: PASSWORD });
    const none = await bt.t.app.inject({ method: 'POST', url: '/login', headers: { ...f.headers, ...attacker.header() }, payload: f.payload });
    assert.equal(none.statusCode, 400);
    assert.equal(sessionCount(bt), 0);
  } finally {
    await bt.t.close();
  }
});

test('an interaction expires after interactionTtlS; two tabs share the binding cookie', async () => {
  const bt = await browserTest();
  try {
    const jar = new CookieJar();
    const one = await bt.t.app.inject({ method: 'GET', url: authorizeUrl(spaParams(pkce(), { state: 'tab1' })), headers: jar.header() });
    jar.take(one);
    const two = await bt.t.app.inject({ method: 'GET', url: authorizeUrl(spaParams(pkce(), { state: 'tab2' })), headers: jar.header() });
    jar.take(two);
    // Tab 1's page still works after tab 2 opened.
    const ok = await login(bt, jar, hiddenField(one.body, 'interaction'), 'alice', PASSWORD);
    assert.equal(redirectParams(ok, SPA_REDIRECT).get('state'), 'tab1');
    bt.t.clock.now += bt.t.config.interactionTtlS * 1000;
    const late = await login(bt, jar, hiddenField(two.body, 'interaction'), 'alice', PASSWORD);
    assert.equal(late.statusCode, 400);
    assert.match(late.body, /expired/);
  } finally {
    await bt.t.close();
  }
});

test('a user disabled after login no longer gets codes from the session', async () => {
  const bt = await browserTest();
  try {
    const jar = new CookieJar();
    await authorizeAndLogin(bt, jar, spaParams(pkce()));
    const user = unpackValue<Record<string, unknown>>(bt.t.node.state.get('users')!.get(bt.aliceSub)!);
    const w = await bt.t.node.write({ domain: 'users', op: 'update', args: { user: { ...user, disabled: true } }, timeoutMs: 1000 });
    assert.ok(w.ok);
    const res = await bt.t.app.inject({ method: 'GET', url: authorizeUrl(spaParams(pkce())), headers: jar.header() });
    assert.equal(res.statusCode, 200);
    assert.match(res.body, /<h1>Sign in<\/h1>/);
  } finally {
    await bt.t.close();
  }
});

test('a session created on another node a moment ago is found: a local miss falls back to a linearizable read', async () => {
  const bt = await browserTest();
  try {
    const jar = new CookieJar();
    await authorizeAndLogin(bt, jar, spaParams(pkce()));
    // This node's applied state lags: its local reads do not see the session yet.
    const node = bt.t.node;
    const realRead = node.read.bind(node);
    const seen: string[] = [];
    node.read = async (req) => {
      if (req.domain === 'tokens' && req.op === 'session.get') {
        seen.push(req.consistency ?? 'linearizable');
        if (req.consistency === 'local') return { ok: true, value: null };
      }
      return realRead(req);
    };
    const res = await bt.t.app.inject({ method: 'GET', url: authorizeUrl(spaParams(pkce())), headers: jar.header() });
    assert.equal(res.statusCode, 302, res.body);
    assert.deepEqual(seen, ['local', 'linearizable']);
  } finally {
    await bt.t.close();
  }
});

test('malformed login forms end on an HTML page, not JSON', async () => {
  const bt = await browserTest();
  try {
    const cases = [
      { headers: { 'content-type': 'application/json' }, payload: '{"username":"alice"}', status: 400 },
      { headers: { 'content-type': 'application/x-www-form-urlencoded' }, payload: 'interaction=a&interaction=b', status: 400 },
      { headers: { 'content-type': 'application/x-www-form-urlencoded' }, payload: `password=${'x'.repeat(20_000)}`, status: 413 },
      { headers: { 'content-type': 'text/xml' }, payload: '<a/>', status: 415 },
    ];
    for (const c of cases) {
      const res = await bt.t.app.inject({ method: 'POST', url: '/login', headers: c.headers, payload: c.payload });
      assert.equal(res.statusCode, c.status, res.body);
      assert.match(String(res.headers['content-type']), /^text\/html/);
      assert.equal(res.headers['x-frame-options'], 'DENY');
    }
    const get = await bt.t.app.inject({ method: 'GET', url: '/login' });
    assert.equal(get.statusCode, 400);
    assert.match(get.body, /starts at the application/);
  } finally {
    await bt.t.close();
  }
});

test('a client the read cache does not hold (past its bound) is found through the node during the sign-in; a deleted one is not', async () => {
  const bt = await browserTest();
  try {
    const jar = new CookieJar();
    const page = await bt.t.app.inject({ method: 'GET', url: authorizeUrl(spaParams(pkce())), headers: jar.header() });
    jar.take(page);
    const interaction = hiddenField(page.body, 'interaction');
    // The cache as the primary publishes it when the clients keyspace holds more than the table's
    // bound: `spa` is in the state but not in the table.
    bt.t.cache.publish('clients', [...bt.t.cache.local.entries('clients')].filter(([id]) => id !== 'spa'));
    assert.equal(bt.t.cache.local.get('clients', 'spa'), undefined);
    const res = await login(bt, jar, interaction, 'alice', PASSWORD);
    assert.ok(redirectParams(res, SPA_REDIRECT).get('code'), res.body);

    // Deleted while the user was on the page: the interaction ends with the page that says so.
    const jar2 = new CookieJar();
    const page2 = await bt.t.app.inject({ method: 'GET', url: authorizeUrl(spaParams(pkce())), headers: jar2.header() });
    jar2.take(page2);
    assert.ok((await bt.t.node.write({ domain: 'clients', op: 'delete', args: { client_id: 'spa' }, timeoutMs: 1000 })).ok);
    const gone = await login(bt, jar2, hiddenField(page2.body, 'interaction'), 'alice', PASSWORD);
    assert.equal(gone.statusCode, 400, gone.body);
    assert.match(gone.body, /no longer registered/);
  } finally {
    await bt.t.close();
  }
});
