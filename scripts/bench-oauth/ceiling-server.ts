// The ceiling of the client_credentials comparison (issue 5): a bare node:http server on N worker
// processes (node:cluster, the port shared by the primary) that checks an HTTP Basic client secret
// and answers a freshly signed ES256 JWT access token — and does nothing else: no form parsing
// beyond reading the body, no client lookup, no replication, no logging. What raftauth does on top
// of this is its price; the target is to keep half of this rate.
//
// Run by scripts/bench-oauth/ceiling.ts as its own process group:
//   node --import tsx scripts/bench-oauth/ceiling-server.ts
// with the settings in the environment (BENCH_CEILING_*). Binds 127.0.0.1 only.
import cluster from 'node:cluster';
import { createHash, createPrivateKey, randomUUID, sign, timingSafeEqual } from 'node:crypto';
import type { KeyObject } from 'node:crypto';
import { createServer } from 'node:http';

/** Largest request body read; a token request is well under 1 KiB. */
const MAX_BODY_BYTES = 16 * 1024;

interface CeilingEnv {
  readonly port: number;
  readonly workers: number;
  readonly clientId: string;
  /** base64url(SHA-256(secret)), as raftauth stores a client secret. */
  readonly secretHash: string;
  /** The private EC P-256 JWK (JSON), shared by every worker like one cluster-wide signing key. */
  readonly jwk: string;
  readonly issuer: string;
}

function readEnv(): CeilingEnv {
  const e = process.env;
  const need = (k: string): string => {
    const v = e[k];
    if (v === undefined || v === '') throw new Error(`${k} is not set`);
    return v;
  };
  return {
    port: Number(need('BENCH_CEILING_PORT')),
    workers: Number(need('BENCH_CEILING_WORKERS')),
    clientId: need('BENCH_CEILING_CLIENT_ID'),
    secretHash: need('BENCH_CEILING_SECRET_HASH'),
    jwk: need('BENCH_CEILING_JWK'),
    issuer: need('BENCH_CEILING_ISSUER'),
  };
}

const b64url = (b: Buffer | string) => Buffer.from(b).toString('base64url');

function serve(env: CeilingEnv): void {
  const jwk = JSON.parse(env.jwk) as { kid: string } & Record<string, unknown>;
  const key: KeyObject = createPrivateKey({ key: jwk, format: 'jwk' });
  const header = b64url(JSON.stringify({ alg: 'ES256', typ: 'at+jwt', kid: jwk.kid }));
  const expected = Buffer.from(env.secretHash, 'base64url');
  const unauthorized = JSON.stringify({ error: 'invalid_client', error_description: 'client authentication failed' });

  const server = createServer((req, res) => {
    let size = 0;
    req.on('data', (c: Buffer) => {
      size += c.length;
      if (size > MAX_BODY_BYTES) req.destroy();
    });
    req.on('end', () => {
      // RFC 6749 §2.3.1: Basic with the form-urlencoded id and secret.
      const auth = req.headers.authorization ?? '';
      let ok = false;
      if (auth.startsWith('Basic ')) {
        const dec = Buffer.from(auth.slice(6), 'base64').toString('utf8');
        const i = dec.indexOf(':');
        if (i > 0 && decodeURIComponent(dec.slice(0, i)) === env.clientId) {
          const got = createHash('sha256').update(decodeURIComponent(dec.slice(i + 1).replace(/\+/g, ' ')), 'utf8').digest();
          ok = got.length === expected.length && timingSafeEqual(got, expected);
        }
      }
      if (!ok) {
        res.writeHead(401, { 'content-type': 'application/json', 'www-authenticate': 'Basic realm="ceiling"', 'cache-control': 'no-store' });
        res.end(unauthorized);
        return;
      }
      const iat = Math.floor(Date.now() / 1000);
      // The claims raftauth puts in a client_credentials token (RFC 9068 §2.2).
      const payload = b64url(JSON.stringify({ iss: env.issuer, sub: env.clientId, aud: env.issuer, client_id: env.clientId, scope: 'api:read', jti: randomUUID(), iat, exp: iat + 600 }));
      const input = `${header}.${payload}`;
      // RFC 7518 §3.4: ES256 signatures are R || S (ieee-p1363), not DER.
      const sig = sign('sha256', Buffer.from(input), { key, dsaEncoding: 'ieee-p1363' });
      const body = JSON.stringify({ access_token: `${input}.${sig.toString('base64url')}`, token_type: 'Bearer', expires_in: 600, scope: 'api:read' });
      res.writeHead(200, { 'content-type': 'application/json', 'cache-control': 'no-store', pragma: 'no-cache' });
      res.end(body);
    });
  });
  server.keepAliveTimeout = 60_000;
  server.listen(env.port, '127.0.0.1');
}

const env = readEnv();
if (cluster.isPrimary) {
  for (let i = 0; i < env.workers; i++) cluster.fork();
  let listening = 0;
  cluster.on('listening', () => {
    // scripts/bench-oauth/children.ts waits for this line.
    if (++listening === env.workers) process.stdout.write('ceiling: every worker listens\n');
  });
  // A worker that dies is not replaced: a benchmark must not hide a crash behind a restart.
  cluster.on('exit', (w, code, signal) => {
    process.stderr.write(`ceiling worker ${w.process.pid} exited (code ${code}, signal ${signal})\n`);
    process.exitCode = 1;
  });
} else {
  serve(env);
}
