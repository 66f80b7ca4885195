// The layer fences of eslint.config.js (docs/architecture.md "Layers"): for every fenced layer, an
// import the table allows passes and one it forbids fails — so a fence that stopped matching (a
// typo in a regex, a glob that misses the files) fails here instead of letting every import through.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { fileURLToPath } from 'node:url';
import { ESLint } from 'eslint';

const ROOT = fileURLToPath(new URL('../../../', import.meta.url));
const eslint = new ESLint({ cwd: ROOT });
const FENCE_RULES = new Set(['@typescript-eslint/no-restricted-imports', 'no-restricted-imports']);

/** The fence messages eslint gives `code` as the file `file` (relative to the repository). */
async function fenceErrors(file: string, code: string): Promise<string[]> {
  const [r] = await eslint.lintText(code, { filePath: `${ROOT}${file}` });
  return r!.messages.filter((m) => m.ruleId !== null && FENCE_RULES.has(m.ruleId)).map((m) => m.message);
}

// [file, import statement, allowed?]
const CASES: readonly (readonly [string, string, boolean])[] = [
  ['src/codec/x.ts', "import type { Entry } from '../raft/types.ts';", false],
  ['src/sea/x.ts', "import { VERSION } from '../version.ts';", false],
  ['src/crypto/x.ts', "import { packValue } from '../codec/msgpack.ts';", true],
  ['src/crypto/x.ts', "import type { ClientRecord } from '../state/oauth-ops.ts';", false],
  ['src/node/x.ts', "import type { Entry } from '../raft/types.ts';", true],
  ['src/node/x.ts', "import type { StateMachine } from '../state/machine.ts';", false],
  ['src/node/x.ts', "import { HttpMetrics } from '../ops/metrics.ts';", false],
  ['src/state/x.ts', "import type { ApplyEntry } from '../node/applier.ts';", true],
  ['src/state/x.ts', "export type { ApplyResult } from '../node/api.ts';", true],
  ['src/state/x.ts', "import { prepareEntries } from '../node/applier.ts';", false],
  ['src/state/x.ts', "import { decodeConfChange } from '../raft/confchange.ts';", false],
  ['src/state/x.ts', "import type { OAuthContext } from '../oauth/context.ts';", false],
  ['src/state/x.ts', "import type { Logger } from '../server/log.ts';", false],
  ['src/state/x.ts', "import type { DataKeyRing } from '../crypto/records.ts';", true],
  ['src/mfa/x.ts', "import type { OAuthContext } from '../oauth/context.ts';", false],
  ['src/mfa/x.ts', "import type { NodeApi } from '../node/api.ts';", true],
  ['src/mfa/x.ts', "import { NodeError } from '../node/api.ts';", false],
  ['src/audit/x.ts', "import { ServerError } from '../oauth/errors.ts';", false],
  ['src/audit/x.ts', "import type { RaftNode } from '../node/node.ts';", false],
  ['src/oauth/x.ts', "import type { ReadCache } from '../server/read-cache.ts';", false],
  ['src/oauth/x.ts', "import { mfaStatus } from '../mfa/service.ts';", true],
  ['src/oauth/grants/x.ts', "import type { Logger } from '../../server/log.ts';", false],
  ['src/oauth/grants/x.ts', "import type { ClientRecord } from '../../state/oauth-ops.ts';", true],
  ['src/oauth/grants/x.ts', "import type { OAuthContext } from '../context.ts';", true],
  ['src/ops/x.ts', "import type { StateRecord } from '../storage/durable-storage.ts';", false],
  ['src/ops/backup.ts', "import { DurableStorage } from '../storage/durable-storage.ts';", true],
  ['src/ops/x.ts', "import type { Logger } from '../server/log.ts';", false],
  ['src/ops/x.ts', "import type { OAuthConfig } from '../oauth/config.ts';", true],
  ['src/ops/x.ts', "import { DEFAULT_OAUTH_CONFIG } from '../oauth/config.ts';", false],
  ['src/ops/x.ts', "import { listClients } from '../state/listing.ts';", true],
  ['src/server/x.ts', "import { runMain } from '../cli/main.ts';", false],
  ['src/server/x.ts', "import { RaftNode } from '../node/node.ts';", true],
];

for (const [file, code, allowed] of CASES) {
  test(`${file}: ${code} is ${allowed ? 'allowed' : 'refused'}`, async () => {
    const errors = await fenceErrors(file, `${code}\n`);
    if (allowed) assert.deepEqual(errors, []);
    else assert.equal(errors.length, 1, `expected one fence error, got ${JSON.stringify(errors)}`);
  });
}
