// `npm start`: a local raftauth cluster in the foreground.
//
//   npm start                                  3 nodes (cluster-configs/local-3.yaml) in .raftauth/local/
//   npm start -- --nodes 5                     5 nodes (cluster-configs/local-5.yaml) in .raftauth/local-5/
//   npm start -- --cluster cluster-configs/zones-5.yaml
//   options: --dir DIR (where certificates, configs and data live), --front-port N (0 = any free port)
//
// Builds the program (npm run build) when dist/ is missing or older than src/: the nodes run from
// it. Creates the CA, node certificates and admin token when missing, starts every node with its
// log lines prefixed `[n<id>]`, fronts them with one address that balances over ready nodes
// (scripts/lib/front-proxy.ts), waits for a leader, writes <dir>/cluster.json and prints the URLs.
// Ctrl-C (SIGINT) or SIGTERM stops every node (SIGKILL after a bound) and removes cluster.json;
// a second Ctrl-C kills them at once. A restart reuses the data and the certificates.
// One launcher per directory: while another one (or the nodes it left) runs the cluster in <dir>,
// or the description's ports are taken, this one refuses and touches nothing (scripts/lib/run-lock.ts).
import { rm } from 'node:fs/promises';
import { join, resolve } from 'node:path';
import { parseArgs } from 'node:util';
import { writeClusterFile } from '../src/cli/cluster-file.ts';
import type { ClusterFile } from '../src/cli/cluster-file.ts';
import { FrontProxy } from './lib/front-proxy.ts';
import { ensureDemo } from './lib/demo.ts';
import { waitFor } from './lib/wait.ts';
import { buildIfStale } from './lib/dist.ts';
import { ClusterRunningError, acquireRunLock, busyPorts } from './lib/run-lock.ts';
import type { RunLock } from './lib/run-lock.ts';
import { REPO_ROOT, STOP_GRACE_MS, adminUrl, httpUrl, loadClusterSpec, startCluster } from './lib/local-cluster.ts';
import type { ClusterSpec, LocalCluster } from './lib/local-cluster.ts';

/**
 * A second signal within this long of the first is the same Ctrl-C: `npm start` forwards the
 * terminal's SIGINT to this process, which also gets it from the terminal itself.
 */
const REPEAT_SIGNAL_IGNORE_MS = 1_000;

/** Start-up deadline: three node processes on a busy 2-core machine take a while. */
const LEADER_TIMEOUT_MS = 60_000;

const USAGE = `usage: npm start -- [--nodes 3|5] [--cluster FILE] [--dir DIR] [--front-port N]
  --nodes 3|5       cluster-configs/local-3.yaml (default) or local-5.yaml
  --cluster FILE    any cluster description (see cluster-configs/local-3.yaml)
  --dir DIR         where certificates, configs and data live (default: the description's dir)
  --front-port N    port of the front address, http://localhost:N (0 = any free port; default: the description's)`;

function say(line: string): void {
  process.stdout.write(`[start] ${line}\n`);
}

function parseCommandLine(argv: string[]): ClusterSpec {
  let values;
  try {
    ({ values } = parseArgs({ args: argv, options: { nodes: { type: 'string' }, cluster: { type: 'string' }, dir: { type: 'string' }, 'front-port': { type: 'string' }, help: { type: 'boolean' } }, strict: true, allowPositionals: false }));
  } catch (e) {
    throw new UsageError((e as Error).message);
  }
  if (values.help) {
    process.stdout.write(`${USAGE}\n`);
    process.exit(0);
  }
  if (values.nodes !== undefined && values.cluster !== undefined) throw new UsageError('give --nodes or --cluster, not both');
  if (values.nodes !== undefined && values.nodes !== '3' && values.nodes !== '5') throw new UsageError('--nodes must be 3 or 5');
  const file = values.cluster !== undefined ? resolve(values.cluster) : join(REPO_ROOT, 'cluster-configs', `local-${values.nodes ?? '3'}.yaml`);
  let frontPort: number | undefined;
  if (values['front-port'] !== undefined) {
    if (!/^[0-9]{1,5}$/.test(values['front-port']) || Number(values['front-port']) > 65535) throw new UsageError('--front-port must be a port from 0 to 65535');
    frontPort = Number(values['front-port']);
  }
  return loadClusterSpec(file, { ...(values.dir !== undefined ? { dirOverride: values.dir } : {}), ...(frontPort !== undefined ? { frontPortOverride: frontPort } : {}) });
}

class UsageError extends Error {}

/** Wait until every node serves a JWKS with a key: the leader has created the signing keys and each node's workers have them. */
async function waitForKeys(nodeUrls: readonly string[], timeoutMs: number): Promise<void> {
  for (const url of nodeUrls) {
    await waitFor(
      `the signing keys to reach ${url}`,
      async () => {
        const res = await fetch(`${url}/jwks.json`, { signal: AbortSignal.timeout(2_000) });
        if (res.status !== 200) return false;
        const body = (await res.json()) as { keys?: unknown[] };
        return Array.isArray(body.keys) && body.keys.length > 0;
      },
      timeoutMs,
    );
  }
}

