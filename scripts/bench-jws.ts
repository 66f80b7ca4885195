// JWT signing and verification throughput on one core (src/crypto/jws.ts): what the token
// endpoint pays per request. Each measure runs for about a second. Prints one JSON line:
//   { "es256SignsPerSecond", "eddsaSignsPerSecond", "es256VerifiesPerSecond" }
//
//   node --import tsx scripts/bench-jws.ts
import { generateKeyPairSync } from 'node:crypto';
import { signJwt, verifyJwt } from '../src/crypto/jws.ts';
import type { SigningKey } from '../src/crypto/jws.ts';

const RUN_MS = 1000;
const ISS = 'https://auth.example.com';

/** Calls per second of `f`, over about RUN_MS after a short warm-up. Checks happen in batches so the clock is not the cost. */
function rate(f: (i: number) => void): number {
  for (let i = 0; i < 200; i++) f(i);
  let n = 0;
  const t0 = performance.now();
  let t = t0;
  while (t - t0 < RUN_MS) {
    for (let i = 0; i < 100; i++) f(n++);
    t = performance.now();
  }
  return Math.round((n * 1000) / (t - t0));
}

// A typical access token (RFC 9068 claims).
const claims = (i: number): Record<string, unknown> => {
  const now = Math.floor(Date.now() / 1000);
  return { iss: ISS, sub: 'user-123456', aud: ISS, client_id: 'client-1', scope: 'openid profile email', iat: now, exp: now + 600, jti: `jti-${i}` };
};

const es = generateKeyPairSync('ec', { namedCurve: 'P-256' });
const ed = generateKeyPairSync('ed25519');
const esKey: SigningKey = { kid: 'es', alg: 'ES256', privateKey: es.privateKey };
const edKey: SigningKey = { kid: 'ed', alg: 'EdDSA', privateKey: ed.privateKey };

const es256SignsPerSecond = rate((i) => void signJwt(esKey, claims(i), 'at+jwt'));
const eddsaSignsPerSecond = rate((i) => void signJwt(edKey, claims(i), 'at+jwt'));
const tokens = Array.from({ length: 256 }, (_, i) => signJwt(esKey, claims(i), 'at+jwt'));
const nowS = Math.floor(Date.now() / 1000);
const keyFor = (kid: string) => (kid === 'es' ? es.publicKey : undefined);
const es256VerifiesPerSecond = rate((i) => void verifyJwt(tokens[i & 255]!, keyFor, { issuer: ISS, audience: ISS, typ: 'at+jwt', nowS, algorithms: ['ES256'] }));

process.stdout.write(JSON.stringify({ es256SignsPerSecond, eddsaSignsPerSecond, es256VerifiesPerSecond }) + '\n');
