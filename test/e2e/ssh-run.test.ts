import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { execa } from 'execa';
import { execFileSync } from 'node:child_process';
import { existsSync, readdirSync, readFileSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { parse, stringify } from 'yaml';
import { readSshState, sshStatePath } from '../../harness/driver/ssh/session.ts';
import { loadState } from '../../harness/testbed/state.ts';
import { loadInventory, type Inventory } from '../../harness/inventory/load.ts';
import { TreatmentLineSchema, type MigrationRecord } from '../../harness/store/schema/index.ts';
import { migbench, migbenchRun, ROOT, waitFor } from '../support/cli.ts';
import { readRecords, runDirOf, serverLeftovers } from '../support/ssh-cluster.ts';
import { fileScratchDir } from '../support/scratch.ts';

/**
 * The ssh driver end to end against the emulated cluster (`testbed up --servers`, 2 servers
 * reached only over SSH from the root namespace, each with its own libvirtd), one cluster for
 * the file: the quickstart spec via `run --inventory` with the qemu back end next to the same
 * spec on the local testbed, then through the libvirt back end next to the qemu back end's run,
 * a 4-VM plan through each back end, and the faults (an unreachable server, a wrong key, the
 * connection to the destination cut mid-migration, kill -9 of the harness then `testbed down`).
 */
const CLUSTER = `${ROOT}test/e2e/specs/ssh-cluster.yaml`;
const QUICKSTART = `${ROOT}experiments/quickstart.yaml`;
const PLAN = `${ROOT}test/e2e/specs/ssh-plan.yaml`;
const CUT = `${ROOT}test/e2e/specs/ssh-cut.yaml`;
const ID = 'mbsr';
const out = fileScratchDir('mb-ssh-run-');
let invFile: string;
let lvInvFile: string;
let inv: Inventory;

type LibvirtRecord = MigrationRecord & {
  backend?: string;
  libvirt?: { job_poll_hz: number | null; completed: Record<string, unknown> | null };
  null_reasons?: Record<string, string>;
};

const records = (runDir: string) => readRecords<LibvirtRecord>(runDir);
const med = (xs: number[]) => [...xs].sort((a, b) => a - b)[Math.floor(xs.length / 2)];

/** Writes a variant of the cluster's inventory. */
function variant(name: string, edit: (doc: Record<string, unknown>) => void): string {
  const doc = parse(readFileSync(invFile, 'utf8')) as Record<string, unknown>;
  edit(doc);
  const f = join(out, `${name}.yaml`);
  writeFileSync(f, stringify(doc));
  return f;
}

/** A run through the ssh driver, which must end as soon as it printed its run directory (nothing left waiting). */
async function sshRun(args: string[]) {
  const { r, lingerMs } = await migbenchRun(args);
  expect(r.exitCode, String(r.stderr).slice(-3000)).toBe(0);
  // ~10 ms here; a timer left pending in a guest's teardown used to hold the process 9-30 s
  expect(lingerMs, 'ms the process lived after printing its run directory').toBeLessThan(5000);
  return r;
}

/** What the harness leaves on a server: its run directories, guest taps and libvirt domains. */
const leftovers = () => serverLeftovers(inv, { domains: true });

beforeAll(async () => {
  await migbench(['testbed', 'down', ID]);
  const up = await migbench(['testbed', 'up', CLUSTER, '--servers']);
  expect(up.exitCode, String(up.stderr) + String(up.stdout)).toBe(0);
  const printed = await migbench(['testbed', 'inventory', ID, '--hypervisor', 'qemu']);
  expect(printed.exitCode, String(printed.stderr)).toBe(0);
  invFile = join(out, 'inventory.yaml');
  writeFileSync(invFile, String(printed.stdout));
  inv = loadInventory(invFile);
  lvInvFile = variant('inventory-libvirt', (d) => {
    for (const h of d.hosts as Record<string, unknown>[]) h.hypervisor = 'libvirt';
  });
  expect(loadInventory(lvInvFile).hosts.map((h) => h.hypervisor)).toEqual(['libvirt', 'libvirt']);
}, 300_000);

afterAll(async () => {
  for (const id of ['quickstart', 'mbsp', 'mbsc']) if (existsSync(sshStatePath(id))) await migbench(['testbed', 'down', id, '--force']);
  await migbench(['testbed', 'down', ID]);
}, 300_000);

describe('ssh driver on an emulated cluster', () => {
  it('refuses an unreachable server at preflight: exit 2, names it, changes nothing on any server', async () => {
    const f = variant('unreachable', (d) => {
      const hosts = d.hosts as Record<string, unknown>[];
      hosts[1].address = '10.233.99.99'; // on the management network, nobody there
    });
    const t0 = Date.now();
    const r = await migbench(['run', QUICKSTART, '--inventory', f, '--out', out, '--no-report']);
    expect(r.exitCode, String(r.stderr)).toBe(2);
    expect(String(r.stderr)).toMatch(/r1-h2/);
    expect(String(r.stderr)).toMatch(/10\.233\.99\.99/);
    expect(String(r.stderr)).not.toMatch(/\n\s+at /); // no stack trace
    console.log(`unreachable server refused in ${((Date.now() - t0) / 1000).toFixed(1)} s`);
    expect(existsSync(sshStatePath('quickstart'))).toBe(false);
    expect(await leftovers()).toEqual([]);
  }, 120_000);

  it('refuses a wrong key with a clear message naming the server', async () => {
    const key = join(out, 'other_key');
    execFileSync('ssh-keygen', ['-q', '-t', 'ed25519', '-N', '', '-f', key]);
    const f = variant('wrongkey', (d) => {
      for (const h of d.hosts as Record<string, unknown>[]) h.key_file = key;
    });
    const r = await migbench(['run', QUICKSTART, '--inventory', f, '--out', out, '--no-report']);
    expect(r.exitCode, String(r.stderr)).toBe(2);
    expect(String(r.stderr)).toMatch(/r1-h1/);
    expect(String(r.stderr)).toMatch(/key|authenticat/i);
    expect(String(r.stderr)).not.toMatch(/\n\s+at /);
    expect(await leftovers()).toEqual([]);
  }, 120_000);

  let sshRecs: LibvirtRecord[] = [];
  it('runs the quickstart spec via --inventory: every migration completes with every field, within physics', async () => {
    const r = await sshRun(['run', QUICKSTART, '--inventory', invFile, '--out', out, '--no-report']);
    const dir = runDirOf(String(r.stdout), String(r.stderr));
    const manifest = JSON.parse(readFileSync(join(dir, 'manifest.json'), 'utf8')) as Record<string, unknown>;
    expect((manifest.driver as { kind: string }).kind).toBe('ssh');
    // power from the servers' BMCs over lanplus (the emulated ones report their model's watts): measured, not modelled here
    expect(manifest.power_source).toBe('measured');
    const idle = manifest.power_idle_w as Record<string, number>;
    for (const h of ['r1-h1', 'r1-h2']) expect(idle[h], `idle baseline of ${h}`).toBeGreaterThan(0);
    sshRecs = records(dir);
    expect(sshRecs.length).toBeGreaterThanOrEqual(4);
    // the qemu back end restores a saved booted guest on the server (made there by the first start when not cached)
    for (const rec of sshRecs) expect(rec.guest_start, `${rec.id} guest start`).toMatchObject({ mode: 'restored', reason: null });
    console.log(
      `guest ready: ${[...new Set(sshRecs.map((x) => `${x.guest_start!.ready_ms} ms (made ${x.guest_start!.made_ms ?? '-'})`))].join(', ')}`,
    );
    for (const rec of sshRecs) {
      expect(rec.status, `${rec.id}: ${rec.reason}`).toBe('completed');
      for (const k of [
        'total_ms',
        'downtime_reported_ms',
        'downtime_event_ms',
        'downtime_observed_ms',
        'transferred_bytes',
        'passes',
      ] as const)
        expect(rec[k], `${rec.id}.${k}`).not.toBeNull();
      expect(rec.clock_offset_ms, rec.id).not.toBeUndefined();
      expect(rec.energy_j, `${rec.id}.energy_j`).not.toBeNull();
      expect(rec.energy_coverage!, `${rec.id}.energy_coverage`).toBeGreaterThan(0.8);
      expect(rec.healthy, rec.id).toBe(true);
      // physics: nothing crosses the shaped link faster than its rate
      expect(rec.total_ms!, rec.id).toBeGreaterThanOrEqual((rec.transferred_bytes! * 8) / (rec.link_rate_mbit! * 1e3));
      // the client's probe and the two hosts' events see the same outage (clocks corrected by the measured offset)
      const tol = 2 * rec.probe_interval_ms! + 2 * (rec.clock_uncertainty_ms ?? 0) + 15;
      expect(Math.abs(rec.downtime_observed_ms! - rec.downtime_event_ms!), rec.id).toBeLessThanOrEqual(tol);
    }
    expect(await leftovers()).toEqual([]);
    expect(existsSync(sshStatePath('quickstart'))).toBe(false);
  }, 900_000);

  it('gives the same totals and bytes as the local driver on the same shaped link, within noise', async () => {
    expect(sshRecs.length).toBeGreaterThan(0);
    const r = await migbench(['run', QUICKSTART, '--out', out, '--no-report']);
    expect(r.exitCode, String(r.stderr).slice(-3000)).toBe(0);
    const localDir = runDirOf(String(r.stdout), String(r.stderr));
    const local = records(localDir);
    // each treatment's totals (made while the next treatment starts): one line each, in the manifest's order, covered by readings
    const manifest = JSON.parse(readFileSync(join(localDir, 'manifest.json'), 'utf8')) as { treatments: { id: string }[] };
    const totals = readFileSync(join(localDir, 'treatments.jsonl'), 'utf8')
      .split('\n')
      .filter(Boolean)
      .map((l) => TreatmentLineSchema.parse(JSON.parse(l)));
    expect(totals.map((x) => x.treatment)).toEqual(manifest.treatments.map((x) => x.id));
    for (const x of totals) {
      expect(x.completed, x.treatment).toBe(local.filter((m) => m.treatment === x.treatment).length);
      expect(x.energy_j, x.treatment).not.toBeNull();
      expect(x.peak_w!, x.treatment).toBeGreaterThan(0);
      for (const [h, v] of Object.entries(x.hosts)) expect(v.coverage!, `${x.treatment} ${h}`).toBeGreaterThan(0.8);
    }
    for (const level of [...new Set(local.map((x) => x.workload))]) {
      const a = local.filter((x) => x.workload === level);
      const b = sshRecs.filter((x) => x.workload === level);
      const ta = med(a.map((x) => x.total_ms!));
      const tb = med(b.map((x) => x.total_ms!));
      const ba = med(a.map((x) => x.transferred_bytes!));
      const bb = med(b.map((x) => x.transferred_bytes!));
      console.log(
        `${level}: total local ${ta} ms vs ssh ${tb} ms; transferred local ${(ba / 2 ** 20).toFixed(1)} vs ssh ${(bb / 2 ** 20).toFixed(1)} MiB`,
      );
      // measured over 4 runs of both (8 level medians): at most 5.6 % apart in time, 3.2 % in bytes; 15 % is ~3x that
      expect(Math.abs(tb - ta) / ta, `total time of ${level}`).toBeLessThan(0.15);
      expect(Math.abs(bb - ba) / ba, `transferred bytes of ${level}`).toBeLessThan(0.15);
    }
  }, 900_000);

  let lvRecs: LibvirtRecord[] = [];
  it('runs the quickstart spec via --inventory through libvirt: every migration completes with every field, within physics', async () => {
    const r = await sshRun(['run', QUICKSTART, '--inventory', lvInvFile, '--out', out, '--no-report']);
    const dir = runDirOf(String(r.stdout), String(r.stderr));
    const manifest = JSON.parse(readFileSync(join(dir, 'manifest.json'), 'utf8')) as {
      driver: { kind: string; backend: string; servers: Record<string, { libvirt?: string | null }> };
    };
    expect(manifest.driver.kind).toBe('ssh');
    expect(manifest.driver.backend).toBe('libvirt');
    for (const s of Object.values(manifest.driver.servers)) expect(s.libvirt).toMatch(/^\d+\.\d+\.\d+$/);
    lvRecs = records(dir);
    expect(lvRecs.length).toBeGreaterThanOrEqual(4);
    for (const rec of lvRecs)
      expect(rec.guest_start, `${rec.id} guest start`).toMatchObject({ mode: 'cold', reason: 'the libvirt back end boots guests' });
    for (const rec of lvRecs) {
      expect(rec.status, `${rec.id}: ${rec.reason}`).toBe('completed');
      expect(rec.backend).toBe('libvirt');
      for (const k of [
        'total_ms',
        'setup_ms',
        'downtime_reported_ms',
        'downtime_event_ms',
        'downtime_observed_ms',
        'transferred_bytes',
        'passes',
      ] as const)
        expect(rec[k], `${rec.id}.${k} (${rec.null_reasons?.[k] ?? 'no reason given'})`).not.toBeNull();
      expect(rec.null_reasons, rec.id).toEqual({});
      expect(rec.libvirt?.completed, rec.id).not.toBeNull();
      // progress of the running job, polled through one virsh shell
      expect(rec.libvirt!.job_poll_hz!, `${rec.id} domjobinfo rate`).toBeGreaterThanOrEqual(8);
      expect(rec.clock_offset_ms, rec.id).not.toBeUndefined();
      expect(rec.healthy, rec.id).toBe(true);
      expect(rec.total_ms!, rec.id).toBeGreaterThanOrEqual((rec.transferred_bytes! * 8) / (rec.link_rate_mbit! * 1e3));
      const tol = 2 * rec.probe_interval_ms! + 2 * (rec.clock_uncertainty_ms ?? 0) + 15;
      // libvirt resumes the destination only after its Finish step (tens of ms after QEMU completed): probes sent in
      // between wait in the destination's tap and are answered at resume, so the probe may see a shorter outage by that
      const queued = Math.max(0, Date.parse(rec.t_resume!) - Date.parse(rec.t_done!));
      expect(rec.downtime_observed_ms!, rec.id).toBeLessThanOrEqual(rec.downtime_event_ms! + tol);
      expect(rec.downtime_observed_ms!, `${rec.id} (resume ${queued} ms after completion)`).toBeGreaterThanOrEqual(
        rec.downtime_event_ms! - tol - queued,
      );
    }
    const hz = lvRecs.map((x) => x.libvirt!.job_poll_hz!);
    console.log(`domjobinfo polled at ${Math.min(...hz)}..${Math.max(...hz)} Hz`);
    expect(await leftovers()).toEqual([]);
    expect(existsSync(sshStatePath('quickstart'))).toBe(false);
  }, 900_000);

  it('gives the same totals and bytes as the qemu back end on the same servers and shaped link, within noise', () => {
    expect(lvRecs.length).toBeGreaterThan(0);
    expect(sshRecs.length).toBeGreaterThan(0);
    for (const level of [...new Set(sshRecs.map((x) => x.workload))]) {
      const a = sshRecs.filter((x) => x.workload === level);
      const b = lvRecs.filter((x) => x.workload === level);
      const ta = med(a.map((x) => x.total_ms!));
      const tb = med(b.map((x) => x.total_ms!));
      const ba = med(a.map((x) => x.transferred_bytes!));
      const bb = med(b.map((x) => x.transferred_bytes!));
      const da = med(a.map((x) => x.downtime_event_ms!));
      const db = med(b.map((x) => x.downtime_event_ms!));
      console.log(
        `${level}: total qemu ${ta} ms vs libvirt ${tb} ms; transferred qemu ${(ba / 2 ** 20).toFixed(1)} vs libvirt ` +
          `${(bb / 2 ** 20).toFixed(1)} MiB; downtime (events) qemu ${da.toFixed(1)} vs libvirt ${db.toFixed(1)} ms`,
      );
      // libvirt's time_elapsed also covers starting the destination QEMU: a little longer, never shorter by much
      expect(Math.abs(tb - ta) / ta, `total time of ${level}`).toBeLessThan(0.35);
      expect(Math.abs(bb - ba) / ba, `transferred bytes of ${level}`).toBeLessThan(0.35);
    }
  });

  // four guests leave r1-h1 two at a time: concurrent migrations on one link and a queue, through each back end
  for (const backend of ['qemu', 'libvirt'] as const)
    it(`runs a 4-VM plan (capped, k=2) through the ${backend} back end`, async () => {
      const f = backend === 'qemu' ? invFile : lvInvFile;
      const r = await sshRun(['run', PLAN, '--inventory', f, '--out', out, '--no-report']);
      const dir = runDirOf(String(r.stdout), String(r.stderr));
      const recs = records(dir);
      expect(recs.length).toBe(4);
      for (const rec of recs) {
        expect(rec.status, `${rec.id}: ${rec.reason}`).toBe('completed');
        if (backend === 'libvirt') expect(rec.backend).toBe('libvirt');
      }
      const plans = readFileSync(join(dir, 'plans.jsonl'), 'utf8')
        .split('\n')
        .filter(Boolean)
        .map((l) => JSON.parse(l) as { kind: string; ok: boolean });
      expect(plans.map((p) => [p.kind, p.ok])).toEqual([['capped', true]]);
      expect(await leftovers()).toEqual([]);
    }, 900_000);

  it('records a migration whose SSH connection to the destination was cut, keeps the guest on the source and goes on', async () => {
    // the emulated server's launcher exec'd into its sshd: its sshd children are the live SSH sessions
    const master = loadState(ID)!.processes.find((p) => p.tag === 'server-r1-h2')!;
    const sessions = () =>
      execFileSync('pgrep', ['-P', String(master.pid), '-x', 'sshd'], { encoding: 'utf8' })
        .split('\n')
        .filter(Boolean)
        .map(Number);
    let cut: number[] | null = null;
    const child = execa('node', [`${ROOT}bin/migbench.js`, 'run', CUT, '--inventory', invFile, '--out', out, '--no-report'], {
      reject: false,
      cwd: ROOT,
      all: true,
    });
    child.all!.on('data', (d: Buffer) => {
      if (cut || !/migrating vm1 r1-h1 -> r1-h2/.test(String(d))) return;
      cut = sessions();
      for (const pid of cut) process.kill(pid, 'SIGKILL');
    });
    let printed = 0;
    child.stdout!.on('data', (d: Buffer) => {
      if (!printed && String(d).includes('run directory: ')) printed = Date.now();
    });
    const r = await child;
    // a failed migration's teardown leaves nothing waiting either (see sshRun)
    expect(printed, r.all).toBeGreaterThan(0);
    expect(Date.now() - printed, 'ms the process lived after printing its run directory').toBeLessThan(5000);
    expect(cut, r.all).not.toBeNull();
    expect(cut!.length).toBeGreaterThan(0);
    const recs = records(runDirOf(String(r.stdout), String(r.stderr)));
    expect(
      recs.map((x) => x.rep),
      r.all,
    ).toEqual([0, 1]);
    // the first: cancelled because nothing could be measured on the destination any more; the guest runs on the source
    expect(recs[0]).toMatchObject({ status: 'failed', source_running: true, healthy: true });
    expect(recs[0].reason).toMatch(/lost the connection to the destination r1-h2.*guest stays on the source/);
    // the second reconnects and completes
    expect(recs[1]).toMatchObject({ status: 'completed', healthy: true });
    expect(recs[1].downtime_event_ms).not.toBeNull();
    expect(r.exitCode).toBe(1); // a failed migration is a result: exit 1, not 2
    expect(existsSync(sshStatePath('mbsc'))).toBe(false);
    expect(await leftovers()).toEqual([]);
  }, 600_000);

  it('after kill -9 of the harness mid-run, testbed down leaves no guest, tap or file on any server', async () => {
    const child = execa('node', [`${ROOT}bin/migbench.js`, 'run', PLAN, '--inventory', invFile, '--out', out, '--no-report'], {
      reject: false,
      cwd: ROOT,
    });
    // wait until guests run on a server (recorded on the controller before/as they start)
    await waitFor(() => (readSshState('mbsp')?.guests.length ?? 0) >= 2, 300_000, 'two guests started through ssh');
    const st = readSshState('mbsp')!;
    child.kill('SIGKILL');
    await child;
    // the guests outlive the harness (QEMU is daemonized on the server): down has something to do
    expect(st.guests.filter((g) => existsSync(`/proc/${g.pid}`)).length).toBeGreaterThan(0);
    const down = await migbench(['testbed', 'down', 'mbsp']);
    expect(down.exitCode, String(down.stderr)).toBe(0);
    expect(String(down.stdout)).toMatch(/cleaned on 2 server/);
    expect(existsSync(sshStatePath('mbsp'))).toBe(false);
    // the emulated servers share this machine's PID space: the recorded QEMUs are gone
    for (const g of st.guests) await waitFor(() => !existsSync(`/proc/${g.pid}`), 10_000, `QEMU ${g.pid} on ${g.host} to be gone`);
    expect(await leftovers()).toEqual([]);
    expect(readdirSync(out).length).toBeGreaterThan(0);
  }, 600_000);
});
