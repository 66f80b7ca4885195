// GET / — the issuer's root URL. Someone who opens the issuer in a browser gets a small page naming
// the server with links to its metadata and keys, instead of a JSON 404; a client that asks for
// JSON, or states no preference (curl sends */*), gets the same links as a JSON object. The answer
// depends on Accept, so it says `Vary: Accept`. No version or other detail of the deployment is
// shown: the page is public.
import type { FastifyInstance, FastifyRequest } from 'fastify';
import type { OAuthContext } from './context.ts';
import { OAUTH_METADATA_PATH, OPENID_CONFIGURATION_PATH } from './discovery.ts';
import { JWKS_PATH, PUBLIC_CACHE_CONTROL } from './jwks.ts';
import { esc, sendPage } from './pages.ts';

export const ROOT_PATH = '/';
/** Longest Accept header read; a longer one counts as no preference (JSON). */
const MAX_ACCEPT_CHARS = 2048;
const HTML_TYPES = new Set(['text/html', 'application/xhtml+xml']);

/** The q of each media range of an Accept header (RFC 9110 §12.5.1), lower-cased. */
function mediaRanges(accept: string): Map<string, number> {
  const out = new Map<string, number>();
  for (const part of accept.split(',')) {
    const [type, ...params] = part.trim().toLowerCase().split(';');
    if (!type) continue;
    let q = 1;
    for (const p of params) {
      const m = /^\s*q\s*=\s*([01](?:\.\d{0,3})?)\s*$/.exec(p);
      if (m) q = Number(m[1]);
    }
    out.set(type.trim(), Math.max(out.get(type.trim()) ?? 0, q));
  }
  return out;
}

/**
 * Whether to answer HTML: the Accept header names text/html (or XHTML) explicitly, with q > 0, at
 * least as high as application/json's. Wildcards alone (*\/*, what curl and most libraries send)
 * and no header at all get JSON.
 */
export function prefersHtml(accept: string | undefined): boolean {
  if (accept === undefined || accept.length > MAX_ACCEPT_CHARS) return false;
  const ranges = mediaRanges(accept);
  const html = Math.max(0, ...[...HTML_TYPES].map((t) => ranges.get(t) ?? 0));
  if (html === 0) return false;
  const json = ranges.get('application/json') ?? 0;
  return html >= json;
}

export function registerRoot(app: FastifyInstance, ctx: OAuthContext): void {
  const iss = ctx.config.issuer;
  const links = {
    name: 'raftauth',
    issuer: iss,
    openid_configuration: iss + OPENID_CONFIGURATION_PATH,
    oauth_authorization_server: iss + OAUTH_METADATA_PATH,
    jwks_uri: iss + JWKS_PATH,
  };
  const body = `<p>An OAuth 2.0 and OpenID Connect server. Its issuer is <code>${esc(iss)}</code>.</p>
<ul>
<li><a href="${esc(links.openid_configuration)}">OpenID Provider metadata</a> (OpenID Connect Discovery 1.0)</li>
<li><a href="${esc(links.oauth_authorization_server)}">Authorization server metadata</a> (RFC 8414)</li>
<li><a href="${esc(links.jwks_uri)}">JSON Web Key Set</a>: the keys that verify its tokens (RFC 7517)</li>
</ul>
<p><small>Applications sign you in here; there is nothing to do on this page.</small></p>`;
  app.get(ROOT_PATH, async (req: FastifyRequest, reply) => {
    void reply.header('vary', 'Accept');
    if (prefersHtml(req.headers.accept)) return sendPage(reply, 'raftauth', body);
    return reply.code(200).header('cache-control', PUBLIC_CACHE_CONTROL).send(links);
  });
}
