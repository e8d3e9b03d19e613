import { QEMU_BINARY } from '../../hypervisor/version.ts';
import type { SshConnection } from '../../ssh/connection.ts';
import { errorMessage } from '../../util/errors.ts';

/**
 * Whether QEMU can really start a KVM vCPU on a server: /dev/kvm being there
 * is not enough (on some hosts QEMU aborts setting MSRs at vCPU reset). A
 * paused 32 MiB machine is created and asked its status over QMP on stdin,
 * then quit: no guest runs, nothing is left, ~0.3 s.
 */
export const KVM_START_ARGV = [
  QEMU_BINARY,
  '-accel',
  'kvm',
  '-machine',
  'q35',
  '-cpu',
  'host',
  '-m',
  '32',
  '-display',
  'none',
  '-nodefaults',
  '-qmp',
  'stdio',
  '-S',
];
export const KVM_START_QMP_INPUT = '{"execute":"qmp_capabilities"}\n{"execute":"query-status"}\n{"execute":"quit"}\n';

/** Reads QEMU's QMP answers: a status answer means the vCPU was created and reset. */
export function kvmStartVerdict(out: string, code: number | null): { ok: boolean; detail: string } {
  if (code === 0 && /"status":\s*"prelaunch"/.test(out)) return { ok: true, detail: 'QEMU created a KVM vCPU (paused machine)' };
  const err = out
    .split('\n')
    .filter((l) => /error|Assertion|failed/i.test(l) && !l.startsWith('{'))
    .slice(0, 2)
    .join('; ');
  return { ok: false, detail: `QEMU could not start a KVM vCPU (${err || `exit ${code}`})` };
}

export async function probeKvmStart(conn: SshConnection): Promise<{ ok: boolean; detail: string }> {
  try {
    const r = await conn.exec(['sh', '-c', 'exec "$@" 2>&1', 'mb', ...KVM_START_ARGV], {
      stdin: KVM_START_QMP_INPUT,
      timeoutMs: 20_000,
      label: 'starting a paused KVM machine',
    });
    return kvmStartVerdict(r.stdout, r.code);
  } catch (e) {
    return { ok: false, detail: `KVM start probe failed: ${errorMessage(e)}` };
  }
}
