// The benchmark's headless browser on raftauth's sign-in pages (set-up only: nothing here is
// measured): enrollment of a TOTP factor or a WebAuthn credential through the enrollment routes
// (src/oauth/mfa.ts), and "prepared" sign-ins — a password login whose answer is the second-factor
// page, ready for the one measured POST (its cookies, sealed interaction and CSRF value kept).
//
// Every authorization request uses response_mode=form_post (OAuth 2.0 Form Post Response Mode),
// so the answer that completes a sign-in is a 200 page carrying the code, which the load runner's
// 200-is-success rule (scripts/bench-oauth/load.ts) can judge with the page's body (CodePool);
// with the default query mode it would be a 303 whose Location the runner cannot see.
import { AttemptError, Pool } from '../bench/client.ts';
import type { Answer, HttpCall } from '../bench/client.ts';
import { CookieJar, findLoginForm, loginSubmission, pkcePair } from '../bench-oauth/html.ts';
import { BENCH_REDIRECT_URI, FORM } from '../bench-oauth/target.ts';
import type { AuthenticationResponseJSON, PublicKeyCredentialCreationOptionsJSON, PublicKeyCredentialRequestOptionsJSON } from '@simplewebauthn/server';
import { MFA_PATHS } from '../../src/oauth/mfa-pages.ts';
import { totpCodeAt, totpStep } from '../../src/mfa/totp.ts';
import { SoftAuthenticator } from '../../test/unit/mfa/soft-authenticator.ts';
import { formFor, hasAuthorizationCode, pageTitle, totpSecretOf, webauthnOptionsOf } from './pages.ts';
import type { StepUser } from './schedule.ts';

export const BENCH_CLIENT_ID = 'bench-mfa';
const REQUEST_TIMEOUT_MS = 30_000;
/** What the TOTP and WebAuthn pages are titled (src/oauth/mfa-pages.ts). */
const VERIFY_TITLE = 'Two-step verification';

export class FlowError extends Error {}

interface Page {
  readonly status: number;
  readonly text: string;
}

/** One browser (its own cookies) talking to one node. */
class Browser {
  readonly base: string;
  private readonly jar = new CookieJar();
  constructor(base: string) {
    this.base = base;
  }

  get cookie(): string {
    return this.jar.header();
  }

  async request(path: string, body?: Record<string, string>): Promise<Page> {
    const headers: Record<string, string> = {};
    if (this.jar.size > 0) headers.cookie = this.jar.header();
    if (body !== undefined) headers['content-type'] = FORM;
    let res: Response;
    try {
      res = await fetch(`${this.base}${path}`, {
        method: body === undefined ? 'GET' : 'POST',
        headers,
        ...(body !== undefined ? { body: new URLSearchParams(body).toString() } : {}),
        redirect: 'manual',
        signal: AbortSignal.timeout(REQUEST_TIMEOUT_MS),
      });
    } catch (e) {
      // undici says only "fetch failed"; the reason (ECONNREFUSED, a timeout, …) is its cause.
      const cause = (e as { cause?: { code?: string; message?: string } }).cause;
      throw new FlowError(`${body === undefined ? 'GET' : 'POST'} ${this.base}${path.split('?')[0]}: ${cause?.code ?? cause?.message ?? (e as Error).message}`);
    }
    this.jar.store(res.headers.getSetCookie());
    return { status: res.status, text: await res.text() };
  }

  /** Post the page's form whose action is `path` with its hidden fields, plus `extra`. */
  async submit(page: Page, path: string, extra: Record<string, string> = {}): Promise<Page> {
    const f = formFor(page.text, path);
    if (f === null) throw new FlowError(`expected a page with a form to ${path}, got HTTP ${page.status} "${pageTitle(page.text) ?? ''}": ${page.text.slice(0, 300)}`);
    return this.request(path, { ...f.fields, ...extra });
  }
}

