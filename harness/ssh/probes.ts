/**
 * What preflight asks each server: a pure list of probes (argv + parser of the
 * output). All are read-only; the qdisc probe instantiates qdiscs on a veth
 * pair inside a throwaway network namespace (`unshare -n`) that vanishes with
 * the probe, so nothing is left on the server. The parsers are unit-tested from
 * recorded outputs.
 */
import { parseQemuVersion, type QemuVersionInfo } from '../hypervisor/version.ts';
import { shJoin } from './quote.ts';

/** One probe's output: stdout and stderr merged (batched probes share one channel), exit status. */
export interface ProbeOutput {
  out: string;
  code: number;
}

export interface Probe<T> {
  name: ProbeName;
  argv: readonly string[];
  /** Only asked when this returns true (e.g. libvirt for libvirt hosts). */
  when?: (ctx: { hypervisor: 'qemu' | 'libvirt' }) => boolean;
  parse(o: ProbeOutput): T;
}

export type ProbeName = 'kernel' | 'qemu' | 'kvm' | 'libvirt' | 'tc' | 'qdiscs' | 'nft' | 'ipmitool' | 'memory';

/** 127: not found (sh); 126: not executable. */
const missing = (o: ProbeOutput) => o.code === 127 || o.code === 126 || /: (command )?not found/.test(o.out);
const firstLine = (s: string) =>
  s
    .split('\n')
    .find((l) => l.trim())
    ?.trim() ?? '';

export interface ToolVersion {
  found: boolean;
  version: string | null;
  raw: string;
}

function toolVersion(o: ProbeOutput, re: RegExp): ToolVersion {
  if (missing(o)) return { found: false, version: null, raw: firstLine(o.out) };
  const m = re.exec(o.out);
  return { found: o.code === 0 || !!m, version: m ? m[1] : null, raw: firstLine(o.out) };
}

export interface QemuFacts {
  found: boolean;
  version: QemuVersionInfo | null;
  raw: string;
}

export function parseQemuProbe(o: ProbeOutput): QemuFacts {
  if (missing(o) || o.code !== 0) return { found: !missing(o), version: null, raw: firstLine(o.out) };
  try {
    return { found: true, version: parseQemuVersion(o.out.slice(o.out.indexOf('QEMU emulator'))), raw: firstLine(o.out) };
  } catch {
    return { found: true, version: null, raw: firstLine(o.out) };
  }
}

export interface KvmFacts {
  /** /dev/kvm: character device we can open read-write. */
  device: 'usable' | 'no-access' | 'absent';
  /** The CPU advertises vmx/svm (informational: nested VMs may lack it yet have /dev/kvm). */
  cpuFlag: boolean;
}

const KVM_SCRIPT =
  'if [ -c /dev/kvm ]; then if [ -r /dev/kvm ] && [ -w /dev/kvm ]; then echo kvm usable; else echo kvm no-access; fi; else echo kvm absent; fi; ' +
  'if grep -q -w -E "vmx|svm" /proc/cpuinfo; then echo cpuflag yes; else echo cpuflag no; fi';

export function parseKvmProbe(o: ProbeOutput): KvmFacts {
  const d = /^kvm (usable|no-access|absent)$/m.exec(o.out)?.[1] as KvmFacts['device'] | undefined;
  return { device: d ?? 'absent', cpuFlag: /^cpuflag yes$/m.test(o.out) };
}

export interface LibvirtFacts {
  found: boolean;
  /** Daemon answered qemu:///system. */
  daemon: boolean;
  library: string | null;
  daemonVersion: string | null;
  hypervisor: string | null;
  raw: string;
}

/** `virsh -c qemu:///system version --daemon` (without --daemon virsh does not print the daemon's version). */
export function parseLibvirtProbe(o: ProbeOutput): LibvirtFacts {
  const lib = /Using library: libvirt (\d+\.\d+\.\d+)/.exec(o.out)?.[1] ?? null;
  const daemonVersion = /Running against daemon: (\d+\.\d+\.\d+)/.exec(o.out)?.[1] ?? null;
  const hv = /Running hypervisor: (\S+ \d+\.\d+\.\d+)/.exec(o.out)?.[1] ?? null;
  const found = !missing(o);
  return {
    found,
    daemon: found && o.code === 0 && daemonVersion !== null,
    library: lib,
    daemonVersion,
    hypervisor: hv,
    raw:
      o.code === 0
        ? ''
        : o.out
            .trim()
            .split(/\s*\n\s*/)
            .join('; ')
            .slice(0, 300),
  };
}

export type QdiscName = 'htb' | 'netem' | 'tbf';
export interface QdiscFacts {
  /** true/false when tried (or read from the kernel config), null when unknown. */
  available: Record<QdiscName, boolean | null>;
  method: 'netns-trial' | 'kernel-config' | 'none';
  detail: string;
}

/**
 * Tries each qdisc on a veth in a throwaway netns; when unshare is not
 * possible, falls back to the kernel config (/proc/config.gz or /boot/config-*).
 */
