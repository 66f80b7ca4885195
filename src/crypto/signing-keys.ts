// The JWS signing keys: generation (leader), and the in-memory ring every HTTP process builds from
// the replicated SigningKeyRing (keys domain) to sign tokens and serve /jwks.json.
//
// Rotation (apply, src/state/keys.ts): a `next` key is published before it signs anything, so
// relying parties that cache the JWKS already know it when it becomes `active`; a `retired` key
// stays published until publishUntil, when every token it signed has expired.
import { createHash, createPrivateKey, createPublicKey, generateKeyPairSync } from 'node:crypto';
import type { JsonWebKey, KeyObject } from 'node:crypto';
import type { SigningAlg, SigningKeyRecord, SigningKeyRing } from './records.ts';
import type { SigningKey } from './jws.ts';
import type { Sealer } from './seal.ts';

/** Public members of the JWKs we publish (RFC 7517 §4, RFC 7518 §6.2.1, RFC 8037 §2). */
const PUBLIC_MEMBERS = ['kty', 'crv', 'x', 'y', 'kid', 'alg', 'use'] as const;
/** A ring holds next + active + a few retired keys; more is corruption or a bug. */
const MAX_RING_KEYS = 32;

/**
 * RFC 7638 §3: SHA-256 over the required members only, in lexicographic order, no whitespace;
 * base64url. Required members: EC crv, kty, x, y (§3.2); OKP crv, kty, x (RFC 8037 §2).
 */
export function jwkThumbprint(jwk: Record<string, unknown>): string {
  const members = jwk.kty === 'EC' ? ['crv', 'kty', 'x', 'y'] : jwk.kty === 'OKP' ? ['crv', 'kty', 'x'] : null;
  if (members === null) throw new TypeError(`no thumbprint for kty ${String(jwk.kty)}`);
  const parts: string[] = [];
  for (const m of members) {
    const v = jwk[m];
    if (typeof v !== 'string') throw new TypeError(`JWK member ${m} must be a string`);
    parts.push(`${JSON.stringify(m)}:${JSON.stringify(v)}`);
  }
  return createHash('sha256').update(`{${parts.join(',')}}`, 'utf8').digest('base64url');
}

function keyPairFor(alg: SigningAlg): { publicKey: KeyObject; privateKey: KeyObject } {
  if (alg === 'ES256') return generateKeyPairSync('ec', { namedCurve: 'P-256' });
  if (alg === 'EdDSA') return generateKeyPairSync('ed25519');
  throw new TypeError(`unsupported signing algorithm ${String(alg)}`);
}

function publicPart(jwk: JsonWebKey, kid: string, alg: SigningAlg): Record<string, unknown> {
  const out: Record<string, unknown> = { kty: jwk.kty, crv: jwk.crv, x: jwk.x };
  if (jwk.y !== undefined) out.y = jwk.y;
  out.kid = kid;
  out.alg = alg;
  out.use = 'sig';
  return out;
}

/** A new signing key record: the private JWK sealed with aad "sk:" + kid. */
export function generateSigningKey(alg: SigningAlg, sealer: Sealer, nowMs: number, state: 'next' | 'active'): SigningKeyRecord {
  const { publicKey, privateKey } = keyPairFor(alg);
  const pub = publicKey.export({ format: 'jwk' });
  const kid = jwkThumbprint(pub as Record<string, unknown>);
  const publicJwk = publicPart(pub, kid, alg);
  const privateJwk = { ...publicJwk, d: privateKey.export({ format: 'jwk' }).d };
  return {
    kid,
    alg,
    publicJwk,
    sealedPrivate: sealer.sealValue(privateJwk, `sk:${kid}`),
    state,
    createdAt: nowMs,
    activatedAt: state === 'active' ? nowMs : null,
    publishUntil: null,
  };
}

interface LoadedKey {
  readonly record: SigningKeyRecord;
  readonly publicKey: KeyObject;
  readonly privateKey: KeyObject;
  readonly jwk: Readonly<Record<string, unknown>>;
}