function expect(page: Page, status: number, title: string, what: string): Page {
  if (page.status !== status || pageTitle(page.text) !== title) {
    throw new FlowError(`${what}: expected HTTP ${status} "${title}", got HTTP ${page.status} "${pageTitle(page.text) ?? ''}": ${page.text.slice(0, 400)}`);
  }
  return page;
}

/** GET /authorize (form_post, PKCE) then the login form: the page the password leads to. */
async function signIn(b: Browser, username: string, password: string): Promise<Page> {
  const q = new URLSearchParams({
    response_type: 'code',
    response_mode: 'form_post',
    client_id: BENCH_CLIENT_ID,
    redirect_uri: BENCH_REDIRECT_URI,
    scope: 'openid',
    state: 'bench',
    code_challenge: pkcePair().challenge,
    code_challenge_method: 'S256',
  });
  const login = expect(await b.request(`/authorize?${q}`), 200, 'Sign in', 'GET /authorize');
  const form = findLoginForm(login.text);
  if (form === null) throw new FlowError('the sign-in page has no login form');
  const action = new URL(form.action || '/login', 'http://page.invalid/');
  return b.request(`${action.pathname}${action.search}`, Object.fromEntries(new URLSearchParams(loginSubmission(form, username, password))));
}

/** Whether `node` shows the sign-in page for the benchmark's client (its OAuth side is up and has the client). */
export async function signInPageReady(node: string): Promise<boolean> {
  const q = new URLSearchParams({ response_type: 'code', client_id: BENCH_CLIENT_ID, redirect_uri: BENCH_REDIRECT_URI, scope: 'openid', code_challenge: pkcePair().challenge, code_challenge_method: 'S256' });
  const p = await new Browser(node).request(`/authorize?${q}`);
  if (p.status !== 200 || pageTitle(p.text) !== 'Sign in') throw new FlowError(`HTTP ${p.status} "${pageTitle(p.text) ?? ''}"`);
  return true;
}

/** The enrollment pages end with the recovery codes, shown once (the first factor of the user). */
const RECOVERY_TITLE = 'Your recovery codes';
const CHOICE_TITLE = 'Set up two-step verification';

/**
 * A user's first sign-in on a client that requires MFA: the enrollment choice, the authenticator
 * app's QR page, the first code. Returns the secret and the step that code spent.
 */
export async function enrollTotp(node: string, username: string, password: string): Promise<{ secret: string; step: number }> {
  const b = new Browser(node);
  const choice = expect(await signIn(b, username, password), 200, CHOICE_TITLE, `${username}: the password`);
  const qr = expect(await b.submit(choice, MFA_PATHS.enrollTotp), 200, 'Set up your authenticator app', `${username}: TOTP enrollment`);
  const secret = totpSecretOf(qr.text);
  if (secret === null) throw new FlowError(`${username}: the enrollment page shows no secret`);
  const step = totpStep(Date.now());
  expect(await b.submit(qr, MFA_PATHS.enrollTotpConfirm, { code: totpCodeAt(secret, step) }), 200, RECOVERY_TITLE, `${username}: the first TOTP code`);
  return { secret, step };
}

/** A user's first sign-in: the enrollment choice, the registration page, the soft authenticator's attestation. */
export async function enrollWebAuthn(node: string, username: string, password: string, soft: SoftAuthenticator): Promise<void> {
  const b = new Browser(node);
  const choice = expect(await signIn(b, username, password), 200, CHOICE_TITLE, `${username}: the password`);
  const reg = expect(await b.submit(choice, MFA_PATHS.enrollWebauthn), 200, 'Register a security key', `${username}: WebAuthn enrollment`);
  const options = webauthnOptionsOf(reg.text);
  if (options === null) throw new FlowError(`${username}: the registration page has no options`);
  const response = soft.create(options as unknown as PublicKeyCredentialCreationOptionsJSON);
  expect(await b.submit(reg, MFA_PATHS.enrollWebauthnFinish, { response: JSON.stringify(response), name: 'bench key' }), 200, RECOVERY_TITLE, `${username}: the attestation`);
}

