// One error class per RFC error code (node-oidc-provider lib/helpers/errors.js is the model).
//
// - RFC 6749 §5.2: token endpoint errors (400; invalid_client 401 with WWW-Authenticate when the
//   client used HTTP authentication or none, §5.2 "MAY"/"MUST").
// - RFC 6749 §4.1.2.1: authorization endpoint errors (redirected to the client when the client and
//   redirect URI are valid, shown otherwise).
// - RFC 6750 §3.1: bearer-token errors at resource endpoints (userinfo): invalid_request 400,
//   invalid_token 401, insufficient_scope 403, in WWW-Authenticate.
// - RFC 8628 §3.5: device-flow polling errors (authorization_pending, slow_down, access_denied,
//   expired_token), all 400.
// - RFC 7009 §2.2.1: unsupported_token_type.
// `expose`: the description is safe to show to the client (every OAuthError; a 5xx says nothing).

export type OAuthErrorCode =
  | 'invalid_request'
  | 'invalid_client'
  | 'invalid_grant'
  | 'unauthorized_client'
  | 'unsupported_grant_type'
  | 'invalid_scope'
  | 'access_denied'
  | 'unsupported_response_type'
  | 'server_error'
  | 'temporarily_unavailable'
  | 'invalid_token'
  | 'insufficient_scope'
  | 'authorization_pending'
  | 'slow_down'
  | 'expired_token'
  | 'unsupported_token_type'
  | 'login_required'
  | 'consent_required'
  | 'interaction_required'
  | 'invalid_request_uri'
  | 'invalid_request_object'
  | 'request_not_supported'
  | 'request_uri_not_supported'
  | 'registration_not_supported'
  | 'unmet_authentication_requirements'
  | 'insufficient_user_authentication';

export abstract class OAuthError extends Error {
  readonly description: string;
  abstract readonly error: OAuthErrorCode;
  abstract readonly status: number;
  readonly expose = true;
  /** Extra response headers (WWW-Authenticate, Retry-After). */
  readonly headers: Record<string, string> = {};

  constructor(description: string) {
    super(description);
    this.description = description;
    this.name = new.target.name;
  }

  /** The RFC 6749 §5.2 JSON body. */
  toJSON(): { error: OAuthErrorCode; error_description: string } {
    return { error: this.error, error_description: this.description };
  }
}

export class InvalidRequest extends OAuthError {
  readonly error = 'invalid_request' as const;
  readonly status: number;
  constructor(description: string, status = 400) {
    super(description);
    this.status = status;
  }
}

/**
 * RFC 6749 §5.2: 401 with WWW-Authenticate when the client authenticated (or tried to) with the
 * Authorization header; the scheme is the one the client used (Basic), or Basic when it sent none.
 */
export class InvalidClient extends OAuthError {
  readonly error = 'invalid_client' as const;
  readonly status = 401;
  constructor(description: string, scheme: 'Basic' | 'Bearer' = 'Basic', realm = 'raftauth') {
    super(description);
    this.headers['www-authenticate'] = `${scheme} realm="${realm}", error="invalid_client", error_description="${quoteSafe(description)}"`;
  }
}

export class InvalidGrant extends OAuthError {
  readonly error = 'invalid_grant' as const;
  readonly status = 400;
}
export class UnauthorizedClient extends OAuthError {
  readonly error = 'unauthorized_client' as const;
  readonly status = 400;
}
export class UnsupportedGrantType extends OAuthError {
  readonly error = 'unsupported_grant_type' as const;
  readonly status = 400;
}
export class InvalidScope extends OAuthError {
  readonly error = 'invalid_scope' as const;
  readonly status = 400;
}
export class AccessDenied extends OAuthError {
  readonly error = 'access_denied' as const;
  readonly status = 400;
}
export class UnsupportedResponseType extends OAuthError {
  readonly error = 'unsupported_response_type' as const;
  readonly status = 400;
}
export class ServerError extends OAuthError {
  readonly error = 'server_error' as const;
  readonly status = 500;
}
/** RFC 6749 §4.1.2.1 (and 503 at the token endpoint): the cluster has no leader within the deadline. */
export class TemporarilyUnavailable extends OAuthError {
  readonly error = 'temporarily_unavailable' as const;
  readonly status = 503;
  constructor(description: string, retryAfterS = 1) {
    super(description);
    this.headers['retry-after'] = String(retryAfterS);
  }
}

/** RFC 6750 §3.1. */
export class InvalidToken extends OAuthError {
  readonly error = 'invalid_token' as const;
  readonly status = 401;
  constructor(description: string, realm = 'raftauth') {
    super(description);
    this.headers['www-authenticate'] = `Bearer realm="${realm}", error="invalid_token", error_description="${quoteSafe(description)}"`;
  }
}
export class InsufficientScope extends OAuthError {
  readonly error = 'insufficient_scope' as const;
  readonly status = 403;
  constructor(description: string, scope: string, realm = 'raftauth') {
    super(description);
    this.headers['www-authenticate'] = `Bearer realm="${realm}", error="insufficient_scope", scope="${quoteSafe(scope)}"`;
  }
}
/** RFC 6750 §3.1: a request without any token gets the bare challenge, no error code. */
export function bearerChallenge(realm = 'raftauth'): string {
  return `Bearer realm="${realm}"`;
}

/** RFC 8628 §3.5. */
export class AuthorizationPending extends OAuthError {
  readonly error = 'authorization_pending' as const;
  readonly status = 400;
}
export class SlowDown extends OAuthError {
  readonly error = 'slow_down' as const;
  readonly status = 400;
}
export class ExpiredToken extends OAuthError {
  readonly error = 'expired_token' as const;
  readonly status = 400;
}
/** RFC 7009 §2.2.1. */
export class UnsupportedTokenType extends OAuthError {
  readonly error = 'unsupported_token_type' as const;
  readonly status = 400;
}
/** OIDC Core §3.1.2.6. */
export class LoginRequired extends OAuthError {
  readonly error = 'login_required' as const;
  readonly status = 400;
}
export class ConsentRequired extends OAuthError {
  readonly error = 'consent_required' as const;
  readonly status = 400;
}
export class InteractionRequired extends OAuthError {
  readonly error = 'interaction_required' as const;
  readonly status = 400;
}
export class RequestNotSupported extends OAuthError {
  readonly error = 'request_not_supported' as const;
  readonly status = 400;
}
export class RequestUriNotSupported extends OAuthError {
  readonly error = 'request_uri_not_supported' as const;
  readonly status = 400;
}
/** OIDC Core §3.1.2.6 / RFC 9470 (step-up, used by the MFA issue). */
export class UnmetAuthenticationRequirements extends OAuthError {
  readonly error = 'unmet_authentication_requirements' as const;
  readonly status = 400;
}

/** RFC 6750 §3: quoted-string values may not contain `"` or `\`; descriptions are ours, but be safe. */
function quoteSafe(s: string): string {
  return s.replace(/["\\\r\n]/g, ' ');
}
