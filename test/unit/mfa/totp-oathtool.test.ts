// TOTP interop with an independent implementation: OATH Toolkit's `oathtool` (Debian package
// oathtool, installed by CI). matchTotpStep must accept the code oathtool computes for a time, at
// that time, and refuse it two steps later (outside the ±1 window).
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { execFileSync } from 'node:child_process';
import { randomInt } from 'node:crypto';
import { existsSync } from 'node:fs';
import { delimiter, join } from 'node:path';
import { TOTP_PERIOD_S, generateTotpSecret, matchTotpStep, totpStep } from '../../../src/mfa/totp.ts';

function findOathtool(): string | null {
  for (const dir of (process.env.PATH ?? '').split(delimiter)) {
    const p = join(dir, 'oathtool');
    if (dir !== '' && existsSync(p)) return p;
  }
  return null;
}

const OATHTOOL = findOathtool();
const SKIP = OATHTOOL === null ? 'oathtool is not installed (Debian package oathtool; CI installs it)' : false;

function oathtool(secret: string, unixSeconds: number): string {
  return execFileSync(OATHTOOL!, ['--totp', '-b', secret, '--now', `@${unixSeconds}`], { encoding: 'utf8' }).trim();
}

test('oathtool codes are accepted at their time and refused two steps later', { skip: SKIP }, () => {
  const seed = Number(process.env.TEST_SEED ?? randomInt(2 ** 31));
  console.log(`totp-oathtool seed ${seed}`);
  let x = seed;
  // A small LCG from the printed seed picks the times, so a failure can be replayed with TEST_SEED.
  const next = (): number => (x = (Math.imul(x, 1103515245) + 12345) >>> 0);
  const secrets = [generateTotpSecret(), generateTotpSecret(), 'GEZDGNBVGY3TQOJQGEZDGNBVGY3TQOJQ'];
  const times = [59, 1111111109, 1_700_000_000, Math.floor(Date.now() / 1000), ...Array.from({ length: 6 }, () => 1_000_000_000 + (next() % 2_000_000_000))];
  for (const secret of secrets) {
    for (const t of times) {
      const code = oathtool(secret, t);
      assert.match(code, /^\d{6}$/);
      const ms = t * 1000;
      assert.equal(matchTotpStep(secret, code, ms), totpStep(ms), `secret ${secret} t=${t}`);
      // One step later still within the window; two steps later (either way) not.
      assert.equal(matchTotpStep(secret, code, ms + TOTP_PERIOD_S * 1000), totpStep(ms), `t=${t} +1 step`);
      assert.equal(matchTotpStep(secret, code, ms + 2 * TOTP_PERIOD_S * 1000), null, `t=${t} +2 steps`);
      assert.equal(matchTotpStep(secret, code, ms - 2 * TOTP_PERIOD_S * 1000), null, `t=${t} -2 steps`);
    }
  }
});
