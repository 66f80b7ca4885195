// The few pieces of a browser the benchmark needs to drive the code flow headlessly: read the login
// form out of a server-rendered page, keep cookies, and spell client authentication and PKCE the
// way the RFCs say. Pure functions (unit-tested in html.test.ts).
import { createHash, randomBytes } from 'node:crypto';

export interface HtmlForm {
  /** The form's action attribute, entities decoded ('' when absent: the page's own URL). */
  readonly action: string;
  /** Upper-cased method attribute (GET when absent, HTML §4.10.18.6). */
  readonly method: string;
  /** Named controls in document order: inputs (every type but unchecked checkboxes/radios) and buttons. */
  readonly fields: readonly HtmlField[];
}

export interface HtmlField {
  readonly tag: 'input' | 'button' | 'select' | 'textarea';
  readonly name: string;
  readonly type: string;
  readonly value: string;
}

/** Largest page parsed: a login page is a few KiB; anything far bigger is not one. */
export const MAX_PAGE_CHARS = 1024 * 1024;

const NAMED_ENTITIES: Record<string, string> = { amp: '&', lt: '<', gt: '>', quot: '"', apos: "'", nbsp: '\u00a0' };

/** Decode the character references a server's escaping produces (named basics, decimal, hex). */
export function decodeEntities(s: string): string {
  return s.replace(/&(#x[0-9a-fA-F]+|#[0-9]+|[a-zA-Z]+);/g, (m, ref: string) => {
    if (ref[0] === '#') {
      const cp = ref[1] === 'x' || ref[1] === 'X' ? parseInt(ref.slice(2), 16) : parseInt(ref.slice(1), 10);
      return Number.isInteger(cp) && cp >= 0 && cp <= 0x10ffff ? String.fromCodePoint(cp) : m;
    }
    return NAMED_ENTITIES[ref.toLowerCase()] ?? m;
  });
}

