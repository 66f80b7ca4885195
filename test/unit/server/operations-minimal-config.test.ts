// Issue 13, defect 2: the minimal config of docs/operations.md ("Deploy", step 3) gave a cluster
// that could not do OAuth (no master key, an issuer derived per node). This test takes the
// documentation's own text: it runs the step-2 commands (certificates, admin token, master key)
// through the CLI in a scratch directory, loads the step-3 YAML through the config parser with only
// the data directory substituted, and checks that the result is a node that serves OAuth: one
// https issuer for every node, a master key that loads, and the admin API's OAuth routes.
import { pino } from 'pino';
import assert from 'node:assert/strict';
import { readFileSync } from 'node:fs';
import { writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { test } from 'node:test';
import { runRaftauth } from '../../../src/cli/main.ts';
import { buildAdminApp } from '../../../src/ops/admin.ts';
import type { RaftNode } from '../../../src/node/node.ts';
import { loadConfig } from '../../../src/server/config.ts';
import { adminKeyRotation, loadMasterKey, oauthConfigOf } from '../../../src/server/oauth-node.ts';
import { passkeysAvailable } from '../../../src/oauth/login-page.ts';
import { mfaConfigOf } from '../../../src/oauth/config.ts';
import { captureIo } from '../cli/io.ts';
import { tempDir } from './helpers.ts';

const OPERATIONS = new URL('../../../docs/operations.md', import.meta.url);

/** The "Deploy" section of docs/operations.md, up to the next heading. */
function deploySection(): string {
  const text = readFileSync(OPERATIONS, 'utf8');
  const start = text.indexOf('\n## Deploy\n');
  assert.ok(start >= 0, 'docs/operations.md has a Deploy section');
  const end = text.indexOf('\n## ', start + 1);
  return text.slice(start, end < 0 ? undefined : end);
}

/** The fenced blocks of `lang` in `text`, in order, with the list indentation removed. */
function fenced(text: string, lang: string): string[] {
  const out: string[] = [];
  for (const m of text.matchAll(new RegExp(String.raw`^( *)\`\`\`${lang}\n([\s\S]*?)^\1\`\`\`$`, 'gm'))) {
    const indent = m[1]!.length;
    out.push(
      m[2]!
        .split('\n')
        .map((l) => l.slice(Math.min(indent, l.length - l.trimStart().length)))
        .join('\n'),
    );
  }
  return out;
}

test('the minimal config of docs/operations.md, with the files its step 2 makes, gives a node that serves OAuth', async (t) => {
  const dir = await tempDir(t);
  const section = deploySection();

  // Step 2: every `raftauth …` line of the sh blocks before the YAML, run as written (comments dropped).
  const yamlAt = section.indexOf('```yaml');
  assert.ok(yamlAt >= 0, 'the Deploy section has a YAML config');
  const commands = fenced(section.slice(0, yamlAt), 'sh')
    .flatMap((b) => b.split('\n'))
    .map((l) => l.replace(/#.*$/, '').trim())
    .filter((l) => l.startsWith('raftauth '));
  assert.ok(commands.some((c) => c.includes('generate-master')), `step 2 makes a master key: ${commands.join(' | ')}`);
  for (const c of commands) {
    const io = captureIo({}, dir);
    const code = await runRaftauth(c.split(/\s+/).slice(1), io);
    assert.equal(code, 0, `${c}: ${io.stderr()}`);
  }

  // Step 3: the YAML, with its absolute data directory moved into the scratch directory.
  const yaml = fenced(section, 'yaml')[0]!;
  assert.match(yaml, /dataDir: \/var\/lib\/raftauth/);
  const file = join(dir, 'node1.yaml');
  await writeFile(file, yaml.replace('/var/lib/raftauth', join(dir, 'data')));
  const config = loadConfig(file, {});

  assert.ok(config.crypto.masterKeyFile !== null, 'crypto.masterKeyFile is set');
  const master = loadMasterKey(config, {});
  assert.ok(master !== null, 'the master key file loads');
  // One issuer for every node: given, https, not derived from this node's own address.
  assert.match(config.oauth.issuer, /^https:\/\//);
  assert.ok(!config.oauth.issuer.includes(String(config.http.listen.port)), `the issuer ${config.oauth.issuer} is not this node's http.listen`);
  const oauth = oauthConfigOf(config.oauth, config.mfa);
  assert.ok(passkeysAvailable(mfaConfigOf(oauth)), 'security keys and passkeys can work on that issuer');

  // The admin API of such a node has its OAuth routes (a node without the key answers NO_MASTER_KEY).
  const node = { id: config.node.id } as unknown as RaftNode;
  const app = buildAdminApp({ node, token: readFileSync(config.admin.tokenFile!, 'utf8').trim(), oauth: { master, config: oauth, rotateSigningKeys: adminKeyRotation(node, master, oauth, pino({ level: 'silent' })) } });
  try {
    await app.ready();
    for (const [method, url] of [['POST', '/admin/v1/clients'], ['POST', '/admin/v1/users'], ['GET', '/admin/v1/keys']] as const) {
      assert.ok(app.hasRoute({ method, url }), `${method} ${url} is served`);
    }
  } finally {
    await app.close();
  }
});
