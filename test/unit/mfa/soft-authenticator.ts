// A software WebAuthn authenticator for tests: real ES256 keys (node:crypto), real authenticator
// data, clientDataJSON and a 'none' attestation object (CBOR from @simplewebauthn/server's own
// encoder), so the server verifies exactly what a browser would send (W3C WebAuthn Level 3 §6.1
// authenticator data, §5.8.1 client data, §8.7 none attestation, §6.3.3 assertion signature).
// Every field can be overridden to forge a bad response.
import { createHash, generateKeyPairSync, randomBytes, sign } from 'node:crypto';
import type { KeyObject } from 'node:crypto';
import { isoCBOR } from '@simplewebauthn/server/helpers';
import type {
  AuthenticationResponseJSON,
  PublicKeyCredentialCreationOptionsJSON,
  PublicKeyCredentialRequestOptionsJSON,
  RegistrationResponseJSON,
} from '@simplewebauthn/server';

const FLAG_UP = 0x01;
const FLAG_UV = 0x04;
const FLAG_AT = 0x40;

export interface SoftCredential {
  readonly id: Buffer;
  readonly privateKey: KeyObject;
  readonly cosePublicKey: Uint8Array;
  readonly rpId: string;
  /** base64url user handle given at creation (user.id). */
  readonly userHandle: string;
  readonly resident: boolean;
  counter: number;
}

export interface CeremonyOverrides {
  origin?: string;
  rpId?: string;
  challenge?: string;
  type?: string;
  userVerified?: boolean;
  userPresent?: boolean;
  /** Assertion: which credential to use (default: the first allowed, or the first resident one). */
  credentialId?: string;
  /** Assertion: send this counter instead of the next one. */
  counter?: number;
  /** Assertion: override the returned user handle (null: none). */
  userHandle?: string | null;
  /** Assertion: flip a bit of the signature. */
  badSignature?: boolean;
}

function b64u(b: Uint8Array): string {
  return Buffer.from(b).toString('base64url');
}

function sha256(b: Uint8Array | string): Buffer {
  return createHash('sha256').update(b).digest();
}

export class SoftAuthenticator {
  readonly origin: string;
  readonly opts: { userVerification?: boolean; counterStep?: number };
  readonly credentials: SoftCredential[] = [];

  constructor(
    origin: string,
    opts: { userVerification?: boolean; counterStep?: number } = {},
  ) {
    this.origin = origin;
    this.opts = opts;
  }

  private authData(rpId: string, flags: number, counter: number, attested: Buffer | null): Buffer {
    const c = Buffer.alloc(4);
    c.writeUInt32BE(counter >>> 0);
    return Buffer.concat([sha256(rpId), Buffer.from([flags]), c, ...(attested ? [attested] : [])]);
  }

  private flags(o: CeremonyOverrides, base: number): number {
    let f = base;
    if (o.userPresent !== false) f |= FLAG_UP;
    if (o.userVerified ?? this.opts.userVerification ?? true) f |= FLAG_UV;
    return f;
  }

  private clientData(type: string, challenge: string, origin: string): Buffer {
    return Buffer.from(JSON.stringify({ type, challenge, origin, crossOrigin: false }), 'utf8');
  }

  /** navigator.credentials.create(). */
  create(options: PublicKeyCredentialCreationOptionsJSON, o: CeremonyOverrides = {}): RegistrationResponseJSON {
    const rpId = o.rpId ?? options.rp.id!;
    const excluded = new Set((options.excludeCredentials ?? []).map((c) => c.id));
    for (const c of this.credentials) if (excluded.has(b64u(c.id)) && c.rpId === rpId) throw new Error('InvalidStateError: credential excluded');
    const { privateKey, publicKey } = generateKeyPairSync('ec', { namedCurve: 'P-256' });
    const jwk = publicKey.export({ format: 'jwk' });
    // RFC 9053 §7.1.1 / RFC 8152: EC2 key: kty 2, alg -7 (ES256), crv 1 (P-256), x, y.
    const cose = isoCBOR.encode(
      new Map<number, number | Uint8Array>([
        [1, 2],
        [3, -7],
        [-1, 1],
        [-2, Buffer.from(jwk.x!, 'base64url')],
        [-3, Buffer.from(jwk.y!, 'base64url')],
      ]),
    );
    const id = randomBytes(32);
    const idLen = Buffer.alloc(2);
    idLen.writeUInt16BE(id.length);
    const attested = Buffer.concat([Buffer.alloc(16), idLen, id, Buffer.from(cose)]);
    const authData = this.authData(rpId, this.flags(o, FLAG_AT), 0, attested);
    const attestationObject = isoCBOR.encode(
      new Map<string, string | Uint8Array | Map<string, string>>([
        ['fmt', 'none'],
        ['attStmt', new Map<string, string>()],
        ['authData', Uint8Array.from(authData)],
      ]),
    );
    const resident = options.authenticatorSelection?.residentKey !== 'discouraged';
    this.credentials.push({ id, privateKey, cosePublicKey: cose, rpId, userHandle: options.user.id, resident, counter: 0 });
    const cdj = this.clientData(o.type ?? 'webauthn.create', o.challenge ?? options.challenge, o.origin ?? this.origin);
    return {
      id: b64u(id),
      rawId: b64u(id),
      type: 'public-key',
      response: { clientDataJSON: b64u(cdj), attestationObject: b64u(attestationObject), transports: ['usb'] },
      clientExtensionResults: { credProps: { rk: resident } },
    };
  }

  /** navigator.credentials.get(). */
  get(options: PublicKeyCredentialRequestOptionsJSON, o: CeremonyOverrides = {}): AuthenticationResponseJSON {
    const rpId = o.rpId ?? options.rpId!;
    const allowed = (options.allowCredentials ?? []).map((c) => c.id);
    const cred =
      o.credentialId !== undefined
        ? this.credentials.find((c) => b64u(c.id) === o.credentialId)
        : allowed.length > 0
          ? this.credentials.find((c) => allowed.includes(b64u(c.id)))
          : this.credentials.find((c) => c.resident && c.rpId === (options.rpId ?? rpId));
    if (!cred) throw new Error('NotAllowedError: no credential');
    const step = this.opts.counterStep ?? 1;
    const counter = o.counter ?? (cred.counter += step);
    const authData = this.authData(rpId, this.flags(o, 0), counter, null);
    const cdj = this.clientData(o.type ?? 'webauthn.get', o.challenge ?? options.challenge, o.origin ?? this.origin);
    const signature = sign('sha256', Buffer.concat([authData, sha256(cdj)]), cred.privateKey);
    if (o.badSignature) signature.writeUInt8(signature.readUInt8(signature.length - 1) ^ 1, signature.length - 1);
    // §6.3.3: the user handle is returned for discoverable credentials (and may be for others).
    const userHandle = o.userHandle !== undefined ? o.userHandle : cred.resident ? cred.userHandle : null;
    return {
      id: b64u(cred.id),
      rawId: b64u(cred.id),
      type: 'public-key',
      response: { clientDataJSON: b64u(cdj), authenticatorData: b64u(authData), signature: b64u(signature), ...(userHandle !== null ? { userHandle } : {}) },
      clientExtensionResults: {},
    };
  }

  /** A second authenticator holding copies of this one's keys (a clone, with its own counters). */
  clone(): SoftAuthenticator {
    const c = new SoftAuthenticator(this.origin, this.opts);
    for (const cred of this.credentials) c.credentials.push({ ...cred });
    return c;
  }
}
