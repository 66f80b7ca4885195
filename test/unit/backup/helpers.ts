// Test support for backups: node config files for a LocalCluster's members, and an admin API
// served by a real node on 127.0.0.1.
import { writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import type { AddressInfo } from 'node:net';
import { createClusterCa, issueNodeCert, writePem } from '../../../src/crypto/certs.ts';
import { buildAdminApp } from '../../../src/ops/admin.ts';
import type { RaftNode } from '../../../src/node/node.ts';
import type { LocalCluster } from '../node/helpers.ts';

export const TOKEN = 'backup-test-admin-token-0123456789abcdef';

/** Serve `node`'s admin API on a free loopback port; returns its URL and a closer. */
export async function serveAdmin(node: RaftNode): Promise<{ url: string; close: () => Promise<void> }> {
  const app = buildAdminApp({ node, token: TOKEN });
  await app.listen({ host: '127.0.0.1', port: 0 });
  const port = (app.server.address() as AddressInfo).port;
  return { url: `http://127.0.0.1:${port}`, close: () => app.close() };
}

/**
 * Write `dir/node<id>.yaml` for each member of `cluster` (as an operator would: the cluster's
 * members under cluster.initialMembers, the node's data directory, its certificate files).
 */
export async function writeNodeConfigs(dir: string, cluster: LocalCluster, ids: readonly number[]): Promise<Map<number, string>> {
  const ca = await createClusterCa();
  await writePem(dir, 'ca', ca);
  const members = ids
    .map((id) => {
      const a = cluster.addresses.get(id)!;
      return `    - { id: ${id}, raftAddress: "${a.raftAddress}", httpAddress: "${a.httpAddress}" }`;
    })
    .join('\n');
  const out = new Map<number, string>();
  for (const id of ids) {
    await writePem(dir, `node${id}`, await issueNodeCert(ca, id));
    const file = join(dir, `node${id}.yaml`);
    await writeFile(
      file,
      `node: { id: ${id}, dataDir: ${JSON.stringify(cluster.dataDir(id))} }
cluster:
  initialMembers:
${members}
raft: { tickMs: 20 }
tls: { ca: ca.crt, cert: node${id}.crt, key: node${id}.key }
http: { workers: 0 }
`,
    );
    out.set(id, file);
  }
  return out;
}
