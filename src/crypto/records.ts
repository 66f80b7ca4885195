// The signing-key and data-key records: crypto's own types (docs/architecture.md "Layers": crypto
// imports nothing of the state machine). The keys and crypto domains replicate them as they are
// (src/state/keys.ts, src/state/crypto-keys.ts; the operations in src/state/oauth-ops.ts).

// JWS signing keys (keys domain: keyspace `sys.keys`, key `ring`).

export type SigningAlg = 'ES256' | 'EdDSA';

export interface SigningKeyRecord {
  readonly kid: string;
  readonly alg: SigningAlg;
  /** Public JWK (with kid, alg, use: 'sig'). */
  readonly publicJwk: Record<string, unknown>;
  /** The private JWK, sealed with aad "sk:" + kid. */
  readonly sealedPrivate: Uint8Array;
  readonly state: 'next' | 'active' | 'retired';
  readonly createdAt: number;
  /** When it became active (null while next). */
  readonly activatedAt: number | null;
  /** Retired keys stay published until this time (every token they signed has expired). */
  readonly publishUntil: number | null;
}

export interface SigningKeyRing {
  /** Increases by one per change (rotations are compare-and-set on it). */
  readonly version: number;
  readonly keys: readonly SigningKeyRecord[];
}

// Data keys, wrapped by the master key (crypto domain: keyspace `sys.dk`, key `ring`).

export interface WrappedDataKey {
  /** Data key id (random). Sealed blobs name it. */
  readonly id: string;
  /** Id of the master key that wrapped it. */
  readonly masterKid: string;
  /** Output of MasterKeyRing.wrap. */
  readonly wrapped: Uint8Array;
  readonly createdAt: number;
}

export interface DataKeyRing {
  readonly version: number;
  /** The key new seals use. */
  readonly activeId: string;
  readonly keys: readonly WrappedDataKey[];
}
