import { describe, expect, it } from 'vitest';
import { domainXml, type DomainOptions } from './libvirt-domain.ts';
import { inventoryBackend } from './libvirt-preflight.ts';
import { migrateArgs } from './libvirt-migrate.ts';
import { MigrationSpec } from '../../spec/schema.ts';

const base: DomainOptions = {
  domain: 'mb-quickstart-vm1',
  vm: {
    name: 'vm1',
    memoryMiB: 128,
    vcpus: 1,
    accel: 'tcg',
    ip: '10.231.100.1/16',
    workload: 'dirty:wset=32M,period=10ms',
    httpd: true,
    tap: { ifname: 'mb-t1', mac: '52:54:00:E7:00:01' },
    image: { kernel: '/var/tmp/migbench/images/k-abc/vmlinuz', initrd: '/var/tmp/migbench/images/i-abc/initrd.img' },
  },
  bridge: 'mb-br',
  serialLog: '/run/migbench/run1/vm1.serial.log',
  qmp: '/run/migbench/run1/vm1.qmp',
};

describe('libvirt domain XML', () => {
  it('boots the kernel directly with our command line, on the bridge, console to a file, our QMP monitor', () => {
    const x = domainXml(base);
    expect(x).toContain(`<domain type='qemu' xmlns:qemu='http://libvirt.org/schemas/domain/qemu/1.0'>`);
    expect(x).toContain('<name>mb-quickstart-vm1</name>');
    expect(x).toContain(`<memory unit='MiB'>128</memory>`);
    expect(x).toContain('<vcpu>1</vcpu>');
    expect(x).toContain(`<type arch='x86_64' machine='q35'>hvm</type>`);
    expect(x).toContain('<kernel>/var/tmp/migbench/images/k-abc/vmlinuz</kernel>');
    expect(x).toContain('<initrd>/var/tmp/migbench/images/i-abc/initrd.img</initrd>');
    expect(x).toContain(
      '<cmdline>console=ttyS0 loglevel=5 panic=-1 mb.vm=vm1 mb.ip=10.231.100.1/16 mb.httpd=1 mb.workload=dirty:wset=32M,period=10ms</cmdline>',
    );
    expect(x).toContain(`<cpu mode='maximum' check='none' migratable='on'/>`);
    expect(x).toMatch(
      /<interface type='bridge'>\s*<source bridge='mb-br'\/>\s*<target dev='mb-t1'\/>\s*<mac address='52:54:00:e7:00:01'\/>\s*<model type='virtio'\/>/,
    );
    expect(x).toMatch(/<serial type='file'>\s*<source path='\/run\/migbench\/run1\/vm1.serial.log'\/>/);
    expect(x).toContain('<emulator>/usr/bin/qemu-system-x86_64</emulator>');
    expect(x).toContain(`<qemu:arg value='unix:/run/migbench/run1/vm1.qmp,server=on,wait=off'/>`);
    expect(x).toContain('<on_reboot>destroy</on_reboot>');
    expect(x).not.toContain('<disk');
  });

  it("is type 'kvm' with the host's CPU under KVM; no NIC without a tap", () => {
    const x = domainXml({ ...base, vm: { ...base.vm, accel: 'kvm', tap: undefined, vcpus: 2 } });
    expect(x).toContain(`<domain type='kvm'`);
    expect(x).toContain(`<cpu mode='host-passthrough' check='none' migratable='on'/>`);
    expect(x).toContain('<vcpu>2</vcpu>');
    expect(x).not.toContain('<interface');
  });

  it('escapes XML in paths and refuses unsafe names', () => {
    const x = domainXml({ ...base, bridge: `br'<&>"`, serialLog: '/run/a&b/<x>.log', qmp: '/run/a,b.qmp' });
    expect(x).toContain(`<source bridge='br&apos;&lt;&amp;&gt;&quot;'/>`);
    expect(x).toContain(`<source path='/run/a&amp;b/&lt;x&gt;.log'/>`);
    expect(x).toContain(`value='unix:/run/a,,b.qmp,server=on,wait=off'`);
    expect(() => domainXml({ ...base, domain: 'a b' })).toThrow(/domain name/);
    expect(() => domainXml({ ...base, domain: "x';reboot" })).toThrow(/domain name/);
    expect(() => domainXml({ ...base, vm: { ...base.vm, memoryMiB: 16 } })).toThrow(/memory/);
  });
});

describe('libvirt back end choice and migrate options', () => {
  it('takes the back end every host names; a mixed inventory names the hosts', () => {
    expect(
      inventoryBackend([
        { name: 'a', hypervisor: 'libvirt' },
        { name: 'b', hypervisor: 'libvirt' },
      ]),
    ).toBe('libvirt');
    expect(inventoryBackend([{ name: 'a', hypervisor: 'qemu' }])).toBe('qemu');
    expect(() =>
      inventoryBackend([
        { name: 'a', hypervisor: 'libvirt' },
        { name: 'b', hypervisor: 'qemu' },
        { name: 'c', hypervisor: 'qemu' },
      ]),
    ).toThrow(/libvirt: a; qemu: b, c/);
  });

  it('migrates live peer-to-peer with the data on the given URI; features map to virsh options', () => {
    const o = { domain: 'mb-x-vm1', peerUri: 'qemu+ssh://root@10.233.1.2/system', migrateUri: 'tcp:10.232.1.2:4401', listen: '10.232.1.2' };
    const m = MigrationSpec.parse({ moves: [{ vm: 'vm1', to: 'h2' }] });
    expect(migrateArgs(m, o)).toEqual([
      'migrate',
      '--live',
      '--p2p',
      '--persistent',
      'mb-x-vm1',
      'qemu+ssh://root@10.233.1.2/system',
      '--migrateuri',
      'tcp:10.232.1.2:4401',
      '--listen-address',
      '10.232.1.2',
    ]);
    const f = MigrationSpec.parse({
      moves: [{ vm: 'vm1', to: 'h2' }],
      capabilities: { auto_converge: true, multifd: true },
      multifd_channels: 4,
      max_bandwidth: '400mbit',
    });
    const a = migrateArgs(f, o);
    expect(a).toContain('--auto-converge');
    expect(a.join(' ')).toContain('--parallel --parallel-connections 4');
    expect(a.join(' ')).toContain('--bandwidth 48');
    expect(() => migrateArgs(MigrationSpec.parse({ moves: [{ vm: 'vm1', to: 'h2' }], mode: 'postcopy' }), o)).toThrow(/live/);
  });
});
