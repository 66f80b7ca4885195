// The oidc-provider side of `npm run bench:oauth`: one process (its own event loop and core, as a
// node would have) running panva's oidc-provider 9 with its in-memory adapter and JWT access tokens
// signed ES256, for the same three grants as raftauth:
//
// - JWT access tokens: oidc-provider issues them only for a resource server (RFC 8707 resource
//   indicators): features.resourceIndicators with a default resource whose getResourceServerInfo
//   says accessTokenFormat 'jwt', jwt.sign.alg ES256; useGrantedResource so the code and refresh
//   grants also issue for it (otherwise an `openid` grant gets an opaque userinfo token).
// - Refresh tokens rotate on every use (rotateRefreshToken: true), as raftauth's always do; by
//   default oidc-provider rotates only public clients' tokens.
// - Its in-memory adapter (lib/adapters/memory_adapter.js) over its own LRU, sized for the run: the
//   default store holds 1000 entries, fewer than the codes a run mints.
// - Authorization codes are minted through its models (Grant + AuthorizationCode, as its
//   authorization endpoint would save them) on a control endpoint of our own, POST /mint.
//
// Started by scripts/bench-oauth/oidc-provider.ts as its own process group, settings in the
// environment (BENCH_OIDC_*). Both listeners bind 127.0.0.1 only.
import { createServer } from 'node:http';
import type { IncomingMessage, ServerResponse } from 'node:http';
import { randomBytes, timingSafeEqual } from 'node:crypto';
import Provider from 'oidc-provider';
import MemoryAdapter from 'oidc-provider/lib/adapters/memory_adapter.js';
import LRU from 'oidc-provider/lib/helpers/lru.js';

/** Entries the in-memory store keeps (codes, grants, refresh tokens of a whole run). */
const STORE_ENTRIES = 4_000_000;
/** Most codes one /mint call makes (a bound on one request's work and body). */
const MAX_MINT_PER_CALL = 5_000;
const MAX_CONTROL_BODY_BYTES = 2 * 1024 * 1024;

const OIDC_RESOURCE = 'urn:raftauth-bench:api';
const OIDC_USER = 'bench-user';

function need(k: string): string {
  const v = process.env[k];
  if (v === undefined || v === '') throw new Error(`${k} is not set`);
  return v;
}

