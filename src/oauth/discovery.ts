// Authorization server metadata (RFC 8414 §2) at /.well-known/oauth-authorization-server and
// OpenID Provider metadata (OIDC Discovery 1.0 §3) at /.well-known/openid-configuration: the same
// document at both (RFC 8414 §3 defines its members as a superset-compatible registry). Built from
// the configuration only, so every node answers byte-for-byte the same.
import type { FastifyInstance } from 'fastify';
import type { OAuthConfig } from './config.ts';
import type { OAuthContext } from './context.ts';
import { ASSERTION_ALGORITHMS, TOKEN_ENDPOINT_AUTH_METHODS } from './client-auth.ts';
import { DEVICE_AUTHORIZATION_PATH } from './device-authorization.ts';
import { DEVICE_CODE_GRANT } from './grants/device-code.ts';
import { INTROSPECT_PATH } from './introspect.ts';
import { JWKS_PATH, PUBLIC_CACHE_CONTROL } from './jwks.ts';
import { REVOKE_PATH } from './revoke.ts';
import { TOKEN_PATH } from './token.ts';
import { USERINFO_PATH } from './userinfo.ts';
import { ACR_MFA, ACR_PASSWORD, ACR_PHR } from './session.ts';

export const OAUTH_METADATA_PATH = '/.well-known/oauth-authorization-server';
export const OPENID_CONFIGURATION_PATH = '/.well-known/openid-configuration';

/** Paths served by the browser side (src/oauth/browser-side.ts). */
const AUTHORIZE_PATH = '/authorize';
const LOGOUT_PATH = '/logout';

export function buildMetadata(config: OAuthConfig): Record<string, unknown> {
  const iss = config.issuer;
  // Confidential-client methods only: a public client cannot authenticate to introspect (src/oauth/introspect.ts).
  const confidential = TOKEN_ENDPOINT_AUTH_METHODS.filter((m) => m !== 'none');
  return {
    issuer: iss,
    authorization_endpoint: iss + AUTHORIZE_PATH,
    token_endpoint: iss + TOKEN_PATH,
    jwks_uri: iss + JWKS_PATH,
    userinfo_endpoint: iss + USERINFO_PATH,
    device_authorization_endpoint: iss + DEVICE_AUTHORIZATION_PATH,
    introspection_endpoint: iss + INTROSPECT_PATH,
    revocation_endpoint: iss + REVOKE_PATH,
    end_session_endpoint: iss + LOGOUT_PATH,
    scopes_supported: [...config.scopesSupported],
    response_types_supported: ['code'],
    response_modes_supported: ['query', 'form_post'],
    grant_types_supported: ['authorization_code', 'client_credentials', 'refresh_token', DEVICE_CODE_GRANT],
    token_endpoint_auth_methods_supported: [...TOKEN_ENDPOINT_AUTH_METHODS],
    token_endpoint_auth_signing_alg_values_supported: [...ASSERTION_ALGORITHMS],
    introspection_endpoint_auth_methods_supported: confidential,
    introspection_endpoint_auth_signing_alg_values_supported: [...ASSERTION_ALGORITHMS],
    // RFC 7009 §2.1: public clients may revoke their own tokens.
    revocation_endpoint_auth_methods_supported: [...TOKEN_ENDPOINT_AUTH_METHODS],
    revocation_endpoint_auth_signing_alg_values_supported: [...ASSERTION_ALGORITHMS],
    // RFC 7636 §4.2: plain only when the operator allowed it.
    code_challenge_methods_supported: config.allowPlainPkce ? ['S256', 'plain'] : ['S256'],
    subject_types_supported: ['public'],
    id_token_signing_alg_values_supported: [config.signingAlg],
    // OIDC Discovery §3: the acr values we issue and honour in acr_values (docs/mfa.md).
    acr_values_supported: [ACR_PASSWORD, ACR_MFA, ACR_PHR],
    claims_supported: ['sub', 'iss', 'aud', 'exp', 'iat', 'auth_time', 'nonce', 'acr', 'amr', 'azp', 'at_hash', 'name', 'email', 'email_verified'],
    claims_parameter_supported: false,
    request_parameter_supported: false,
    request_uri_parameter_supported: false,
    // RFC 9207: the browser side adds iss to every authorization response.
    authorization_response_iss_parameter_supported: true,
  };
}

export function registerDiscovery(app: FastifyInstance, ctx: OAuthContext): void {
  // Serialised once: the configuration does not change while the process runs.
  const body = JSON.stringify(buildMetadata(ctx.config));
  for (const path of [OAUTH_METADATA_PATH, OPENID_CONFIGURATION_PATH]) {
    app.get(path, async (_req, reply) => reply.code(200).header('cache-control', PUBLIC_CACHE_CONTROL).type('application/json; charset=utf-8').send(body));
  }
}
