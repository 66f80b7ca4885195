// The suite's hosts on a real kernel (root): namespaces linked by a bridge in a switch namespace,
// traffic between them, nft cuts (both ways and one way) and healing, nothing in the root
// namespace, teardown that leaves nothing behind (processes inside included), and the removal of a
// crashed run's leftovers.
import assert from 'node:assert/strict';
import { spawn } from 'node:child_process';
import type { ChildProcess } from 'node:child_process';
import { after, before, describe, it } from 'node:test';
import { waitFor } from '../../scripts/lib/wait.ts';
import { JEPSEN_SUBNET, canCreateHosts, cleanupStale, createHosts, destroyHosts, nodeIp, nodeNs, sh } from './hosts.ts';
import type { Hosts } from './hosts.ts';
import { NFT_TABLE, applyCuts, heal, listRules } from './net.ts';

const PORT = 7777;

/** Whether a TCP connection from namespace `ns` to ip:PORT opens within `ms`. */
function connects(ns: string, ip: string, ms = 700): Promise<boolean> {
  const code = `const s=require('net').connect(${PORT},'${ip}');s.setTimeout(${ms},()=>process.exit(1));s.on('connect',()=>process.exit(0));s.on('error',()=>process.exit(1));`;
  return new Promise((resolve) => {
    const c = spawn('ip', ['netns', 'exec', ns, process.execPath, '-e', code], { stdio: 'ignore' });
    c.once('exit', (rc) => resolve(rc === 0));
  });
}

/** A TCP server in namespace `ns` on ip:PORT; resolves once it listens. */
async function serve(ns: string, ip: string): Promise<ChildProcess> {
  const c = spawn('ip', ['netns', 'exec', ns, process.execPath, '-e', `require('net').createServer((s)=>s.end()).listen(${PORT},'${ip}',()=>console.log('listening'))`], { stdio: ['ignore', 'pipe', 'inherit'] });
  let out = '';
  c.stdout!.on('data', (b: Buffer) => (out += b.toString()));
  await waitFor(`a server in ${ns}`, () => out.includes('listening'), 10_000);
  return c;
}

describe('Jepsen hosts: network namespaces, bridge, nft cuts, teardown', { timeout: 120_000 }, () => {
  let hosts: Hosts;
  const servers: ChildProcess[] = [];

  before(async () => {
    const can = await canCreateHosts();
    assert.ok(can.ok, `the Jepsen suite needs root, iproute2 and nftables: ${can.ok ? '' : can.why}`);
    hosts = await createHosts([1, 2, 3]);
    for (const id of [1, 2, 3]) servers.push(await serve(nodeNs(hosts, id), nodeIp(id)));
  });

  after(async () => {
    for (const s of servers) s.kill('SIGKILL');
    if (hosts) await destroyHosts(hosts.prefix);
  });

  it('the hosts reach each other, the client reaches every node, the root namespace has no part in it', async () => {
    for (const a of [1, 2, 3]) for (const b of [1, 2, 3]) if (a !== b) assert.ok(await connects(nodeNs(hosts, a), nodeIp(b), 3_000), `${a} → ${b}`);
    for (const b of [1, 2, 3]) assert.ok(await connects(hosts.clientNs, nodeIp(b), 3_000), `client → ${b}`);
    const rootAddrs = await sh('ip', ['-o', 'addr']);
    assert.ok(!rootAddrs.includes(`${JEPSEN_SUBNET}.`), 'no suite address in the root namespace');
    const rootLinks = await sh('ip', ['-o', 'link']);
    assert.ok(!rootLinks.includes(hosts.prefix), 'no suite link in the root namespace');
    assert.ok(!(await sh('nft', ['list', 'tables'])).includes(NFT_TABLE), 'no suite nft table in the root namespace');
  });

  it('a two-way cut isolates a node from its peers but not from the client; a one-way cut drops one direction; heal restores everything', async () => {
    await applyCuts(hosts, [[1, 3], [3, 1], [2, 3], [3, 2]]);
    assert.match(await listRules(hosts, 3), new RegExp(`${nodeIp(1).replace(/\./g, '\\.')}`));
    assert.equal(await connects(nodeNs(hosts, 1), nodeIp(3)), false);
    assert.equal(await connects(nodeNs(hosts, 3), nodeIp(2)), false);
    assert.ok(await connects(nodeNs(hosts, 1), nodeIp(2), 3_000), '1 → 2 untouched');
    assert.ok(await connects(hosts.clientNs, nodeIp(3), 3_000), 'the client still reaches the isolated node');

    // 1 → 2 dropped at 2: 2 never sees 1's SYN. 2 → 1: the SYN arrives, the SYN-ACK is dropped at 2.
    await applyCuts(hosts, [[1, 2]]);
    assert.equal(await connects(nodeNs(hosts, 1), nodeIp(2)), false);
    assert.doesNotMatch(await listRules(hosts, 1), /saddr/, 'node 1 drops nothing');
    assert.ok(await connects(nodeNs(hosts, 1), nodeIp(3), 3_000), 'the rules of the previous partition are gone');

    await heal(hosts);
    for (const id of [1, 2, 3]) assert.doesNotMatch(await listRules(hosts, id), /saddr/);
    for (const a of [1, 2, 3]) for (const b of [1, 2, 3]) if (a !== b) assert.ok(await connects(nodeNs(hosts, a), nodeIp(b), 3_000), `${a} → ${b} after heal`);
  });

  it('teardown kills what runs inside and deletes every namespace; leftovers of a dead owner are removed at the next start', async () => {
    const other = await createHosts([1]);
    const sleeper = await serve(nodeNs(other, 1), nodeIp(1));
    assert.deepEqual(await destroyHosts(other.prefix), []);
    await waitFor('the process inside to be killed', () => sleeper.exitCode !== null || sleeper.signalCode !== null, 10_000);
    assert.ok(!(await sh('ip', ['netns', 'list'])).includes(other.prefix));

    // A run whose owner process is gone: its prefix carries the dead pid.
    const dead = spawn(process.execPath, ['-e', '0']);
    const pid = dead.pid!;
    await new Promise((r) => dead.once('exit', r));
    const staleNs = `rj-${pid}-abcdef-n1`;
    await sh('ip', ['netns', 'add', staleNs]);
    const removed = await cleanupStale();
    assert.ok(removed.includes(`rj-${pid}-abcdef`), `removed ${JSON.stringify(removed)}`);
    const left = await sh('ip', ['netns', 'list']);
    assert.ok(!left.includes(staleNs));
    assert.ok(left.includes(hosts.prefix), 'a live run (this one) is left alone');
  });
});
