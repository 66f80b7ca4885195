// Reading raftauth's MFA pages the way the benchmark's headless browser needs to: the form to post
// next (by its action) with its hidden fields, the TOTP secret shown at enrollment, the WebAuthn
// ceremony options, whether an answer is the authorization response (form_post page carrying a
// code), and why a verification was refused. Pure (unit-tested against the real page renderers in
// pages.test.ts). Form parsing is scripts/bench-oauth/html.ts's.
import { MAX_PAGE_CHARS, decodeEntities, parseForms } from '../bench-oauth/html.ts';

/** The <h1> of a page (sendPage puts the page title there), or null. */
export function pageTitle(html: string): string | null {
  const m = /<h1>([^<]*)<\/h1>/.exec(html.slice(0, MAX_PAGE_CHARS));
  return m ? decodeEntities(m[1]!) : null;
}

/** The first form whose action's path is `path`, as its path and its named fields (first value of each name). */
export function formFor(html: string, path: string): { action: string; fields: Record<string, string> } | null {
  for (const f of parseForms(html)) {
    let p: string;
    try {
      p = new URL(f.action, 'http://page.invalid/').pathname;
    } catch {
      continue;
    }
    if (p !== path) continue;
    const fields: Record<string, string> = {};
    for (const x of f.fields) if (x.type !== 'submit' && !(x.name in fields)) fields[x.name] = x.value;
    return { action: p, fields };
  }
  return null;
}

/** The base32 TOTP secret the enrollment page shows for manual entry (grouped by 4 there). */
export function totpSecretOf(html: string): string | null {
  const m = /id="totp-secret">([A-Z2-7 ]+)</.exec(html);
  return m ? m[1]!.replace(/ /g, '') : null;
}

/** The ceremony options of a WebAuthn page (the JSON data block the page script reads). */
export function webauthnOptionsOf(html: string): Record<string, unknown> | null {
  const m = /<script type="application\/json" id="webauthn-options">([\s\S]*?)<\/script>/.exec(html.slice(0, MAX_PAGE_CHARS));
  if (!m) return null;
  try {
    const v: unknown = JSON.parse(m[1]!);
    return typeof v === 'object' && v !== null && !Array.isArray(v) ? (v as Record<string, unknown>) : null;
  } catch {
    return null;
  }
}

/**
 * Whether `html` is the authorization response of response_mode=form_post (OAuth 2.0 Form Post
 * Response Mode §2: an auto-submitting form of hidden fields to the redirect URI) with a `code`
 * and no `error`: the sign-in went through. A cheap test on purpose: it runs on every measured
 * answer, in the process that also drives the load.
 */
export function hasAuthorizationCode(html: string): boolean {
  return /<input type="hidden" name="code" value="[^"]+">/.test(html) && !/<input type="hidden" name="error" /.test(html);
}

/** Why a second-factor form was refused, from the status and the page's message (src/oauth/mfa.ts). */
export function refusalReason(status: number, html: string): string {
  if (status === 429) return /locked/.test(html) ? 'locked' : 'throttled';
  if (/already used\. Wait for the next code/.test(html)) return 'totp_replay';
  if (/That code is not valid/.test(html)) return 'totp_invalid';
  if (/expired or was already used/.test(html)) return 'webauthn_challenge';
  if (/counter that went backwards/.test(html)) return 'webauthn_counter_regression';
  if (/could not be verified/.test(html)) return 'webauthn_invalid';
  if (status === 200 && pageTitle(html) === 'Sign in') return 'login_page';
  const t = pageTitle(html);
  return `HTTP ${status}${t ? ` ${t.slice(0, 60)}` : ''}`;
}
