// The two comparison servers of `npm run bench:oauth`, each a child process in its own process
// group (scripts/bench/procs.ts: killed with its workers at the end, also on failure): oidc-provider
// (oidc-provider-server.ts, one process) and the bare ceiling (ceiling-server.ts, node:cluster
// workers). Both bind 127.0.0.1 only.
import { randomBytes } from 'node:crypto';
import { join } from 'node:path';
import type { Endpoint } from '../bench/client.ts';
import { Pool } from '../bench/client.ts';
import { freePorts, killAndWait, makeTempDir, spawnChild, waitFor, WaitAborted } from '../bench/procs.ts';
import type { Child } from '../bench/procs.ts';
import { REPO_ROOT } from '../lib/local-cluster.ts';
import { basicAuth, pkcePair } from './html.ts';
import { BENCH_REDIRECT_URI, clientCredentialsCall, clientSecret, es256Jwk, packageVersion } from './target.ts';
import type { MintedCode, TokenServer } from './target.ts';

const START_TIMEOUT_MS = 60_000;
const EXIT_TIMEOUT_MS = 10_000;
/** Codes per /mint call (the server's limit is 5000). */
const MINT_BATCH = 1_000;
const MINT_TIMEOUT_MS = 60_000;

/** What ceiling-server.ts prints once every worker listens. */
const CEILING_READY = 'ceiling: every worker listens';

const here = (f: string) => join(REPO_ROOT, 'scripts', 'bench-oauth', f);

/** Wait until a client_credentials request at `ep` answers 200 (the server is up and its keys are loaded). */
async function waitServing(child: Child, ep: Endpoint, authorization: string, timeoutMs: number): Promise<void> {
  const pool = new Pool([ep], 1);
  try {
    await waitFor(
      `${child.name} to serve client_credentials`,
      async () => {
        if (!child.running) throw new WaitAborted(`${child.name} exited ${JSON.stringify(child.exit)}:\n${child.logTail()}`);
        const a = await pool.attempt(0, clientCredentialsCall(authorization), 2_000);
        if (a.status !== 200) throw new Error(`HTTP ${a.status} ${a.body.slice(0, 300)}`);
        return true;
      },
      timeoutMs,
    );
  } finally {
    pool.close();
  }
}

export class OidcProviderServer implements TokenServer {
  private readonly child: Child;
  private readonly controlPort: number;
  private readonly controlToken: string;
  readonly ccAuthorization: string;
  readonly webAuthorization: string;
  readonly system = 'oidc-provider' as const;
  readonly version = packageVersion('oidc-provider');
  readonly settings: Record<string, unknown>;
  readonly endpoints: readonly Endpoint[];

  private constructor(
    child: Child,
    port: number,
    controlPort: number,
    controlToken: string,
    ccAuthorization: string,
    webAuthorization: string,
  ) {
    this.child = child;
    this.controlPort = controlPort;
    this.controlToken = controlToken;
    this.ccAuthorization = ccAuthorization;
    this.webAuthorization = webAuthorization;
    this.endpoints = [{ member: 'oidc-provider', host: '127.0.0.1', port }];
    this.settings = {
      processes: 1,
      adapter: "oidc-provider's own in-memory adapter (lib/adapters/memory_adapter.js) over its LRU sized 4,000,000 entries (the default 1000 would evict the minted codes)",
      accessTokens: 'JWT, ES256 (features.resourceIndicators: default resource with accessTokenFormat jwt; useGrantedResource for code and refresh)',
      idTokens: 'ES256',
      rotateRefreshToken: true,
      clientAuth: 'client_secret_basic',
      codeMinting: 'Grant + AuthorizationCode saved through its models on a control endpoint (127.0.0.1), PKCE S256',
      ttl: { AccessToken: 600, AuthorizationCode: 600, IdToken: 3600, RefreshToken: 14 * 86_400 },
    };
  }

