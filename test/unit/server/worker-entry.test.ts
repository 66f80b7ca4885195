// What a primary forks for its HTTP workers (src/server/process.ts): the program's entry module
// beside the running code, with node's own flags but a loader only when the entry is TypeScript.
import assert from 'node:assert/strict';
import { join } from 'node:path';
import { test } from 'node:test';
import { fileURLToPath } from 'node:url';
import { defaultWorkerEntry, workerExecArgv } from '../../../src/server/process.ts';

const REPO_ROOT = fileURLToPath(new URL('../../..', import.meta.url));

test('the worker entry is the program entry beside process.ts, with its extension (src/main.ts here; dist/main.js when built)', () => {
  assert.equal(defaultWorkerEntry(), join(REPO_ROOT, 'src', 'main.ts'));
});

test('workers get node\'s flags, not the test runner\'s or a debugger\'s; a loader only for a TypeScript entry', (t) => {
  const saved = [...process.execArgv];
  t.after(() => process.execArgv.splice(0, process.execArgv.length, ...saved));
  process.execArgv.splice(0, process.execArgv.length, '--enable-source-maps', '--test-reporter=spec', '--inspect=0');
  assert.deepEqual(workerExecArgv('/opt/raftauth/dist/main.js'), ['--enable-source-maps']);
  assert.deepEqual(workerExecArgv('/repo/src/main.ts'), ['--enable-source-maps', '--import', 'tsx']);
  // A test flag's value given as the next item goes with it (it was taken for the worker's entry module).
  process.execArgv.splice(0, process.execArgv.length, '--test-name-pattern', 'issue 15', '--enable-source-maps', '--test-reporter', 'spec', '--test-only', '--import', 'tsx', '--inspect-port', '9230');
  assert.deepEqual(workerExecArgv('/opt/raftauth/dist/main.js'), ['--enable-source-maps', '--import', 'tsx']);
  process.execArgv.splice(0, process.execArgv.length, '--import', 'tsx');
  assert.deepEqual(workerExecArgv('/repo/src/main.ts'), ['--import', 'tsx'], 'no second loader');
});
