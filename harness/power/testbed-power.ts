import { randomBytes } from 'node:crypto';
import { mkdirSync, readdirSync, readFileSync, readlinkSync, rmSync, statSync } from 'node:fs';
import { join } from 'node:path';
import type { Sample } from '../store/sample.ts';
import type { Topology } from '../testbed/topology.ts';
import type { Spec } from '../spec/schema.ts';
import { HostPowerModel, type NicCounters } from './host-power.ts';
import { PowerPoller, type PollerReport } from './poller.ts';
import { DEFAULT_POWER_MODEL, type PowerModelParams } from './power-model.ts';
import { startSimBmc, type SimBmc } from './sim-bmc.ts';
import { chassisPower } from './chassis.ts';
import { PowerReadings, type PowerMeter } from './meter.ts';

/**
 * Power on the local testbed: one ipmi_sim BMC per host on the management
 * network, its sensor fed by a model of that host (QEMU CPU + NIC traffic),
 * polled over real IPMI from the client namespace. The watts are modelled;
 * the path (BMC, LAN, ipmitool, timing, gaps) is real.
 */
export function powerModelFrom(spec: NonNullable<Spec['measure']['power']>): PowerModelParams {
  return {
    ...DEFAULT_POWER_MODEL,
    ...(spec.idle_w !== undefined ? { idleW: spec.idle_w } : {}),
    ...(spec.cpu_w_per_core !== undefined ? { cpuWPerCore: spec.cpu_w_per_core } : {}),
    ...(spec.nic_w_per_mbit !== undefined ? { nicWPerMbit: spec.nic_w_per_mbit } : {}),
    ...(spec.boot ? { bootMs: spec.boot.ms } : {}),
    ...(spec.shutdown ? { shutdownMs: spec.shutdown.ms } : {}),
  };
}

function netnsInode(ns: string): number {
  return statSync(`/run/netns/${ns}`).ino;
}

/** QEMU processes whose network namespace is `ns` (sources and incoming destinations alike). */
export function qemuPidsInNetns(nsIno: number): number[] {
  const out: number[] = [];
  for (const d of readdirSync('/proc')) {
    if (!/^\d+$/.test(d)) continue;
    try {
      if (!readFileSync(`/proc/${d}/comm`, 'utf8').startsWith('qemu-system')) continue;
      const link = readlinkSync(`/proc/${d}/ns/net`); // net:[4026532xxx]
      if (Number(/\[(\d+)\]/.exec(link)?.[1]) === nsIno) out.push(Number(d));
    } catch {
      /* exited meanwhile */
    }
  }
  return out;
}

/** Byte counters of the host's NICs, read through a process living in its namespace. */
export function nicCountersVia(pid: number, ifnames: string[]): NicCounters {
  const text = readFileSync(`/proc/${pid}/net/dev`, 'utf8');
  let rx = 0;
  let tx = 0;
  for (const line of text.split('\n')) {
    const m = /^\s*([^:]+):\s*(.*)$/.exec(line);
    if (!m || !ifnames.includes(m[1].trim())) continue;
    const f = m[2].trim().split(/\s+/).map(Number);
    rx += f[0];
    tx += f[8];
  }
  return { rxBytes: rx, txBytes: tx };
}

export class TestbedPower extends PowerReadings implements PowerMeter {
  readonly source = 'modelled' as const;
  private constructor(
    readonly params: PowerModelParams,
    private bmcs: SimBmc[],
    private models: HostPowerModel[],
    private poller: PowerPoller,
    readonly intervalMs: number,
    private readonly pollerNs: string,
    /** The BMCs' private files (they hold this run's BMC password): removed on stop. */
    private readonly dir: string,
  ) {
    super();
  }

  static async start(
    topo: Topology,
    spec: NonNullable<Spec['measure']['power']>,
    o: { dir: string; onSample: (s: Sample) => void; log: (l: string) => void; tags: Record<string, string> },
  ): Promise<TestbedPower> {
    if (!topo.clientNs || topo.hosts.some((h) => !h.mgmtIp))
      throw new Error('power measurement needs the management network and the client namespace');
    const params = powerModelFrom(spec);
    // a fresh password per run; it lives in memory and the BMC's private files only
    const credentials = { user: 'mbadmin', password: randomBytes(8).toString('hex') };
    const bmcs: SimBmc[] = [];
    const models: HostPowerModel[] = [];
    let poller: PowerPoller | null = null;
    try {
      for (const h of topo.hosts) {
        const dir = join(o.dir, h.name);
        mkdirSync(dir, { recursive: true, mode: 0o700 });
        const bmc = await startSimBmc({
          host: h.name,
          address: h.mgmtIp!,
          port: 623,
          credentials,
          dir,
          netns: h.ns,
          initialWatts: params.idleW,
        });
        bmcs.push(bmc);
        const ino = netnsInode(h.ns);
        const nics = ['mb-data', 'mb-mig'];
        const model = new HostPowerModel(
          bmc,
          { qemuPids: () => qemuPidsInNetns(ino), nicCounters: () => nicCountersVia(bmc.pid, nics) },
          params,
        );
        await model.start();
        models.push(model);
      }
      const intervalMs = spec.interval.ms;
      const self: { it: TestbedPower | null } = { it: null };
      poller = new PowerPoller(
        topo.hosts.map((h) => ({
          host: h.name,
          address: h.mgmtIp!,
          port: 623,
          credentials,
          netns: topo.clientNs!,
          reading: { kind: 'sensor' as const, name: 'Power' },
        })),
        { intervalMs, onSample: (s) => self.it?.record(s, o.onSample), log: o.log },
      );
      self.it = new TestbedPower(params, bmcs, models, poller, intervalMs, topo.clientNs, o.dir);
      self.it.setTags(o.tags);
      await poller.start();
      return self.it;
    } catch (e) {
      await poller?.stop().catch(() => undefined);
      for (const m of models) m.stop();
      for (const b of bmcs) await b.stop().catch(() => undefined);
      rmSync(o.dir, { recursive: true, force: true });
      throw e;
    }
  }

  /** Chassis power on/off of a host through its BMC (the model then boots or shuts it down). */
  async chassis(host: string, action: 'on' | 'off'): Promise<boolean> {
    const bmc = this.bmcs.find((b) => b.spec.host === host);
    if (!bmc) return false;
    return chassisPower(
      { address: bmc.spec.address, port: bmc.spec.port, credentials: bmc.spec.credentials, netns: this.pollerNs },
      action,
    );
  }

  idleW(): number {
    return this.params.idleW;
  }

  async stop(): Promise<PollerReport> {
    const report = await this.poller.stop();
    for (const m of this.models) m.stop();
    for (const b of this.bmcs) await b.stop().catch(() => undefined);
    rmSync(this.dir, { recursive: true, force: true });
    return report;
  }
}
