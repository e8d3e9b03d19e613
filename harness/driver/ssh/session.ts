import { existsSync, mkdirSync, readdirSync, readFileSync, rmSync } from 'node:fs';
import { dirname, join } from 'node:path';
import { inventoryFromObject, loadInventory, type Inventory, type InventoryHost } from '../../inventory/load.ts';
import { mapSpecHosts } from '../../inventory/mapping.ts';
import { bmcLogin } from '../../inventory/bmc.ts';
import { BmcPower, type BmcHost } from '../../power/bmc-power.ts';
import type { PowerSpec, PowerStart } from '../session.ts';
import type { TestbedDriver } from '../types.ts';
import type { Spec } from '../../spec/schema.ts';
import { testbedId } from '../../spec/load.ts';
import type { ClockOffset } from '../../ssh/clock.ts';
import { SshPool } from '../../ssh/pool.ts';
import { runPreflight, type PreflightReport, type Requirements } from '../../ssh/preflight.ts';
import type { Mechanisms } from '../../testbed/shaping.ts';
import { hostNames } from '../../testbed/topology.ts';
import { writeJsonAtomic } from '../../util/atomic-write.ts';
import { UserError, errorMessage } from '../../util/errors.ts';
import { stateDir } from '../../util/paths.ts';
import { sleep } from '../../util/time.ts';
import type { DriverSession } from '../session.ts';
import { SshDriver } from './driver.ts';
import { deleteRemoteTap, removeRemoteDir, shScript } from './remote-host.ts';
import { SIGNAL_SCRIPT } from './remote-vm.ts';
import { inventoryBackend } from './libvirt-preflight.ts';
import { endDomain } from './libvirt-vm.ts';
import { probeKvmStart } from './kvm-probe.ts';
import { checkClientHost } from './programs.ts';
import { sshTopology } from './topology.ts';
import { applyShaping, formatPlan, planRemoteShaping, teardownShaping, type HostShapingCaps } from './shaping.ts';
import type { Topology } from '../../testbed/topology.ts';

/**
 * What an ssh-driver run changed on the servers, written on the controller
 * BEFORE each change, so `migbench testbed down <id>` after a crash or
 * kill -9 removes exactly that and nothing else.
 */
export interface SshRunState {
  kind: 'ssh';
  id: string;
  /** How to find the servers again at teardown: the inventory file, or the spec's inline form. */
  inventory: { file: string } | { inline: Record<string, unknown>; specFile: string };
  runDir: string;
  pid: number;
  /** Per server name: the SSH target is re-read from the inventory at teardown. */
  servers: string[];
  remoteRunDir: string;
  guests: { host: string; pid: number; pidFile: string }[];
  /** Guest taps, recorded before creation (removing one that is already gone is harmless). */
  taps: { host: string; ifname: string }[];
  /** Shaping applied per server (record file of the shaping module), when any. */
  shapingRecord: string | null;
  /** Hypervisor back end of the servers (absent in states written before libvirt: qemu). */
  backend?: 'qemu' | 'libvirt';
  /** libvirt back end: domains, recorded before each is defined on (or migrated to) a server. */
  domains?: { host: string; name: string }[];
}

/** ssh-driver runs keep their records apart from the local testbeds' state files. */
export function sshStateDir(): string {
  return join(stateDir(), 'ssh');
}

export function sshStatePath(id: string): string {
  return join(sshStateDir(), `${id}.json`);
}

export function readSshState(id: string): SshRunState | null {
  const p = sshStatePath(id);
  if (!existsSync(p)) return null;
  return JSON.parse(readFileSync(p, 'utf8')) as SshRunState;
}

/** What the spec needs from every server (checked by preflight before anything changes). */
export function requirementsOf(spec: Spec, host: string): Requirements {
  const links = spec.testbed.shaping;
  const guests = spec.vms.filter((v) => v.host === host);
  // a host may also receive every guest of the spec in a plan: ask for room for all of them
  const bytes = spec.vms.reduce((a, v) => a + v.memory.bytes, 0);
  return {
    htb: links.some((l) => l.rate) || !!spec.testbed.racks.some((r) => r.host_nic?.rate),
    netem: links.some((l) => l.delay || l.loss || l.jitter),
    minAvailableBytes:
      Math.max(
        bytes,
        guests.reduce((a, v) => a + v.memory.bytes, 0),
      ) +
      256 * 2 ** 20,
  };
}

