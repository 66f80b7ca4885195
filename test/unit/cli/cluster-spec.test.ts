// Cluster descriptions (scripts/lib/local-cluster.ts): parsing, refusals, and the shipped
// cluster-configs/*.yaml expanding into node configs the node's own loader accepts.
import assert from 'node:assert/strict';
import { existsSync } from 'node:fs';
import { mkdtemp, readFile, rm, stat } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, before, describe, it } from 'node:test';
import { loadConfig } from '../../../src/server/config.ts';
import { REPO_ROOT, SpecError, loadClusterSpec, parseClusterSpec, prepareCluster } from '../../../scripts/lib/local-cluster.ts';

const base = `
dir: d
basePorts: { raft: 17001, http: 18001, admin: 19001 }
nodes: [{ id: 1 }, { id: 2 }, { id: 3, zone: z, ports: { raft: 27000, http: 28000, admin: 29000 } }]
`;

describe('cluster descriptions', () => {
  it('derives ports from basePorts unless a node gives its own; dir relative to cwd', () => {
    const s = parseClusterSpec(base, 'x.yaml', { cwd: '/tmp/w' });
    assert.equal(s.name, 'x');
    assert.equal(s.dir, '/tmp/w/d');
    assert.equal(s.frontPort, 8080);
    assert.deepEqual(s.nodes.map((n) => [n.id, n.ports.raft, n.ports.http, n.ports.admin, n.zone]), [
      [1, 17001, 18001, 19001, null],
      [2, 17002, 18002, 19002, null],
      [3, 27000, 28000, 29000, 'z'],
    ]);
    const o = parseClusterSpec(base, 'x.yaml', { cwd: '/tmp/w', dirOverride: '/abs', frontPortOverride: 0 });
    assert.equal(o.dir, '/abs');
    assert.equal(o.frontPort, 0);
  });

  const bad: [string, RegExp][] = [
    ['nodes: []\ndir: d', /nodes must be a list of 1 to 64 nodes/],
    ['dir: d\nnodes: [{ id: 1 }]', /nodes\[0\] has no ports and there are no basePorts/],
    [`${base}\nextra: 1`, /extra is not a known key/],
    [base.replace('{ id: 2 }', '{ id: 1 }'), /node id 1 appears twice/],
    [base.replace('raft: 27000', 'raft: 17002'), /port 17002 is used twice/],
    [`${base}\nfront: 0.0.0.0:80`, /front must be "127\.0\.0\.1:PORT"/],
    [`${base}\nsettings: { raft: { listen: "127.0.0.1:1" } }`, /settings\.raft\.listen is derived/],
    [`${base}\nsettings: { tls: {} }`, /settings\.tls is not a known key/],
    [base.replace('{ id: 2 }', '{ id: 2, port: 1 }'), /nodes\[1\]\.port is not a known key/],
    ['- a', /must be a mapping/],
  ];
  for (const [text, msg] of bad) {
    it(`refuses: ${msg.source}`, () => {
      assert.throws(() => parseClusterSpec(text, 'x.yaml', { cwd: '/tmp' }), (e: Error) => e instanceof SpecError && msg.test(e.message));
    });
  }
});

describe('prepareCluster with the shipped descriptions', () => {
  let dir: string;
  before(async () => {
    dir = await mkdtemp(join(tmpdir(), 'raftauth-spec-'));
  });
  after(async () => {
    await rm(dir, { recursive: true, force: true });
  });

  for (const name of ['local-3', 'local-5', 'zones-5']) {
    it(`${name}.yaml expands into valid node configs, credentials 0600`, async () => {
      const spec = loadClusterSpec(join(REPO_ROOT, 'cluster-configs', `${name}.yaml`), { dirOverride: join(dir, name) });
      const p = await prepareCluster(spec);
      assert.equal(p.nodes.length, spec.nodes.length);
      assert.equal((await stat(join(p.certsDir, 'ca.key'))).mode & 0o777, 0o600);
      assert.equal((await stat(p.tokenFile)).mode & 0o777, 0o600);
      for (const n of spec.nodes) {
        assert.equal((await stat(join(p.certsDir, `node${n.id}.key`))).mode & 0o777, 0o600);
        const cfg = loadConfig(p.nodes.find((f) => f.id === n.id)!.configFile, {});
        assert.equal(cfg.node.id, n.id);
        assert.equal(cfg.node.zone, n.zone);
        assert.equal(cfg.raft.listen.host, '127.0.0.1');
        assert.equal(cfg.http.listen.port, n.ports.http);
        assert.equal(cfg.admin.listen?.port, n.ports.admin);
        assert.deepEqual(cfg.cluster.initialMembers.map((m) => m.id), spec.nodes.map((x) => x.id));
      }
      if (name === 'zones-5') {
        const zones = spec.nodes.map((n) => n.zone);
        assert.equal(new Set(zones).size, 3, 'three zones');
        // No zone holds a majority: losing any one zone leaves a quorum.
        for (const z of new Set(zones)) assert.ok(zones.filter((x) => x === z).length < 3, `zone ${z}`);
      }
    });
  }

  it('a restart reuses the credentials; a description with other node ids is refused', async () => {
    const d = join(dir, 'again');
    const spec = loadClusterSpec(join(REPO_ROOT, 'cluster-configs', 'local-3.yaml'), { dirOverride: d });
    const first = await prepareCluster(spec);
    assert.ok(first.created.length >= 8);
    const caKey = await readFile(join(first.certsDir, 'ca.key'), 'utf8');
    const second = await prepareCluster(spec);
    assert.deepEqual(second.created, []);
    assert.equal(await readFile(join(second.certsDir, 'ca.key'), 'utf8'), caKey);
    const five = loadClusterSpec(join(REPO_ROOT, 'cluster-configs', 'local-5.yaml'), { dirOverride: d });
    await assert.rejects(prepareCluster(five), /holds the data of nodes 1, 2, 3, but the description "local-5" lists nodes 1, 2, 3, 4, 5/);
  });

  it('refuses a CA certificate without its key instead of issuing a new CA', async () => {
    const d = join(dir, 'half');
    const spec = loadClusterSpec(join(REPO_ROOT, 'cluster-configs', 'local-3.yaml'), { dirOverride: d });
    await prepareCluster(spec);
    await rm(join(d, 'certs', 'ca.key'));
    await assert.rejects(prepareCluster(spec), /has ca\.crt but no ca\.key/);
    assert.equal(existsSync(join(d, 'certs', 'ca.key')), false);
  });
});