/** Attributes of one start tag's inside (`name="v"`, `name='v'`, `name=v`, bare `name`), names lower-cased, values decoded. */
export function parseAttributes(inside: string): Record<string, string> {
  const out: Record<string, string> = {};
  const re = /([^\s"'<>/=]+)(?:\s*=\s*(?:"([^"]*)"|'([^']*)'|([^\s"'=<>`]+)))?/g;
  for (let m = re.exec(inside); m !== null; m = re.exec(inside)) {
    const name = m[1]!.toLowerCase();
    if (name in out) continue; // HTML: the first occurrence of an attribute wins
    out[name] = decodeEntities(m[2] ?? m[3] ?? m[4] ?? '');
  }
  return out;
}

/** Every <form> of a page with its named controls. Comments and scripts are skipped. */
export function parseForms(html: string): HtmlForm[] {
  if (html.length > MAX_PAGE_CHARS) throw new RangeError(`page larger than ${MAX_PAGE_CHARS} characters`);
  const text = html.replace(/<!--[\s\S]*?-->/g, '').replace(/<script\b[\s\S]*?<\/script\s*>/gi, '');
  const forms: HtmlForm[] = [];
  const formRe = /<form\b([^>]*)>([\s\S]*?)<\/form\s*>/gi;
  for (let f = formRe.exec(text); f !== null; f = formRe.exec(text)) {
    const attrs = parseAttributes(f[1]!);
    const fields: HtmlField[] = [];
    const ctlRe = /<(input|button|select|textarea)\b([^>]*)>/gi;
    for (let c = ctlRe.exec(f[2]!); c !== null; c = ctlRe.exec(f[2]!)) {
      const tag = c[1]!.toLowerCase() as HtmlField['tag'];
      const a = parseAttributes(c[2]!);
      if (a.name === undefined || a.name === '' || 'disabled' in a) continue;
      const type = (a.type ?? (tag === 'button' ? 'submit' : 'text')).toLowerCase();
      if ((type === 'checkbox' || type === 'radio') && !('checked' in a)) continue;
      fields.push({ tag, name: a.name, type, value: a.value ?? '' });
    }
    forms.push({ action: attrs.action ?? '', method: (attrs.method ?? 'get').toUpperCase(), fields });
  }
  return forms;
}

/** The form that asks for a password (the login form), or null. */
export function findLoginForm(html: string): HtmlForm | null {
  return parseForms(html).find((f) => f.fields.some((x) => x.tag === 'input' && x.type === 'password')) ?? null;
}

/**
 * The urlencoded body a browser would submit for `form` with the user's entries: hidden and
 * pre-filled fields as they are, the text field that names a user filled with `username`, the
 * password field with `password`, and the first submit button (a browser submits the one clicked).
 */
export function loginSubmission(form: HtmlForm, username: string, password: string): string {
  const body = new URLSearchParams();
  let submitted = false;
  let userFilled = false;
  for (const f of form.fields) {
    if (f.type === 'submit' || f.type === 'image') {
      if (!submitted) body.append(f.name, f.value);
      submitted = true;
      continue;
    }
    if (f.type === 'password') body.append(f.name, password);
    else if (!userFilled && f.tag === 'input' && ['text', 'email'].includes(f.type) && /user|login|email|name/i.test(f.name)) {
      body.append(f.name, username);
      userFilled = true;
    } else body.append(f.name, f.value);
  }
  if (!userFilled) throw new Error(`the login form has no username field (fields: ${form.fields.map((f) => `${f.name}:${f.type}`).join(', ')})`);
  return body.toString();
}

/** A cookie jar for one host: name → value, from Set-Cookie headers (RFC 6265 §5.2: the pair is what precedes the first ';'). */
export class CookieJar {
  private readonly cookies = new Map<string, string>();

  /** Store the cookies of Set-Cookie header values; an expired or empty one (Max-Age<=0) is removed. */
  store(setCookies: readonly string[]): void {
    for (const sc of setCookies) {
      const semi = sc.indexOf(';');
      const pair = semi < 0 ? sc : sc.slice(0, semi);
      const eq = pair.indexOf('=');
      if (eq <= 0) continue; // §5.2 step 5/6: no name → ignore
      const name = pair.slice(0, eq).trim();
      const value = pair.slice(eq + 1).trim();
      const attrs = semi < 0 ? '' : sc.slice(semi + 1);
      const maxAge = /(?:^|;)\s*max-age\s*=\s*(-?\d+)/i.exec(attrs);
      if (maxAge && Number(maxAge[1]) <= 0) this.cookies.delete(name);
      else this.cookies.set(name, value);
    }
  }

  /** The Cookie request header (RFC 6265 §5.4), or '' when empty. */
  header(): string {
    return [...this.cookies].map(([k, v]) => `${k}=${v}`).join('; ');
  }

  get size(): number {
    return this.cookies.size;
  }
}

/**
 * RFC 6749 §2.3.1: the client id and secret are form-urlencoded (Appendix B) *before* they are
 * joined with ':' and base64-encoded for HTTP Basic (RFC 7617).
 */
export function basicAuth(clientId: string, secret: string): string {
  const enc = (s: string) => encodeURIComponent(s).replace(/%20/g, '+').replace(/[!'()*~]/g, (ch) => `%${ch.charCodeAt(0).toString(16).toUpperCase()}`);
  return `Basic ${Buffer.from(`${enc(clientId)}:${enc(secret)}`, 'utf8').toString('base64')}`;
}

/** RFC 7636 §4.1/§4.2: a 43-character verifier (32 random octets, base64url) and its S256 challenge. */
export function pkcePair(): { verifier: string; challenge: string } {
  const verifier = randomBytes(32).toString('base64url');
  return { verifier, challenge: s256(verifier) };
}

/** RFC 7636 §4.2: BASE64URL-ENCODE(SHA256(ASCII(code_verifier))). */
export function s256(verifier: string): string {
  return createHash('sha256').update(verifier, 'ascii').digest('base64url');
}

/**
 * The authorization response parameters of a redirect to `redirectUri` (RFC 6749 §4.1.2), or null
 * when `location` goes elsewhere (e.g. to the login page). Compared as URLs, without the query.
 */
export function authorizationResponse(location: string, base: string, redirectUri: string): URLSearchParams | null {
  const u = new URL(location, base);
  const r = new URL(redirectUri);
  if (u.origin !== r.origin || u.pathname !== r.pathname) return null;
  return u.searchParams;
}
