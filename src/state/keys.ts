// The keys domain: the JWS signing key ring (keyspace `sys.keys`, key `ring`). The primary pushes
// the value as is into the workers' `signing_keys` read cache: packValue(SigningKeyRing) exactly.
//
// The ring always holds exactly one active key (signs now) and one next key (already published in
// the JWKS, so relying parties have it cached before it signs), plus retired keys published until
// every token they signed has expired. Rotation is compare-and-set on `version`, so two leaders
// racing a scheduled rotation rotate once.
import { DomainError } from './machine.ts';
import type { ApplyContext, Domain, StateReader } from './machine.ts';
import { packValue, unpackValue } from './command.ts';
import type { SigningKeyRecord, SigningKeyRing } from './oauth-ops.ts';
import { int, invalid, obj, validateSigningKeyRecord } from './validate.ts';
import { appendAudit, auditEvent, auditMeta } from './audit.ts';

export const SIGNING_KEYS_KEYSPACE = 'sys.keys';
export const RING_KEY = 'ring';
/** Most keys in the ring (active + next + retired still published). */
export const MAX_SIGNING_KEYS = 16;
/** Longest a retired key stays published: 400 days. */
export const MAX_RETAIN_MS = 400 * 24 * 3600_000;

export function readSigningKeyRing(reader: StateReader): SigningKeyRing | null {
  const b = reader.get(SIGNING_KEYS_KEYSPACE, RING_KEY);
  return b === undefined ? null : unpackValue<SigningKeyRing>(b);
}

function write(ctx: ApplyContext, ring: SigningKeyRing): void {
  ctx.tx.put(SIGNING_KEYS_KEYSPACE, RING_KEY, packValue(ring));
}

function expectState(k: SigningKeyRecord, state: SigningKeyRecord['state'], name: string): void {
  if (k.state !== state) throw invalid(`${name}.state must be ${state}`);
}

export const keysDomain: Domain = {
  name: 'keys',
  keyspaces: [SIGNING_KEYS_KEYSPACE],
  apply(ctx: ApplyContext, op: string, args: unknown): unknown {
    const a = obj(args, 'args');
    switch (op) {
      case 'init': {
        const active = validateSigningKeyRecord(a.active, 'active');
        const next = validateSigningKeyRecord(a.next, 'next');
        expectState(active, 'active', 'active');
        expectState(next, 'next', 'next');
        if (active.kid === next.kid) throw invalid('active.kid and next.kid must differ');
        // Idempotent: every leader that finds no ring proposes init; the first one wins.
        const existing = readSigningKeyRing(ctx.tx);
        if (existing) return { created: false, version: existing.version };
        write(ctx, { version: 1, keys: [active, next] });
        return { created: true, version: 1 };
      }
      case 'rotate': {
        const expectVersion = int(a.expectVersion, 'expectVersion', 0, Number.MAX_SAFE_INTEGER);
        const next = validateSigningKeyRecord(a.next, 'next');
        expectState(next, 'next', 'next');
        const retainMs = int(a.retainMs, 'retainMs', 0, MAX_RETAIN_MS);
        const meta = auditMeta(a.meta);
        const ring = readSigningKeyRing(ctx.tx);
        if (!ring) throw new DomainError('NOT_FOUND', 'there is no signing key ring');
        if (ring.version !== expectVersion) throw new DomainError('CONFLICT', `signing key ring is at version ${ring.version}, not ${expectVersion}`);
        const actives = ring.keys.filter((k) => k.state === 'active');
        const nexts = ring.keys.filter((k) => k.state === 'next');
        if (actives.length !== 1 || nexts.length !== 1) throw new DomainError('CONFLICT', 'the ring must hold exactly one active and one next key to rotate');
        if (ring.keys.some((k) => k.kid === next.kid)) throw invalid(`next.kid ${next.kid} is already in the ring`);
        const keys: SigningKeyRecord[] = [];
        for (const k of ring.keys) {
          if (k.state === 'retired') {
            if (k.publishUntil !== null && k.publishUntil > ctx.ts) keys.push(k);
          } else if (k.state === 'active') {
            keys.push({ ...k, state: 'retired', publishUntil: ctx.ts + retainMs });
          } else {
            keys.push({ ...k, state: 'active', activatedAt: ctx.ts });
          }
        }
        keys.push(next);
        if (keys.length > MAX_SIGNING_KEYS) throw invalid(`the ring would hold more than ${MAX_SIGNING_KEYS} keys; retire keys for a shorter time`);
        const version = ring.version + 1;
        write(ctx, { version, keys });
        appendAudit(ctx.tx, ctx.ts, auditEvent('keys.rotated', meta, { details: { version, active: nexts[0]!.kid, retired: actives[0]!.kid, next: next.kid } }));
        return { version };
      }
      default:
        throw new DomainError('UNKNOWN_OPERATION', `keys has no operation ${op}`);
    }
  },
  read(reader: StateReader, op: string): unknown {
    if (op !== 'ring') throw new DomainError('UNKNOWN_OPERATION', `keys has no read ${op}`);
    return readSigningKeyRing(reader);
  },
};
