// What the OAuth benchmark needs of a token server under test (raftauth, oidc-provider, the bare
// ceiling), and the token requests of the three grants, spelled the same for every server.
import { createHash, generateKeyPairSync, randomBytes } from 'node:crypto';
import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import type { Endpoint, HttpCall } from '../bench/client.ts';
import type { OAuthSystem } from './summary.ts';

/** The repository (as scripts/lib/local-cluster.ts derives it; not imported from there to keep this module light). */
export const REPO_ROOT = fileURLToPath(new URL('../..', import.meta.url));

export const TOKEN_PATH = '/token';
export const FORM = 'application/x-www-form-urlencoded';
/** The scope of client_credentials requests, on every server. */
export const CC_SCOPE = 'api:read';
/** The scope of the code flow (and so of every refresh family): an OpenID login with a refresh token and an API scope. */
export const CODE_SCOPE = 'openid offline_access api:read';
/** Redirect URI of the benchmark's web client: nothing listens there, the benchmark reads the Location header. */
export const BENCH_REDIRECT_URI = 'http://127.0.0.1:9/bench/callback';

export interface MintedCode {
  readonly code: string;
  /** The PKCE verifier of the code's S256 challenge (RFC 7636 §4.1). */
  readonly verifier: string;
}

export interface TokenServer {
  readonly system: OAuthSystem;
  readonly version: string;
  /** Settings that decide the numbers, copied into the report. */
  readonly settings: Record<string, unknown>;
  /** Where the load goes, round robin. */
  readonly endpoints: readonly Endpoint[];
  /** `Authorization` of the client_credentials client (client_secret_basic). */
  readonly ccAuthorization: string;
  /** `Authorization` of the web client (code and refresh grants); null when the server has only client_credentials. */
  readonly webAuthorization: string | null;
  /** Mint `n` authorization codes for the web client, each with its own PKCE pair, `concurrency` at a time. */
  mintCodes(n: number, concurrency: number): Promise<MintedCode[]>;
  stop(): Promise<void>;
}

export function tokenCall(authorization: string, form: Record<string, string>): HttpCall {
  return { method: 'POST', path: TOKEN_PATH, headers: { authorization, 'content-type': FORM }, body: Buffer.from(new URLSearchParams(form).toString()) };
}

export function clientCredentialsCall(authorization: string): HttpCall {
  return tokenCall(authorization, { grant_type: 'client_credentials', scope: CC_SCOPE });
}

export function codeCall(authorization: string, c: MintedCode): HttpCall {
  return tokenCall(authorization, { grant_type: 'authorization_code', code: c.code, redirect_uri: BENCH_REDIRECT_URI, code_verifier: c.verifier });
}

export function refreshCall(authorization: string, refreshToken: string): HttpCall {
  return tokenCall(authorization, { grant_type: 'refresh_token', refresh_token: refreshToken });
}

/** A fresh EC P-256 private JWK for ES256 (RFC 7518 §3.4), with kid, alg and use. */
export function es256Jwk(): Record<string, unknown> {
  const { privateKey } = generateKeyPairSync('ec', { namedCurve: 'P-256' });
  return { ...privateKey.export({ format: 'jwk' }), kid: randomBytes(8).toString('base64url'), alg: 'ES256', use: 'sig' };
}

/** A 256-bit client secret and its stored form (base64url SHA-256, as raftauth keeps it). */
export function clientSecret(): { secret: string; hash: string } {
  const secret = randomBytes(32).toString('base64url');
  return { secret, hash: createHash('sha256').update(secret, 'utf8').digest('base64url') };
}

export function packageVersion(name: string): string {
  try {
    return (JSON.parse(readFileSync(join(REPO_ROOT, 'node_modules', name, 'package.json'), 'utf8')) as { version: string }).version;
  } catch {
    return 'unknown';
  }
}
