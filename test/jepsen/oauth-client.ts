// A headless OAuth client for the auth workloads: the code flow with PKCE through the login form
// (RFC 6749 §4.1, RFC 7636), code redemption and refresh (§6) at any chosen node. Every request
// goes to one node's own address; a redirect to the issuer (a loopback URL, see cluster.ts ISSUER)
// is resolved against that node instead.
//
// Outcomes (history.ts): 200 → ok; 400 → fail (refused, e.g. invalid_grant: the server decided,
// nothing was issued); connection refused → fail (never sent); 5xx (temporarily_unavailable:
// the deadline passed, the decision may still be applied), a lost connection or a client timeout →
// info. Tokens are recorded by fingerprint (sha256, 12 hex digits), never in clear.
import { createHash, randomBytes } from 'node:crypto';
import { request } from 'node:http';
import { HttpFailure } from '../cluster/harness.ts';
import { HTTP_PORT, ISSUER } from './cluster.ts';
import type { NodeCluster } from './cluster.ts';
import { nodeIp } from './hosts.ts';
import type { Outcome } from './history.ts';

export const CLIENT_ID = 'jepsen-rp';
export const REDIRECT_URI = 'http://127.0.0.1:9/cb';
export const USERNAME = 'jepsen';
const PASSWORD = 'jepsen partition suite password';
/** The client's deadline of one OAuth request (the node's own deadline is http.requestTimeoutMs). */
export const OAUTH_TIMEOUT_MS = 4_000;
const MAX_BODY_BYTES = 256 * 1024;
const MAX_REDIRECTS = 8;
/** How long the setup may wait for a fresh cluster to accept clients and users. */
const SETUP_TIMEOUT_MS = 30_000;

export function fingerprint(token: string): string {
  return createHash('sha256').update(token).digest('hex').slice(0, 12);
}

export interface RawResponse {
  readonly status: number;
  readonly headers: Record<string, string | string[] | undefined>;
  readonly text: string;
}

function httpRaw(node: number, method: string, path: string, opts: { headers?: Record<string, string>; form?: Record<string, string>; localAddress?: string } = {}): Promise<RawResponse> {
  const payload = opts.form ? Buffer.from(new URLSearchParams(opts.form).toString()) : undefined;
  return new Promise<RawResponse>((resolve, reject) => {
    let connected = false;
    const req = request(
      {
        host: nodeIp(node),
        port: HTTP_PORT,
        method,
        path,
        agent: false,
        ...(opts.localAddress !== undefined ? { localAddress: opts.localAddress } : {}),
        headers: { connection: 'close', ...(payload ? { 'content-type': 'application/x-www-form-urlencoded', 'content-length': String(payload.length) } : {}), ...opts.headers },
      },
      (res) => {
        const chunks: Buffer[] = [];
        let size = 0;
        res.on('data', (c: Buffer) => {
          size += c.length;
          if (size > MAX_BODY_BYTES) req.destroy(new Error('response too large'));
          else chunks.push(c);
        });
        res.on('error', (e) => reject(new HttpFailure('lost', (e as NodeJS.ErrnoException).code ?? 'ERR', e.message)));
        res.on('end', () => {
          clearTimeout(timer);
          resolve({ status: res.statusCode ?? 0, headers: res.headers, text: Buffer.concat(chunks).toString('utf8') });
        });
      },
    );
    req.on('socket', (s) => s.on('connect', () => (connected = true)));
    const timer = setTimeout(() => req.destroy(Object.assign(new Error(`no answer within ${OAUTH_TIMEOUT_MS} ms`), { code: 'TIMEOUT' })), OAUTH_TIMEOUT_MS);
    req.on('error', (e: NodeJS.ErrnoException) => {
      clearTimeout(timer);
      const code = e.code ?? 'ERR';
      reject(new HttpFailure(code === 'ECONNREFUSED' && !connected ? 'refused' : 'lost', code, `${method} node ${node} ${path}: ${code}: ${e.message}`));
    });
    if (payload) req.write(payload);
    req.end();
  });
}

function json(text: string): Record<string, unknown> {
  try {
    const v = JSON.parse(text) as unknown;
    return typeof v === 'object' && v !== null ? (v as Record<string, unknown>) : {};
  } catch {
    return {};
  }
}

