import { test } from 'node:test';
import type { TestContext } from 'node:test';
import assert from 'node:assert/strict';
import { writeFile } from 'node:fs/promises';
import { availableParallelism } from 'node:os';
import { join } from 'node:path';
import { ConfigError, envName, loadConfig, parseConfig } from '../../../src/server/config.ts';
import { tempDir, tlsFiles } from './helpers.ts';

const MEMBERS = `cluster:
  initialMembers:
    - { id: 1, raftAddress: "10.0.0.1:7001", httpAddress: "10.0.0.1:8001" }
    - { id: 2, raftAddress: "10.0.0.2:7001", httpAddress: "10.0.0.2:8001" }
    - { id: 3, raftAddress: "10.0.0.3:7001", httpAddress: "10.0.0.3:8001" }
`;

async function setup(t: TestContext): Promise<{ dir: string; base: string; file: string }> {
  const dir = await tempDir(t);
  const base = `node:\n  id: 1\n  dataDir: ./data\n${MEMBERS}${await tlsFiles(dir)}`;
  return { dir, base, file: join(dir, 'node1.yaml') };
}

/** Assert that parsing fails with a ConfigError about `key` whose message contains every fragment. */
function refuses(body: string, file: string, key: string, fragments: string[], env: Record<string, string> = {}): void {
  assert.throws(
    () => parseConfig(body, file, env),
    (e: unknown) => {
      assert.ok(e instanceof ConfigError, `expected ConfigError, got ${String(e)}`);
      assert.equal(e.key, key);
      assert.ok(e.message.startsWith(`config error in ${file}: `), e.message);
      for (const f of fragments) assert.ok(e.message.includes(f), `message ${JSON.stringify(e.message)} lacks ${JSON.stringify(f)}`);
      return true;
    },
  );
}

test('a good config loads, with defaults, derived listen addresses and paths resolved against its directory', async (t) => {
  const { dir, base, file } = await setup(t);
  await writeFile(file, base);
  const c = loadConfig(file, {});
  assert.equal(c.file, file);
  assert.deepEqual(c.node, { id: 1, dataDir: join(dir, 'data'), zone: null });
  assert.equal(c.cluster.initialMembers.length, 3);
  assert.deepEqual(c.cluster.initialMembers[1], { id: 2, raftAddress: { host: '10.0.0.2', port: 7001 }, httpAddress: { host: '10.0.0.2', port: 8001 }, adminAddress: null });
  assert.equal(c.cluster.join, false);
  assert.deepEqual(c.raft, {
    listen: { host: '10.0.0.1', port: 7001 },
    tickMs: 100,
    electionTick: 10,
    heartbeatTick: 1,
    maxSizePerMsg: 1024 * 1024,
    maxInflightMsgs: 256,
    maxWritesInFlight: 1,
    preVote: true,
    checkQuorum: true,
    readOnly: 'safe',
    compactLogBytes: 16 * 1024 * 1024,
    snapshotCatchupEntries: 5_000,
  });
  assert.deepEqual(c.tls, { ca: join(dir, 'ca.pem'), cert: join(dir, 'node.pem'), key: join(dir, 'node.key') });
  assert.deepEqual(c.http, { listen: { host: '10.0.0.1', port: 8001 }, workers: Math.min(availableParallelism(), 4), bodyLimitBytes: 65536, requestTimeoutMs: 5000, readyMaxApplyLag: 1000, shutdownDelayMs: 1000 });
  assert.deepEqual(c.log, { level: 'info' });
  assert.deepEqual(c.unsafe, { ackBeforeCommit: false, readWithoutReadIndex: false });
});

test('explicit values are taken, including IPv6 addresses and workers: 0', async (t) => {
  const { file, base } = await setup(t);
  const c = parseConfig(`${base}raft:\n  listen: "[::1]:9000"\n  tickMs: 50\n  electionTick: 20\n  heartbeatTick: 2\n  readOnly: leaseBased\nhttp:\n  workers: 0\n  listen: "0.0.0.0:0"\n`, file, {});
  assert.deepEqual(c.raft.listen, { host: '::1', port: 9000 });
  assert.equal(c.raft.tickMs, 50);
  assert.equal(c.raft.readOnly, 'leaseBased');
  assert.equal(c.http.workers, 0);
  assert.deepEqual(c.http.listen, { host: '0.0.0.0', port: 0 });
});

