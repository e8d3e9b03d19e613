import { describe, expect, it } from 'vitest';
import { clockOffset, type ClockSample } from '../../harness/ssh/clock.ts';
import {
  accelOf,
  checkHost,
  crossHostWarnings,
  factsFromBatch,
  formatFailures,
  type HostReport,
  type PreflightHost,
} from '../../harness/ssh/preflight.ts';
import { PROBES, batchScript, parseLibvirtProbe, parseQdiscProbe, parseQemuProbe, splitBatch } from '../../harness/ssh/probes.ts';
import { seededRng } from '../../harness/util/rng.ts';

/** Recorded on the dev box (Debian 12 + backports QEMU, no netem in its kernel, libvirt daemon not running). */
const RECORDED = `@@MB-PROBE kernel
Linux 6.18.44-fc-v595 x86_64
@@MB-RC 0
@@MB-PROBE qemu
QEMU emulator version 10.0.2 (Debian 1:10.0.2+ds-2+deb13u1~bpo12+1)
Copyright (c) 2003-2025 Fabrice Bellard and the QEMU Project developers
@@MB-RC 0
@@MB-PROBE kvm
kvm usable
cpuflag no
@@MB-RC 0
@@MB-PROBE libvirt
error: failed to connect to the hypervisor
error: Failed to connect socket to '/var/run/libvirt/libvirt-sock': No such file or directory
@@MB-RC 1
@@MB-PROBE tc
tc utility, iproute2-6.1.0, libbpf 1.1.2
@@MB-RC 0
@@MB-PROBE qdiscs
qdisc htb ok
qdisc netem no
qdisc tbf ok
@@MB-RC 0
@@MB-PROBE nft
nftables v1.0.6 (Lester Gooch #5)
@@MB-RC 0
@@MB-PROBE ipmitool
ipmitool version 1.8.19
@@MB-RC 0
@@MB-PROBE memory
MemTotal:       24684096 kB
MemFree:        22243532 kB
MemAvailable:   23000996 kB
Buffers:          204800 kB
@@MB-RC 0
`;

/** What a host without QEMU, virsh, nft or ipmitool answers (coreutils timeout reports the missing program). */
const BARE = `@@MB-PROBE kernel
Linux 6.1.0-26-amd64 x86_64
@@MB-RC 0
@@MB-PROBE qemu
timeout: failed to run command ‘qemu-system-x86_64’: No such file or directory
@@MB-RC 127
@@MB-PROBE kvm
kvm absent
cpuflag no
@@MB-RC 0
@@MB-PROBE libvirt
timeout: failed to run command ‘virsh’: No such file or directory
@@MB-RC 127
@@MB-PROBE tc
tc utility, iproute2-ss200127
@@MB-RC 0
@@MB-PROBE qdiscs
trial unavailable
CONFIG_NET_SCH_HTB=m
# CONFIG_NET_SCH_NETEM is not set
CONFIG_NET_SCH_TBF=m
@@MB-RC 0
@@MB-PROBE nft
timeout: failed to run command ‘nft’: No such file or directory
@@MB-RC 127
@@MB-PROBE ipmitool
timeout: failed to run command ‘ipmitool’: No such file or directory
@@MB-RC 127
@@MB-PROBE memory
MemTotal:        2000000 kB
MemFree:          100000 kB
MemAvailable:     500000 kB
@@MB-RC 0
`;

/** `virsh -c qemu:///system version` in an emulated-cluster server (libvirt 11.3.0 from bookworm-backports). */
const VIRSH_OK = `Compiled against library: libvirt 11.3.0
Using library: libvirt 11.3.0
Using API: QEMU 11.3.0
Running hypervisor: QEMU 10.0.2
Running against daemon: 11.3.0
`;

const host = (hypervisor: 'qemu' | 'libvirt' = 'qemu'): PreflightHost => ({
  name: 'r1-h1',
  hypervisor,
  ssh: { name: 'r1-h1', host: '10.0.0.1', port: 22, user: 'root' },
});

