import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { existsSync, mkdtempSync, readFileSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { parse, stringify } from 'yaml';
import { sshStatePath } from '../../harness/driver/ssh/session.ts';
import { loadInventory, type Inventory } from '../../harness/inventory/load.ts';
import type { MigrationRecord } from '../../harness/store/schema/index.ts';
import { migbench, ROOT } from '../support/cli.ts';
import { readRecords, runDirOf, serverLeftovers } from '../support/ssh-cluster.ts';

/**
 * The ssh driver's libvirt back end end to end on the emulated cluster (`testbed up --servers`:
 * every server runs its own libvirtd): the quickstart spec via `run --inventory` with every host
 * `hypervisor: libvirt`, compared with the qemu back end on the same servers and shaped link, and
 * the 4-VM plan. One testbed for the file.
 */
const CLUSTER = `${ROOT}test/e2e/specs/ssh-libvirt-cluster.yaml`;
const QUICKSTART = `${ROOT}experiments/quickstart.yaml`;
const PLAN = `${ROOT}test/e2e/specs/ssh-plan.yaml`;
const ID = 'lvsc';
const out = mkdtempSync(join(tmpdir(), 'mb-ssh-libvirt-'));
let invFile: string;
let qemuInv: string;
let inv: Inventory;

type LibvirtRecord = MigrationRecord & {
  backend?: string;
  libvirt?: { job_poll_hz: number | null; completed: Record<string, unknown> | null };
  null_reasons?: Record<string, string>;
};

const records = (runDir: string) => readRecords<LibvirtRecord>(runDir);
const leftovers = () => serverLeftovers(inv, { domains: true });

beforeAll(async () => {
  await migbench(['testbed', 'down', ID]);
  const t0 = Date.now();
  const up = await migbench(['testbed', 'up', CLUSTER, '--servers']);
  expect(up.exitCode, String(up.stderr) + String(up.stdout)).toBe(0);
  console.log(`emulated cluster (2 servers with libvirtd) up in ${((Date.now() - t0) / 1000).toFixed(1)} s`);
  const printed = await migbench(['testbed', 'inventory', ID]);
  expect(printed.exitCode, String(printed.stderr)).toBe(0);
  invFile = join(out, 'inventory.yaml');
  writeFileSync(invFile, String(printed.stdout));
  inv = loadInventory(invFile);
  expect(inv.hosts.map((h) => h.hypervisor)).toEqual(['libvirt', 'libvirt']);
  const doc = parse(String(printed.stdout)) as { hosts: Record<string, unknown>[] };
  for (const h of doc.hosts) h.hypervisor = 'qemu';
  qemuInv = join(out, 'inventory-qemu.yaml');
  writeFileSync(qemuInv, stringify(doc));
}, 300_000);

afterAll(async () => {
  for (const id of ['quickstart', 'mbsp']) if (existsSync(sshStatePath(id))) await migbench(['testbed', 'down', id, '--force']);
  await migbench(['testbed', 'down', ID]);
}, 300_000);

describe('ssh driver, libvirt back end, on an emulated cluster', () => {
  let lvRecs: LibvirtRecord[] = [];
  it('runs the quickstart spec via --inventory through libvirt: every migration completes with every field, within physics', async () => {
    const r = await migbench(['run', QUICKSTART, '--inventory', invFile, '--out', out, '--no-report']);
    expect(r.exitCode, String(r.stderr).slice(-3000)).toBe(0);
    const dir = runDirOf(String(r.stdout), String(r.stderr));
    const manifest = JSON.parse(readFileSync(join(dir, 'manifest.json'), 'utf8')) as {
      driver: { kind: string; backend: string; servers: Record<string, { libvirt?: string | null }> };
    };
    expect(manifest.driver.kind).toBe('ssh');
    expect(manifest.driver.backend).toBe('libvirt');
    for (const s of Object.values(manifest.driver.servers)) expect(s.libvirt).toMatch(/^\d+\.\d+\.\d+$/);
    lvRecs = records(dir);
    expect(lvRecs.length).toBeGreaterThanOrEqual(4);
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

  it('gives the same totals and bytes as the qemu back end on the same servers and shaped link, within noise', async () => {
    expect(lvRecs.length).toBeGreaterThan(0);
    const r = await migbench(['run', QUICKSTART, '--inventory', qemuInv, '--out', out, '--no-report']);
    expect(r.exitCode, String(r.stderr).slice(-3000)).toBe(0);
    const qemu = records(runDirOf(String(r.stdout), String(r.stderr)));
    const med = (xs: number[]) => [...xs].sort((a, b) => a - b)[Math.floor(xs.length / 2)];
    for (const level of [...new Set(qemu.map((x) => x.workload))]) {
      const a = qemu.filter((x) => x.workload === level);
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
  }, 900_000);

  it('runs a 4-VM plan (parallel, capped k=2) through libvirt', async () => {
    const r = await migbench(['run', PLAN, '--inventory', invFile, '--out', out, '--no-report']);
    expect(r.exitCode, String(r.stderr).slice(-3000)).toBe(0);
    const dir = runDirOf(String(r.stdout), String(r.stderr));
    const recs = records(dir);
    expect(recs.length).toBe(8);
    for (const rec of recs) {
      expect(rec.status, `${rec.id}: ${rec.reason}`).toBe('completed');
      expect(rec.backend).toBe('libvirt');
    }
    const plans = readFileSync(join(dir, 'plans.jsonl'), 'utf8')
      .split('\n')
      .filter(Boolean)
      .map((l) => JSON.parse(l) as { kind: string; ok: boolean });
    expect(plans.map((p) => [p.kind, p.ok])).toEqual([
      ['parallel', true],
      ['capped', true],
    ]);
    expect(await leftovers()).toEqual([]);
  }, 900_000);
});