function loadKey(r: SigningKeyRecord, sealer: Sealer): LoadedKey {
  if (typeof r !== 'object' || r === null || typeof r.kid !== 'string') throw new Error('signing key ring: a key is not a record');
  const what = `signing key ${r.kid}`;
  if (r.alg !== 'ES256' && r.alg !== 'EdDSA') throw new Error(`${what}: unknown alg ${String(r.alg)}`);
  if (r.state !== 'next' && r.state !== 'active' && r.state !== 'retired') throw new Error(`${what}: unknown state ${String(r.state)}`);
  const pubJwk = r.publicJwk;
  if (typeof pubJwk !== 'object' || pubJwk === null) throw new Error(`${what}: no public JWK`);
  if ('d' in pubJwk) throw new Error(`${what}: the public JWK holds private material`);
  // The kid is the thumbprint: a public JWK that does not match its kid was altered.
  if (jwkThumbprint(pubJwk) !== r.kid) throw new Error(`${what}: the kid is not the thumbprint of the public key`);
  const priv = sealer.openValue<Record<string, unknown>>(r.sealedPrivate, `sk:${r.kid}`);
  const privateKey = createPrivateKey({ key: priv as JsonWebKey, format: 'jwk' });
  const publicKey = createPublicKey({ key: pubJwk as JsonWebKey, format: 'jwk' });
  // The public JWK is replicated in clear, the private one sealed: they must be the same key pair.
  const derived = createPublicKey(privateKey).export({ format: 'jwk' });
  if (jwkThumbprint(derived as Record<string, unknown>) !== r.kid) throw new Error(`${what}: the sealed private key does not match the public key`);
  const jwk: Record<string, unknown> = {};
  for (const m of PUBLIC_MEMBERS) if (pubJwk[m] !== undefined) jwk[m] = pubJwk[m];
  jwk.kid = r.kid;
  jwk.alg = r.alg;
  jwk.use = 'sig';
  return { record: r, publicKey, privateKey, jwk: Object.freeze(jwk) };
}

/** The unsealed ring: signing with the active key, verification with any, the published JWKS. */
export class SigningKeys {
  readonly version: number;
  private readonly activeKey: SigningKey;
  private readonly byKid: ReadonlyMap<string, LoadedKey>;

  private constructor(version: number, byKid: Map<string, LoadedKey>, active: LoadedKey) {
    this.version = version;
    this.byKid = byKid;
    this.activeKey = Object.freeze({ kid: active.record.kid, alg: active.record.alg, privateKey: active.privateKey });
  }

  /** Unseals every private key once. Throws unless exactly one key is active. */
  static fromRing(ring: SigningKeyRing, sealer: Sealer): SigningKeys {
    if (typeof ring !== 'object' || ring === null || !Array.isArray(ring.keys) || !Number.isSafeInteger(ring.version)) throw new Error('signing key ring: bad format');
    if (ring.keys.length > MAX_RING_KEYS) throw new Error(`signing key ring: ${ring.keys.length} keys exceed ${MAX_RING_KEYS}`);
    const byKid = new Map<string, LoadedKey>();
    const active: LoadedKey[] = [];
    for (const r of ring.keys) {
      const k = loadKey(r, sealer);
      if (byKid.has(r.kid)) throw new Error(`signing key ring: kid ${r.kid} appears twice`);
      byKid.set(r.kid, k);
      if (r.state === 'active') active.push(k);
    }
    if (active.length !== 1) throw new Error(`signing key ring version ${ring.version}: ${active.length} active keys, need exactly one`);
    return new SigningKeys(ring.version, byKid, active[0]!);
  }

  active(): SigningKey {
    return this.activeKey;
  }

  /** The public key for `kid` if it is in the ring (next, active or retired). */
  publicKey(kid: string): KeyObject | undefined {
    return this.byKid.get(kid)?.publicKey;
  }

  /**
   * RFC 7517 §5 JWK Set: the active and next keys, and retired keys until publishUntil. Public
   * members only; fresh objects (callers may serialize or alter them).
   */
  jwks(nowMs: number): { keys: Record<string, unknown>[] } {
    const order = { active: 0, next: 1, retired: 2 } as const;
    const keys = [...this.byKid.values()]
      .filter((k) => k.record.state !== 'retired' || (k.record.publishUntil !== null && k.record.publishUntil > nowMs))
      .sort((a, b) => order[a.record.state] - order[b.record.state])
      .map((k) => {
        const jwk = { ...k.jwk };
        if ('d' in jwk) throw new Error(`signing key ${k.record.kid}: refusing to publish private material`);
        return jwk;
      });
    return { keys };
  }
}
