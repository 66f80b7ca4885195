// An OAuth server for endpoint tests: the real HTTP app (buildHttpApp with the OAuth routes) over
// a MemoryNode with the real OAuth domains, keys bootstrapped the way the leader does it, the
// read-cache tables pushed after every write the way the primary does it, and a settable clock.
import type { FastifyInstance } from 'fastify';
import pino from 'pino';
import { buildHttpApp } from '../../src/server/http.ts';
import { CachePublisher } from '../../src/server/read-cache.ts';
import { CACHE_KEYSPACES, cacheTable, ensureOAuthState } from '../../src/server/oauth-node.ts';
import { MasterKeyRing } from '../../src/crypto/seal.ts';
import { hashAndSealPassword } from '../../src/crypto/password.ts';
import { unwrapRing } from '../../src/crypto/seal.ts';
import { unpackValue } from '../../src/state/command.ts';
import type { DataKeyRing } from '../../src/state/oauth-ops.ts';
import { randomId, randomToken, tokenHash } from '../../src/crypto/tokens.ts';
import { DEFAULT_OAUTH_CONFIG } from '../../src/oauth/config.ts';
import type { OAuthConfig } from '../../src/oauth/config.ts';
import { oauthDomains } from '../../src/state/oauth-domains.ts';
import type { ClientRecord, UserRecord } from '../../src/state/oauth-ops.ts';
import { MemoryNode } from './memory-node.ts';

/**
 * The issuer of endpoint tests: what `npm start` uses (its front address as http://localhost:<port>,
 * a secure context where WebAuthn works). Tests of an issuer where it does not work set their own.
 */
export const TEST_ISSUER = 'http://localhost:8080';
/** Cheap scrypt for tests (production default ln=17). */
export const TEST_SCRYPT = { ln: 10, r: 8, p: 1 } as const;

export interface TestClock {
  now: number;
}

export interface TestOAuth {
  readonly app: FastifyInstance;
  readonly node: MemoryNode;
  readonly clock: TestClock;
  readonly master: MasterKeyRing;
  readonly config: OAuthConfig;
  readonly cache: CachePublisher;
  /** Create a client; a confidential one gets a fresh secret (returned in clear, stored hashed). */
  addClient(c: Partial<ClientRecord> & Pick<ClientRecord, 'client_id'>): Promise<{ client: ClientRecord; secret: string | null }>;
  addUser(username: string, password: string, extra?: Partial<UserRecord>): Promise<UserRecord>;
  close(): Promise<void>;
}

export async function oauthTestApp(opts: { config?: Partial<OAuthConfig>; clock?: TestClock } = {}): Promise<TestOAuth> {
  const clock = opts.clock ?? { now: Date.parse('2026-11-23T12:00:00Z') };
  const now = (): number => clock.now;
  const node = new MemoryNode(oauthDomains(), now);
  const cache = new CachePublisher();
  const push = (keyspace: string): void => {
    const table = CACHE_KEYSPACES[keyspace];
    if (table) cache.publish(table, cacheTable(table, node.entries(keyspace)));
  };
  node.onApplied = (changes) => {
    const touched = new Set<string>();
    for (const [ks] of changes.puts) touched.add(ks);
    for (const [ks] of changes.dels) touched.add(ks);
    for (const ks of touched) push(ks);
  };
  const master = MasterKeyRing.parse(MasterKeyRing.generateText(), 'test master key');
  const config: OAuthConfig = { ...DEFAULT_OAUTH_CONFIG, passwordScrypt: TEST_SCRYPT, issuer: TEST_ISSUER, ...opts.config };
  const write = (domain: string, op: string, args: unknown) => node.write({ domain, op, args, timeoutMs: 1000 });
  const read = (domain: string, op: string, args: unknown) => node.read({ domain, op, args, timeoutMs: 1000 });
  await ensureOAuthState(write, read, master, config.signingAlg, now());
  for (const ks of Object.keys(CACHE_KEYSPACES)) push(ks);

  const app = buildHttpApp({
    node,
    cache: cache.local,
    http: { bodyLimitBytes: 1 << 20, requestTimeoutMs: 2_000 },
    nodeId: 1,
    workerId: 0,
    logger: pino({ level: process.env.TEST_LOG_LEVEL ?? 'silent' }),
    oauth: { master, config, now },
  });
  await app.ready();

  const ok = (r: Awaited<ReturnType<MemoryNode['write']>>, what: string): void => {
    if (!r.ok) throw new Error(`${what}: ${r.code} ${r.message}`);
  };
  return {
    app,
    node,
    clock,
    master,
    config,
    cache,
    async addClient(c) {
      const method = c.token_endpoint_auth_method ?? 'client_secret_basic';
      const secret = method === 'client_secret_basic' || method === 'client_secret_post' ? randomToken() : null;
      const client: ClientRecord = {
        client_name: c.client_id,
        client_secret_hash: secret === null ? null : tokenHash(secret),
        token_endpoint_auth_method: method,
        redirect_uris: [],
        grant_types: ['client_credentials'],
        scopes: ['openid', 'profile', 'email', 'offline_access'],
        jwks: null,
        first_party: true,
        audience: null,
        created_at: now(),
        updated_at: now(),
        ...c,
      };
      ok(await write('clients', 'create', { client }), 'create client');
      return { client, secret };
    },
    async addUser(username, password, extra = {}) {
      const user: { -readonly [K in keyof UserRecord]: UserRecord[K] } = {
        sub: randomId(),
        username,
        password_hash: '',
        name: null,
        email: null,
        email_verified: false,
        disabled: false,
        created_at: now(),
        updated_at: now(),
        ...extra,
      };
      // Sealed like the admin API does it (src/ops/admin-oauth.ts), unless the test gave its own hash.
      if (user.password_hash === '') {
        const dk = unpackValue<DataKeyRing>(node.state.get('sys.dk')!.get('ring')!);
        user.password_hash = await hashAndSealPassword(unwrapRing(dk, master), user.sub, password, config.passwordScrypt);
      }
      ok(await write('users', 'create', { user }), 'create user');
      return user;
    },
    async close() {
      await app.close();
    },
  };
}
