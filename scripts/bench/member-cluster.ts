// What the benchmarked clusters (etcd, raftauth, the prototype) share: their member processes, a
// temp dir, the client endpoints and a small status pool apart from the workload's, and the same
// CPU accounting, kill and stop.
import type { Endpoint } from './client.ts';
import { Pool } from './client.ts';
import { killMember, membersCpuByKind, membersCpuSeconds, stopMembers } from './procs.ts';
import type { MemberProcess } from './procs.ts';

/** How long a member may take to exit once killed or stopped. */
export const EXIT_TIMEOUT_MS = 10_000;

export abstract class MemberCluster<M extends MemberProcess> {
  protected readonly dir: string;
  protected readonly members: M[];
  readonly endpoints: readonly Endpoint[];
  /** A small pool of its own for status calls, apart from the workload's. */
  protected readonly statusPool: Pool;

  protected constructor(dir: string, members: M[], endpoints: readonly Endpoint[]) {
    this.dir = dir;
    this.members = members;
    this.endpoints = endpoints;
    this.statusPool = new Pool(endpoints, 2);
  }

  cpuSeconds(): number | null {
    return membersCpuSeconds(this.members);
  }

  cpuSecondsByKind(): { primary: number; workers: number } | null {
    return membersCpuByKind(this.members);
  }

  async kill(i: number): Promise<void> {
    await killMember(this.members[i]!, EXIT_TIMEOUT_MS);
  }

  async stop(): Promise<void> {
    this.statusPool.close();
    await stopMembers(this.members, this.dir, EXIT_TIMEOUT_MS);
  }
}