/** Create the client and the user through the admin API of the leader (following NOT_LEADER). */
export async function setupOAuth(cluster: NodeCluster, leader: number): Promise<void> {
  let at = leader;
  const post = async (path: string, body: unknown): Promise<void> => {
    // A fresh cluster answers 503 until its leader has created the data key: retry until then.
    const deadline = performance.now() + SETUP_TIMEOUT_MS;
    let last = '';
    while (performance.now() < deadline) {
      const r = await cluster.admin(at, 'POST', path, body);
      if (r.status === 201) return;
      last = `HTTP ${r.status} ${JSON.stringify(r.body)}`;
      if (r.status === 409 && typeof r.body.leader === 'number' && r.body.leader > 0) at = r.body.leader;
      else if (r.status !== 503) break;
      else await new Promise((resolve) => setTimeout(resolve, 200));
    }
    throw new Error(`admin POST ${path} on node ${at}: ${last}`);
  };
  await post('/admin/v1/clients', {
    client_id: CLIENT_ID,
    client_name: 'Jepsen RP',
    token_endpoint_auth_method: 'none',
    redirect_uris: [REDIRECT_URI],
    grant_types: ['authorization_code', 'refresh_token'],
    scopes: ['api:read', 'offline_access'],
    first_party: true,
  });
  await post('/admin/v1/users', { username: USERNAME, password: PASSWORD, name: 'Jepsen', email: 'jepsen@example.com', email_verified: true });
}

