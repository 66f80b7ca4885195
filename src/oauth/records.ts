// What the HTTP workers seal inside replicated records (apply never sees these in clear).
// Each is msgpack-encoded (packValue) and sealed with Sealer.seal(bytes, aad) where aad names the
// record: `code:<hash>`, `rt:<hash>`, `grace:<hash of the rotated token>`, `device:<hash>`,
// `approval:<device hash>`, `sess:<hash>`. See docs/oauth-internals.md.

/** Who authenticated, how and when (OIDC Core §2: auth_time, acr, amr). */
export interface Authentication {
  readonly sub: string;
  /** Seconds since the epoch (OIDC `auth_time`). */
  readonly authTime: number;
  /** Authentication Context Class Reference (OIDC Core §2); "0"-style values are not used. */
  readonly acr: string;
  /** Authentication Methods References (RFC 8176), e.g. ["pwd"]. */
  readonly amr: readonly string[];
}

/** Sealed in `tok.code` (aad `code:<hash>`). */
export interface CodePayload {
  readonly clientId: string;
  readonly redirectUri: string;
  /** RFC 6749 §4.1.3: the token request must carry redirect_uri only if the authorization request did. Absent (older codes) = true. */
  readonly redirectUriInRequest?: boolean;
  /** RFC 7636: the challenge and its method; null only when PKCE was not used (confidential client, allowed by config). */
  readonly codeChallenge: string | null;
  readonly codeChallengeMethod: 'S256' | 'plain' | null;
  /** Granted scopes, in request order, deduplicated. */
  readonly scope: readonly string[];
  readonly nonce: string | null;
  readonly auth: Authentication;
  /** Login session id (hash of the session cookie), for `sid` claims; null if none. */
  readonly sessionHash: string | null;
  /** Access-token audience (resource), default the issuer. */
  readonly audience: string;
}

/** Sealed in `tok.rt` (aad `rt:<hash>`). Every token of a family carries the grant it continues. */
export interface RefreshPayload {
  readonly clientId: string;
  readonly scope: readonly string[];
  readonly auth: Authentication;
  readonly audience: string;
  /** Whether the original grant included `openid` (an ID token is returned on refresh, OIDC Core §12.2). */
  readonly openid: boolean;
}

/** The token response kept sealed for the refresh grace window (aad `grace:<hash of the rotated token>`). */
export interface GraceResponse {
  /** The exact JSON body returned the first time. */
  readonly body: Record<string, unknown>;
}

/** Sealed in `tok.device` (aad `device:<hash>`): the request from /device_authorization. */
export interface DevicePayload {
  readonly clientId: string;
  readonly scope: readonly string[];
  readonly audience: string;
  /** The user code in clear is NOT stored (only its hash, as the record's index). */
}

/** Sealed approval in `tok.device` (aad `approval:<device hash>`). */
export interface DeviceApproval {
  readonly auth: Authentication;
  /** Scopes the user approved (a subset of the request's). */
  readonly scope: readonly string[];
}

/** Sealed in `tok.sess` (aad `sess:<hash>`): a login session. */
export interface SessionPayload {
  readonly auth: Authentication;
  /** CSRF secret bound to this session (double submit on every form). */
  readonly csrf: string;
}