export class SshSession implements DriverSession {
  private driver: SshDriver | null = null;
  private closed = false;
  /** The applied shaping plan as text (null: nothing applied yet). */
  private shapedAs: string | null = null;
  private mech: Record<string, Mechanisms> = {};

  private constructor(
    private readonly spec: Spec,
    private readonly inv: Inventory,
    private readonly pool: SshPool,
    private readonly servers: Map<string, InventoryHost>,
    readonly preflight: PreflightReport,
    private readonly kvm: ReadonlyMap<string, { ok: boolean; detail: string }>,
    private readonly state: SshRunState,
    private readonly log: (l: string) => void,
  ) {}

  /**
   * Maps the spec's hosts onto the inventory, connects to every server in
   * parallel and runs the preflight; nothing is changed on any server before
   * all of that passed.
   */
  static async open(o: {
    spec: Spec;
    inventory: Inventory;
    /** Where the inventory came from (recorded so `testbed down` finds the servers after a crash). */
    source: SshRunState['inventory'];
    runDir: string;
    log: (l: string) => void;
  }): Promise<SshSession> {
    const { spec, inventory: inv, log } = o;
    const racks = spec.testbed.racks.map((r) => ({ name: r.name, hosts: hostNames(r) }));
    const servers = mapSpecHosts(racks, inv);
    const pool = new SshPool({ hostKeys: inv.hostKeys });
    const id = testbedId(spec);
    const prior = readSshState(id);
    if (prior && isAlive(prior.pid))
      throw new UserError(
        `an ssh-driver run (pid ${prior.pid}, ${prior.runDir}) is using testbed id '${id}'; wait for it or use another testbed.id`,
      );
    if (prior)
      throw new UserError(
        `a run on testbed '${id}' ended abnormally (${prior.runDir}); run 'migbench testbed down ${id}' to clean its servers first`,
      );
    const hosts = [...servers.entries()].map(([specHost, h]) => ({ name: h.name, ssh: h.ssh, hypervisor: h.hypervisor, specHost }));
    // before connecting anywhere: a mixed inventory is the user's to fix
    const backend = inventoryBackend(hosts);
    log(`preflight of ${hosts.length} server(s): ${hosts.map((h) => `${h.specHost}=${h.name}`).join(', ')}`);
    let report: PreflightReport;
    try {
      // one requirement set for all: every server may receive every guest
      report = await runPreflight(pool, hosts, requirementsOf(spec, hosts[0].specHost));
      if (inv.client) {
        await pool.connectAll([inv.client]);
        const kinds = new Set(spec.vms.flatMap((v) => v.clients.map((c) => c.kind)));
        await checkClientHost(pool.get(inv.client.name), {
          probe: true,
          agent: [...kinds].some((k) => k !== 'httperf'),
          httperf: kinds.has('httperf'),
        });
      }
    } catch (e) {
      pool.closeAll();
      throw e;
    }
    for (const w of report.warnings) log(`preflight: ${w}`);
    // /dev/kvm present is not KVM working: create a paused KVM vCPU on each server that claims it
    const kvm = new Map<string, { ok: boolean; detail: string }>();
    await Promise.all(
      report.hosts.filter((h) => h.accel === 'kvm').map(async (h) => kvm.set(h.name, await probeKvmStart(pool.get(h.name)))),
    );
    const runId = o.runDir
      .split('/')
      .filter(Boolean)
      .pop()!
      .replace(/[^A-Za-z0-9._-]/g, '_');
    const state: SshRunState = {
      kind: 'ssh',
      id,
      inventory: o.source,
      runDir: o.runDir,
      pid: process.pid,
      servers: hosts.map((h) => h.name),
      remoteRunDir: SshDriver.runDirOn(runId),
      guests: [],
      taps: [],
      shapingRecord: null,
      backend,
      domains: [],
    };
    mkdirSync(sshStateDir(), { recursive: true, mode: 0o700 });
    writeJsonAtomic(sshStatePath(id), state);
    return new SshSession(spec, inv, pool, servers, report, kvm, state, log);
  }