const QDISC_SCRIPT = [
  "if unshare -n sh -c 'ip link add mbp0 type veth peer name mbp1 && ip link set mbp0 up || exit 3",
  'for a in "htb:htb default 1" "netem:netem delay 1ms" "tbf:tbf rate 1mbit burst 10k latency 10ms"; do',
  'q=${a%%:*}; if tc qdisc add dev mbp0 root ${a#*:} 2>/dev/null; then echo "qdisc $q ok"; tc qdisc del dev mbp0 root; else echo "qdisc $q no"; fi',
  "done' 2>/dev/null; then exit 0; fi",
  'echo "trial unavailable"',
  'if [ -r /proc/config.gz ]; then zcat /proc/config.gz; elif [ -r "/boot/config-$(uname -r)" ]; then cat "/boot/config-$(uname -r)"; fi | grep -E "^(# )?CONFIG_NET_SCH_(HTB|NETEM|TBF)[= ]" || true',
].join('\n');

export function parseQdiscProbe(o: ProbeOutput): QdiscFacts {
  const available: Record<QdiscName, boolean | null> = { htb: null, netem: null, tbf: null };
  const trials = [...o.out.matchAll(/^qdisc (htb|netem|tbf) (ok|no)$/gm)];
  if (trials.length) {
    for (const m of trials) available[m[1] as QdiscName] = m[2] === 'ok';
    return { available, method: 'netns-trial', detail: 'tried on a veth in a throwaway network namespace' };
  }
  const cfg = [...o.out.matchAll(/^(?:# )?CONFIG_NET_SCH_(HTB|NETEM|TBF)(?:=([ym])| is not set)/gm)];
  for (const m of cfg) available[m[1].toLowerCase() as QdiscName] = m[2] === 'y' || m[2] === 'm';
  return cfg.length
    ? { available, method: 'kernel-config', detail: 'read from the kernel config (no root for unshare -n)' }
    : { available, method: 'none', detail: 'could not try qdiscs (unshare -n failed) and no kernel config found' };
}

export interface MemoryFacts {
  totalBytes: number | null;
  availableBytes: number | null;
}

export function parseMeminfo(o: ProbeOutput): MemoryFacts {
  const kb = (k: string) => {
    const m = new RegExp(`^${k}:\\s+(\\d+) kB`, 'm').exec(o.out);
    return m ? Number(m[1]) * 1024 : null;
  };
  return { totalBytes: kb('MemTotal'), availableBytes: kb('MemAvailable') ?? kb('MemFree') };
}

export interface KernelFacts {
  release: string;
  machine: string;
}

export function parseKernel(o: ProbeOutput): KernelFacts {
  const [, release = '', machine = ''] = firstLine(o.out).split(/\s+/);
  return { release, machine };
}

export const PROBES = {
  kernel: { name: 'kernel', argv: ['uname', '-sr', '-m'], parse: parseKernel },
  qemu: { name: 'qemu', argv: ['qemu-system-x86_64', '--version'], parse: parseQemuProbe },
  kvm: { name: 'kvm', argv: ['sh', '-c', KVM_SCRIPT], parse: parseKvmProbe },
  libvirt: {
    name: 'libvirt',
    argv: ['virsh', '-c', 'qemu:///system', 'version', '--daemon'],
    when: (c) => c.hypervisor === 'libvirt',
    parse: parseLibvirtProbe,
  },
  tc: { name: 'tc', argv: ['tc', '-V'], parse: (o) => toolVersion(o, /iproute2-(?:ss)?([\w.]+)/) },
  qdiscs: { name: 'qdiscs', argv: ['sh', '-c', QDISC_SCRIPT], parse: parseQdiscProbe },
  nft: { name: 'nft', argv: ['nft', '--version'], parse: (o) => toolVersion(o, /nftables v(\d+\.\d+(?:\.\d+)?)/) },
  ipmitool: { name: 'ipmitool', argv: ['ipmitool', '-V'], parse: (o) => toolVersion(o, /ipmitool version (\S+)/) },
  memory: { name: 'memory', argv: ['cat', '/proc/meminfo'], parse: parseMeminfo },
} satisfies { [K in ProbeName]: Probe<unknown> };

export type ProbeFacts = { [K in keyof typeof PROBES]: ReturnType<(typeof PROBES)[K]['parse']> | null };

const BEGIN = '@@MB-PROBE';
const END = '@@MB-RC';
/** Seconds one probe may take before `timeout` ends it. */
export const PROBE_TIMEOUT_S = 20;

/**
 * All probes as one remote `sh -c` script (one channel, one login-shell start
 * per host: login shells with heavy rc files cost 0.1-0.6 s each). Each argv
 * is quoted by shJoin; output is framed by markers.
 */
export function batchScript(probes: readonly Probe<unknown>[]): string {
  return probes
    .map((p) => `echo '${BEGIN} ${p.name}'; timeout -k 2 ${PROBE_TIMEOUT_S} ${shJoin(p.argv)} </dev/null 2>&1; echo "${END} $?"`)
    .join('\n');
}

/** Splits the batch output into each probe's {out, code}; a probe without its end marker has code -1. */
export function splitBatch(stdout: string): Map<string, ProbeOutput> {
  const out = new Map<string, ProbeOutput>();
  const re = new RegExp(`^${BEGIN} (\\w+)\\n([\\s\\S]*?)(?:^${END} (\\d+)$|(?![\\s\\S]))`, 'gm');
  for (const m of stdout.matchAll(re)) {
    out.set(m[1], { out: m[2].replace(/\n$/, ''), code: m[3] !== undefined ? Number(m[3]) : -1 });
  }
  return out;
}
