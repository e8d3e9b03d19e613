/**
 * What a failed boot most likely means, for the error message. A guest with
 * too little memory for its kernel and initramfs fails in two ways, measured
 * here with the harness's image (Debian 6.1 kernel, 8 MiB + 3 MiB initramfs,
 * TCG): at 64 MiB the kernel does not even decompress (QEMU exits 0 at once,
 * nothing on the console: -no-reboot), at 80 MiB it panics "System is
 * deadlocked on memory"; 96 MiB boots.
 */
const OOM =
  /deadlocked on memory|Out of memory|out of memory|Kernel panic - not syncing: VFS: Unable to mount root|Initramfs unpacking failed/;

export function bootFailureHint(memoryMiB: number, message: string): string | null {
  // 137 = 128 + SIGKILL: in a guest without other killers, the kernel's OOM killer (seen with a 16 MiB working set in 96 MiB)
  if (/workload-exited code=137\b/.test(message))
    return `the guest's workload was killed (SIGKILL, most likely the guest's OOM killer): with ${memoryMiB} MiB its working set does not fit; give the VM more memory or the workload a smaller working set`;
  if (memoryMiB >= 128) return null;
  const exited = /QEMU exited with code 0/.test(message);
  const console = message.split(/last (?:console )?lines:\n?/)[1] ?? '';
  if (OOM.test(message) || (exited && console.trim() === ''))
    return (
      `with ${memoryMiB} MiB the guest is likely too small for its kernel and initramfs (measured with migbench's image: ` +
      '64 MiB stops before the kernel prints, 80 MiB panics out of memory, 96 MiB boots); give the VM more memory (vms[].memory)'
    );
  return null;
}
