/**
 * Preflight: before anything is changed on any server, connect to every host
 * in parallel, run the read-only probes and the clock measurement, and check
 * the facts against what the experiment needs. A failure is one UserError with
 * one line per host and check; nothing is created anywhere.
 */
import { checkQemuUsable, type Accel } from '../hypervisor/version.ts';
import { UserError, errorMessage } from '../util/errors.ts';
import { measureClockOffset, type ClockOffset } from './clock.ts';
import type { SshConnection } from './connection.ts';
import { mapLimit, type SshPool } from './pool.ts';
import { PROBES, PROBE_TIMEOUT_S, batchScript, splitBatch, type ProbeFacts, type Probe } from './probes.ts';
import type { SshTarget } from './types.ts';

export interface PreflightHost {
  name: string;
  ssh: SshTarget;
  hypervisor: 'qemu' | 'libvirt';
}

export interface Requirements {
  /** The spec shapes delay, jitter or loss (netem). */
  netem?: boolean;
  /** Rate shaping (htb); true for any spec with a rate. */
  htb?: boolean;
  nft?: boolean;
  /** ipmitool on the server itself (in-band power); BMCs are usually read from the controller. */
  ipmitool?: boolean;
  /** MemAvailable must be at least this (e.g. the sum of the guests' memory placed there). */
  minAvailableBytes?: number;
  /** |clock offset| + uncertainty above this is a failure (default: no limit, the offset is corrected). */
  maxClockErrorMs?: number;
}

export type CheckName = 'connect' | 'probe' | 'qemu' | 'kvm' | 'libvirt' | 'tc' | 'qdiscs' | 'nft' | 'ipmitool' | 'memory' | 'clock';

export interface PreflightFailure {
  host: string;
  check: CheckName;
  message: string;
}

export interface HostReport {
  name: string;
  facts: ProbeFacts;
  /** kvm when /dev/kvm is usable, else tcg: recorded per host in the manifest. */
  accel: Accel;
  clock: ClockOffset | null;
  connectMs: number;
  probeMs: number;
}

export interface PreflightReport {
  hosts: HostReport[];
  /** Not failures, but worth a line in the manifest (e.g. QEMU versions differ between hosts). */
  warnings: string[];
  connectMs: number;
  totalMs: number;
}

const ORDER = Object.keys(PROBES) as (keyof typeof PROBES)[];

/** Parses a batch's output into facts: a probe that did not run is null. */
export function factsFromBatch(stdout: string, hypervisor: 'qemu' | 'libvirt'): ProbeFacts {
  const parts = splitBatch(stdout);
  const facts = {} as Record<string, unknown>;
  for (const k of ORDER) {
    const p = PROBES[k] as Probe<unknown>;
    const o = parts.get(k);
    facts[k] = p.when && !p.when({ hypervisor }) ? null : o ? p.parse(o) : null;
  }
  return facts as ProbeFacts;
}

export function accelOf(f: ProbeFacts): Accel {
  return f.kvm?.device === 'usable' ? 'kvm' : 'tcg';
}

/** Pure: facts of one host against the requirements. */
export function checkHost(host: PreflightHost, f: ProbeFacts, clock: ClockOffset | null, req: Requirements): PreflightFailure[] {
  const out: PreflightFailure[] = [];
  const fail = (check: CheckName, message: string) => out.push({ host: host.name, check, message });
  if (!f.qemu?.found) fail('qemu', 'qemu-system-x86_64 not found; install qemu-system-x86 (>= 9; Debian 12: from bookworm-backports)');
  else if (!f.qemu.version) fail('qemu', `cannot read the QEMU version from: ${f.qemu.raw || '(no output)'}`);
  else {
    try {
      checkQemuUsable(f.qemu.version, accelOf(f));
    } catch (e) {
      fail('qemu', errorMessage(e));
    }
  }
  if (f.kvm?.device === 'no-access')
    fail('kvm', '/dev/kvm exists but cannot be opened read-write by this user; add the user to group kvm or log in as root');
  if (host.hypervisor === 'libvirt') {
    const l = f.libvirt;
    if (!l?.found) fail('libvirt', 'virsh not found; install libvirt-clients and libvirt-daemon-driver-qemu (hypervisor: libvirt)');
    else if (!l.daemon)
      fail('libvirt', `libvirt daemon does not answer on qemu:///system: ${l.raw || 'no version reported'}; start libvirtd/virtqemud`);
  }
  if (!f.tc?.found) fail('tc', 'tc not found; install iproute2');
  const q = f.qdiscs;
  if ((req.htb ?? true) && q?.available.htb === false)
    fail('qdiscs', 'the kernel has no htb qdisc (CONFIG_NET_SCH_HTB); rate shaping is impossible');
  if (req.netem && q?.available.netem === false) {
    fail(
      'qdiscs',
      'the kernel has no netem qdisc (CONFIG_NET_SCH_NETEM) but the spec shapes delay/jitter/loss; load sch_netem or use a kernel with it',
    );
  }
  if ((req.htb ?? true) || req.netem) {
    if (q && q.method === 'none') fail('qdiscs', `${q.detail}; run as root (unshare -n) so the qdiscs can be tried`);
  }
  if (req.nft && !f.nft?.found) fail('nft', 'nft not found; install nftables');
  if (req.ipmitool && !f.ipmitool?.found) fail('ipmitool', 'ipmitool not found; install ipmitool');
  const avail = f.memory?.availableBytes;
  if (req.minAvailableBytes !== undefined && (avail ?? 0) < req.minAvailableBytes) {
    const gib = (b: number) => `${(b / 2 ** 30).toFixed(1)} GiB`;
    fail(
      'memory',
      `${avail === null || avail === undefined ? 'unknown' : gib(avail)} available, ${gib(req.minAvailableBytes)} needed for the guests placed here`,
    );
  }
  if (req.maxClockErrorMs !== undefined && clock && Math.abs(clock.offsetMs) + clock.uncertaintyMs > req.maxClockErrorMs) {
    fail(
      'clock',
      `clock differs from the controller by ${clock.offsetMs.toFixed(1)} ± ${clock.uncertaintyMs.toFixed(1)} ms (limit ${req.maxClockErrorMs} ms); check NTP/chrony there`,
    );
  }
  return out;
}

