// Errors of the transport: an expected condition with a code from a closed union (STYLE.md).

export type TransportErrorCode =
  /** The local TLS material is unusable (key does not match, certificate names another node, ...). */
  | 'TLS_CONFIG'
  /** No address is known for the destination node. */
  | 'UNKNOWN_PEER'
  /** A message or stream exceeds a configured limit. */
  | 'LIMIT_EXCEEDED'
  /** Bytes from the wire do not decode to a valid message. */
  | 'MALFORMED'
  /** The peer refused the request or could not be reached. */
  | 'PEER_FAILED'
  /** The transport is not started or already stopped. */
  | 'STOPPED';

export class TransportError extends Error {
  readonly code: TransportErrorCode;
  /** For PEER_FAILED: the gRPC status of the failed call (14 UNAVAILABLE, 7 PERMISSION_DENIED, ...). */
  readonly grpcStatus: number | null;
  constructor(code: TransportErrorCode, message: string, options?: { cause?: unknown; grpcStatus?: number }) {
    super(`${code}: ${message}`, options?.cause === undefined ? undefined : { cause: options.cause });
    this.name = 'TransportError';
    this.code = code;
    this.grpcStatus = options?.grpcStatus ?? null;
  }
}
