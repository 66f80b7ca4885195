// The server-rendered pages of the browser side: login, consent, device verification, logout,
// errors and the form_post response. Small HTML, no external resources (a CSP of default-src
// 'none' forbids them anyway), every interpolated value HTML-escaped by `esc`.
//
// Headers on every page:
// - Content-Security-Policy: nothing loads but inline styles; forms may only post to us (and, on
//   the pages of an authorization request, to the client's redirect origin: Chrome applies
//   form-action to the redirect that answers a form submission, so the 303 to redirect_uri after
//   login or consent needs it); no framing (clickjacking, RFC 9700 §4.16); no <base>.
// - X-Frame-Options DENY for browsers without frame-ancestors.
// - Cache-Control no-store: pages carry a CSRF value or an interaction, and shared caches must
//   never keep them (RFC 6749 §10.12 discusses CSRF; no-store keeps them out of history caches).
// - Referrer-Policy no-referrer: an authorization request's URL (state, code_challenge) must not
//   leak to another site through Referer.
import { randomToken } from '../crypto/tokens.ts';
import type { FastifyReply } from 'fastify';
import type { ClientRecord } from '../state/oauth-ops.ts';

/**
 * A request that ends on an error page rather than a redirect: no trustworthy redirect target
 * (RFC 6749 §4.1.2.1), or a form that fails its CSRF or browser-binding check. The browser side's
 * route error handler renders it.
 */
export class PageError extends Error {
  readonly status: number;
  readonly title: string;
  readonly code?: string;

  constructor(
    status: number,
    title: string,
    message: string,
    code?: string,
  ) {
    super(message);
    this.status = status;
    this.title = title;
    this.code = code;
    this.name = 'PageError';
  }
}