function main(): void {
  const port = Number(need('BENCH_OIDC_PORT'));
  const controlPort = Number(need('BENCH_OIDC_CONTROL_PORT'));
  const controlToken = need('BENCH_OIDC_CONTROL_TOKEN');
  const ccSecret = need('BENCH_OIDC_CC_SECRET');
  const webSecret = need('BENCH_OIDC_WEB_SECRET');
  const redirectUri = need('BENCH_OIDC_REDIRECT_URI');
  const jwk = JSON.parse(need('BENCH_OIDC_JWK')) as Record<string, unknown>;
  const issuer = `http://127.0.0.1:${port}`;

  const store = new LRU({ maxSize: STORE_ENTRIES });
  const provider = new Provider(issuer, {
    adapter: (model: string) => new MemoryAdapter(model, store),
    clients: [
      { client_id: 'bench-cc', client_secret: ccSecret, grant_types: ['client_credentials'], response_types: [], redirect_uris: [], token_endpoint_auth_method: 'client_secret_basic', scope: 'api:read' },
      {
        client_id: 'bench-web',
        client_secret: webSecret,
        grant_types: ['authorization_code', 'refresh_token'],
        response_types: ['code'],
        redirect_uris: [redirectUri],
        token_endpoint_auth_method: 'client_secret_basic',
        id_token_signed_response_alg: 'ES256',
        scope: 'openid offline_access api:read',
      },
    ],
    clientDefaults: { grant_types: ['authorization_code'], id_token_signed_response_alg: 'ES256', response_types: ['code'], token_endpoint_auth_method: 'client_secret_basic' },
    // Client `scope` metadata may only name scopes the provider knows.
    scopes: ['openid', 'offline_access', 'api:read'],
    jwks: { keys: [jwk] },
    cookies: { keys: [randomBytes(32).toString('base64url')] },
    findAccount: (_ctx: unknown, id: string) => ({ accountId: id, claims: () => ({ sub: id }) }),
    features: {
      devInteractions: { enabled: false },
      clientCredentials: { enabled: true },
      resourceIndicators: {
        enabled: true,
        defaultResource: () => OIDC_RESOURCE,
        useGrantedResource: () => true,
        getResourceServerInfo: () => ({ scope: 'api:read', audience: OIDC_RESOURCE, accessTokenTTL: 600, accessTokenFormat: 'jwt', jwt: { sign: { alg: 'ES256' } } }),
      },
    },
    rotateRefreshToken: true,
    // The lifetimes raftauth uses (src/oauth/config.ts), codes long enough to be minted ahead of the run.
    ttl: { AccessToken: 600, ClientCredentials: 600, AuthorizationCode: 600, IdToken: 3600, RefreshToken: 14 * 86_400, Grant: 14 * 86_400, Session: 8 * 3600, Interaction: 600 },
  });
  provider.on('server_error', (_ctx: unknown, err: unknown) => process.stderr.write(`oidc-provider server_error: ${(err as Error)?.stack ?? String(err)}\n`));

  const mint = async (challenges: readonly string[]): Promise<string[]> => {
    const client = await provider.Client.find('bench-web');
    if (!client) throw new Error('bench-web is not registered');
    const authTime = Math.floor(Date.now() / 1000);
    const out: string[] = [];
    for (const codeChallenge of challenges) {
      // What the authorization endpoint saves after login and consent: a Grant, then a code bound to it.
      const grant = new provider.Grant({ accountId: OIDC_USER, clientId: 'bench-web' });
      grant.addOIDCScope('openid offline_access');
      grant.addResourceScope(OIDC_RESOURCE, 'api:read');
      const grantId = await grant.save();
      const code = new provider.AuthorizationCode({
        accountId: OIDC_USER,
        client,
        grantId,
        redirectUri,
        scope: 'openid offline_access api:read',
        resource: OIDC_RESOURCE,
        codeChallenge,
        codeChallengeMethod: 'S256',
        authTime,
        acr: 'urn:raftauth:acr:pwd',
        amr: ['pwd'],
      });
      out.push(await code.save());
    }
    return out;
  };

  const expectedAuth = Buffer.from(`Bearer ${controlToken}`);
  const control = createServer((req: IncomingMessage, res: ServerResponse) => {
    const reply = (status: number, body: unknown) => {
      res.writeHead(status, { 'content-type': 'application/json' });
      res.end(JSON.stringify(body));
    };
    const auth = Buffer.from(req.headers.authorization ?? '');
    if (auth.length !== expectedAuth.length || !timingSafeEqual(auth, expectedAuth)) return reply(401, { error: 'unauthorized' });
    if (req.method !== 'POST' || req.url !== '/mint') return reply(404, { error: 'not_found' });
    const chunks: Buffer[] = [];
    let size = 0;
    req.on('data', (c: Buffer) => {
      size += c.length;
      if (size > MAX_CONTROL_BODY_BYTES) req.destroy();
      else chunks.push(c);
    });
    req.on('end', () => {
      let challenges: unknown;
      try {
        challenges = (JSON.parse(Buffer.concat(chunks).toString('utf8')) as { challenges?: unknown }).challenges;
      } catch {
        return reply(400, { error: 'body must be JSON { challenges: string[] }' });
      }
      if (!Array.isArray(challenges) || challenges.length > MAX_MINT_PER_CALL || !challenges.every((c) => typeof c === 'string' && /^[A-Za-z0-9_-]{43}$/.test(c))) {
        return reply(400, { error: `challenges must be 1..${MAX_MINT_PER_CALL} S256 code challenges` });
      }
      mint(challenges as string[]).then(
        (codes) => reply(200, { codes }),
        (e: unknown) => reply(500, { error: (e as Error)?.message ?? String(e) }),
      );
      return undefined;
    });
    return undefined;
  });

  const server = createServer(provider.callback());
  server.keepAliveTimeout = 60_000;
  server.listen(port, '127.0.0.1');
  control.listen(controlPort, '127.0.0.1');
}

main();
