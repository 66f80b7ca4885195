// Issue 13, defect 7: the issuer's root URL. A browser opening it gets a small page naming the
// server with links to the discovery documents and the JWKS; a client that asks for JSON (or sends
// no preference, like curl) gets the same links as JSON.
import assert from 'node:assert/strict';
import { test } from 'node:test';
import { oauthTestApp } from '../../../support/oauth-app.ts';
import { prefersHtml } from '../../../../src/oauth/root.ts';

const BROWSER_ACCEPT = 'text/html,application/xhtml+xml,application/xml;q=0.9,image/avif,image/webp,*/*;q=0.8';

test('prefersHtml: only an explicit text/html (or XHTML) at least as preferred as JSON', () => {
  assert.equal(prefersHtml(BROWSER_ACCEPT), true);
  assert.equal(prefersHtml('text/html'), true);
  assert.equal(prefersHtml('application/xhtml+xml'), true);
  assert.equal(prefersHtml(undefined), false);
  assert.equal(prefersHtml('*/*'), false);
  assert.equal(prefersHtml('application/json'), false);
  assert.equal(prefersHtml('application/json, text/html;q=0.5'), false);
  assert.equal(prefersHtml('text/html;q=0.5, application/json'), false);
  assert.equal(prefersHtml('text/html, application/json'), true);
  assert.equal(prefersHtml('text/html;q=0'), false);
  assert.equal(prefersHtml('text/plain'), false);
  assert.equal(prefersHtml('x'.repeat(5000) + ',text/html'), false, 'an over-long header is not parsed');
});

test('GET / in a browser: a small page naming the server, linking to the discovery documents and the JWKS, with the page headers', async () => {
  const t = await oauthTestApp({ config: { issuer: 'https://auth.example.com' } });
  try {
    const r = await t.app.inject({ method: 'GET', url: '/', headers: { accept: BROWSER_ACCEPT } });
    assert.equal(r.statusCode, 200, r.body);
    assert.equal(r.headers['content-type'], 'text/html; charset=utf-8');
    assert.match(String(r.headers.vary), /accept/i);
    assert.match(String(r.headers['content-security-policy']), /default-src 'none'/);
    assert.equal(r.headers['x-frame-options'], 'DENY');
    assert.match(r.body, /<h1>raftauth<\/h1>/);
    assert.match(r.body, /https:\/\/auth\.example\.com/);
    for (const href of ['https://auth.example.com/.well-known/openid-configuration', 'https://auth.example.com/.well-known/oauth-authorization-server', 'https://auth.example.com/jwks.json']) {
      assert.ok(r.body.includes(`<a href="${href}">`), `links to ${href}:\n${r.body}`);
      // The link leads somewhere real on this server.
      const path = new URL(href).pathname;
      assert.equal((await t.app.inject({ method: 'GET', url: path })).statusCode, 200, path);
    }
    assert.doesNotMatch(r.body, /<script/);
    const head = await t.app.inject({ method: 'HEAD', url: '/', headers: { accept: BROWSER_ACCEPT } });
    assert.equal(head.statusCode, 200);
  } finally {
    await t.close();
  }
});

test('GET / for JSON, for curl (*/*) and for no Accept at all: the same links as JSON', async () => {
  const t = await oauthTestApp({ config: { issuer: 'https://auth.example.com' } });
  try {
    for (const accept of ['application/json', '*/*', undefined, 'text/plain']) {
      const r = await t.app.inject({ method: 'GET', url: '/', headers: accept === undefined ? {} : { accept } });
      assert.equal(r.statusCode, 200, `${accept}: ${r.body}`);
      assert.match(String(r.headers['content-type']), /^application\/json/, String(accept));
      assert.match(String(r.headers.vary), /accept/i);
      assert.deepEqual(r.json(), {
        name: 'raftauth',
        issuer: 'https://auth.example.com',
        openid_configuration: 'https://auth.example.com/.well-known/openid-configuration',
        oauth_authorization_server: 'https://auth.example.com/.well-known/oauth-authorization-server',
        jwks_uri: 'https://auth.example.com/jwks.json',
      });
    }
    // Other methods are not routes.
    assert.equal((await t.app.inject({ method: 'POST', url: '/', payload: 'a=b', headers: { 'content-type': 'application/x-www-form-urlencoded' } })).statusCode, 404);
  } finally {
    await t.close();
  }
});