  private save(): void {
    writeJsonAtomic(sshStatePath(this.state.id), this.state);
  }

  async prepare(spec: Spec): Promise<SshDriver> {
    const id = testbedId(spec);
    const topology = sshTopology(spec.testbed, id, this.servers);
    await this.shape(topology);
    if (this.driver && JSON.stringify(this.driver.topology) === JSON.stringify(topology)) return this.driver;
    const clocks = new Map<string, ClockOffset | null>();
    for (const [specHost, h] of this.servers) clocks.set(specHost, this.preflight.hosts.find((r) => r.name === h.name)?.clock ?? null);
    this.driver = new SshDriver({
      id,
      topology,
      pool: this.pool,
      servers: this.servers,
      clocks,
      remoteRunDir: this.state.remoteRunDir,
      remoteImageDir: '/var/tmp/migbench/images',
      client: SshDriver.clientLauncher(this.pool, this.inv.client),
      backend: this.state.backend ?? 'qemu',
      onDomain: (host, name) => {
        const ds = (this.state.domains ??= []);
        if (!ds.some((d) => d.host === host && d.name === name)) ds.push({ host, name });
        this.save();
      },
      onTap: (host, ifname) => {
        if (!this.state.taps.some((t) => t.host === host && t.ifname === ifname)) this.state.taps.push({ host, ifname });
        this.save();
      },
      onGuestGone: (host, pid) => {
        this.state.guests = this.state.guests.filter((g) => !(g.host === host && g.pid === pid));
        if (!this.closed) this.save();
      },
      onGuest: (host, pid, pidFile) => {
        this.state.guests.push({ host, pid, pidFile });
        this.save();
      },
    });
    this.log(`probes and clients run from ${this.driver.clientWhere}`);
    return this.driver;
  }

  /**
   * The accelerator every guest uses: KVM only when it works on every server (a migration
   * needs the same on both sides); MIGBENCH_ACCEL=kvm|tcg overrides, as for the local testbed.
   */
  accel(env: NodeJS.ProcessEnv = process.env): { accel: 'kvm' | 'tcg'; reason: string } {
    const forced = env.MIGBENCH_ACCEL;
    if (forced === 'kvm' || forced === 'tcg') return { accel: forced, reason: `MIGBENCH_ACCEL=${forced}` };
    const noKvm = this.preflight.hosts.filter((h) => h.accel !== 'kvm').map((h) => `${h.name} (no usable /dev/kvm)`);
    const broken = [...this.kvm].filter(([, v]) => !v.ok).map(([n, v]) => `${n} (${v.detail})`);
    const why = [...noKvm, ...broken];
    return why.length
      ? { accel: 'tcg', reason: `KVM not usable on ${why.join(', ')}; every guest uses TCG so migrations are like for like` }
      : { accel: 'kvm', reason: 'a KVM vCPU started on every server (preflight)' };
  }

  /**
   * Shapes the servers' NICs to the treatment's links (rate with htb, delay/loss with netem), recorded
   * on the controller first; a treatment with other constraints replaces the previous shaping.
   */
  private async shape(topology: Topology): Promise<void> {
    const caps = new Map<string, HostShapingCaps>(
      this.preflight.hosts.map((h) => [
        h.name,
        { htb: h.facts.qdiscs?.available.htb ?? null, netem: h.facts.qdiscs?.available.netem ?? null },
      ]),
    );
    const plan = planRemoteShaping(topology, this.servers, caps);
    const text = formatPlan(plan).join('\n');
    if (text === this.shapedAs) return;
    const record = join(sshStateDir(), `${this.state.id}.shaping.json`);
    if (this.shapedAs !== null) await teardownShaping(record, this.pool);
    for (const k of plan.skipped) this.log(`shaping: ${k.link} not shaped: ${k.reason}`);
    this.state.shapingRecord = record;
    this.save();
    await applyShaping(plan, this.pool, record);
    this.shapedAs = text;
    this.mech = {};
    for (const h of plan.hosts)
      for (const n of h.nics) {
        const c = n.constraint;
        this.mech[n.link] = {
          rate: c.rateBps ? 'htb' : 'none',
          delay: c.delayMs || c.jitterMs ? 'netem' : 'none',
          loss: c.lossPct ? 'netem' : 'none',
        };
      }
    this.log(`shaped ${plan.hosts.reduce((a, h) => a + h.nics.length, 0)} NIC(s) on ${plan.hosts.length} server(s)`);
  }

