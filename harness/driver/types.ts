import type { GuestImage } from '../image/build.ts';
import type { StartVmOptions, VmProcess } from '../hypervisor/qemu.ts';
import type { Accel } from '../hypervisor/version.ts';
import type { ProbeStream } from '../migration/probe-stream.ts';
import type { Sample } from '../store/sample.ts';
import type { HostNode, Topology } from '../testbed/topology.ts';
import type { ClientSet, StartClientsOptions } from '../workloads/clients.ts';

/**
 * The seam between what an experiment does (boot guests, migrate, probe,
 * load them) and where it happens. The local driver runs everything in
 * network namespaces of this machine; the ssh driver on servers reached over
 * SSH. Above this interface no module names a namespace or knows how a host
 * is reached: hosts are names, addresses come from `topology`.
 */
export interface TestbedDriver {
  readonly kind: 'local' | 'ssh';
  /** Testbed id (names, tags). */
  readonly id: string;
  /**
   * The spec's topology: host names, racks, links and their rates (for the
   * physical bounds), guest addressing. Under the ssh driver the hosts'
   * dataIp/migIp are the inventory's addresses.
   */
  readonly topology: Topology;
  /** Hypervisor back end (the manifest names it). */
  readonly backend: 'qemu' | 'libvirt';
  /**
   * Whether a treatment's guests may start at once. Both drivers allow it: each guest has its own tap, QMP socket,
   * files and (libvirt) domain; over SSH the image upload is shared per server (one promise) and the session
   * records every guest synchronously.
   */
  readonly concurrentGuestStart: boolean;
  /**
   * Creates the guest's NIC on `host` and starts its QEMU (booting, or paused
   * with `incoming: 'defer'`). On failure nothing of it is left.
   */
  startGuest(host: HostNode, o: GuestStart): Promise<VmProcess>;
  /** Removes the guest NIC (after its QEMU ended); never fails. */
  releaseGuest(host: HostNode, tap: string): Promise<void>;
  /** A probe of `ip` from the client vantage point, not yet started; null without one. */
  probe(ip: string, intervalMs: number, tags: Record<string, string>, emit: (s: Sample[]) => void): ProbeStream | null;
  /**
   * A host's clock minus the controller's (ms) and its bound, to put QMP event times of different
   * hosts on one clock; null when the host shares the controller's clock.
   */
  clockOffset(host: string): { offsetMs: number; uncertaintyMs: number } | null;
  /** Workload clients from the client vantage point; null without one. */
  startClients(o: Omit<StartClientsOptions, 'launcher'>): Promise<ClientSet> | null;
}

/** What a guest start needs beyond where it runs (the driver adds the host side). */
export type GuestStart = Omit<StartVmOptions, 'netns' | 'dieWithHarness'> & {
  /** auto: the driver may restore a saved booted guest (local driver, ssh driver's qemu back end); cold: always boot (vms[].boot). */
  boot?: 'auto' | 'cold';
};

/** What every guest of a treatment shares, whichever driver. */
export interface VmEnv {
  driver: TestbedDriver;
  topo: Topology;
  image: GuestImage;
  accel: Accel;
  /** Where QMP sockets and serial logs go on the controller (per treatment). */
  dir: string;
  bootTimeoutMs: number;
}
