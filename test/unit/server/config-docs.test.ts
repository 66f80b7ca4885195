// Issue 13, defect 7: docs/config.md is generated from the config spec (scripts/docs-config.ts,
// `npm run docs:config`). This test fails while the committed page differs from what the spec
// gives, so a key added, removed, re-ranged or re-documented in src/server/config.ts without
// regenerating the page is caught.
import assert from 'node:assert/strict';
import { readFileSync } from 'node:fs';
import { test } from 'node:test';
import { configKeys, envName } from '../../../src/server/config.ts';
import { CONFIG_DOC, CONFIG_SOURCE, renderConfigReference, specDocs } from '../../../scripts/docs-config.ts';

const source = readFileSync(CONFIG_SOURCE, 'utf8');

test('docs/config.md is what `npm run docs:config` writes from src/server/config.ts', () => {
  const want = renderConfigReference(source);
  const got = readFileSync(CONFIG_DOC, 'utf8');
  if (got !== want) {
    const a = got.split('\n');
    const b = want.split('\n');
    const i = a.findIndex((l, n) => l !== b[n]);
    assert.fail(`docs/config.md is out of date: run npm run docs:config\nfirst difference at line ${i + 1}:\n  committed: ${a[i] ?? '(end)'}\n  generated: ${b[i] ?? '(end)'}`);
  }
});

test('the page lists every key of the spec with its type, default, environment variable and description', () => {
  const page = renderConfigReference(source);
  const keys = configKeys();
  assert.ok(keys.length >= 40, `${keys.length} keys`);
  const docs = specDocs(source);
  for (const k of keys) {
    assert.equal(k.env, envName(k.section, k.key));
    const row = page.split('\n').find((l) => l.startsWith(`| \`${k.section}.${k.key}\` |`));
    assert.ok(row, `a row for ${k.section}.${k.key}`);
    assert.ok(row.includes(`\`${k.env}\``), `${k.section}.${k.key}: ${row}`);
    assert.ok((docs.keys.get(`${k.section}.${k.key}`) ?? '').length > 10, `${k.section}.${k.key} has a description`);
  }
  // A few values straight from the spec.
  assert.match(page, /\| `raft\.electionTick` \| integer, 2 to 1000 \| `10` \| `RAFTAUTH_RAFT_ELECTION_TICK` \(YAML\) \|/);
  assert.match(page, /\| `oauth\.issuer` \| [^|]+ \| \*derived\* \| `RAFTAUTH_OAUTH_ISSUER` \| .*http:\/\/&lt;http\.listen&gt;/);
  assert.match(page, /\| `tls\.ca` \| path of an existing file \| \*required\* \|/);
});

test('a key without a doc comment in SPEC stops the generator, naming the key', () => {
  const stripped = source.replace(/\/\*\*(?:(?!\*\/)[^])*\*\/\s*(electionTick: int\()/, '$1');
  assert.equal(source.length - stripped.length < 400, true, 'the fixture removed one comment, not more');
  assert.notEqual(stripped, source, 'the fixture removed a comment');
  assert.throws(() => renderConfigReference(stripped), /no doc comment .* above raft\.electionTick/);
});