async function main(): Promise<void> {
  let spec: ClusterSpec;
  try {
    spec = parseCommandLine(process.argv.slice(2));
  } catch (e) {
    process.stderr.write(`${(e as Error).message}\n${e instanceof UsageError ? `${USAGE}\n` : ''}`);
    process.exit(2);
  }
  const clusterFile = join(spec.dir, 'cluster.json');
  // Before anything is touched: is this cluster (or this description's ports) in use already?
  let lock: RunLock;
  try {
    lock = await acquireRunLock(spec.dir);
    const busy = await busyPorts(spec);
    if (busy.length > 0) {
      await lock.release();
      throw new ClusterRunningError(
        `${busy.length === 1 ? 'a port' : `${busy.length} ports`} of the description "${spec.name}" ${busy.length === 1 ? 'is' : 'are'} in use: ${busy.join(', ')}. ` +
          'Is a cluster of this description already running from another directory? Stop it first, or give this description other ports.',
      );
    }
  } catch (e) {
    if (!(e instanceof ClusterRunningError)) throw e;
    process.stderr.write(`[start] refused: ${e.message}\n`);
    process.exit(1);
  }
  // A cluster.json left by a launcher that was killed names dead processes: never leave it readable as current.
  await rm(clusterFile, { force: true });

  let cluster: LocalCluster | null = null;
  let front: FrontProxy | null = null;
  let stopping = false;
  let firstSignalAt = 0;

  const shutdown = async (code: number, why: string): Promise<never> => {
    if (stopping) process.exit(code);
    stopping = true;
    say(`${why}: stopping every node (SIGTERM, SIGKILL after ${STOP_GRACE_MS} ms; Ctrl-C again to kill at once)`);
    await rm(clusterFile, { force: true });
    await front?.close();
    await cluster?.stop();
    await lock.release();
    say('all nodes stopped');
    process.exit(code);
  };
  const onSignal = (signal: NodeJS.Signals) => {
    if (stopping) {
      if (Date.now() - firstSignalAt < REPEAT_SIGNAL_IGNORE_MS) return;
      say(`${signal} again: killing every node now`);
      for (const n of cluster?.nodes ?? []) cluster!.kill(n.id, 'SIGKILL');
      return;
    }
    firstSignalAt = Date.now();
    void shutdown(0, signal);
  };
  process.on('SIGINT', onSignal);
  process.on('SIGTERM', onSignal);

  try {
    // Before any node starts: the nodes run dist/ (a fresh clone has none yet).
    buildIfStale(say);
    say(`cluster "${spec.name}": ${spec.nodes.length} nodes, files in ${spec.dir}`);
    // The front first: its URL (http://localhost:<port>, where browsers allow WebAuthn) is the
    // issuer every node puts in its tokens and metadata.
    front = new FrontProxy({ backends: spec.nodes.map((n) => ({ id: n.id, url: httpUrl(n) })), port: spec.frontPort });
    let frontUrl: string;
    try {
      frontUrl = await front.start();
    } catch (e) {
      throw new Error(`cannot listen on port ${spec.frontPort} of 127.0.0.1 and ::1 for the front address (${(e as Error).message}); choose another with --front-port`, { cause: e });
    }
    cluster = await startCluster({ ...spec, issuer: frontUrl }, {
      onExit: (id, info) => {
        if (stopping) return;
        say(`node ${id} exited unexpectedly (code ${info.code ?? '-'}, signal ${info.signal ?? '-'}); the others keep running`);
        if (cluster && cluster.nodes.every((n) => !n.running)) void shutdown(1, 'every node has exited');
      },
    });
    await lock.recordNodes(cluster.nodes.flatMap((n) => (n.pid !== undefined ? [{ id: n.id, pid: n.pid, configFile: n.configFile }] : [])));
    for (const f of cluster.prepared.created) say(`created ${f}`);
    const { leader, term } = await cluster.waitForLeader(LEADER_TIMEOUT_MS);
    // Announce only once the front address routes: a majority of nodes ready behind it.
    await front.waitUntilReady(Math.floor(spec.nodes.length / 2) + 1, LEADER_TIMEOUT_MS);
    // The demo clients and user, and the signing keys the leader creates: a token can be fetched once this returns.
    const demo = await ensureDemo({ url: adminUrl(spec.nodes[0]!), token: cluster.adminToken }, spec.dir, { dataKeyTimeoutMs: LEADER_TIMEOUT_MS });
    await waitForKeys(spec.nodes.map(httpUrl), LEADER_TIMEOUT_MS);
    const info: ClusterFile = {
      front: frontUrl,
      nodes: cluster.nodes.map((n) => ({ id: n.id, http: httpUrl(n.spec), admin: adminUrl(n.spec), pid: n.pid ?? 0 })),
      demo,
    };
    if (info.nodes.some((n) => n.pid === 0)) throw new Error('a node exited during start-up');
    await writeClusterFile(clusterFile, info);
    const lines = [
      `ready: node ${leader} leads (term ${term})`,
      `front:   ${frontUrl}   (balances over ready nodes; the issuer URL)`,
      ...spec.nodes.map((n) => `node ${n.id}:  http ${httpUrl(n)}  admin ${adminUrl(n)}${n.zone ? `  zone ${n.zone}` : ''}`),
      `admin token: ${cluster.prepared.tokenFile}`,
      `cluster.json: ${clusterFile}`,
      `issuer:  ${frontUrl}/.well-known/openid-configuration`,
      `demo confidential client: ${demo.confidentialClient.client_id} / ${demo.confidentialClient.client_secret}`,
      `demo public client: ${demo.publicClient.client_id} (redirect ${demo.publicClient.redirect_uri}); demo user: ${demo.user.username} / ${demo.user.password}`,
      `try: curl -s -u ${demo.confidentialClient.client_id}:${demo.confidentialClient.client_secret} -d grant_type=client_credentials -d scope=api:read ${frontUrl}/token`,
      `     npm run raftauth -- status --cluster ${clusterFile}`,
      'Ctrl-C stops the cluster.',
    ];
    for (const l of lines) say(l);
  } catch (e) {
    process.stderr.write(`[start] failed: ${(e as Error).message}\n`);
    await shutdown(1, 'start-up failed');
  }
}

await main();