  /** QEMU version(s) of the servers, for the manifest (one string). */
  qemuVersions(): string {
    const vs = [...new Set(this.preflight.hosts.map((h) => h.facts.qemu?.raw || 'unknown'))];
    return vs.join(' | ');
  }

  mechanisms(): Record<string, Mechanisms> {
    return this.mech;
  }

  facts(): Record<string, unknown> {
    return {
      driver: 'ssh',
      backend: this.state.backend ?? 'qemu',
      inventory: this.inv.file,
      preflight_ms: Math.round(this.preflight.totalMs),
      servers: Object.fromEntries(
        [...this.servers].map(([specHost, h]) => {
          const r = this.preflight.hosts.find((x) => x.name === h.name);
          return [
            specHost,
            {
              server: h.name,
              address: h.ssh.host,
              accel: r?.accel === 'kvm' && this.kvm.get(h.name)?.ok === false ? 'tcg' : (r?.accel ?? null),
              kvm_probe: this.kvm.get(h.name)?.detail ?? null,
              qemu: r?.facts.qemu?.raw ?? null,
              ...(h.hypervisor === 'libvirt' ? { libvirt: r?.facts.libvirt?.daemonVersion ?? null } : {}),
              clock_offset_ms: r?.clock?.offsetMs ?? null,
              clock_uncertainty_ms: r?.clock?.uncertaintyMs ?? null,
            },
          ];
        }),
      ),
    };
  }

  powerUnavailable(): string | null {
    const without = [...this.servers].filter(([, h]) => !h.bmc).map(([, h]) => h.name);
    // a missing BMC password is an error before anything runs, not after the first treatment
    if (without.length === 0) for (const h of this.servers.values()) bmcLogin(h, this.inv);
    if (without.length === 0) return null;
    return `the inventory gives no bmc.address for ${without.join(', ')}`;
  }

  /** The servers' own BMCs, polled from the controller (lanplus); DCMI unless the inventory names a sensor. */
  async startPower(driver: TestbedDriver, power: PowerSpec, o: PowerStart): Promise<BmcPower> {
    const hosts: BmcHost[] = [...this.servers].map(([specHost, h]) => {
      const { address, port, user, password } = bmcLogin(h, this.inv);
      return {
        host: specHost,
        address,
        port,
        credentials: { user, password },
        reading: h.bmc?.sensor ? { kind: 'sensor' as const, name: h.bmc.sensor } : { kind: 'dcmi' as const },
      };
    });
    o.log(`polling ${hosts.length} BMCs (${hosts.map((h) => `${h.host} ${h.address}`).join(', ')}) every ${power.interval.ms} ms`);
    const it = await BmcPower.start(hosts, { intervalMs: power.interval.ms, idleW: power.idle_w, onSample: o.onSample, log: o.log });
    it.setTags(o.tags);
    return it;
  }

  async close(): Promise<void> {
    if (this.closed) return;
    this.closed = true;
    const clean = await cleanServers(this.state, (name) => this.pool.get(name), this.log, this.pool);
    this.pool.closeAll();
    // what could not be removed stays recorded: `testbed down <id>` retries it
    if (clean) rmSync(sshStatePath(this.state.id), { force: true });
    else this.log(`some of what this run set up on the servers is left; run 'migbench testbed down ${this.state.id}'`);
  }
}

