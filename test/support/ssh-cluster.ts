import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import type { Inventory } from '../../harness/inventory/load.ts';
import { SshPool } from '../../harness/ssh/pool.ts';
import type { MigrationRecord } from '../../harness/store/schema/index.ts';

/** Helpers of the e2e tests that run against an emulated cluster (ssh-run). */

export function readRecords<T extends MigrationRecord = MigrationRecord>(runDir: string): T[] {
  return readFileSync(join(runDir, 'migrations.jsonl'), 'utf8')
    .split('\n')
    .filter(Boolean)
    .map((l) => JSON.parse(l) as T);
}

/** The run directory a `migbench run` printed; the path ends before whitespace or a terminal escape (the progress display). */
export function runDirOf(stdout: string, stderr: string): string {
  const m = new RegExp(`run directory: ([^\\s${String.fromCharCode(27)}]+)`).exec(`${stdout}\n${stderr}`);
  if (!m) throw new Error(`no run directory in the output:\n${stdout}\n${stderr}`);
  return m[1];
}

/** What a run may leave on a server: its run directories, guest taps, and with `domains` libvirt domains (running or defined). */
export async function serverLeftovers(inv: Inventory, o: { domains?: boolean } = {}): Promise<string[]> {
  const pool = new SshPool({ hostKeys: inv.hostKeys });
  try {
    await pool.connectAll(inv.hosts.map((h) => h.ssh));
    const found: string[] = [];
    for (const h of inv.hosts) {
      const c = pool.get(h.name);
      if (o.domains) {
        const doms = await c.exec(['virsh', '-q', '-c', 'qemu:///system', 'list', '--all', '--name']);
        for (const d of doms.stdout.split('\n').filter((x) => x.trim())) found.push(`${h.name}: domain ${d.trim()}`);
      }
      const dirs = await c.exec(['sh', '-c', 'ls -A /run/migbench 2>/dev/null | grep -v "^images$" || true']);
      for (const d of dirs.stdout.split('\n').filter(Boolean)) found.push(`${h.name}: /run/migbench/${d}`);
      const taps = await c.exec(['ip', '-o', 'link', 'show', 'type', 'tun']);
      for (const l of taps.stdout.split('\n').filter((x) => / mb-t\d+[:@]/.test(x))) found.push(`${h.name}: tap ${l.split(': ')[1]}`);
    }
    return found;
  } finally {
    pool.closeAll();
  }
}
