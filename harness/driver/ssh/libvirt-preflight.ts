import { UserError } from '../../util/errors.ts';

/**
 * The hypervisor back end of a run: every server of the inventory must name the same one (a
 * migration goes from a libvirt domain to a libvirt domain, or from QEMU to QEMU). Whether
 * libvirt answers and its version are checked per host by the preflight (harness/ssh/probes.ts).
 */
export function inventoryBackend(hosts: readonly { name: string; hypervisor: 'qemu' | 'libvirt' }[]): 'qemu' | 'libvirt' {
  const by = (k: 'qemu' | 'libvirt') => hosts.filter((h) => h.hypervisor === k).map((h) => h.name);
  const lv = by('libvirt');
  const qm = by('qemu');
  if (lv.length && qm.length)
    throw new UserError(
      `inventory: hosts disagree on the hypervisor back end (libvirt: ${lv.join(', ')}; qemu: ${qm.join(', ')}); ` +
        `set the same 'hypervisor:' on every host the spec uses`,
    );
  return lv.length ? 'libvirt' : 'qemu';
}
