// `npm run jepsen -- [options]`: a Jepsen-style run against real node processes in network
// namespaces (test/jepsen/, docs/testing.md). Needs root, iproute2 and nftables.
//
//   --time S          seconds of faults and quiet periods (default 60)
//   --nemesis LIST    all | partitions | kills | pauses | transfers, or fault kinds (test/jepsen/nemesis.ts), comma-separated (default all)
//   --workload LIST   all | kv,refresh,code,totp,audit (default all)
//   --seed N          replay a run's fault schedule
//   --nodes N         3..9 (default 5)
//   --unsafe SWITCH   ackBeforeCommit | readWithoutReadIndex: a negative control, must end invalid
//   --keep-data       keep the nodes' data directories in the run directory
//   --prefill N       write N records (users, TOTP factors, refresh-token families, audit events)
//                     through the replicated write path before the run (default 0; test/jepsen/prefill.ts)
//
// Exit code: 0 valid, 1 a checker found a violation, 2 undecided (a checker ran out of budget) or
// the run failed.
import { runJepsen } from '../test/jepsen/jepsen.ts';
import { buildIfStale } from './lib/dist.ts';
import { MAX_PREFILL_RECORDS } from '../test/jepsen/prefill.ts';

function usage(msg: string): never {
  process.stderr.write(`${msg}\nusage: npm run jepsen -- [--time S] [--nemesis all|partitions|kills|pauses|transfers|<kinds>] [--workload all|kv,refresh,code,totp,audit] [--seed N] [--nodes N] [--unsafe ackBeforeCommit|readWithoutReadIndex] [--keep-data] [--prefill N]\n`);
  process.exit(2);
}

function int(v: string | undefined, name: string, lo: number, hi: number): number {
  if (v === undefined || !/^[0-9]+$/.test(v) || Number(v) < lo || Number(v) > hi) usage(`${name} must be an integer in ${lo}..${hi}`);
  return Number(v);
}

const args = process.argv.slice(2);
let timeS = 60;
let nemesis = 'all';
let workload = 'all';
let seed: number | undefined;
let nodes = 5;
let unsafe: 'ackBeforeCommit' | 'readWithoutReadIndex' | undefined;
let keepData = false;
let prefill = 0;
for (let i = 0; i < args.length; i++) {
  const a = args[i]!;
  const v = (): string | undefined => args[++i];
  switch (a) {
    case '--time':
      timeS = int(v(), '--time', 1, 86_400);
      break;
    case '--nemesis':
      nemesis = v() ?? usage('--nemesis needs a value');
      break;
    case '--workload':
      workload = v() ?? usage('--workload needs a value');
      break;
    case '--seed':
      seed = int(v(), '--seed', 1, Number.MAX_SAFE_INTEGER);
      break;
    case '--nodes':
      nodes = int(v(), '--nodes', 3, 9);
      break;
    case '--unsafe': {
      const u = v();
      if (u !== 'ackBeforeCommit' && u !== 'readWithoutReadIndex') usage('--unsafe must be ackBeforeCommit or readWithoutReadIndex');
      unsafe = u;
      break;
    }
    case '--keep-data':
      keepData = true;
      break;
    case '--prefill':
      prefill = int(v(), '--prefill', 0, MAX_PREFILL_RECORDS);
      break;
    case '--help':
    case '-h':
      usage('');
      break;
    default:
      usage(`unknown option ${a}`);
  }
}

try {
  buildIfStale((l) => process.stdout.write(`jepsen: ${l}\n`));
  const s = await runJepsen({ timeS, nemesis, workload, nodes, keepData, ...(prefill > 0 ? { prefill } : {}), ...(seed !== undefined ? { seed } : {}), ...(unsafe ? { unsafe } : {}) });
  const lines = [`result: ${s.result} (seed ${s.seed})`, `report: ${s.dir}/report.html`];
  if (s.prefill) lines.push(`  prefill: ${s.prefill.records} records in ${s.prefill.seconds} s before the run`);
  for (const [name, v] of Object.entries(s.verdicts)) lines.push(`  ${name}: ${String(v.valid)}`);
  lines.push(`  availability on the majority side: ${s.availability.overall === null ? 'n/a' : (s.availability.overall * 100).toFixed(1) + '%'}; slowest recovery ${s.availability.maxRecoveryMs ?? 'n/a'} ms (first success), ${s.availability.maxAllNodesRecoveryMs ?? 'n/a'} ms (every node serving again)`);
  process.stdout.write(lines.join('\n') + '\n');
  process.exit(s.result === 'valid' ? 0 : s.result === 'invalid' ? 1 : 2);
} catch (e) {
  process.stderr.write(`jepsen: ${(e as Error).message}\n`);
  process.exit(2);
}
