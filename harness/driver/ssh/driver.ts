import { join } from 'node:path';
import type { VmProcess } from '../../hypervisor/qemu.ts';
import type { GuestImage } from '../../image/build.ts';
import type { InventoryHost } from '../../inventory/load.ts';
import { ProbeStream } from '../../migration/probe-stream.ts';
import type { ClockOffset } from '../../ssh/clock.ts';
import type { SshPool } from '../../ssh/pool.ts';
import type { Sample } from '../../store/sample.ts';
import type { HostNode, Topology } from '../../testbed/topology.ts';
import { startClients, type ClientSet, type StartClientsOptions } from '../../workloads/clients.ts';
import { LocalLauncher, SshLauncher, type Launcher } from '../launch.ts';
import type { GuestStart, TestbedDriver } from '../types.ts';
import { deleteRemoteTap, ensureImage, type RemoteImage } from './remote-host.ts';
import { startRemoteGuest } from './remote-vm.ts';
import { RemoteSavedGuests } from './remote-saved-guest.ts';
import { attachLibvirtGuest, domainName, libvirtPaths, startLibvirtGuest, type LibvirtVmProcess } from './libvirt-vm.ts';
import type { SshConnection } from '../../ssh/connection.ts';
import type { Accel } from '../../hypervisor/version.ts';

export interface SshDriverOptions {
  id: string;
  topology: Topology;
  pool: SshPool;
  /** Spec host name -> inventory server. */
  servers: ReadonlyMap<string, InventoryHost>;
  /** Per spec host, the server's clock offset to the controller (preflight). */
  clocks: ReadonlyMap<string, ClockOffset | null>;
  /** Directory on every server for this run's sockets, pidfiles and serial logs. */
  remoteRunDir: string;
  /** Directory on every server where guest images are kept by content hash. */
  remoteImageDir: string;
  /** Where probes and clients run: the inventory's client host, or the controller. */
  client: Launcher;
  /** Told before a tap is created and after each guest QEMU started, to record them for teardown after a crash. */
  onTap?: (server: string, ifname: string) => void;
  onGuest?: (server: string, pid: number, pidFile: string) => void;
  /** Told when a guest's QEMU is seen to have ended (it no longer needs ending at teardown). */
  onGuestGone?: (server: string, pid: number) => void;
  /** Hypervisor back end of every server (default qemu). */
  backend?: 'qemu' | 'libvirt';
  /** libvirt back end: told before a domain is defined on a server (or migrated to it), to record it for teardown. */
  onDomain?: (server: string, domain: string) => void;
}

/**
 * The ssh driver: every host is a server reached over SSH (harness/ssh), the
 * `qemu` back end starts guests there (remote-vm.ts; restored from a saved
 * booted guest when it can, remote-saved-guest.ts), their NIC is a tap on
 * the inventory's bridge, probes and clients run from the client host.
 */
export class SshDriver implements TestbedDriver {
  readonly kind = 'ssh' as const;
  readonly backend: 'qemu' | 'libvirt';
  readonly concurrentGuestStart = true;
  private images = new Map<string, Promise<RemoteImage>>();
  /** qemu back end: saved booted guests on the servers, restored instead of booting (remote-saved-guest.ts). */
  private saved = new RemoteSavedGuests();

  constructor(private readonly o: SshDriverOptions) {
    this.backend = o.backend ?? 'qemu';
  }

  get id(): string {
    return this.o.id;
  }

  get topology(): Topology {
    return this.o.topology;
  }

  private server(host: HostNode): InventoryHost {
    const s = this.o.servers.get(host.name);
    if (!s) throw new Error(`spec host ${host.name} has no server in the inventory`);
    return s;
  }

  /** The guest image on a server, uploaded once (by content hash) per server and run. */
  private image(host: HostNode, image: GuestImage): Promise<RemoteImage> {
    let p = this.images.get(host.name);
    if (!p) {
      p = ensureImage(this.o.pool.get(this.server(host).name), image, this.o.remoteImageDir);
      p.catch(() => this.images.delete(host.name));
      this.images.set(host.name, p);
    }
    return p;
  }

