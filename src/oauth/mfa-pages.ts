// The pages of the MFA prompt (src/oauth/mfa-policy.ts decides which one, src/oauth/mfa.ts
// answers their forms): a second factor to enter (TOTP, recovery code, WebAuthn), the factor
// choice, enrollment (TOTP with its QR code, WebAuthn registration), and new recovery codes.
//
// Every form carries the sealed interaction and the session's CSRF value (like the consent page).
// Same headers as every page (pages.ts sendPage). The WebAuthn pages run two scripts, both from
// our own origin (CSP script-src 'self', no inline script): the @simplewebauthn/browser bundle
// and our page script; the ceremony options travel in a JSON data block (not executed), and the
// authenticator's answer goes back in an ordinary form post, so no fetch and no connect-src.
import type { FastifyReply } from 'fastify';
import { esc, hidden, sendPage } from './pages.ts';

/** Ways to give a second factor. */
export type MfaMethod = 'totp' | 'webauthn' | 'recovery';

/** Paths of the MFA forms and assets, issuer-relative (src/oauth/mfa.ts registers them). */
export const MFA_PATHS = {
  choose: '/mfa/choose',
  totp: '/mfa/totp',
  recovery: '/mfa/recovery',
  webauthn: '/mfa/webauthn',
  enrollTotp: '/mfa/enroll/totp',
  enrollTotpConfirm: '/mfa/enroll/totp/confirm',
  enrollWebauthn: '/mfa/enroll/webauthn',
  enrollWebauthnFinish: '/mfa/enroll/webauthn/finish',
  continue: '/mfa/continue',
  browserLib: '/mfa/assets/simplewebauthn-browser.js',
  pageScript: '/mfa/assets/webauthn.js',
} as const;

/** What every MFA page carries. `path` turns an MFA_PATHS entry into the issuer-relative URL. */
export interface MfaPageCommon {
  readonly path: (p: string) => string;
  readonly interaction: string;
  readonly csrf: string;
  readonly userLabel: string;
  readonly formActions: readonly string[];
  readonly error?: string | null;
  readonly status?: number;
  /**
   * Why security keys and passkeys are not offered on this page although they would be (the
   * issuer is not a secure context, or its RP ID is an IP address: src/mfa/config.ts
   * webauthnUnavailable). Shown as a note; null or absent when there is nothing to explain.
   */
  readonly webauthnUnavailable?: string | null;
}

const METHOD_LABEL: Readonly<Record<MfaMethod, string>> = {
  totp: 'Use your authenticator app',
  webauthn: 'Use a security key or passkey',
  recovery: 'Use a recovery code',
};

function errorLine(error: string | null | undefined): string {
  return error === null || error === undefined ? '' : `<p class="error" role="alert">${esc(error)}</p>`;
}

function common(a: MfaPageCommon): string {
  return hidden('interaction', a.interaction) + hidden('csrf', a.csrf);
}

/** The other methods the user may switch to: one small form with a button per method. */
function alternatives(a: MfaPageCommon, methods: readonly MfaMethod[]): string {
  if (methods.length === 0) return '';
  const buttons = methods.map((m) => `<button type="submit" name="method" value="${m}">${esc(METHOD_LABEL[m])}</button>`).join('');
  return `<form method="post" action="${esc(a.path(MFA_PATHS.choose))}" class="alt">
${common(a)}
<p><small>Other ways to verify:</small></p>${buttons}
</form>`;
}

function webauthnNote(a: MfaPageCommon): string {
  return a.webauthnUnavailable === null || a.webauthnUnavailable === undefined ? '' : `<p class="note" id="webauthn-unavailable"><small>${esc(a.webauthnUnavailable)}</small></p>`;
}

function signedInAs(a: MfaPageCommon): string {
  return `<p><small>Signed in as ${esc(a.userLabel)}.</small></p>`;
}

/** RFC 6238 code entry (6 digits; autocomplete one-time-code lets password managers fill it). */
export function totpPage(reply: FastifyReply, a: MfaPageCommon & { readonly alternatives: readonly MfaMethod[] }): FastifyReply {
  const body = `<p>Enter the 6-digit code from your authenticator app.</p>${errorLine(a.error)}
<form method="post" action="${esc(a.path(MFA_PATHS.totp))}">
${common(a)}
<label for="code">Code</label><input type="text" id="code" name="code" inputmode="numeric" pattern="[0-9]{6}" maxlength="6" autocomplete="one-time-code" required autofocus>
<button type="submit">Verify</button>
</form>
${alternatives(a, a.alternatives)}${webauthnNote(a)}${signedInAs(a)}`;
  return sendPage(reply, 'Two-step verification', body, { formActions: a.formActions, status: a.status ?? 200 });
}

export function recoveryPage(reply: FastifyReply, a: MfaPageCommon & { readonly alternatives: readonly MfaMethod[] }): FastifyReply {
  const body = `<p>Enter one of your recovery codes. Each code works once.</p>${errorLine(a.error)}
<form method="post" action="${esc(a.path(MFA_PATHS.recovery))}">
${common(a)}
<label for="code">Recovery code</label><input type="text" id="code" name="code" autocomplete="off" autocapitalize="none" spellcheck="false" required autofocus>
<button type="submit">Verify</button>
</form>
${alternatives(a, a.alternatives)}${webauthnNote(a)}${signedInAs(a)}`;
  return sendPage(reply, 'Use a recovery code', body, { formActions: a.formActions, status: a.status ?? 200 });
}