export function parseForm(html: string): { action: string; fields: Record<string, string>; inputs: { name: string; type: string }[] } | null {
  const form = /<form\b([^>]*)>([\s\S]*?)<\/form>/i.exec(html);
  if (!form) return null;
  const attr = (tag: string, name: string): string | null => {
    const m = new RegExp(`\\b${name}\\s*=\\s*("([^"]*)"|'([^']*)')`, 'i').exec(tag);
    return m ? (m[2] ?? m[3] ?? '').replace(/&quot;/g, '"').replace(/&#39;/g, "'").replace(/&#x27;/g, "'").replace(/&lt;/g, '<').replace(/&gt;/g, '>').replace(/&amp;/g, '&') : null;
  };
  const fields: Record<string, string> = {};
  const inputs: { name: string; type: string }[] = [];
  for (const m of form[2]!.matchAll(/<(input|button)\b([^>]*)>/gi)) {
    const name = attr(m[2]!, 'name');
    if (!name) continue;
    const type = (attr(m[2]!, 'type') ?? (m[1]!.toLowerCase() === 'button' ? 'submit' : 'text')).toLowerCase();
    inputs.push({ name, type });
    if (type !== 'submit') fields[name] = attr(m[2]!, 'value') ?? '';
  }
  return { action: attr(form[1]!, 'action') ?? '', fields, inputs };
}

/** The server answered the authorization request with a refusal (an error redirect, a 4xx page). */
export class AuthorizeRefused extends Error {}

/** A user agent with a cookie jar; a session made on one node is valid on every node (replicated). */
export class Browser {
  private readonly localAddress?: string;
  private readonly jar = new Map<string, string>();

  /** `localAddress`: the client address the requests leave from (the nodes throttle per client IP). */
  constructor(localAddress?: string) {
    this.localAddress = localAddress;
  }

  /** Path and query of `url` (relative, or absolute on the issuer or on a node). */
  private static path(url: string): string {
    const u = new URL(url, ISSUER);
    return u.pathname + u.search;
  }

  async fetch(node: number, url: string, form?: Record<string, string>): Promise<RawResponse> {
    const headers: Record<string, string> = {};
    if (this.jar.size > 0) headers.cookie = [...this.jar].map(([k, v]) => `${k}=${v}`).join('; ');
    const r = await httpRaw(node, form ? 'POST' : 'GET', Browser.path(url), { headers, ...(form ? { form } : {}), ...(this.localAddress !== undefined ? { localAddress: this.localAddress } : {}) });
    const set = r.headers['set-cookie'];
    for (const c of Array.isArray(set) ? set : set ? [set] : []) {
      const [pair, ...attrs] = c.split(';');
      const i = pair!.indexOf('=');
      const name = pair!.slice(0, i).trim();
      const value = pair!.slice(i + 1).trim();
      if (value === '' || attrs.some((a) => /^\s*max-age=0\s*$/i.test(a))) this.jar.delete(name);
      else this.jar.set(name, value);
    }
    return r;
  }

  /**
   * The code flow on `node` up to the authorization code: sign in if the login form comes up,
   * approve if a consent page does. Returns the code and the PKCE verifier.
   */
  async authorize(node: number): Promise<{ code: string; verifier: string }> {
    const verifier = randomBytes(32).toString('base64url');
    const challenge = createHash('sha256').update(verifier).digest('base64url');
    const state = randomBytes(12).toString('base64url');
    let url = `/authorize?${new URLSearchParams({ client_id: CLIENT_ID, redirect_uri: REDIRECT_URI, response_type: 'code', scope: 'api:read offline_access', code_challenge: challenge, code_challenge_method: 'S256', state })}`;
    let res = await this.fetch(node, url);
    for (let hops = 0; hops < MAX_REDIRECTS; hops++) {
      if (res.status >= 300 && res.status < 400) {
        const loc = String(res.headers.location ?? '');
        if (loc.startsWith(REDIRECT_URI)) {
          const q = new URL(loc).searchParams;
          const code = q.get('code');
          if (q.get('state') !== state) throw new Error(`authorize: state mismatch in ${loc.slice(0, 200)}`);
          if (!code) throw new AuthorizeRefused(`authorize: ${q.get('error') ?? 'no code'}: ${q.get('error_description') ?? ''}`);
          return { code, verifier };
        }
        url = new URL(loc, new URL(url, ISSUER)).toString();
        res = await this.fetch(node, url);
        continue;
      }
      if (res.status >= 400 && res.status < 500) throw new AuthorizeRefused(`authorize on node ${node}: HTTP ${res.status}`);
      if (res.status !== 200) throw new Error(`authorize on node ${node}: HTTP ${res.status} ${res.text.slice(0, 200)}`);
      const form = parseForm(res.text);
      if (form === null) throw new Error(`authorize on node ${node}: a page without a form: ${res.text.slice(0, 200)}`);
      const action = new URL(form.action || url, new URL(url, ISSUER)).toString();
      const pw = form.inputs.find((i) => i.type === 'password');
      if (pw) {
        const user = form.inputs.find((i) => i.type === 'text' || i.type === 'email' || i.name === 'username');
        if (!user) throw new Error('a login form without a username input');
        res = await this.fetch(node, action, { ...form.fields, [pw.name]: PASSWORD, [user.name]: USERNAME });
      } else if (form.inputs.some((i) => i.name === 'decision')) {
        res = await this.fetch(node, action, { ...form.fields, decision: 'approve' });
      } else {
        throw new Error(`authorize on node ${node}: an unexpected form: ${JSON.stringify(form.inputs)}`);
      }
      url = action;
    }
    throw new Error(`authorize on node ${node}: more than ${MAX_REDIRECTS} hops`);
  }
}

export interface TokenCall {
  readonly outcome: Outcome;
  readonly output: Record<string, unknown> | null;
  readonly error?: string;
  /** The refresh token issued, in clear for the workload's next step (History keeps it out of the file). */
  readonly secret?: string;
}

/** The `jti` claim of a JWT (payload decoded, not verified: only used to find its audit record), or null. */
export function jwtId(jwt: string): string | null {
  try {
    const p = JSON.parse(Buffer.from(jwt.split('.')[1] ?? '', 'base64url').toString('utf8')) as { jti?: unknown };
    return typeof p.jti === 'string' ? p.jti : null;
  } catch {
    return null;
  }
}

async function tokenRequest(node: number, form: Record<string, string>): Promise<TokenCall> {
  let r: RawResponse;
  try {
    r = await httpRaw(node, 'POST', '/token', { form });
  } catch (e) {
    if (e instanceof HttpFailure && e.kind === 'refused') return { outcome: 'fail', output: null, error: 'ECONNREFUSED' };
    return { outcome: 'info', output: null, error: e instanceof HttpFailure ? e.code : (e as Error).message };
  }
  const body = json(r.text);
  if (r.status === 200 && typeof body.access_token === 'string') {
    const rt = typeof body.refresh_token === 'string' ? body.refresh_token : undefined;
    // The access token's jti (RFC 9068 §2.2, not a credential) names the audit record of the
    // grant or rotation (token.issued / token.refreshed), which the audit checker looks for.
    return { outcome: 'ok', output: { access: fingerprint(body.access_token), refresh: rt ? fingerprint(rt) : null, jti: jwtId(body.access_token) }, ...(rt ? { secret: rt } : {}) };
  }
  if (r.status >= 400 && r.status < 500) return { outcome: 'fail', output: { error: body.error ?? null, description: body.error_description ?? null }, error: `${r.status} ${String(body.error)}` };
  return { outcome: 'info', output: null, error: `${r.status} ${String(body.error)}` };
}

export function redeemCode(node: number, code: string, verifier: string): Promise<TokenCall> {
  return tokenRequest(node, { grant_type: 'authorization_code', code, redirect_uri: REDIRECT_URI, code_verifier: verifier, client_id: CLIENT_ID });
}

export function refresh(node: number, refreshToken: string): Promise<TokenCall> {
  return tokenRequest(node, { grant_type: 'refresh_token', refresh_token: refreshToken, client_id: CLIENT_ID });
}

/** Whether node `id` serves the OAuth client (its read cache has the clients table). */
export async function clientKnown(node: number): Promise<boolean> {
  const r = await tokenRequest(node, { grant_type: 'refresh_token', refresh_token: 'x', client_id: CLIENT_ID });
  return r.outcome === 'fail' && r.output?.error === 'invalid_grant';
}