  async startGuest(host: HostNode, o: GuestStart): Promise<VmProcess> {
    const server = this.server(host);
    const conn = this.o.pool.get(server.name);
    const image = await this.image(host, o.image);
    const bridge = server.bridge ?? 'br0';
    if (this.backend === 'libvirt') {
      // libvirt creates the tap on the bridge and removes it with the domain
      const { runDir, ...rest } = o;
      return startLibvirtGuest(conn, {
        ...rest,
        image,
        domain: domainName(this.o.id, o.name),
        bridge,
        remoteDir: this.o.remoteRunDir,
        localDir: runDir,
        onDomain: (d) => this.recordDomain(server.name, d),
      });
    }
    if (o.tap) this.o.onTap?.(server.name, o.tap.ifname);
    // every QEMU started on the server is recorded for teardown after a crash, the one saving a guest too
    const hooks = {
      onGuest: (pid: number, pidFile: string) => this.o.onGuest?.(server.name, pid, pidFile),
      onGuestGone: (pid: number) => this.o.onGuestGone?.(server.name, pid),
    };
    const { boot, ...rest } = o;
    const vm = await startRemoteGuest(conn, { bridge, remoteDir: this.o.remoteRunDir, image }, rest, (c, ro) =>
      this.saved.start(c, ro, boot, hooks),
    );
    hooks.onGuest(vm.pid, vm.remote.pidFile);
    void vm.exited.then(() => hooks.onGuestGone(vm.pid));
    return vm;
  }

  async releaseGuest(host: HostNode, tap: string): Promise<void> {
    await deleteRemoteTap(this.o.pool.get(this.server(host).name), tap).catch(() => undefined);
  }

  /** libvirt back end: the server of a spec host and its connection (libvirt-migrate.ts). */
  libvirtSide(host: HostNode): { conn: SshConnection; server: InventoryHost } {
    const server = this.server(host);
    return { conn: this.o.pool.get(server.name), server };
  }

  /** libvirt back end: the destination's QEMU reads the same kernel/initrd paths, so the image must be there before a migration. */
  async ensureGuestImage(host: HostNode, image: GuestImage): Promise<void> {
    await this.image(host, image);
  }

  /** Records a libvirt domain on a server before it is defined or migrated there. */
  recordDomain(server: string, domain: string): void {
    this.o.onDomain?.(server, domain);
  }

  /** The guest a migration brought to `host` (libvirt started it there). */
  adoptLibvirtGuest(host: HostNode, vm: { name: string; domain: string; accel: Accel }, localDir: string): Promise<LibvirtVmProcess> {
    const { conn } = this.libvirtSide(host);
    return attachLibvirtGuest(conn, { ...vm, paths: libvirtPaths(this.o.remoteRunDir, vm.name), localDir });
  }

  clockOffset(host: string): { offsetMs: number; uncertaintyMs: number } | null {
    return this.o.clocks.get(host) ?? null;
  }

  probe(ip: string, intervalMs: number, tags: Record<string, string>, emit: (s: Sample[]) => void): ProbeStream | null {
    return new ProbeStream(this.o.client, ip, intervalMs, tags, emit);
  }

  startClients(o: Omit<StartClientsOptions, 'launcher'>): Promise<ClientSet> | null {
    return startClients({ ...o, launcher: this.o.client });
  }

  /** Where probes and clients run, for messages. */
  get clientWhere(): string {
    return this.o.client.where;
  }

  static clientLauncher(pool: SshPool, client: { name: string } | undefined): Launcher {
    return client ? new SshLauncher(pool.get(client.name)) : new LocalLauncher(null);
  }

  static runDirOn(runId: string): string {
    return join('/run/migbench', runId);
  }
}
