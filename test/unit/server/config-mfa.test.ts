// The `mfa` config section (src/server/config.ts): defaults derived from the issuer, lists as YAML
// or comma-separated text (environment variables), refusals naming the key, and its way into the
// OAuth layer's config (oauthConfigOf).
import { test } from 'node:test';
import type { TestContext } from 'node:test';
import assert from 'node:assert/strict';
import { join } from 'node:path';
import { ConfigError, parseConfig } from '../../../src/server/config.ts';
import { oauthConfigOf } from '../../../src/server/oauth-node.ts';
import { mfaConfigOf } from '../../../src/oauth/config.ts';
import { tempDir, tlsFiles } from './helpers.ts';

async function base(t: TestContext): Promise<{ body: string; file: string }> {
  const dir = await tempDir(t);
  const body = `node:\n  id: 1\n  dataDir: ./data\ncluster:\n  initialMembers:\n    - { id: 1, raftAddress: "127.0.0.1:7001", httpAddress: "127.0.0.1:8001" }\n${await tlsFiles(dir)}`;
  return { body, file: join(dir, 'node1.yaml') };
}

function refuses(body: string, file: string, key: string, fragment: RegExp, env: Record<string, string> = {}): void {
  assert.throws(
    () => parseConfig(body, file, env),
    (e: unknown) => e instanceof ConfigError && e.key === key && fragment.test(e.message),
  );
}

test('defaults: RP ID and origin from the issuer, rpName raftauth, no required scopes; they reach the OAuth config', async (t) => {
  const { body, file } = await base(t);
  const c = parseConfig(`${body}oauth:\n  issuer: https://auth.example.com/tenant\n`, file, {});
  assert.deepEqual(c.mfa, { rpId: 'auth.example.com', rpName: 'raftauth', origins: ['https://auth.example.com'], requiredScopes: [] });
  const o = oauthConfigOf(c.oauth, c.mfa);
  assert.deepEqual(mfaConfigOf(o), { rpId: 'auth.example.com', rpName: 'raftauth', origins: ['https://auth.example.com'], requiredScopes: [] });
  // Without the section given to oauthConfigOf, the same defaults are derived from the issuer.
  assert.deepEqual(mfaConfigOf(oauthConfigOf(c.oauth)), mfaConfigOf(o));
});

test('explicit values, lists from YAML or comma-separated environment text', async (t) => {
  const { body, file } = await base(t);
  const c = parseConfig(
    `${body}oauth:\n  issuer: https://login.example.com\nmfa:\n  rpId: example.com\n  rpName: Example\n  origins: [https://login.example.com, https://app.example.com]\n  requiredScopes: [admin]\n`,
    file,
    { RAFTAUTH_MFA_REQUIRED_SCOPES: 'admin, payments:write' },
  );
  assert.deepEqual(c.mfa, { rpId: 'example.com', rpName: 'Example', origins: ['https://login.example.com', 'https://app.example.com'], requiredScopes: ['admin', 'payments:write'] });
});

test('bad values are refused naming the key', async (t) => {
  const { body, file } = await base(t);
  const issuer = 'oauth:\n  issuer: https://login.example.com\n';
  refuses(`${body}${issuer}mfa:\n  rpId: https://example.com\n`, file, 'mfa.rpId', /domain name/);
  refuses(`${body}${issuer}mfa:\n  origins: [https://login.example.com/]\n`, file, 'mfa.origins', /exactly an origin/);
  refuses(`${body}${issuer}mfa:\n  origins: [http://login.example.com]\n`, file, 'mfa.origins', /https/);
  // W3C WebAuthn §5.1.3: the origin must be on the RP ID.
  refuses(`${body}${issuer}mfa:\n  rpId: other.com\n`, file, 'mfa.origins', /not on mfa.rpId other.com/);
  refuses(`${body}${issuer}mfa:\n  requiredScopes: 'a"b'\n`, file, 'mfa.requiredScopes', /scope token/);
  refuses(`${body}${issuer}mfa:\n  rpIdd: x\n`, file, 'mfa.rpIdd', /not a known key/);
});
