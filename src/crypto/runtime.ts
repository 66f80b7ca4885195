// What an HTTP process needs to seal and sign, built from the read cache the primary pushes
// (docs/oauth-internals.md "Read cache tables"): the data keys (wrapped; unwrapped here with the
// operator's master key, which never leaves this process) and the signing key ring (private keys
// sealed; unsealed here). Both are rebuilt only when their table's version changes, so a request
// costs two map lookups, not an unwrap.
import type { DataKeyRing, SigningKeyRing } from './records.ts';
import type { MasterKeyRing, Sealer } from './seal.ts';
import { unwrapRing } from './seal.ts';
import { SigningKeys } from './signing-keys.ts';

/** The cluster has not created its data key or signing keys yet (the leader does it at start). */
export class CryptoNotReady extends Error {
  constructor(message: string) {
    super(message);
    this.name = 'CryptoNotReady';
  }
}

export const DATA_KEYS_TABLE = 'data_keys';
export const SIGNING_KEYS_TABLE = 'signing_keys';
export const RING_KEY = 'ring';

export interface CryptoCache {
  get(table: string, key: string): unknown;
  version(table: string): number;
}

export class CryptoRuntime {
  private readonly cache: CryptoCache;
  readonly master: MasterKeyRing;
  private sealerAt: { version: number; sealer: Sealer } | null = null;
  private keysAt: { version: number; keys: SigningKeys } | null = null;

  constructor(
    cache: CryptoCache,
    master: MasterKeyRing,
  ) {
    this.cache = cache;
    this.master = master;
  }

  /** The data keys of the latest pushed ring. CryptoNotReady before the first one. */
  sealer(): Sealer {
    const version = this.cache.version(DATA_KEYS_TABLE);
    if (this.sealerAt !== null && this.sealerAt.version === version) return this.sealerAt.sealer;
    // Values crossed IPC as msgpack: byte fields are Buffers (Uint8Array subclasses), which the
    // sealer accepts as they are.
    const ring = this.cache.get(DATA_KEYS_TABLE, RING_KEY) as DataKeyRing | undefined | null;
    if (ring === undefined || ring === null) throw new CryptoNotReady('the cluster has no data key yet');
    // A failure (a ring the master key cannot unwrap) is not cached: it throws on every call, loudly.
    const sealer = unwrapRing(ring, this.master);
    this.sealerAt = { version, sealer };
    return sealer;
  }

  /** The signing keys of the latest pushed ring. CryptoNotReady before the first one. */
  signingKeys(): SigningKeys {
    const version = this.cache.version(SIGNING_KEYS_TABLE);
    if (this.keysAt !== null && this.keysAt.version === version) return this.keysAt.keys;
    const ring = this.cache.get(SIGNING_KEYS_TABLE, RING_KEY) as SigningKeyRing | undefined | null;
    if (ring === undefined || ring === null) throw new CryptoNotReady('the cluster has no signing keys yet');
    const keys = SigningKeys.fromRing(ring, this.sealer());
    this.keysAt = { version, keys };
    return keys;
  }
}
