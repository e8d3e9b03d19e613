/**
 * Small things done on a server over SSH for a remote guest: its tap on the
 * inventory's bridge, the guest image (uploaded once by content hash), the
 * per-run directory. Every command is an argv; the few shell scripts are fixed
 * text that take their values as positional arguments ("$1"...), never pasted in.
 */
import type { GuestImage } from '../../image/build.ts';
import type { SshConnection, UploadResult } from '../../ssh/connection.ts';

/** `sh -c <fixed script> mb <args...>`: values reach the script as "$1".. only. */
export function shScript(script: string, ...args: string[]): string[] {
  return ['sh', '-c', script, 'mb', ...args];
}

/** Creates a tap, enslaves it to the bridge and brings it up; on any failure the tap is removed again. */
export const TAP_SCRIPT =
  'ip tuntap add dev "$1" mode tap && ip link set "$1" master "$2" && ip link set "$1" up && exit 0; ' +
  'r=$?; ip link del "$1" 2>/dev/null; exit $r';

export async function createRemoteTap(conn: SshConnection, ifname: string, bridge: string): Promise<void> {
  const r = await conn.exec(shScript(TAP_SCRIPT, ifname, bridge), { label: `creating tap ${ifname} on bridge ${bridge}` });
  if (r.code !== 0) {
    const why = r.stderr.trim() || r.stdout.trim();
    const hint = /File exists|Device or resource busy/i.test(why)
      ? `; a device ${ifname} already exists there (left by an earlier run?): remove it with 'ip link del ${ifname}' if migbench created it`
      : /Cannot find device|does not exist/i.test(why)
        ? `; check the inventory's bridge (${bridge}) exists on that server`
        : '';
    throw conn.error(`cannot create tap ${ifname} on bridge ${bridge}: ${why}${hint}`);
  }
}

/** Removes the tap (never fails: it may be gone already). */
export async function deleteRemoteTap(conn: SshConnection, ifname: string): Promise<void> {
  await conn.exec(['ip', 'link', 'del', ifname], { label: `removing tap ${ifname}` }).catch(() => undefined);
}

/** A guest image on a server: kernel/initrd are paths there. */
export interface RemoteImage extends GuestImage {
  uploads: UploadResult[];
}

/** Copies kernel and initrd into `remoteDir` by content hash (skipped when present); the image with the server's paths. */
export async function ensureImage(conn: SshConnection, image: GuestImage, remoteDir: string): Promise<RemoteImage> {
  const kernel = await conn.putByHash(image.kernel, remoteDir, 'vmlinuz');
  const initrd = await conn.putByHash(image.initrd, remoteDir, 'initrd.img');
  return { ...image, kernel: kernel.remotePath, initrd: initrd.remotePath, uploads: [kernel, initrd] };
}

/** A directory migbench may remove recursively: absolute, normalised, with a path component named migbench. */
export function isOwnRemoteDir(dir: string): boolean {
  if (!dir.startsWith('/') || dir.includes('\0')) return false;
  const parts = dir.split('/').filter(Boolean);
  if (parts.some((p) => p === '.' || p === '..')) return false;
  const i = parts.indexOf('migbench');
  return i >= 0 && i < parts.length - 1; // something below .../migbench/, never migbench itself
}

/** Removes a per-run directory on the server (only a path under a `migbench` directory; see isOwnRemoteDir). */
export async function removeRemoteDir(conn: SshConnection, dir: string): Promise<void> {
  if (!isOwnRemoteDir(dir)) throw new Error(`refusing to remove ${dir} on ${conn.name}: not a directory below a 'migbench' directory`);
  await conn.run(['rm', '-rf', '--', dir], { label: `removing ${dir}` });
}
