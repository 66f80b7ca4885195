// What every file under grants/ exports, apart from the token endpoint that dispatches to them
// (src/oauth/token.ts), so a grant imports nothing of its dispatcher (no import cycles:
// docs/architecture.md "Layers").
import type { FastifyRequest } from 'fastify';
import type { ClientRecord, GrantType } from '../../state/oauth-ops.ts';
import type { OAuthContext } from '../context.ts';
import type { Params } from '../form.ts';

/** One grant type. */
export interface GrantHandler {
  readonly grantType: GrantType;
  /** Returns the RFC 6749 §5.1 body; throws an OAuthError. The client is authenticated and allowed this grant. */
  handler(ctx: OAuthContext, req: FastifyRequest, client: ClientRecord, params: Params): Promise<Record<string, unknown>>;
}
