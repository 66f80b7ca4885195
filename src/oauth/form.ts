// Request parameters: application/x-www-form-urlencoded bodies and query strings.
//
// RFC 6749 §3.1 / §3.2: "Parameters sent without a value MUST be treated as if they were omitted
// from the request. … Request and response parameters MUST NOT be included more than once."
// A duplicated parameter is refused with invalid_request (even when the copies agree: a proxy that
// appends a parameter must not be able to change which copy we read). Unknown parameters are kept
// here and ignored by the endpoints (§3.1: "The authorization server MUST ignore unrecognized
// request parameters").
import type { FastifyInstance, FastifyRequest } from 'fastify';
import { InvalidRequest } from './errors.ts';

/** Most parameters one request may carry; more is refused (a bound on work per request). */
export const MAX_PARAMS = 64;
/** Longest single parameter value, in characters (a private_key_jwt assertion is the biggest we expect). */
export const MAX_PARAM_CHARS = 8 * 1024;

export type Params = Readonly<Record<string, string>>;

export const FORM_CONTENT_TYPE = 'application/x-www-form-urlencoded';

/** Parse urlencoded text into a map; throws InvalidRequest on a duplicate, too many, or too long parameters. */
export function parseParams(text: string): Params {
  const out: Record<string, string> = Object.create(null) as Record<string, string>;
  const seen = new Set<string>();
  let count = 0;
  let search: URLSearchParams;
  try {
    search = new URLSearchParams(text);
  } catch {
    throw new InvalidRequest('malformed urlencoded parameters');
  }
  for (const [name, value] of search) {
    if (++count > MAX_PARAMS) throw new InvalidRequest(`more than ${MAX_PARAMS} parameters`);
    if (seen.has(name)) throw new InvalidRequest(`parameter ${name} is included more than once`);
    seen.add(name);
    if (value.length > MAX_PARAM_CHARS) throw new InvalidRequest(`parameter ${name} is longer than ${MAX_PARAM_CHARS} characters`);
    if (value === '') continue; // §3.1: sent without a value = omitted
    out[name] = value;
  }
  return out;
}

/** The query string of a request (the part after `?`), parsed with parseParams. */
export function queryParams(req: FastifyRequest): Params {
  const i = req.url.indexOf('?');
  return parseParams(i < 0 ? '' : req.url.slice(i + 1));
}

/**
 * The form body of a request, parsed with parseParams. A POST endpoint that takes a form refuses
 * any other content type (RFC 6749 §4.1.3, §3.2: "using the application/x-www-form-urlencoded
 * format").
 */
export function formParams(req: FastifyRequest): Params {
  const ct = (req.headers['content-type'] ?? '').split(';')[0]!.trim().toLowerCase();
  if (ct !== FORM_CONTENT_TYPE) throw new InvalidRequest(`the body must be ${FORM_CONTENT_TYPE}`);
  const b = req.body;
  if (b === undefined || b === null) return parseParams('');
  if (typeof b !== 'string') throw new InvalidRequest(`the body must be ${FORM_CONTENT_TYPE}`);
  return parseParams(b);
}

/**
 * Register a raw-string parser for urlencoded bodies (parsed later by formParams, which throws
 * OAuth-shaped errors). The body limit is the app's (http.bodyLimitBytes) unless given.
 */
export function registerFormParser(app: FastifyInstance, bodyLimitBytes?: number): void {
  app.addContentTypeParser(FORM_CONTENT_TYPE, { parseAs: 'string', ...(bodyLimitBytes !== undefined ? { bodyLimit: bodyLimitBytes } : {}) }, (_req, body, done) => done(null, body));
}

/** A required parameter, or invalid_request naming it. */
export function required(p: Params, name: string): string {
  const v = p[name];
  if (v === undefined) throw new InvalidRequest(`missing required parameter ${name}`);
  return v;
}

/** Space-delimited list (RFC 6749 §3.3 scope syntax): NQCHAR tokens, deduplicated, order kept. */
export function scopeList(v: string | undefined): string[] {
  if (v === undefined) return [];
  const out: string[] = [];
  for (const s of v.split(' ')) {
    if (s === '') throw new InvalidRequest('scope must be space-delimited tokens without empty entries');
    // §3.3: scope-token = 1*( %x21 / %x23-5B / %x5D-7E )
    if (!/^[\x21\x23-\x5B\x5D-\x7E]+$/.test(s)) throw new InvalidRequest(`scope token ${JSON.stringify(s)} has characters RFC 6749 §3.3 forbids`);
    if (!out.includes(s)) out.push(s);
  }
  return out;
}