/** HTML-escape text for element content and double- or single-quoted attribute values. */
export function esc(s: string): string {
  return s.replace(/[&<>"'`]/g, (c) => `&#${c.charCodeAt(0)};`);
}

export interface PageOptions {
  readonly status?: number;
  /** Origins (or `scheme:` sources) forms on this page, or redirects answering them, may go to besides 'self'. */
  readonly formActions?: readonly string[];
  /** Nonce of the page's only inline script (the form_post auto-submit). */
  readonly scriptNonce?: string;
  /** Scripts from our own origin only (the WebAuthn pages: src/oauth/mfa-pages.ts); no inline script. */
  readonly scriptSelf?: boolean;
}

const STYLE = `body{font-family:system-ui,sans-serif;max-width:28rem;margin:3rem auto;padding:0 1rem;color:#222}
h1{font-size:1.4rem}label{display:block;margin:.8rem 0 .2rem}input[type=text],input[type=password]{width:100%;padding:.5rem;box-sizing:border-box}
.qr svg{width:14rem;height:14rem}.codes{font-family:monospace;font-size:1.1rem;columns:2}.alt button{margin-top:.4rem}
button{margin:1rem .5rem 0 0;padding:.5rem 1.2rem}.error{color:#a00}.code{font-family:monospace;font-size:1.4rem;letter-spacing:.1rem}
ul{padding-left:1.2rem}small{color:#666}`;

/** A CSP source for the origin of a URL: `https://host:port`, or `scheme:` for custom schemes (native apps, RFC 8252 §7.1). */
export function cspSource(url: string): string | null {
  let u: URL;
  try {
    u = new URL(url);
  } catch {
    return null;
  }
  if (u.origin !== 'null') return u.origin;
  return /^[a-z][a-z0-9+.-]*:$/.test(u.protocol) ? u.protocol : null;
}

function csp(opts: PageOptions): string {
  const actions = ["'self'", ...(opts.formActions ?? [])].join(' ');
  const script = opts.scriptNonce !== undefined ? `; script-src 'nonce-${opts.scriptNonce}'` : opts.scriptSelf === true ? "; script-src 'self'" : '';
  return `default-src 'none'; style-src 'unsafe-inline'${script}; form-action ${actions}; frame-ancestors 'none'; base-uri 'none'`;
}

/** Send a page with the security headers above. `body` is trusted HTML: build it with `esc`. */
export function sendPage(reply: FastifyReply, title: string, body: string, opts: PageOptions = {}): FastifyReply {
  const html = `<!DOCTYPE html>
<html lang="en"><head><meta charset="utf-8"><meta name="viewport" content="width=device-width, initial-scale=1">
<meta name="referrer" content="no-referrer"><title>${esc(title)}</title><style>${STYLE}</style></head>
<body>
<h1>${esc(title)}</h1>
${body}
</body></html>
`;
  return reply
    .code(opts.status ?? 200)
    .header('content-type', 'text/html; charset=utf-8')
    .header('cache-control', 'no-store')
    .header('pragma', 'no-cache')
    .header('x-frame-options', 'DENY')
    .header('x-content-type-options', 'nosniff')
    .header('referrer-policy', 'no-referrer')
    .header('content-security-policy', csp(opts))
    .send(html);
}

export function hidden(name: string, value: string): string {
  return `<input type="hidden" name="${esc(name)}" value="${esc(value)}">`;
}

/** What a scope lets the client do, in words (unknown scopes are shown by name). */
const SCOPE_TEXT: Readonly<Record<string, string>> = {
  openid: 'Confirm who you are (your account identifier)',
  profile: 'See your name',
  email: 'See your email address',
  offline_access: 'Keep access while you are away (refresh tokens)',
};

function scopeItems(scope: readonly string[]): string {
  if (scope.length === 0) return '<p>No specific permissions.</p>';
  return `<ul>${scope.map((s) => `<li>${esc(SCOPE_TEXT[s] ?? s)} <small>(${esc(s)})</small></li>`).join('')}</ul>`;
}

export function errorPage(reply: FastifyReply, status: number, title: string, message: string, code?: string): FastifyReply {
  const detail = code === undefined ? '' : `<p><small>Error: ${esc(code)}</small></p>`;
  return sendPage(reply, title, `<p>${esc(message)}</p>${detail}`, { status });
}

export interface LoginPageArgs {
  readonly action: string;
  readonly interaction: string;
  /** Who the sign-in is for (null on the device page's sign-in). */
  readonly client: ClientRecord | null;
  readonly username: string;
  readonly error: string | null;
  readonly formActions: readonly string[];
  readonly status?: number;
  /**
   * Trusted HTML of the passkey sign-in (mfa-pages.ts passkeySignInSection, built by
   * login-page.ts); its scripts come from our own origin (script-src 'self'). Absent: password only.
   */
  readonly passkey?: string | null;
}

export function loginPage(reply: FastifyReply, a: LoginPageArgs): FastifyReply {
  const who = a.client === null ? '<p>Sign in to connect a device.</p>' : `<p>Sign in to continue to <strong>${esc(a.client.client_name)}</strong>.</p>`;
  const err = a.error === null ? '' : `<p class="error" role="alert">${esc(a.error)}</p>`;
  const passkey = a.passkey ?? null;
  const body = `${who}${err}
<form method="post" action="${esc(a.action)}">
${hidden('interaction', a.interaction)}
<label for="username">Username</label><input type="text" id="username" name="username" value="${esc(a.username)}" autocomplete="username" required autofocus>
<label for="password">Password</label><input type="password" id="password" name="password" autocomplete="current-password" required>
<button type="submit">Sign in</button>
</form>${passkey === null ? '' : `\n${passkey}`}`;
  return sendPage(reply, 'Sign in', body, { formActions: a.formActions, status: a.status ?? 200, scriptSelf: passkey !== null });
}

export interface ConsentPageArgs {
  readonly action: string;
  readonly interaction: string;
  readonly csrf: string;
  readonly client: ClientRecord;
  readonly scope: readonly string[];
  readonly userLabel: string;
  readonly formActions: readonly string[];
}

export function consentPage(reply: FastifyReply, a: ConsentPageArgs): FastifyReply {
  const body = `<p><strong>${esc(a.client.client_name)}</strong> asks to:</p>
${scopeItems(a.scope)}
<p><small>Signed in as ${esc(a.userLabel)}.</small></p>
<form method="post" action="${esc(a.action)}">
${hidden('interaction', a.interaction)}${hidden('csrf', a.csrf)}
<button type="submit" name="decision" value="allow">Allow</button><button type="submit" name="decision" value="deny">Deny</button>
</form>`;
  return sendPage(reply, 'Allow access?', body, { formActions: a.formActions });
}

/**
 * OAuth 2.0 Form Post Response Mode §2: an HTML form, auto-submitted by an inline script (allowed
 * by its nonce alone), posting the response parameters to the redirect URI; a button for browsers
 * without script.
 */
export function formPostPage(reply: FastifyReply, redirectUri: string, params: Readonly<Record<string, string>>, formAction: string): FastifyReply {
  const nonce = randomToken(16);
  const inputs = Object.entries(params)
    .map(([k, v]) => hidden(k, v))
    .join('\n');
  const body = `<form method="post" action="${esc(redirectUri)}">
${inputs}
<noscript><p>Your browser does not run scripts: continue by hand.</p><button type="submit">Continue</button></noscript>
</form>
<script nonce="${nonce}">document.forms[0].submit();</script>`;
  return sendPage(reply, 'Continuing…', body, { formActions: [formAction], scriptNonce: nonce });
}

export function deviceEnterPage(reply: FastifyReply, action: string, error: string | null, value: string): FastifyReply {
  const err = error === null ? '' : `<p class="error" role="alert">${esc(error)}</p>`;
  const body = `<p>Enter the code shown on your device.</p>${err}
<form method="get" action="${esc(action)}">
<label for="user_code">Code</label><input type="text" id="user_code" name="user_code" value="${esc(value)}" autocomplete="off" autocapitalize="characters" spellcheck="false" required autofocus>
<button type="submit">Continue</button>
</form>`;
  return sendPage(reply, 'Connect a device', body, { status: error === null ? 200 : 400 });
}

export interface DeviceConfirmArgs {
  readonly action: string;
  readonly client: ClientRecord;
  readonly scope: readonly string[];
  readonly userCode: string;
  readonly csrf: string;
  readonly userLabel: string;
}

/** RFC 8628 §5.4: the user compares the code with the device's screen before approving (remote phishing). */
export function deviceConfirmPage(reply: FastifyReply, a: DeviceConfirmArgs): FastifyReply {
  const body = `<p><strong>${esc(a.client.client_name)}</strong> on a device asks to:</p>
${scopeItems(a.scope)}
<p>Only approve if your device shows this code:</p>
<p class="code">${esc(a.userCode)}</p>
<p><small>Signed in as ${esc(a.userLabel)}.</small></p>
<form method="post" action="${esc(a.action)}">
${hidden('user_code', a.userCode)}${hidden('csrf', a.csrf)}
<button type="submit" name="decision" value="approve">Approve</button><button type="submit" name="decision" value="deny">Deny</button>
</form>`;
  return sendPage(reply, 'Connect a device?', body);
}

export function messagePage(reply: FastifyReply, title: string, message: string, status = 200): FastifyReply {
  return sendPage(reply, title, `<p>${esc(message)}</p>`, { status });
}

export function logoutConfirmPage(reply: FastifyReply, action: string, csrf: string, userLabel: string): FastifyReply {
  const body = `<p>You are signed in as ${esc(userLabel)}.</p>
<form method="post" action="${esc(action)}">
${hidden('csrf', csrf)}
<button type="submit">Sign out</button>
</form>`;
  return sendPage(reply, 'Sign out?', body);
}