/** A sign-in waiting at its second-factor page: what the one measured POST needs. */
export interface Prepared {
  readonly cookie: string;
  /** The page form's hidden fields (interaction, csrf, …). */
  readonly fields: Readonly<Record<string, string>>;
}

export interface TotpUser extends StepUser {
  readonly index: number;
  readonly username: string;
  readonly secret: string;
}

export interface WebAuthnUser {
  readonly index: number;
  readonly username: string;
  readonly soft: SoftAuthenticator;
}

/** Password login of a user with TOTP: the TOTP page. */
export async function prepareTotp(node: string, u: TotpUser, password: string): Promise<Prepared & { readonly user: TotpUser }> {
  const b = new Browser(node);
  const page = expect(await signIn(b, u.username, password), 200, VERIFY_TITLE, `${u.username}: the password`);
  const f = formFor(page.text, MFA_PATHS.totp);
  if (f === null) throw new FlowError(`${u.username}: the verification page has no TOTP form`);
  return { user: u, cookie: b.cookie, fields: f.fields };
}

/** Password login of a user with a WebAuthn credential: the WebAuthn page and its request options (a stored challenge, 5 minutes). */
export async function prepareWebAuthn(node: string, u: WebAuthnUser, password: string): Promise<Prepared & { readonly user: WebAuthnUser; readonly options: PublicKeyCredentialRequestOptionsJSON }> {
  const b = new Browser(node);
  const page = expect(await signIn(b, u.username, password), 200, VERIFY_TITLE, `${u.username}: the password`);
  const f = formFor(page.text, MFA_PATHS.webauthn);
  const options = webauthnOptionsOf(page.text);
  if (f === null || options === null) throw new FlowError(`${u.username}: the verification page has no WebAuthn form or options`);
  return { user: u, cookie: b.cookie, fields: f.fields, options: options as unknown as PublicKeyCredentialRequestOptionsJSON };
}

function formCall(path: string, p: Prepared, extra: Record<string, string>): HttpCall {
  return { method: 'POST', path, headers: { cookie: p.cookie, 'content-type': FORM }, body: Buffer.from(new URLSearchParams({ ...p.fields, ...extra }).toString()) };
}

/** The measured TOTP request: the code of `step` for the prepared sign-in's user. */
export function totpCall(p: Prepared & { readonly user: TotpUser }, step: number): HttpCall {
  return formCall(MFA_PATHS.totp, p, { code: totpCodeAt(p.user.secret, step) });
}

/** The measured WebAuthn request: an assertion over the page's challenge, signed now (the counter grows in sending order). */
export function webauthnCall(p: Prepared & { readonly user: WebAuthnUser; readonly options: PublicKeyCredentialRequestOptionsJSON }): HttpCall {
  const response: AuthenticationResponseJSON = p.user.soft.get(p.options);
  return formCall(MFA_PATHS.webauthn, p, { response: JSON.stringify(response) });
}

/** The measured requests' client: a 200 that is not the authorization response (a code) is an error too. */
export class CodePool extends Pool {
  static readonly NO_CODE = 'HTTP 200 without an authorization code';

  override async attempt(i: number, call: HttpCall, timeoutMs: number): Promise<Answer> {
    const a = await super.attempt(i, call, timeoutMs);
    if (a.status === 200 && !hasAuthorizationCode(a.body)) throw new AttemptError(CodePool.NO_CODE);
    return a;
  }
}

/** Run `work` over `items`, `concurrency` at a time, in order of start; results in item order. */
export async function inParallel<T, R>(items: readonly T[], concurrency: number, work: (t: T, i: number) => Promise<R>): Promise<R[]> {
  const out = new Array<R>(items.length);
  let next = 0;
  const worker = async (): Promise<void> => {
    while (next < items.length) {
      const i = next++;
      out[i] = await work(items[i]!, i);
    }
  };
  await Promise.all(Array.from({ length: Math.min(concurrency, items.length) }, () => worker()));
  return out;
}

export { SoftAuthenticator };
