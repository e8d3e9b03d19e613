import type { VmProcess } from '../hypervisor/qemu.ts';
import { startGuestFast } from '../hypervisor/saved-guest.ts';
import { ProbeStream } from '../migration/probe-stream.ts';
import type { Sample } from '../store/sample.ts';
import type { TestbedState } from '../testbed/state.ts';
import type { HostNode, Topology } from '../testbed/topology.ts';
import { run } from '../util/exec.ts';
import { startClients, type ClientSet, type StartClientsOptions } from '../workloads/clients.ts';
import { localLauncher } from './launch.ts';
import type { GuestStart, TestbedDriver } from './types.ts';

/**
 * The local testbed (harness/testbed/local.ts) as a driver: hosts are
 * network namespaces of this machine, a guest's NIC is a tap on the host
 * namespace's bridge `mb-br`, probes and clients run in the client namespace.
 */
export class LocalDriver implements TestbedDriver {
  readonly kind = 'local' as const;
  readonly backend = 'qemu' as const;
  readonly concurrentGuestStart = true;

  constructor(readonly state: TestbedState) {}

  get id(): string {
    return this.state.id;
  }

  get topology(): Topology {
    return this.state.topology;
  }

  async startGuest(host: HostNode, o: GuestStart): Promise<VmProcess> {
    if (o.tap) await createTap(host.ns, o.tap.ifname);
    try {
      // restored from a saved booted guest when possible (ready in ~1 s), cold-booted otherwise
      const { boot, ...vm } = o;
      return await startGuestFast({ ...vm, netns: host.ns }, boot);
    } catch (e) {
      if (o.tap) await deleteTap(host.ns, o.tap.ifname);
      throw e;
    }
  }

  releaseGuest(host: HostNode, tap: string): Promise<void> {
    return deleteTap(host.ns, tap);
  }

  probe(ip: string, intervalMs: number, tags: Record<string, string>, emit: (s: Sample[]) => void): ProbeStream | null {
    const ns = this.topology.clientNs;
    return ns ? new ProbeStream(ns, ip, intervalMs, tags, emit) : null;
  }

  clockOffset(): null {
    return null; // every namespace shares this machine's clock
  }

  startClients(o: Omit<StartClientsOptions, 'launcher'>): Promise<ClientSet> | null {
    const ns = this.topology.clientNs;
    return ns ? startClients({ ...o, launcher: localLauncher(ns) }) : null;
  }
}

export async function createTap(ns: string, ifname: string): Promise<void> {
  // one `ip` process for the three commands: this runs before every guest start and migration
  const input = `tuntap add dev ${ifname} mode tap\nlink set ${ifname} master mb-br\nlink set ${ifname} up\n`;
  await run('ip', ['-n', ns, '-batch', '-'], { input });
}

export async function deleteTap(ns: string, ifname: string): Promise<void> {
  await run('ip', ['-n', ns, 'link', 'del', ifname], { allowFail: true });
}
