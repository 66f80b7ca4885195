// The demo credentials of `npm start` (issue 5): a confidential client, a public client and a
// user, created through the admin API on first start and kept in <dir>/demo.json (0600) so a
// restart reuses them. If the cluster's data was wiped, they are created again.
//
// On fresh data the leader creates the cluster's data key a moment after it is elected; until the
// admin node has applied it, the admin API refuses to create a user (the password hash is sealed
// with that key) with a 503. So nothing is created before GET /admin/v1/keys (a linearizable
// read: afterwards the node has applied every acknowledged write) shows the data key (issue 13).
import { existsSync } from 'node:fs';
import { readFile, writeFile } from 'node:fs/promises';
import { randomBytes } from 'node:crypto';
import type { DemoCredentials } from '../../src/cli/cluster-file.ts';
import { WAIT_POLL_MS, WaitAborted, waitFor } from './wait.ts';

/** The public client's redirect URI: a loopback address, as a native app would use (RFC 8252 §7.3). */
export const DEMO_PUBLIC_REDIRECT = 'http://127.0.0.1:8765/callback';
export const DEMO_CONFIDENTIAL_REDIRECT = 'http://127.0.0.1:8766/callback';
const DEMO_CONFIDENTIAL_ID = 'demo-confidential';
const DEMO_PUBLIC_ID = 'demo-public';
const DEMO_USER = 'demo';
const SCOPES = ['openid', 'profile', 'email', 'offline_access', 'api:read', 'api:write'];
const REQUEST_TIMEOUT_MS = 10_000;
/** Default bound on the wait for the data key (a fresh cluster elects a leader, which then creates it). */
export const DATA_KEY_TIMEOUT_MS = 60_000;

export interface DemoOptions {
  /** How long to wait for the cluster's data key before giving up. Default DATA_KEY_TIMEOUT_MS. */
  readonly dataKeyTimeoutMs?: number;
  /** Pause between reads of the keys while waiting. Default WAIT_POLL_MS. */
  readonly pollMs?: number;
}

interface Admin {
  readonly url: string;
  readonly token: string;
}

async function call(a: Admin, method: string, path: string, body?: unknown): Promise<{ status: number; json: Record<string, unknown> }> {
  const res = await fetch(`${a.url}${path}`, {
    method,
    headers: { authorization: `Bearer ${a.token}`, ...(body !== undefined ? { 'content-type': 'application/json' } : {}) },
    ...(body !== undefined ? { body: JSON.stringify(body) } : {}),
    signal: AbortSignal.timeout(REQUEST_TIMEOUT_MS),
  });
  const text = await res.text();
  let json: Record<string, unknown>;
  try {
    json = text ? (JSON.parse(text) as Record<string, unknown>) : {};
  } catch {
    json = { raw: text };
  }
  return { status: res.status, json };
}

function expect(r: { status: number; json: Record<string, unknown> }, ok: readonly number[], what: string): Record<string, unknown> {
  if (!ok.includes(r.status)) throw new Error(`${what}: HTTP ${r.status} ${JSON.stringify(r.json)}`);
  return r.json;
}

/**
 * Wait until the admin node has applied the cluster's data key. A 503 or 504 (no leader yet, a read
 * that timed out) or an unreachable node is "not yet"; any other refusal cannot be waited out (a
 * node without a master key serves no key routes; a wrong token) and fails at once.
 */
async function waitForDataKey(admin: Admin, timeoutMs: number, pollMs: number): Promise<void> {
  await waitFor(
    `the cluster's data key at ${admin.url} (the leader creates it at start; does every node have the master key?)`,
    async () => {
      const r = await call(admin, 'GET', '/admin/v1/keys');
      if (r.status === 200) return r.json.dataKeys !== null && r.json.dataKeys !== undefined;
      if (r.status === 503 || r.status === 504) return false;
      throw new WaitAborted(`reading the data keys: HTTP ${r.status} ${JSON.stringify(r.json)}`);
    },
    timeoutMs,
    pollMs,
  );
}

/** Make sure the demo client, public client and user exist; returns their credentials. */
export async function ensureDemo(admin: Admin, dir: string, opts: DemoOptions = {}): Promise<DemoCredentials> {
  await waitForDataKey(admin, opts.dataKeyTimeoutMs ?? DATA_KEY_TIMEOUT_MS, opts.pollMs ?? WAIT_POLL_MS);
  const file = `${dir}/demo.json`;
  let demo: DemoCredentials | null = existsSync(file) ? (JSON.parse(await readFile(file, 'utf8')) as DemoCredentials) : null;

  const haveClient = demo !== null && (await call(admin, 'GET', `/admin/v1/clients/${DEMO_CONFIDENTIAL_ID}`)).status === 200;
  const haveUser = demo !== null && (await call(admin, 'GET', `/admin/v1/users/${DEMO_USER}`)).status === 200;
  if (demo && haveClient && haveUser && (await call(admin, 'GET', `/admin/v1/clients/${DEMO_PUBLIC_ID}`)).status === 200) return demo;

  // (Re)create: remove leftovers so the stored credentials and the cluster agree.
  for (const id of [DEMO_CONFIDENTIAL_ID, DEMO_PUBLIC_ID]) expect(await call(admin, 'DELETE', `/admin/v1/clients/${id}`), [200, 204, 404], `deleting ${id}`);
  expect(await call(admin, 'DELETE', `/admin/v1/users/${DEMO_USER}`), [200, 204, 404], 'deleting the demo user');

  const conf = expect(
    await call(admin, 'POST', '/admin/v1/clients', {
      client_id: DEMO_CONFIDENTIAL_ID,
      client_name: 'Demo confidential client',
      token_endpoint_auth_method: 'client_secret_basic',
      redirect_uris: [DEMO_CONFIDENTIAL_REDIRECT],
      grant_types: ['client_credentials', 'authorization_code', 'refresh_token', 'urn:ietf:params:oauth:grant-type:device_code'],
      scopes: SCOPES,
      first_party: true,
    }),
    [201],
    'creating the demo confidential client',
  );
  expect(
    await call(admin, 'POST', '/admin/v1/clients', {
      client_id: DEMO_PUBLIC_ID,
      client_name: 'Demo public client',
      token_endpoint_auth_method: 'none',
      redirect_uris: [DEMO_PUBLIC_REDIRECT],
      grant_types: ['authorization_code', 'refresh_token', 'urn:ietf:params:oauth:grant-type:device_code'],
      scopes: SCOPES,
      first_party: true,
    }),
    [201],
    'creating the demo public client',
  );
  const password = randomBytes(12).toString('base64url');
  expect(await call(admin, 'POST', '/admin/v1/users', { username: DEMO_USER, password, name: 'Demo User', email: 'demo@example.com', email_verified: true }), [201], 'creating the demo user');

  demo = {
    confidentialClient: { client_id: DEMO_CONFIDENTIAL_ID, client_secret: String(conf.client_secret) },
    publicClient: { client_id: DEMO_PUBLIC_ID, redirect_uri: DEMO_PUBLIC_REDIRECT },
    user: { username: DEMO_USER, password },
  };
  await writeFile(file, `${JSON.stringify(demo, null, 2)}\n`, { mode: 0o600 });
  return demo;
}