describe('preflight probes', () => {
  it('splits the batch output by probe, with exit codes', () => {
    const parts = splitBatch(RECORDED);
    expect([...parts.keys()]).toEqual(['kernel', 'qemu', 'kvm', 'libvirt', 'tc', 'qdiscs', 'nft', 'ipmitool', 'memory']);
    expect(parts.get('libvirt')?.code).toBe(1);
    expect(parts.get('kvm')).toEqual({ out: 'kvm usable\ncpuflag no', code: 0 });
    // a batch cut short (connection lost, timeout) leaves the last probe without an exit code
    expect(splitBatch('@@MB-PROBE tc\ntc utility, iproute2-6.1.0\n').get('tc')).toEqual({ out: 'tc utility, iproute2-6.1.0', code: -1 });
  });

  it('builds one script whose probes are quoted by the one helper', () => {
    const s = batchScript([PROBES.qemu, PROBES.kvm]);
    expect(s.split('\n')[0]).toBe(
      `echo '@@MB-PROBE qemu'; timeout -k 2 20 qemu-system-x86_64 --version </dev/null 2>&1; echo "@@MB-RC $?"`,
    );
    expect(s).toContain("sh -c 'if [ -c /dev/kvm ]");
  });

  it('parses a healthy host', () => {
    const f = factsFromBatch(RECORDED, 'qemu');
    expect(f.kernel).toEqual({ release: '6.18.44-fc-v595', machine: 'x86_64' });
    expect(f.qemu?.version).toMatchObject({ major: 10, minor: 0, micro: 2 });
    expect(f.kvm).toEqual({ device: 'usable', cpuFlag: false });
    expect(f.libvirt).toBeNull(); // not asked for qemu hosts
    expect(f.tc).toEqual({ found: true, version: '6.1.0', raw: 'tc utility, iproute2-6.1.0, libbpf 1.1.2' });
    expect(f.qdiscs).toMatchObject({ available: { htb: true, netem: false, tbf: true }, method: 'netns-trial' });
    expect(f.nft?.version).toBe('1.0.6');
    expect(f.ipmitool?.version).toBe('1.8.19');
    expect(f.memory).toEqual({ totalBytes: 24684096 * 1024, availableBytes: 23000996 * 1024 });
    expect(accelOf(f)).toBe('kvm');
    expect(checkHost(host(), f, null, { netem: false })).toEqual([]);
  });

  it('names host and check for every failure', () => {
    const f = factsFromBatch(BARE, 'libvirt');
    expect(f.qdiscs).toMatchObject({ available: { htb: true, netem: false, tbf: true }, method: 'kernel-config' });
    expect(f.tc?.version).toBe('200127');
    expect(accelOf(f)).toBe('tcg');
    const fails = checkHost(
      host('libvirt'),
      f,
      { offsetMs: 900, uncertaintyMs: 2, minRttMs: 4, medianRttMs: 5, samples: 16 },
      {
        netem: true,
        nft: true,
        ipmitool: true,
        minAvailableBytes: 2 ** 30,
        maxClockErrorMs: 100,
      },
    );
    expect(fails.map((x) => x.check)).toEqual(['qemu', 'libvirt', 'qdiscs', 'nft', 'ipmitool', 'memory', 'clock']);
    const msg = formatFailures(fails, new Map([['r1-h1', host().ssh]]));
    expect(msg.split('\n')[0]).toBe('preflight failed on 1 host(s):');
    expect(msg).toContain('host r1-h1 (root@10.0.0.1:22): qemu: qemu-system-x86_64 not found; install qemu-system-x86');
    expect(msg).toContain('host r1-h1 (root@10.0.0.1:22): memory: 0.5 GiB available, 1.0 GiB needed');
    expect(msg).toContain('clock differs from the controller by 900.0 ± 2.0 ms');
  });

  it('demands QEMU >= 9 under TCG as the local driver does', () => {
    const old = RECORDED.replace('version 10.0.2', 'version 8.2.2').replace('kvm usable', 'kvm absent');
    const f = factsFromBatch(old, 'qemu');
    expect(checkHost(host(), f, null, {}).map((x) => [x.check, /QEMU 8\.2\.2 cannot be used with TCG/.test(x.message)])).toEqual([
      ['qemu', true],
    ]);
    expect(checkHost(host(), factsFromBatch(RECORDED.replace('kvm usable', 'kvm no-access'), 'qemu'), null, {})[0]).toMatchObject({
      check: 'kvm',
    });
  });

  it('parses libvirt and QEMU answers', () => {
    expect(parseLibvirtProbe({ out: VIRSH_OK, code: 0 })).toEqual({
      found: true,
      daemon: true,
      library: '11.3.0',
      daemonVersion: '11.3.0',
      hypervisor: 'QEMU 10.0.2',
      raw: '',
    });
    const down = parseLibvirtProbe({ out: splitBatch(RECORDED).get('libvirt')!.out, code: 1 });
    expect(down).toMatchObject({ found: true, daemon: false });
    expect(down.raw).toBe(
      "error: failed to connect to the hypervisor; error: Failed to connect socket to '/var/run/libvirt/libvirt-sock': No such file or directory",
    );
    expect(parseQemuProbe({ out: 'garbage', code: 0 })).toEqual({ found: true, version: null, raw: 'garbage' });
    expect(parseQdiscProbe({ out: 'trial unavailable', code: 0 }).method).toBe('none');
  });

  it('warns when hosts differ in QEMU version or accelerator', () => {
    const a = factsFromBatch(RECORDED, 'qemu');
    const b = factsFromBatch(RECORDED.replace('version 10.0.2', 'version 9.2.0').replace('kvm usable', 'kvm absent'), 'qemu');
    const r = (name: string, facts: typeof a): HostReport => ({
      name,
      facts,
      accel: accelOf(facts),
      clock: null,
      connectMs: 0,
      probeMs: 0,
    });
    const w = crossHostWarnings([r('h1', a), r('h2', b), r('h3', a)]);
    expect(w).toHaveLength(2);
    expect(w[0]).toMatch(/^QEMU versions differ between hosts: 10\.0\.2 .* on h1, h3; 9\.2\.0 .* on h2$/);
    expect(w[1]).toBe('accelerators differ between hosts: kvm on h1, h3; tcg on h2');
    expect(crossHostWarnings([r('h1', a), r('h3', a)])).toEqual([]);
  });
});

