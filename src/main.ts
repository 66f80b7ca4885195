#!/usr/bin/env node
// The raftauth program: the one entry module of every raftauth process (built to dist/main.js).
//
//   raftauth <command> …            the command line (src/cli/main.ts)
//   raftauth start --config FILE    a node's primary (src/cli/commands/start.ts); `raftauth --config
//                                   FILE` means the same
//   (forked by a primary)           an HTTP worker (src/server/worker.ts)
//
// It is what package.json "bin" names, what `node --enable-source-maps dist/main.js --config
// node.yaml` runs, what a primary forks for each HTTP worker (node:cluster, src/server/process.ts),
// and what the single binary bundles (scripts/build-binary.ts; there a worker is the binary
// itself). One entry for the three kinds, so the code that decides what a process is runs the same
// from dist/ as from the binary.
//
// Each kind's code is imported only when it runs: a worker never loads the node, its storage or the
// native addon, and a CLI command never loads the HTTP worker. No top-level await: the single
// binary's bundle is CommonJS.
import cluster from 'node:cluster';
import { bootMark } from './ops/boot-marks.ts';
import { guardWorkerChannel } from './server/channel-guard.ts';

bootMark('entry');

function die(what: string, e: unknown): never {
  // Straight to stderr: the logger may be what failed.
  process.stderr.write(`raftauth: ${what}: ${(e as Error)?.stack ?? String(e)}\n`);
  process.exit(1);
}

if (cluster.isWorker) {
  // First of all: a write into the channel of a primary that is gone must not crash this worker
  // with a stack trace of EPIPE while it loads its modules (src/server/channel-guard.ts).
  const guard = guardWorkerChannel(cluster.worker!);
  // Forked by startServer with the node's config in its environment; runWorker refuses to run without it.
  import('./server/worker.ts')
    .then(({ runWorker }) => {
      bootMark('worker modules loaded');
      return runWorker(guard);
    })
    .catch((e: unknown) => die('the HTTP worker failed to start', e));
} else {
  Promise.all([import('./cli/main.ts'), import('./cli/io.ts')])
    .then(async ([{ cliArgs, runRaftauth }, { processIo }]) => {
      bootMark('cli loaded');
      const code = await runRaftauth(cliArgs(process.argv.slice(2)), processIo());
      // null: `start` keeps the process running until the server exits on a signal.
      if (code !== null) process.exitCode = code;
    })
    .catch((e: unknown) => die('the command line failed', e));
}
