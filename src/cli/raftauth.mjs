#!/usr/bin/env node
// The `raftauth` executable of package.json "bin": plain JavaScript so that it runs under bare
// `node` from anywhere (a symlink in node_modules/.bin, any working directory). It registers tsx
// from this package's own node_modules (resolved from this file, not from the working directory)
// and runs the TypeScript CLI (main.ts). The single binary (npm run build:binary) does not use it.
import { register } from 'tsx/esm/api';

register();
// `raftauth start` forks HTTP workers (node:cluster) with this process's execArgv, adding
// `--import tsx` when it has none, which node would resolve from the working directory. Give them
// the loader by absolute URL instead, so a node starts from any directory.
process.execArgv.push('--import', import.meta.resolve('tsx'));
const { runRaftauth } = await import('./main.ts');
const { processIo } = await import('./io.ts');
const code = await runRaftauth(process.argv.slice(2), processIo());
if (code !== null) process.exitCode = code;
