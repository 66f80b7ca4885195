// Network faults: nft drop rules inside the node namespaces. A partition is a set of directed
// "from → to" pairs whose packets are dropped at `to`'s input hook; dropping both directions cuts
// a pair, dropping one is a one-way fault. Each node's rules are replaced atomically by one
// `nft -f` script (delete and re-create the table in one transaction), so healing is exact.
import { nodeIp, nodeNs, sh } from './hosts.ts';
import type { Hosts } from './hosts.ts';

/** The nft table the suite owns inside each node namespace. */
export const NFT_TABLE = 'raftauth_jepsen';

/** Directed cuts: `to` drops every packet from `from`. */
export type Cuts = ReadonlyArray<readonly [from: number, to: number]>;

/** Both directions of every pair across the groups (nodes in no group keep every link). */
export function cutBetween(groups: readonly (readonly number[])[]): [number, number][] {
  const out: [number, number][] = [];
  for (let i = 0; i < groups.length; i++) {
    for (let j = 0; j < groups.length; j++) {
      if (i === j) continue;
      for (const a of groups[i]!) for (const b of groups[j]!) out.push([a, b]);
    }
  }
  return out;
}

/** Every directed pair among `ids` that is not a link of `links` (an undirected adjacency). */
export function cutAllBut(ids: readonly number[], links: ReadonlyArray<readonly [number, number]>): [number, number][] {
  const ok = new Set(links.flatMap(([a, b]) => [`${a}>${b}`, `${b}>${a}`]));
  const out: [number, number][] = [];
  for (const a of ids) for (const b of ids) if (a !== b && !ok.has(`${a}>${b}`)) out.push([a, b]);
  return out;
}

function script(dropFrom: readonly number[]): string {
  // `add` then `delete` makes the delete succeed whether or not the table exists.
  const lines = [`add table inet ${NFT_TABLE}`, `delete table inet ${NFT_TABLE}`];
  if (dropFrom.length > 0) {
    lines.push(
      `table inet ${NFT_TABLE} {`,
      '  chain input {',
      '    type filter hook input priority -10; policy accept;',
      `    ip saddr { ${dropFrom.map(nodeIp).join(', ')} } drop`,
      '  }',
      '}',
    );
  }
  return lines.join('\n') + '\n';
}

/** Make the network exactly `cuts` (replacing any previous rules). */
export async function applyCuts(hosts: Hosts, cuts: Cuts): Promise<void> {
  await Promise.all(
    hosts.nodeIds.map((to) => {
      const from = [...new Set(cuts.filter(([, t]) => t === to).map(([f]) => f))].sort((a, b) => a - b);
      return sh('ip', ['netns', 'exec', nodeNs(hosts, to), 'nft', '-f', '-'], script(from));
    }),
  );
}

/** Remove every rule: a fully connected network. */
export function heal(hosts: Hosts): Promise<void> {
  return applyCuts(hosts, []);
}

/** The rules in place on node `id` (for tests of this module). */
export function listRules(hosts: Hosts, id: number): Promise<string> {
  return sh('ip', ['netns', 'exec', nodeNs(hosts, id), 'nft', 'list', 'ruleset']);
}
