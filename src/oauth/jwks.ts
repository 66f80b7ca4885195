// GET /jwks.json (RFC 7517 §5): the public keys that verify our tokens — the next key (published
// before it signs anything, so caches hold it when rotation comes), the active key, and retired
// keys until every token they signed has expired (src/crypto/signing-keys.ts decides which).
import type { FastifyInstance } from 'fastify';
import type { OAuthContext } from './context.ts';

export const JWKS_PATH = '/jwks.json';

/**
 * Metadata and keys are public and change rarely; a short shared cache lifetime is safe because
 * the next key is published a whole rotation period before it signs.
 */
export const PUBLIC_CACHE_CONTROL = 'public, max-age=300';

export function registerJwks(app: FastifyInstance, ctx: OAuthContext): void {
  app.get(JWKS_PATH, async (_req, reply) => {
    const jwks = ctx.crypto.signingKeys().jwks(ctx.now());
    // RFC 7517 §8.5: application/jwk-set+json.
    return reply.code(200).header('cache-control', PUBLIC_CACHE_CONTROL).type('application/jwk-set+json; charset=utf-8').send(JSON.stringify(jwks));
  });
}
