import { test } from 'node:test';
import assert from 'node:assert/strict';
import { nodeIdFromPeerCertificate } from '../../../src/transport/tls.ts';

// Regression: grpc-js reads the client certificate from the HTTP/2 session's socket when a call is
// handled; once that socket has lost its handle (the peer went away under load), Node returns null.
// authenticate() threw a TypeError (answered INTERNAL) instead of refusing the request cleanly.
test('a missing peer certificate (null, undefined or empty) names no node', () => {
  assert.equal(nodeIdFromPeerCertificate(null), null);
  assert.equal(nodeIdFromPeerCertificate(undefined), null);
  assert.equal(nodeIdFromPeerCertificate({} as never), null);
});

test('a call whose connection is gone (grpc-js getAuthContext throws) yields no certificate', async () => {
  const { peerCertificateOf } = await import('../../../src/transport/server.ts');
  const gone = {
    getAuthContext(): never {
      throw new TypeError("Cannot read properties of null (reading 'raw')");
    },
  };
  assert.equal(peerCertificateOf(gone), null);
  assert.equal(peerCertificateOf({ getAuthContext: () => ({}) }), null);
});