/** JSON inside a <script type="application/json"> block: `<` escaped so no `</script>` can end it early. */
function jsonBlock(id: string, value: unknown): string {
  const text = JSON.stringify(value).replace(/</g, '\\u003c').replace(/\u2028/g, '\\u2028').replace(/\u2029/g, '\\u2029');
  return `<script type="application/json" id="${id}">${text}</script>`;
}

export interface WebAuthnPageArgs extends MfaPageCommon {
  readonly mode: 'register' | 'authenticate';
  /** PublicKeyCredentialCreationOptionsJSON or PublicKeyCredentialRequestOptionsJSON. */
  readonly options: unknown;
  readonly alternatives: readonly MfaMethod[];
  /** Why this page is shown (e.g. the request asks for a phishing-resistant sign-in). */
  readonly note?: string | null;
}

/**
 * The WebAuthn ceremony page: a button starts it (browsers want a user gesture), the page script
 * puts the authenticator's JSON answer in the form and posts it.
 */
export function webauthnPage(reply: FastifyReply, a: WebAuthnPageArgs): FastifyReply {
  const register = a.mode === 'register';
  const action = a.path(register ? MFA_PATHS.enrollWebauthnFinish : MFA_PATHS.webauthn);
  const intro = register
    ? '<p>Register a security key or a passkey (for example your device’s screen lock) for this account.</p>'
    : '<p>Use your security key or passkey to continue.</p>';
  const note = a.note === null || a.note === undefined ? '' : `<p>${esc(a.note)}</p>`;
  const name = register ? `<label for="name">Name for this key (optional)</label><input type="text" id="name" name="name" maxlength="64" autocomplete="off">` : '';
  const body = `${intro}${note}${errorLine(a.error)}
${jsonBlock('webauthn-options', a.options)}
<form method="post" action="${esc(action)}" id="webauthn-form" data-mode="${a.mode}">
${common(a)}${hidden('response', '')}
${name}
<button type="button" id="webauthn-start">${register ? 'Register security key or passkey' : 'Use security key or passkey'}</button>
</form>
<p id="webauthn-status" role="status"></p>
<noscript><p class="error">This step needs JavaScript: your browser talks to the security key through it.</p></noscript>
${alternatives(a, a.alternatives)}${signedInAs(a)}
<script src="${esc(a.path(MFA_PATHS.browserLib))}"></script>
<script src="${esc(a.path(MFA_PATHS.pageScript))}"></script>`;
  return sendPage(reply, register ? 'Register a security key' : 'Two-step verification', body, { formActions: a.formActions, status: a.status ?? 200, scriptSelf: true });
}

export interface PasskeySignInArgs {
  /** Where the assertion is posted (passkey-login.ts). */
  readonly action: string;
  readonly interaction: string;
  /** PublicKeyCredentialRequestOptionsJSON without allowCredentials (a discoverable-credential request). */
  readonly options: unknown;
  readonly path: (p: string) => string;
}

/**
 * The sign-in page's passkey option (trusted HTML for pages.ts loginPage): the same form, data
 * block and page script as the WebAuthn second-factor page (WEBAUTHN_PAGE_SCRIPT drives
 * #webauthn-form in 'authenticate' mode), posting to the passkey login route instead. No CSRF
 * field: like the password form, there is no session yet; the sealed interaction is bound to this
 * browser (interaction.ts).
 */
export function passkeySignInSection(a: PasskeySignInArgs): string {
  return `${jsonBlock('webauthn-options', a.options)}
<form method="post" action="${esc(a.action)}" id="webauthn-form" data-mode="authenticate">
${hidden('interaction', a.interaction)}${hidden('response', '')}
<p><small>Or, without a username or password:</small></p>
<button type="button" id="webauthn-start">Sign in with a passkey</button>
</form>
<p id="webauthn-status" role="status"></p>
<script src="${esc(a.path(MFA_PATHS.browserLib))}"></script>
<script src="${esc(a.path(MFA_PATHS.pageScript))}"></script>`;
}

/**
 * A user who must use a second factor and has none chooses what to set up: an authenticator app,
 * or a security key or passkey — the latter only where WebAuthn can work (a.webauthnUnavailable
 * null); elsewhere the page says why it is not offered.
 */
export function enrollChoicePage(reply: FastifyReply, a: MfaPageCommon & { readonly reason: string }): FastifyReply {
  const webauthn =
    a.webauthnUnavailable === null || a.webauthnUnavailable === undefined
      ? `<form method="post" action="${esc(a.path(MFA_PATHS.enrollWebauthn))}">
${common(a)}
<button type="submit">Register a security key or passkey</button>
</form>
`
      : webauthnNote(a);
  const body = `<p>${esc(a.reason)} Set up a second way to prove it is you.</p>${errorLine(a.error)}
<form method="post" action="${esc(a.path(MFA_PATHS.enrollTotp))}">
${common(a)}
<button type="submit">Set up an authenticator app</button>
</form>
${webauthn}${signedInAs(a)}`;
  return sendPage(reply, 'Set up two-step verification', body, { formActions: a.formActions, status: a.status ?? 200 });
}

