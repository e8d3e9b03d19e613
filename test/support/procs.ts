import { readdirSync, readFileSync } from 'node:fs';

/** QEMU processes whose command line mentions `needle` (e.g. a run directory). */
export function qemuPidsMentioning(needle: string): number[] {
  const out: number[] = [];
  for (const d of readdirSync('/proc')) {
    if (!/^\d+$/.test(d)) continue;
    try {
      const cmd = readFileSync(`/proc/${d}/cmdline`, 'utf8').split('\0');
      if (cmd[0]?.includes('qemu-system') && cmd.some((a) => a.includes(needle))) {
        const state = readFileSync(`/proc/${d}/stat`, 'utf8').split(') ')[1]?.[0];
        if (state !== 'Z') out.push(Number(d));
      }
    } catch {
      /* exited meanwhile */
    }
  }
  return out;
}

export function cmdlineOf(pid: number): string[] {
  try {
    return readFileSync(`/proc/${pid}/cmdline`, 'utf8').split('\0');
  } catch {
    return [];
  }
}
