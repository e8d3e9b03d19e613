/**
 * The `libvirt` back end's domain XML, from the same VM options the `qemu` back end turns into
 * an argv (harness/hypervisor/qemu.ts). Pure: unit-tested as text.
 *
 * Direct kernel boot (kernel, initrd, our /init's command line), q35, the guest NIC on the
 * inventory's bridge as a tap libvirt creates (and enslaves) on whichever server the domain
 * runs, so a migration needs no tap prepared on the destination, the serial console to a file
 * on the server (followed over SSH like the qemu back end's). One QMP monitor of our own besides
 * libvirt's (qemu:commandline): the rest of the harness talks QMP to a guest (query-status,
 * the dirty-rate probe); migration itself goes through libvirt only (libvirt-migrate.ts).
 */
import { guestCmdline, type StartVmOptions } from '../../hypervisor/qemu.ts';
import { UserError } from '../../util/errors.ts';

/** Where QEMU is on the servers (libvirt wants an absolute path). */
export const LIBVIRT_EMULATOR = '/usr/bin/qemu-system-x86_64';
export const QEMU_NS = 'http://libvirt.org/schemas/domain/qemu/1.0';

export interface DomainOptions {
  /** libvirt domain name (unique on the server; kept across migrations). */
  domain: string;
  vm: Pick<
    StartVmOptions,
    'name' | 'memoryMiB' | 'vcpus' | 'accel' | 'ip' | 'gw' | 'workload' | 'httpd' | 'cmdlineExtra' | 'tap' | 'cpu' | 'machine'
  > & {
    /** Paths on the server. */
    image: { kernel: string; initrd: string };
  };
  /** The bridge guests attach to (inventory `bridge`). */
  bridge: string;
  /** Serial console file and our QMP socket, on the server. */
  serialLog: string;
  qmp: string;
  emulator?: string;
}

export function xmlEscape(s: string): string {
  return s.replace(/&/g, '&amp;').replace(/</g, '&lt;').replace(/>/g, '&gt;').replace(/"/g, '&quot;').replace(/'/g, '&apos;');
}

/** A libvirt domain name: what virsh and a file name both take without quoting surprises. */
export function assertDomainName(name: string): void {
  if (!/^[A-Za-z0-9][A-Za-z0-9._-]{0,99}$/.test(name))
    throw new UserError(`libvirt domain name "${name}" must be letters, digits, '.', '_' or '-' (from testbed.id and the VM name)`);
}

/** The domain XML for `o` (type 'qemu' = TCG under the accelerator tcg, 'kvm' otherwise). */
export function domainXml(o: DomainOptions): string {
  const v = o.vm;
  assertDomainName(o.domain);
  if (!Number.isInteger(v.memoryMiB) || v.memoryMiB < 32)
    throw new UserError(`VM ${v.name}: memory must be an integer >= 32 MiB (got ${v.memoryMiB})`);
  const vcpus = v.vcpus ?? 1;
  if (!Number.isInteger(vcpus) || vcpus < 1) throw new UserError(`VM ${v.name}: vcpus must be a positive integer (got ${vcpus})`);
  const e = xmlEscape;
  // TCG: QEMU's 'max' model (libvirt's mode 'maximum'); KVM: the host's CPU; a named model when the spec gives one
  const cpu = v.cpu
    ? `<cpu mode='custom' match='exact' check='none'><model fallback='forbid'>${e(v.cpu)}</model></cpu>`
    : v.accel === 'kvm'
      ? `<cpu mode='host-passthrough' check='none' migratable='on'/>`
      : `<cpu mode='maximum' check='none' migratable='on'/>`;
  const nic: string[] = [];
  if (v.tap) {
    if (!/^([0-9a-f]{2}:){5}[0-9a-f]{2}$/i.test(v.tap.mac))
      throw new UserError(`VM ${v.name}: tap mac "${v.tap.mac}" is not a MAC address like 52:54:00:12:34:56`);
    nic.push(
      `    <interface type='bridge'>`,
      `      <source bridge='${e(o.bridge)}'/>`,
      `      <target dev='${e(v.tap.ifname)}'/>`,
      `      <mac address='${e(v.tap.mac.toLowerCase())}'/>`,
      `      <model type='virtio'/>`,
      `    </interface>`,
    );
  }
  return [
    `<domain type='${v.accel === 'kvm' ? 'kvm' : 'qemu'}' xmlns:qemu='${QEMU_NS}'>`,
    `  <name>${e(o.domain)}</name>`,
    `  <description>migbench guest ${e(v.name)}</description>`,
    `  <memory unit='MiB'>${v.memoryMiB}</memory>`,
    `  <vcpu>${vcpus}</vcpu>`,
    `  <os>`,
    `    <type arch='x86_64' machine='${v.machine ?? 'q35'}'>hvm</type>`,
    `    <kernel>${e(v.image.kernel)}</kernel>`,
    `    <initrd>${e(v.image.initrd)}</initrd>`,
    `    <cmdline>${e(guestCmdline(v))}</cmdline>`,
    `  </os>`,
    `  ${cpu}`,
    // -no-reboot and panic=-1: a guest that reboots or crashes ends, as under the qemu back end
    `  <on_poweroff>destroy</on_poweroff>`,
    `  <on_reboot>destroy</on_reboot>`,
    `  <on_crash>destroy</on_crash>`,
    `  <devices>`,
    `    <emulator>${e(o.emulator ?? LIBVIRT_EMULATOR)}</emulator>`,
    ...nic,
    `    <serial type='file'>`,
    `      <source path='${e(o.serialLog)}'/>`,
    `      <target port='0'/>`,
    `    </serial>`,
    // what -nodefaults leaves out under the qemu back end
    `    <controller type='usb' model='none'/>`,
    `    <memballoon model='none'/>`,
    `  </devices>`,
    `  <qemu:commandline>`,
    `    <qemu:arg value='-qmp'/>`,
    `    <qemu:arg value='unix:${e(o.qmp.replace(/,/g, ',,'))},server=on,wait=off'/>`,
    `  </qemu:commandline>`,
    `</domain>`,
    '',
  ].join('\n');
}