test('each kind of bad key is refused with a message naming it', async (t) => {
  const { file, base, dir } = await setup(t);
  const withSection = (s: string): string => `${base}${s}`;
  // type
  refuses(withSection('raft:\n  tickMs: "fast"\n'), file, 'raft.tickMs', ['raft.tickMs must be an integer', '(got "fast")']);
  refuses(withSection('raft:\n  preVote: yes\n'), file, 'raft.preVote', ['raft.preVote must be true or false', '(got "yes")']);
  refuses(withSection('raft:\n  tickMs: 1.5\n'), file, 'raft.tickMs', ['(got 1.5)']);
  // range
  refuses(withSection('raft:\n  heartbeatTick: 0\n'), file, 'raft.heartbeatTick', ['raft.heartbeatTick must be an integer >= 1', '(got 0)']);
  refuses(withSection('http:\n  workers: -1\n'), file, 'http.workers', ["http.workers must be 'auto' or an integer >= 0"]);
  refuses(withSection('http:\n  workers: many\n'), file, 'http.workers', ['(got "many")']);
  // enum
  refuses(withSection('raft:\n  readOnly: lease\n'), file, 'raft.readOnly', ["must be one of 'safe', 'leaseBased'"]);
  refuses(withSection('log:\n  level: loud\n'), file, 'log.level', ['log.level must be one of']);
  // relations between keys
  refuses(withSection('raft:\n  electionTick: 5\n  heartbeatTick: 5\n'), file, 'raft.heartbeatTick', ['raft.heartbeatTick must be an integer >= 1 and < raft.electionTick (got 5, raft.electionTick is 5)']);
  refuses(withSection('raft:\n  compactLogBytes: 25600\n  snapshotCatchupEntries: 101\n'), file, 'raft.snapshotCatchupEntries', ['must be at most raft.compactLogBytes / 256 (got 101, raft.compactLogBytes is 25600)']);
  assert.equal(parseConfig(withSection('raft:\n  compactLogBytes: 25600\n  snapshotCatchupEntries: 100\n'), file, {}).raft.snapshotCatchupEntries, 100, 'at the bound');
  refuses(withSection('raft:\n  readOnly: leaseBased\n  checkQuorum: false\n'), file, 'raft.readOnly', ['requires raft.checkQuorum: true']);
  // addresses
  refuses(withSection('http:\n  listen: "localhost"\n'), file, 'http.listen', ['http.listen must be "host:port"', '(got "localhost")']);
  refuses(withSection('raft:\n  listen: "h:70000"\n'), file, 'raft.listen', ['port from 0 to 65535']);
  // required
  refuses(`node:\n  id: 1\n${MEMBERS}${await tlsFiles(dir)}`, file, 'node.dataDir', ['node.dataDir is required']);
  refuses(`node:\n  dataDir: d\n${MEMBERS}${await tlsFiles(dir)}`, file, 'node.id', ['node.id is required']);
  refuses(base.replace(/tls:[\s\S]*$/, 'tls:\n  ca: ca.pem\n  cert: node.pem\n'), file, 'tls.key', ['tls.key is required']);
  refuses(base.replace('ca: ca.pem', 'ca: missing.pem'), file, 'tls.ca', ['tls.ca must name an existing file', 'missing.pem']);
  // members
  refuses(base.replace('id: 1\n  dataDir', 'id: 9\n  dataDir'), file, 'cluster.initialMembers', ['must contain this node (node.id 9)']);
  refuses(base.replace('{ id: 2,', '{ id: 1,'), file, 'cluster.initialMembers', ['[1].id 1 appears twice']);
  refuses(base.replace('"10.0.0.2:7001"', '"10.0.0.1:7001"'), file, 'cluster.initialMembers', ['[1] reuses the address 10.0.0.1:7001']);
  refuses(base.replace('httpAddress: "10.0.0.3:8001"', 'httpAddress: "10.0.0.3:0"'), file, 'cluster.initialMembers', ['[2].httpAddress must be "host:port" with a port from 1']);
  refuses(base.replace('{ id: 3,', '{ id: 3, role: voter,'), file, 'cluster.initialMembers', ['[2].role is not a known key']);
  // adminAddress (optional): a host:port of its own, not another member's address
  refuses(base.replace('{ id: 3,', '{ id: 3, adminAddress: "nowhere",'), file, 'cluster.initialMembers', ['[2].adminAddress must be "host:port"']);
  refuses(base.replace('{ id: 3,', '{ id: 3, adminAddress: "10.0.0.2:8001",'), file, 'cluster.initialMembers', ['[2] reuses the address 10.0.0.2:8001']);
  assert.deepEqual(parseConfig(base.replace('{ id: 3,', '{ id: 3, adminAddress: "10.0.0.3:9001",'), file, {}).cluster.initialMembers[2]?.adminAddress, { host: '10.0.0.3', port: 9001 });
  refuses(
    base.replace(/cluster:[\s\S]*?(?=tls:)/, 'cluster:\n  join: true\n  initialMembers:\n    - { id: 1, raftAddress: "10.0.0.1:7001", httpAddress: "10.0.0.1:8001" }\n'),
    file,
    'cluster.initialMembers',
    ['at least one existing member when cluster.join is true'],
  );
  // YAML itself
  refuses(`${base}raft:\n  tickMs: 1\n  tickMs: 2\n`, file, '', ['invalid YAML']);
  refuses('- just\n- a list\n', file, '', ['must be a YAML mapping']);
  refuses(`${base}raft: 5\n`, file, 'raft', ['raft must be a mapping']);
});