describe('clock offset from round trips', () => {
  it('uses the fastest round trip: the true offset lies within its uncertainty', () => {
    const rng = seededRng(11);
    for (let trial = 0; trial < 200; trial++) {
      const trueOffset = (rng.next() - 0.5) * 2000;
      const samples: ClockSample[] = [];
      let t = 1.7e12 + trial * 1e5;
      for (let i = 0; i < 16; i++) {
        const up = 0.05 + rng.next() * 3 * (rng.next() < 0.2 ? 20 : 1); // asymmetric, with outliers
        const down = 0.05 + rng.next() * 3;
        samples.push({ sendMs: t, remoteMs: t + up + trueOffset, recvMs: t + up + down });
        t += up + down + 1;
      }
      const c = clockOffset(samples);
      expect(Math.abs(c.offsetMs - trueOffset)).toBeLessThanOrEqual(c.uncertaintyMs + 1e-6);
      expect(c.uncertaintyMs).toBe(c.minRttMs / 2);
      expect(c.medianRttMs).toBeGreaterThanOrEqual(c.minRttMs);
    }
  });

  it('is exact for symmetric delays', () => {
    const c = clockOffset([
      { sendMs: 1000, remoteMs: 1505, recvMs: 1010 },
      { sendMs: 2000, remoteMs: 2501, recvMs: 2002 },
    ]);
    expect(c).toEqual({ offsetMs: 500, uncertaintyMs: 1, minRttMs: 2, medianRttMs: 10, samples: 2 });
    expect(() => clockOffset([])).toThrow();
  });
});