function isAlive(pid: number): boolean {
  try {
    process.kill(pid, 0);
    return true;
  } catch {
    return false;
  }
}

/** Ends every guest the run recorded (if it is still that QEMU) and removes the run's directory on every server. */
export async function cleanServers(
  state: SshRunState,
  conn: (server: string) => import('../../ssh/connection.ts').SshConnection,
  log: (l: string) => void,
  pool?: SshPool,
): Promise<boolean> {
  let clean = true;
  const failed = (what: string) => (e: unknown) => {
    clean = false;
    log(`${what}: ${errorMessage(e)}`);
  };
  if (state.shapingRecord && pool) await teardownShaping(state.shapingRecord, pool).catch(failed('removing shaping'));
  for (const g of state.guests) {
    const c = conn(g.host);
    // exit 3: that PID is no longer our QEMU (ended, or reused): nothing to do
    const ours = () => c.exec(shScript(SIGNAL_SCRIPT, String(g.pid), g.pidFile, ''), { timeoutMs: 15_000 }).then((r) => r.code === 0);
    try {
      if (!(await ours())) continue;
      await c.exec(shScript(SIGNAL_SCRIPT, String(g.pid), g.pidFile, 'KILL'), { timeoutMs: 15_000 });
      for (let i = 0; i < 50 && (await ours()); i++) await sleep(200);
      if (await ours()) throw new Error('still running 10 s after SIGKILL');
    } catch (e) {
      failed(`ending QEMU ${g.pid} on ${g.host}`)(e);
    }
  }
  for (const d of state.domains ?? [])
    await endDomain(conn(d.host), d.name).catch(failed(`removing libvirt domain ${d.name} on ${d.host}`));
  for (const t of state.taps) await deleteRemoteTap(conn(t.host), t.ifname);
  for (const s of state.servers) {
    await removeRemoteDir(conn(s), state.remoteRunDir).catch(failed(`removing ${state.remoteRunDir} on ${s}`));
  }
  return clean;
}

/** Loads the inventory a run recorded. */
export function inventoryOfState(st: SshRunState): Inventory {
  const i = st.inventory;
  if ('file' in i) return loadInventory(i.file);
  return inventoryFromObject(i.inline, `${i.specFile}: testbed.inventory`, dirname(i.specFile));
}

/** The ids of ssh-driver runs recorded on this controller. */
export function listSshStates(): SshRunState[] {
  if (!existsSync(sshStateDir())) return [];
  return readdirSync(sshStateDir())
    .filter((f) => f.endsWith('.json') && !f.endsWith('.shaping.json'))
    .flatMap((f) => {
      const st = readSshState(f.slice(0, -'.json'.length));
      return st ? [st] : [];
    });
}

/**
 * `testbed down` for an ssh-driver run (after Ctrl-C, a crash or kill -9):
 * ends the guests it recorded, removes its taps, shaping and directory on
 * every server, and forgets it. Refuses while the run is alive unless forced.
 */
export async function downSsh(
  id: string,
  o: { force: boolean; log: (l: string) => void },
): Promise<{ refused?: string; servers: number } | null> {
  const st = readSshState(id);
  if (!st) return null;
  if (st.pid !== process.pid && isAlive(st.pid) && !o.force)
    return {
      refused: `testbed '${id}' is in use by a running 'migbench run' (pid ${st.pid}, ${st.runDir}); stop it first or pass --force`,
      servers: 0,
    };
  const inv = inventoryOfState(st);
  const pool = new SshPool({ hostKeys: inv.hostKeys });
  try {
    const targets = inv.hosts.filter((h) => st.servers.includes(h.name)).map((h) => h.ssh);
    await pool.connectAll(targets);
    if (!(await cleanServers(st, (n) => pool.get(n), o.log, pool)))
      return {
        refused: `testbed '${id}': not everything could be removed (see above); run 'migbench testbed down ${id}' again`,
        servers: 0,
      };
  } finally {
    pool.closeAll();
  }
  rmSync(sshStatePath(id), { force: true });
  return { servers: st.servers.length };
}
