import { sleep } from './time.ts';
import { readFileSync } from 'node:fs';

/**
 * Processes are ended by PID only, and only when /proc still shows the same
 * process (same start time) that we recorded: a recycled PID is left alone.
 */
export interface OwnedProcess {
  pid: number;
  /** /proc/<pid>/stat field 22 (start time in clock ticks since boot). */
  startTime: number;
  tag: string;
}

export function procStartTime(pid: number): number | null {
  try {
    const stat = readFileSync(`/proc/${pid}/stat`, 'utf8');
    // comm may contain spaces and parentheses: parse after the last ')'
    const rest = stat.slice(stat.lastIndexOf(')') + 2).split(' ');
    return Number(rest[19]);
  } catch {
    return null;
  }
}

export function isSameProcess(p: OwnedProcess): boolean {
  const st = procStartTime(p.pid);
  return st !== null && st === p.startTime;
}

export function ownProcess(pid: number, tag: string): OwnedProcess {
  return { pid, tag, startTime: procStartTime(pid) ?? -1 };
}

/** SIGTERM, wait up to `graceMs`, then SIGKILL; returns true when it is gone. */
export async function endProcess(p: OwnedProcess, graceMs = 3000): Promise<boolean> {
  if (!isSameProcess(p)) return true;
  try {
    process.kill(p.pid, 'SIGTERM');
  } catch {
    return true;
  }
  const deadline = Date.now() + graceMs;
  while (Date.now() < deadline) {
    if (!isSameProcess(p) || isZombie(p.pid)) return true;
    await sleep(25);
  }
  try {
    process.kill(p.pid, 'SIGKILL');
  } catch {
    /* already gone */
  }
  for (let i = 0; i < 40 && isSameProcess(p) && !isZombie(p.pid); i++) await sleep(25);
  return !isSameProcess(p) || isZombie(p.pid);
}

function isZombie(pid: number): boolean {
  try {
    const stat = readFileSync(`/proc/${pid}/stat`, 'utf8');
    return stat.slice(stat.lastIndexOf(')') + 2).startsWith('Z');
  } catch {
    return true;
  }
}

export function isProcessAlive(p: OwnedProcess): boolean {
  return isSameProcess(p) && !isZombie(p.pid);
}

/** True while a process with this PID exists (any owner); prefer isProcessAlive when the start time is known. */
export function pidExists(pid: number): boolean {
  try {
    process.kill(pid, 0);
    return true;
  } catch (e) {
    return (e as NodeJS.ErrnoException).code === 'EPERM';
  }
}

/**
 * Children started in their own process group (so a terminal Ctrl-C reaches only the harness,
 * which then stops them in order) no longer die with the harness by themselves. Those recorded
 * here get SIGTERM when the harness process exits (normal end, process.exit after cleanup or a
 * crash); kill -9 of the harness leaves them to `migbench testbed down` (they run in its namespaces).
 */
const endAtExit = new Map<number, OwnedProcess>();
let exitHooked = false;

export function endWithHarness(child: { pid?: number; once(event: 'exit', fn: () => void): unknown }, tag: string): OwnedProcess | null {
  if (!child.pid) return null;
  const p = ownProcess(child.pid, tag);
  endAtExit.set(p.pid, p);
  child.once('exit', () => {
    if (endAtExit.get(p.pid) === p) endAtExit.delete(p.pid);
  });
  if (!exitHooked) {
    exitHooked = true;
    process.on('exit', () => {
      for (const q of endAtExit.values()) {
        if (!isSameProcess(q)) continue;
        try {
          process.kill(q.pid, 'SIGTERM');
        } catch {
          /* gone */
        }
      }
    });
  }
  return p;
}

/** Children recorded by endWithHarness that are still running (for tests and diagnostics). */
export function childrenEndedWithHarness(): OwnedProcess[] {
  return [...endAtExit.values()].filter(isProcessAlive);
}