/** Warnings across hosts: mixed QEMU/libvirt versions change what a migration measures. */
export function crossHostWarnings(reports: readonly HostReport[]): string[] {
  const warn: string[] = [];
  const by = (f: (r: HostReport) => string | null | undefined) => {
    const m = new Map<string, string[]>();
    for (const r of reports) {
      const v = f(r);
      if (v) m.set(v, [...(m.get(v) ?? []), r.name]);
    }
    return m;
  };
  const qemu = by((r) => r.facts.qemu?.version?.raw.replace(/^QEMU emulator version /, ''));
  if (qemu.size > 1) warn.push(`QEMU versions differ between hosts: ${[...qemu].map(([v, h]) => `${v} on ${h.join(', ')}`).join('; ')}`);
  const accel = by((r) => r.accel);
  if (accel.size > 1) warn.push(`accelerators differ between hosts: ${[...accel].map(([v, h]) => `${v} on ${h.join(', ')}`).join('; ')}`);
  return warn;
}

export function formatFailures(fs: readonly PreflightFailure[], targets: ReadonlyMap<string, SshTarget>): string {
  const line = (f: PreflightFailure) => {
    const t = targets.get(f.host);
    return `host ${f.host}${t ? ` (${t.user}@${t.host}:${t.port})` : ''}: ${f.check}: ${f.message}`;
  };
  return fs.length === 1
    ? `preflight failed: ${line(fs[0])}`
    : `preflight failed on ${new Set(fs.map((f) => f.host)).size} host(s):\n  ${fs.map(line).join('\n  ')}`;
}

async function probeHost(conn: SshConnection, host: PreflightHost): Promise<ProbeFacts> {
  const probes = ORDER.map((k) => PROBES[k] as Probe<unknown>).filter((p) => !p.when || p.when({ hypervisor: host.hypervisor }));
  const batch = await conn.exec(['sh', '-c', batchScript(probes)], {
    timeoutMs: (PROBE_TIMEOUT_S + 5) * 1000 * probes.length,
    label: 'preflight probes',
  });
  return factsFromBatch(batch.stdout, host.hypervisor);
}

/** "r1-h1 (root@...): what" -> "what": the failure line names the host already. */
const withoutHost = (e: unknown) => errorMessage(e).replace(/^\S+ \([^)]*\): /, '');

/**
 * Connects to all hosts (pool) and checks them. Throws a UserError listing
 * every unreachable host, or every failed check; returns the report otherwise.
 * The clocks are measured after all probes, a few hosts at a time, so the
 * controller's CPU is not busy with other hosts' output during the round trips.
 */
export async function runPreflight(
  pool: SshPool,
  hosts: readonly PreflightHost[],
  req: Requirements = {},
  opts: { concurrency?: number; clockConcurrency?: number; clockSamples?: number } = {},
): Promise<PreflightReport> {
  const t0 = performance.now();
  const connectTimes = await pool.connectAll(hosts.map((h) => h.ssh));
  const connectMs = performance.now() - t0;
  const failures: PreflightFailure[] = [];
  const probeMs = new Map<string, number>();
  const facts = await mapLimit(hosts, opts.concurrency ?? 32, async (h) => {
    const t = performance.now();
    const f = await probeHost(pool.get(h.name), h);
    probeMs.set(h.name, performance.now() - t);
    return f;
  });
  const clocks = await mapLimit(hosts, opts.clockConcurrency ?? 8, (h, i) =>
    facts[i].status === 'fulfilled' ? measureClockOffset(pool.get(h.name), { samples: opts.clockSamples ?? 16 }) : Promise.resolve(null),
  );
  const reports: HostReport[] = [];
  hosts.forEach((h, i) => {
    const f = facts[i];
    const c = clocks[i];
    if (f.status === 'rejected') return failures.push({ host: h.name, check: 'probe', message: withoutHost(f.reason) });
    if (c.status === 'rejected') failures.push({ host: h.name, check: 'clock', message: withoutHost(c.reason) });
    const clock = c.status === 'fulfilled' ? c.value : null;
    failures.push(...checkHost(h, f.value, clock, req));
    reports.push({
      name: h.name,
      facts: f.value,
      accel: accelOf(f.value),
      clock,
      connectMs: connectTimes.get(h.name) ?? 0,
      probeMs: probeMs.get(h.name) ?? 0,
    });
  });
  if (failures.length) throw new UserError(formatFailures(failures, new Map(hosts.map((h) => [h.name, h.ssh]))));
  return { hosts: reports, warnings: crossHostWarnings(reports), connectMs, totalMs: performance.now() - t0 };
}
