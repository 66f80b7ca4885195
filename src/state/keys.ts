// The keys domain: the JWS signing key ring (keyspace `sys.keys`, key `ring`). The primary pushes
// the value as is into the workers' `signing_keys` read cache: packValue(SigningKeyRing) exactly.
//
// The ring always holds exactly one active key (signs now) and one next key (already published in
// the JWKS, so relying parties have it cached before it signs), plus retired keys published until
// every token they signed has expired. Rotation is compare-and-set on `version`, so two leaders
// racing a scheduled rotation rotate once.
import type { ApplyContext, Domain, StateReader } from './machine.ts';
import { packValue, unpackValue } from './command.ts';
import type { SigningKeyRecord, SigningKeyRing } from './oauth-ops.ts';
import { int, invalid, validateSigningKeyRecord } from './validate.ts';
import { appendAudit, auditEvent, auditMeta } from './audit.ts';
import type { AuditMeta } from './audit.ts';
import { check, housekeepingStubs, object, read, readStubs, tableDomain, unknownValue, withDefault, write, writeStubs } from './contract.ts';

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

function put(ctx: ApplyContext, ring: SigningKeyRing): void {
  ctx.tx.put(SIGNING_KEYS_KEYSPACE, RING_KEY, packValue(ring));
}

function expectState(k: SigningKeyRecord, state: SigningKeyRecord['state'], name: string): void {
  if (k.state !== state) throw invalid(`${name}.state must be ${state}`);
}

const META = withDefault<AuditMeta, Partial<AuditMeta>>(auditMeta);
const VERSION = check((v, n) => int(v, n, 0, Number.MAX_SAFE_INTEGER));

/** The keys domain's operations (the contract: src/state/contract.ts). */
export const KEYS_WRITES = {
  /** Create the ring with an active and a next key if there is none; otherwise change nothing. */
  init: write({
    args: object({ active: check((v, n) => validateSigningKeyRecord(v, n)), next: check((v, n) => validateSigningKeyRecord(v, n)) }),
    apply: (ctx, a): { created: boolean; version: number } => {
      const { active, next } = a;
      expectState(active, 'active', 'active');
      expectState(next, 'next', 'next');
      if (active.kid === next.kid) throw invalid('active.kid and next.kid must differ');
      // Idempotent: every leader that finds no ring proposes init; the first one wins.
      const existing = readSigningKeyRing(ctx.tx);
      if (existing) return { created: false, version: existing.version };
      put(ctx, { version: 1, keys: [active, next] });
      return { created: true, version: 1 };
    },
  }),
  /**
   * Rotate: next → active, active → retired (publishUntil = ts + retainMs), `next` added, retired
   * keys past publishUntil dropped. CONFLICT if the ring's version is not expectVersion (two
   * leaders racing a scheduled rotation rotate once) or it is not one active + one next key.
   */
  rotate: write({
    args: object({ expectVersion: VERSION, next: check((v, n) => validateSigningKeyRecord(v, n)), retainMs: check((v, n) => int(v, n, 0, MAX_RETAIN_MS)), meta: META }),
    refuses: ['NOT_FOUND', 'CONFLICT'],
    apply: (ctx, a, refuse): { version: number } => {
      const { expectVersion, next, retainMs, meta } = a;
      expectState(next, 'next', 'next');
      const ring = readSigningKeyRing(ctx.tx);
      if (!ring) return refuse('NOT_FOUND', 'there is no signing key ring');
      if (ring.version !== expectVersion) refuse('CONFLICT', `signing key ring is at version ${ring.version}, not ${expectVersion}`);
      const actives = ring.keys.filter((k) => k.state === 'active');
      const nexts = ring.keys.filter((k) => k.state === 'next');
      if (actives.length !== 1 || nexts.length !== 1) refuse('CONFLICT', 'the ring must hold exactly one active and one next key to rotate');
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
      put(ctx, { version, keys });
      appendAudit(ctx.tx, ctx.ts, auditEvent('keys.rotated', meta, { details: { version, active: nexts[0]!.kid, retired: actives[0]!.kid, next: next.kid } }));
      return { version };
    },
  }),
};

export const KEYS_READS = {
  ring: read({ args: unknownValue(), read: (r): SigningKeyRing | null => readSigningKeyRing(r) }),
};

export const keysDomain: Domain = tableDomain({ name: 'keys', keyspaces: [SIGNING_KEYS_KEYSPACE], writes: KEYS_WRITES, reads: KEYS_READS });

/** Typed client stubs: `keys.read.ring(client, {})`, `keys.leader.rotate(node, args, timeoutMs)`. */
export const keys = { ...writeStubs('keys', KEYS_WRITES), read: readStubs('keys', KEYS_READS), leader: housekeepingStubs('keys', KEYS_WRITES) };
