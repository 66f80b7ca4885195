// Issue 13, defect 7: `raftauth --version` and `raftauth version` print the version of raftauth
// (package.json "version"), the one the status answers and /metrics report too.
import assert from 'node:assert/strict';
import { readFileSync } from 'node:fs';
import { test } from 'node:test';
import { runRaftauth } from '../../../src/cli/main.ts';
import { VERSION, readPackageVersion } from '../../../src/version.ts';
import { captureIo } from './io.ts';

const PACKAGE_VERSION = (JSON.parse(readFileSync(new URL('../../../package.json', import.meta.url), 'utf8')) as { version: string }).version;

test('VERSION is package.json "version"', () => {
  assert.match(PACKAGE_VERSION, /^\d+\.\d+\.\d+/);
  assert.equal(VERSION, PACKAGE_VERSION);
  assert.equal(readPackageVersion(new URL('../../../package.json', import.meta.url)), PACKAGE_VERSION);
  assert.throws(() => readPackageVersion(new URL('../../../tsconfig.json', import.meta.url)), /no usable "version"/);
});

test('raftauth --version and raftauth version print it and exit 0; extra arguments are a usage error', async () => {
  for (const argv of [['--version'], ['version']]) {
    const io = captureIo();
    assert.equal(await runRaftauth(argv, io), 0, argv.join(' '));
    assert.equal(io.stdout(), `raftauth ${PACKAGE_VERSION}\n`);
    assert.equal(io.stderr(), '');
  }
  const bad = captureIo();
  assert.equal(await runRaftauth(['version', '--json'], bad), 2);
  assert.match(bad.stderr(), /takes no arguments/);
  const help = captureIo();
  await runRaftauth(['help'], help);
  assert.match(help.stdout(), /version, --version/);
});
