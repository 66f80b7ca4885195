import { test } from 'node:test';
import assert from 'node:assert/strict';
import { createHash } from 'node:crypto';
import { CookieJar, authorizationResponse, basicAuth, decodeEntities, findLoginForm, loginSubmission, parseAttributes, parseForms, pkcePair, s256 } from './html.ts';

// The shape src/oauth/pages.ts renders, with escaping and an extra decoy form.
const LOGIN_PAGE = `<!doctype html><html><body>
<!-- <form action="/commented"><input type="password" name="x"></form> -->
<form method="get" action="/device"><input type="text" name="user_code" value=""></form>
<form method="post" action="/login?a=1&amp;b=2">
<input type="hidden" name="interaction" value="abc&quot;def&#x27;&#39;">
<label for="username">Username</label><input type="text" id="username" name="username" value="" autocomplete="username" required autofocus>
<label for="password">Password</label><input type="password" id="password" name="password" required>
<input type="checkbox" name="remember">
<input type="hidden" name="off" value="1" disabled>
<button type="submit" name="go" value="in">Sign in</button><button type="submit" name="go" value="other">Other</button>
</form></body></html>`;

test('decodeEntities decodes named, decimal and hex references and leaves unknown ones', () => {
  assert.equal(decodeEntities('a&amp;b&lt;c&gt;&quot;&#39;&#x41;&unknown;'), 'a&b<c>"\'A&unknown;');
  assert.equal(decodeEntities('&#x110000;'), '&#x110000;');
});

test('parseAttributes reads quoted, unquoted and bare attributes; the first occurrence wins', () => {
  assert.deepEqual(parseAttributes(` type="hidden" name='n' value=v&amp;w required NAME="second"`), { type: 'hidden', name: 'n', value: 'v&w', required: '' });
});

test('findLoginForm picks the password form, skipping comments, and decodes its action and values', () => {
  assert.equal(parseForms(LOGIN_PAGE).length, 2);
  const f = findLoginForm(LOGIN_PAGE);
  assert.ok(f);
  assert.equal(f.method, 'POST');
  assert.equal(f.action, '/login?a=1&b=2');
  assert.deepEqual(
    f.fields.map((x) => [x.name, x.type, x.value]),
    [
      ['interaction', 'hidden', `abc"def''`],
      ['username', 'text', ''],
      ['password', 'password', ''],
      ['go', 'submit', 'in'],
      ['go', 'submit', 'other'],
    ],
  );
  assert.equal(findLoginForm('<form><input name="q"></form>'), null);
});

test('loginSubmission fills username and password, keeps hidden fields and submits the first button only', () => {
  const body = new URLSearchParams(loginSubmission(findLoginForm(LOGIN_PAGE)!, 'bench', 'p&ss=word'));
  assert.deepEqual([...body], [
    ['interaction', `abc"def''`],
    ['username', 'bench'],
    ['password', 'p&ss=word'],
    ['go', 'in'],
  ]);
  assert.throws(() => loginSubmission({ action: '', method: 'POST', fields: [{ tag: 'input', name: 'pw', type: 'password', value: '' }] }, 'u', 'p'), /no username field/);
});

test('CookieJar keeps the name=value pair of each Set-Cookie, replaces by name and drops expired ones', () => {
  const jar = new CookieJar();
  jar.store(['a=1; Path=/; HttpOnly', 'b=x=y; SameSite=Lax', '=nameless', 'c=3']);
  assert.equal(jar.header(), 'a=1; b=x=y; c=3');
  jar.store(['a=2', 'c=; Max-Age=0']);
  assert.equal(jar.header(), 'a=2; b=x=y');
  assert.equal(jar.size, 2);
});

test('basicAuth form-urlencodes id and secret before base64 (RFC 6749 §2.3.1)', () => {
  const decode = (h: string) => Buffer.from(h.replace(/^Basic /, ''), 'base64').toString('utf8');
  assert.equal(decode(basicAuth('client', 'secret')), 'client:secret');
  assert.equal(decode(basicAuth('a:b c', "s%!'")), 'a%3Ab+c:s%25%21%27');
});

test('pkcePair makes a 43-character verifier and its S256 challenge (RFC 7636 appendix B vector)', () => {
  // RFC 7636 Appendix B.
  assert.equal(s256('dBjftJeZ4CVP-mB92K27uhbUJU1p1r_wW1gFWFOEjXk'), 'E9Melhoa2OwvFrEMTJguCHaoeK1t8URWbuGJSstw-cM');
  const p = pkcePair();
  assert.match(p.verifier, /^[A-Za-z0-9_-]{43}$/);
  assert.equal(p.challenge, createHash('sha256').update(p.verifier).digest('base64url'));
  assert.notEqual(pkcePair().verifier, p.verifier);
});

test('authorizationResponse reads the redirect to the client, and only that', () => {
  const r = authorizationResponse('http://127.0.0.1:9/bench/callback?code=c1&state=s&iss=x', 'http://127.0.0.1:5000/authorize', 'http://127.0.0.1:9/bench/callback');
  assert.equal(r?.get('code'), 'c1');
  assert.equal(authorizationResponse('/login?interaction=1', 'http://127.0.0.1:5000/authorize', 'http://127.0.0.1:9/bench/callback'), null);
  assert.equal(authorizationResponse('http://127.0.0.1:9/other?code=c', 'http://127.0.0.1:5000/', 'http://127.0.0.1:9/bench/callback'), null);
});
