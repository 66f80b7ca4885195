// `raftauth certs init|issue`: the cluster CA and node certificates (cert-files.ts). Keys 0600.
import { resolve } from 'node:path';
import { CA_VALIDITY_DAYS_DEFAULT, NODE_VALIDITY_DAYS_MAX } from '../../crypto/certs.ts';
import { CliError, EXIT_OK, UsageError, flag, list, parse, parseNodeId, parsePositiveInt, requiredStr, str } from '../args.ts';
import { ensureAdminToken, initCa, issueNodeCertFiles } from '../cert-files.ts';
import type { CliIo } from '../io.ts';

export const CERTS_USAGE = `usage:
  raftauth certs init --dir DIR [--days N] [--admin-token] [--force]
      creates the cluster CA: DIR/ca.crt and DIR/ca.key (0600); --admin-token also writes a new
      DIR/admin.token (0600) unless one exists
  raftauth certs issue --dir DIR --id N[,N…] [--host NAME]… [--out DIR] [--days N] [--force]
      issues node N's certificate signed by DIR's CA: OUT/nodeN.crt and OUT/nodeN.key (0600);
      it names the node (SAN raftauth://node/N) and localhost, 127.0.0.1 and every --host
  Existing files are never replaced without --force.`;

/** Wrap file-system and certificate errors as command failures (exit 1), keeping their message. */
async function failing<T>(run: () => Promise<T>): Promise<T> {
  try {
    return await run();
  } catch (e) {
    if (e instanceof UsageError || e instanceof CliError) throw e;
    throw new CliError((e as Error).message);
  }
}

export async function certsCommand(argv: readonly string[], io: CliIo): Promise<number> {
  const sub = argv[0];
  const rest = argv.slice(1);
  switch (sub) {
    case 'init': {
      const { values } = parse(rest, { dir: { type: 'string' }, days: { type: 'string' }, 'admin-token': { type: 'boolean' }, force: { type: 'boolean' } }, 0);
      const dir = resolve(io.cwd, requiredStr(values, 'dir'));
      const days = parsePositiveInt(str(values, 'days'), '--days', 2 * CA_VALIDITY_DAYS_DEFAULT);
      const p = await failing(() => initCa(dir, { overwrite: flag(values, 'force'), ...(days !== undefined ? { validityDays: days } : {}) }));
      io.out(`wrote ${p.certPath}\nwrote ${p.keyPath} (mode 0600)\n`);
      if (flag(values, 'admin-token')) {
        const file = resolve(dir, 'admin.token');
        if (await failing(() => ensureAdminToken(file))) io.out(`wrote ${file} (mode 0600)\n`);
        else io.out(`kept the existing ${file}\n`);
      }
      return EXIT_OK;
    }
    case 'issue': {
      const { values } = parse(rest, { dir: { type: 'string' }, id: { type: 'string', multiple: true }, host: { type: 'string', multiple: true }, out: { type: 'string' }, days: { type: 'string' }, force: { type: 'boolean' } }, 0);
      const dir = resolve(io.cwd, requiredStr(values, 'dir'));
      const ids = list(values, 'id').map((s) => parseNodeId(s, '--id'));
      if (ids.length === 0) throw new UsageError('--id is required');
      const outDir = resolve(io.cwd, str(values, 'out') ?? dir);
      const days = parsePositiveInt(str(values, 'days'), '--days', NODE_VALIDITY_DAYS_MAX);
      const hosts = list(values, 'host');
      for (const id of [...new Set(ids)]) {
        const p = await failing(() => issueNodeCertFiles(dir, id, { outDir, hosts, overwrite: flag(values, 'force'), ...(days !== undefined ? { validityDays: days } : {}) }));
        io.out(`wrote ${p.certPath}\nwrote ${p.keyPath} (mode 0600)\n`);
      }
      return EXIT_OK;
    }
    case undefined:
      throw new UsageError('certs needs a subcommand: init or issue');
    default:
      throw new UsageError(`unknown certs subcommand ${JSON.stringify(sub)} (expected init or issue)`);
  }
}