  static async start(parentDir: string): Promise<OidcProviderServer> {
    const dir = await makeTempDir('raftauth-bench-oidc-', parentDir);
    const [port, controlPort] = await freePorts(2);
    const cc = clientSecret();
    const web = clientSecret();
    const controlToken = randomBytes(32).toString('base64url');
    const child = spawnChild('oidc-provider', process.execPath, ['--import', 'tsx', here('oidc-provider-server.ts')], join(dir, 'oidc-provider.log'), {
      cwd: REPO_ROOT,
      env: {
        ...process.env,
        NODE_ENV: 'production',
        BENCH_OIDC_PORT: String(port),
        BENCH_OIDC_CONTROL_PORT: String(controlPort),
        BENCH_OIDC_CONTROL_TOKEN: controlToken,
        BENCH_OIDC_CC_SECRET: cc.secret,
        BENCH_OIDC_WEB_SECRET: web.secret,
        BENCH_OIDC_REDIRECT_URI: BENCH_REDIRECT_URI,
        BENCH_OIDC_JWK: JSON.stringify(es256Jwk()),
      },
    });
    const s = new OidcProviderServer(child, port!, controlPort!, controlToken, basicAuth('bench-cc', cc.secret), basicAuth('bench-web', web.secret));
    try {
      await waitServing(child, s.endpoints[0]!, s.ccAuthorization, START_TIMEOUT_MS);
    } catch (e) {
      await s.stop();
      throw e;
    }
    return s;
  }

  async mintCodes(n: number): Promise<MintedCode[]> {
    const out: MintedCode[] = [];
    while (out.length < n) {
      const pairs = Array.from({ length: Math.min(MINT_BATCH, n - out.length) }, () => pkcePair());
      const res = await fetch(`http://127.0.0.1:${this.controlPort}/mint`, {
        method: 'POST',
        headers: { authorization: `Bearer ${this.controlToken}`, 'content-type': 'application/json' },
        body: JSON.stringify({ challenges: pairs.map((p) => p.challenge) }),
        signal: AbortSignal.timeout(MINT_TIMEOUT_MS),
      });
      const body = (await res.json()) as { codes?: string[]; error?: string };
      if (res.status !== 200 || !Array.isArray(body.codes) || body.codes.length !== pairs.length) throw new Error(`oidc-provider /mint: HTTP ${res.status} ${JSON.stringify(body).slice(0, 300)}`);
      body.codes.forEach((code, i) => out.push({ code, verifier: pairs[i]!.verifier }));
    }
    return out;
  }

  async stop(): Promise<void> {
    await killAndWait(this.child, EXIT_TIMEOUT_MS);
    this.child.closeLog();
  }
}

export class CeilingServer implements TokenServer {
  private readonly child: Child;
  readonly ccAuthorization: string;
  readonly system = 'ceiling' as const;
  readonly version = `node ${process.version}`;
  readonly settings: Record<string, unknown>;
  readonly endpoints: readonly Endpoint[];
  readonly webAuthorization = null;

  private constructor(
    child: Child,
    port: number,
    workers: number,
    ccAuthorization: string,
  ) {
    this.child = child;
    this.ccAuthorization = ccAuthorization;
    this.endpoints = [{ member: 'ceiling', host: '127.0.0.1', port }];
    this.settings = {
      workers,
      server: 'node:http on node:cluster workers sharing one port (the primary distributes connections)',
      work: 'HTTP Basic secret checked against its SHA-256 (timingSafeEqual), an ES256 JWT signed with node:crypto (ieee-p1363); nothing else',
    };
  }

  static async start(parentDir: string, workers: number): Promise<CeilingServer> {
    const dir = await makeTempDir('raftauth-bench-ceiling-', parentDir);
    const [port] = await freePorts(1);
    const cc = clientSecret();
    const child = spawnChild('ceiling', process.execPath, ['--import', 'tsx', here('ceiling-server.ts')], join(dir, 'ceiling.log'), {
      cwd: REPO_ROOT,
      env: {
        ...process.env,
        BENCH_CEILING_PORT: String(port),
        BENCH_CEILING_WORKERS: String(workers),
        BENCH_CEILING_CLIENT_ID: 'bench-cc',
        BENCH_CEILING_SECRET_HASH: cc.hash,
        BENCH_CEILING_JWK: JSON.stringify(es256Jwk()),
        BENCH_CEILING_ISSUER: `http://127.0.0.1:${port}`,
      },
    });
    const s = new CeilingServer(child, port!, workers, basicAuth('bench-cc', cc.secret));
    try {
      await waitServing(child, s.endpoints[0]!, s.ccAuthorization, START_TIMEOUT_MS);
      // Every worker must listen before the load starts, or the first seconds measure fewer processes.
      await waitFor('every ceiling worker to listen', async () => child.logTail().includes(CEILING_READY), START_TIMEOUT_MS);
    } catch (e) {
      await s.stop();
      throw e;
    }
    return s;
  }

  mintCodes(): Promise<MintedCode[]> {
    return Promise.reject(new Error('the ceiling serves client_credentials only'));
  }

  async stop(): Promise<void> {
    await killAndWait(this.child, EXIT_TIMEOUT_MS);
    this.child.closeLog();
  }
}