test('unknown keys and sections are refused', async (t) => {
  const { file, base } = await setup(t);
  refuses(`${base}raft:\n  electionTicks: 10\n`, file, 'raft.electionTicks', ['raft.electionTicks is not a known key', 'electionTick']);
  refuses(`${base}storage:\n  x: 1\n`, file, 'storage', ['storage is not a known section']);
});

test('environment overrides apply, and are validated like the file', async (t) => {
  const { file, base } = await setup(t);
  const c = parseConfig(base, file, {
    RAFTAUTH_HTTP_LISTEN: '127.0.0.1:8080',
    RAFTAUTH_RAFT_ELECTION_TICK: '20',
    RAFTAUTH_RAFT_PRE_VOTE: 'false',
    RAFTAUTH_NODE_ZONE: '1',
    RAFTAUTH_HTTP_WORKERS: '3',
    RAFTAUTH_CLUSTER_INITIAL_MEMBERS: '[{id: 1, raftAddress: "127.0.0.1:7001", httpAddress: "127.0.0.1:8001"}]',
    RAFTAUTH_SOMETHING_ELSE: 'ignored: not a section prefix',
    PATH: '/usr/bin',
  });
  assert.deepEqual(c.http.listen, { host: '127.0.0.1', port: 8080 });
  assert.equal(c.raft.electionTick, 20);
  assert.equal(c.raft.preVote, false);
  assert.equal(c.node.zone, '1', 'string keys take the text as is');
  assert.equal(c.http.workers, 3);
  assert.deepEqual(c.raft.listen, { host: '127.0.0.1', port: 7001 }, 'derived from the overridden member list');

  refuses(base, file, 'raft.electionTick', ['raft.electionTick (from RAFTAUTH_RAFT_ELECTION_TICK) must be an integer', '(got "ten")'], { RAFTAUTH_RAFT_ELECTION_TICK: 'ten' });
  refuses(base, file, 'raft.heartbeatTick', ['raft.heartbeatTick (from RAFTAUTH_RAFT_HEARTBEAT_TICK) must be an integer >= 1 and < raft.electionTick'], { RAFTAUTH_RAFT_HEARTBEAT_TICK: '10' });
  refuses(base, file, 'RAFTAUTH_RAFT_ELECTION_TICKS', ['RAFTAUTH_RAFT_ELECTION_TICKS names no config key'], { RAFTAUTH_RAFT_ELECTION_TICKS: '10' });
  assert.equal(envName('raft', 'snapshotCatchupEntries'), 'RAFTAUTH_RAFT_SNAPSHOT_CATCHUP_ENTRIES');
  assert.equal(envName('http', 'bodyLimitBytes'), 'RAFTAUTH_HTTP_BODY_LIMIT_BYTES');
});

test('unsafe switches are refused unless RAFTAUTH_ALLOW_UNSAFE=1', async (t) => {
  const { file, base } = await setup(t);
  const body = `${base}unsafe:\n  ackBeforeCommit: true\n`;
  refuses(body, file, 'unsafe.ackBeforeCommit', ['unsafe.ackBeforeCommit is an unsafe debug switch', 'RAFTAUTH_ALLOW_UNSAFE=1']);
  refuses(body, file, 'unsafe.ackBeforeCommit', ['RAFTAUTH_ALLOW_UNSAFE=1'], { RAFTAUTH_ALLOW_UNSAFE: 'yes' });
  refuses(base, file, 'unsafe.ackBeforeCommit', ['(from RAFTAUTH_UNSAFE_ACK_BEFORE_COMMIT)'], { RAFTAUTH_UNSAFE_ACK_BEFORE_COMMIT: 'true' });
  assert.equal(parseConfig(body, file, { RAFTAUTH_ALLOW_UNSAFE: '1' }).unsafe.ackBeforeCommit, true);
  assert.equal(parseConfig(`${base}unsafe:\n  ackBeforeCommit: false\n`, file, {}).unsafe.ackBeforeCommit, false, 'a switch left off needs no permission');
});

test('a missing file is a ConfigError naming it', () => {
  assert.throws(() => loadConfig('/nonexistent/node9.yaml', {}), (e: unknown) => e instanceof ConfigError && e.message.startsWith('config error in /nonexistent/node9.yaml: cannot read the file'));
});

test('the CLI variables RAFTAUTH_ADMIN and RAFTAUTH_ADMIN_TOKEN do not stop a node from loading its config', async (t) => {
  const { base, file } = await setup(t);
  const c = parseConfig(base, file, { RAFTAUTH_ADMIN: 'http://127.0.0.1:19001', RAFTAUTH_ADMIN_TOKEN: 'x'.repeat(40) });
  assert.equal(c.node.id, 1);
  refuses(base, file, 'RAFTAUTH_ADMIN_TOKENS', ['names no config key'], { RAFTAUTH_ADMIN_TOKENS: 'x' });
});
