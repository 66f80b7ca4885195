// The single binary's entry: scripts/build-binary.ts bundles this file (esbuild, CommonJS, Node
// 20's single-executable format takes nothing else) and injects it into a copy of node as
// `dist/raftauth`.
//
// node:cluster forks a node's HTTP workers by running this same executable again (process.ts
// passes process.execPath as the worker entry when isSea()), so the first thing to decide is which
// process this is: a worker serves HTTP (worker.ts), anything else is the command line.
import cluster from 'node:cluster';
import { WORKER_CONFIG_ENV } from '../server/worker.ts';

function die(what: string, e: unknown): never {
  process.stderr.write(`raftauth: ${what}: ${(e as Error)?.stack ?? String(e)}\n`);
  process.exit(1);
}

if (cluster.isWorker) {
  // worker.ts starts itself when loaded in a cluster worker with the config in its environment
  // (imported above); without that environment this process was not forked by startServer.
  if (process.env[WORKER_CONFIG_ENV] === undefined) die('cluster worker', new Error(`${WORKER_CONFIG_ENV} is not set`));
} else {
  // Loaded lazily (esbuild keeps a dynamically imported module's initialisation until the
  // import runs), so workers never evaluate the node, the storage or the native addon.
  import('./cli.ts').then(
    ({ runBinaryCli }) => runBinaryCli(process.argv.slice(2)),
    (e: unknown) => die('loading the command line', e),
  );
}