/**
 * The request can only go on with a security key or passkey (acr_values asks for a phishing-
 * resistant sign-in, or the user's only factor is one), and WebAuthn cannot work on this issuer:
 * say so instead of starting a ceremony that can only fail with a SecurityError. No form: nothing
 * the user can do here gets further.
 */
export function webauthnUnavailablePage(reply: FastifyReply, a: MfaPageCommon & { readonly reason: string; readonly webauthnUnavailable: string }): FastifyReply {
  const body = `<p>${esc(a.reason)}</p>
<p class="error" role="alert" id="webauthn-unavailable">${esc(a.webauthnUnavailable)}</p>
<p>The administrator of this site can fix it by serving the site over https under a domain name (or at http://localhost for a local test). Until then this sign-in cannot be completed here: go back to the application.</p>
${signedInAs(a)}`;
  return sendPage(reply, 'Security key needed', body, { formActions: a.formActions, status: a.status ?? 400 });
}

export interface TotpEnrollPageArgs extends MfaPageCommon {
  /** SVG of the otpauth:// URI (trusted: made by the qrcode package from our own URI). */
  readonly qrSvg: string;
  /** base32 secret, shown for manual entry. */
  readonly secret: string;
  /** The sealed enrollment (secret and URI) the confirmation form carries back. */
  readonly enrollment: string;
}

export function totpEnrollPage(reply: FastifyReply, a: TotpEnrollPageArgs): FastifyReply {
  const grouped = a.secret.replace(/(.{4})/g, '$1 ').trim();
  const body = `<p>Scan this code with your authenticator app, or type the key below into it. Then enter the 6-digit code the app shows.</p>
<div class="qr">${a.qrSvg}</div>
<p>Key: <span class="code" id="totp-secret">${esc(grouped)}</span></p>${errorLine(a.error)}
<form method="post" action="${esc(a.path(MFA_PATHS.enrollTotpConfirm))}">
${common(a)}${hidden('enrollment', a.enrollment)}
<label for="code">Code</label><input type="text" id="code" name="code" inputmode="numeric" pattern="[0-9]{6}" maxlength="6" autocomplete="one-time-code" required autofocus>
<button type="submit">Confirm</button>
</form>
${signedInAs(a)}`;
  return sendPage(reply, 'Set up your authenticator app', body, { formActions: a.formActions, status: a.status ?? 200 });
}

/** New recovery codes, shown once; the user continues to the application with the button. */
export function recoveryCodesPage(reply: FastifyReply, a: MfaPageCommon & { readonly codes: readonly string[]; readonly note?: string | null }): FastifyReply {
  const note = a.note === null || a.note === undefined ? '' : `<p>${esc(a.note)}</p>`;
  const body = `${note}<p>Keep these recovery codes somewhere safe. Each one lets you sign in once if you lose your authenticator. They are shown only now.</p>
<ul class="codes" id="recovery-codes">${a.codes.map((c) => `<li>${esc(c)}</li>`).join('')}</ul>
<form method="post" action="${esc(a.path(MFA_PATHS.continue))}">
${common(a)}
<button type="submit">I have saved them — continue</button>
</form>`;
  return sendPage(reply, 'Your recovery codes', body, { formActions: a.formActions, status: a.status ?? 200 });
}

/**
 * The WebAuthn page script (served at MFA_PATHS.pageScript). ES5 on purpose: it runs as is in any
 * browser that has WebAuthn. Failures stay on the page (the user may retry or pick another method).
 */
export const WEBAUTHN_PAGE_SCRIPT = `(function () {
  'use strict';
  var form = document.getElementById('webauthn-form');
  var button = document.getElementById('webauthn-start');
  var status = document.getElementById('webauthn-status');
  var data = document.getElementById('webauthn-options');
  if (!form || !button || !status || !data) return;
  var lib = window.SimpleWebAuthnBrowser;
  if (!lib || !lib.browserSupportsWebAuthn()) {
    status.textContent = 'This browser does not support security keys or passkeys. Use another method.';
    button.disabled = true;
    return;
  }
  var options = JSON.parse(data.textContent);
  var register = form.getAttribute('data-mode') === 'register';
  button.addEventListener('click', function () {
    button.disabled = true;
    status.textContent = 'Follow your browser\\u2019s instructions\\u2026';
    var ceremony = register ? lib.startRegistration({ optionsJSON: options }) : lib.startAuthentication({ optionsJSON: options });
    ceremony.then(function (answer) {
      form.elements.namedItem('response').value = JSON.stringify(answer);
      form.submit();
    }, function (err) {
      button.disabled = false;
      status.textContent = 'That did not work (' + (err && err.name ? err.name : 'error') + '). Try again, or use another method.';
    });
  });
})();
`;
