/**
 * QEMU version lookup and the "is this QEMU safe to migrate with" check.
 * Separate from accel.ts so the launcher can use it without a cycle.
 */
import { run } from '../util/exec.ts';
import { UserError } from '../util/errors.ts';

export type Accel = 'kvm' | 'tcg';

export interface QemuVersionInfo {
  major: number;
  minor: number;
  micro: number;
  /** First line of `qemu-system-x86_64 --version`. */
  raw: string;
}

export const QEMU_BINARY = 'qemu-system-x86_64';

/** Parses `QEMU emulator version 10.0.2 (Debian ...)`. */
export function parseQemuVersion(text: string): QemuVersionInfo {
  const raw = text.split('\n')[0].trim();
  const m = /version (\d+)\.(\d+)(?:\.(\d+))?/.exec(raw);
  if (!m) throw new Error(`cannot parse QEMU version from: ${raw}`);
  return { major: Number(m[1]), minor: Number(m[2]), micro: Number(m[3] ?? 0), raw };
}

let cached: Promise<QemuVersionInfo> | undefined;

/** Version of the qemu-system-x86_64 on PATH (looked up once per process). */
export function qemuVersion(): Promise<QemuVersionInfo> {
  cached ??= run(QEMU_BINARY, ['--version'], { timeoutMs: 30_000 }).then((r) => parseQemuVersion(r.stdout));
  cached.catch(() => (cached = undefined)); // retry after e.g. installing QEMU
  return cached;
}

/** Why TCG needs QEMU >= 9.0, for the error message. */
const TCG_MIN_MAJOR = 9;

/** Throws a UserError when this QEMU cannot be trusted with `accel`. */
export function checkQemuUsable(v: QemuVersionInfo, accel: Accel): void {
  if (accel === 'tcg' && v.major < TCG_MIN_MAJOR) {
    throw new UserError(
      `QEMU ${v.major}.${v.minor}.${v.micro} cannot be used with TCG (no working KVM here): under TCG it corrupts ` +
        `guests that write memory while migrating (fixed in QEMU 9.0, "physmem: Fix migration dirty bitmap coherency ` +
        `with TCG memory access"). Install QEMU >= 9.0: add the bookworm-backports suite and run ` +
        `apt-get -t bookworm-backports install qemu-system-x86`,
    );
  }
}

/** qemuVersion() + checkQemuUsable(). */
export async function assertQemuUsable(accel: Accel): Promise<QemuVersionInfo> {
  const v = await qemuVersion();
  checkQemuUsable(v, accel);
  return v;
}
