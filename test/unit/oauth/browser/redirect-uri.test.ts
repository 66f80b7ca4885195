// Redirect URI matching: exact (RFC 9700 §4.1.3), except the port of loopback IP literals (RFC 8252 §7.3).
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { redirectUriMatches } from '../../../../src/oauth/authorize.ts';

test('exact match, and any port for http loopback IP literals only', () => {
  assert.equal(redirectUriMatches('https://app.example/cb', 'https://app.example/cb'), true);
  // RFC 8252 §7.3: any port at request time for 127.0.0.1 and [::1], registered with or without one.
  assert.equal(redirectUriMatches('http://127.0.0.1/callback', 'http://127.0.0.1:51004/callback'), true);
  assert.equal(redirectUriMatches('http://127.0.0.1:8765/callback', 'http://127.0.0.1:40001/callback'), true);
  assert.equal(redirectUriMatches('http://[::1]:8765/cb?x=1', 'http://[::1]:9/cb?x=1'), true);
  // Everything but the port must still match.
  assert.equal(redirectUriMatches('http://127.0.0.1:8765/callback', 'http://127.0.0.1:8765/other'), false);
  assert.equal(redirectUriMatches('http://127.0.0.1:8765/cb', 'http://127.0.0.1:1/cb?x=1'), false);
  assert.equal(redirectUriMatches('http://127.0.0.1:8765/cb', 'http://[::1]:8765/cb'), false);
  // Not loopback IP literals: exact match only (RFC 8252 §8.3: localhost is not one).
  assert.equal(redirectUriMatches('http://localhost:8765/cb', 'http://localhost:9999/cb'), false);
  assert.equal(redirectUriMatches('https://127.0.0.1:8765/cb', 'https://127.0.0.1:9999/cb'), false);
  assert.equal(redirectUriMatches('https://app.example:443/cb', 'https://app.example:8443/cb'), false);
  assert.equal(redirectUriMatches('http://127.0.0.1:8765/cb', 'not a url'), false);
});
