import { afterAll, describe, expect, it } from 'vitest';
import { existsSync, readdirSync, readFileSync } from 'node:fs';
import { join } from 'node:path';
import { runExperiment } from '../../harness/experiment/runner.ts';
import type { MigrationRecord } from '../../harness/migration/migrate.ts';
import { readJsonl } from '../../harness/store/jsonl.ts';
import { down } from '../../harness/testbed/local.ts';
import { netnsList, ROOT, waitFor } from '../support/cli.ts';
import { cmdlineOf, qemuPidsMentioning } from '../support/procs.ts';
import { fileScratchDir } from '../support/scratch.ts';

/**
 * Real guests, real shaped links, real migrations. Assertions compare the
 * independent measurements with each other and with physical bounds.
 */
const out = fileScratchDir('mb-e2e-runs-');
const log = (l: string) => process.stderr.write(`${l}\n`);

async function leftovers(dir: string) {
  return {
    qemu: qemuPidsMentioning(dir),
    ns: (await netnsList()).filter((n) => n.startsWith('mb-mbe2e-')),
  };
}

afterAll(async () => {
  await down('mbe2e');
});

describe('measured live migration', () => {
  it('migrates a memory-writing guest over a shaped link and measures it consistently', async () => {
    const res = await runExperiment({ specFile: `${ROOT}test/e2e/specs/migrate-basic.yaml`, outDir: out, log });
    const lines = readJsonl<MigrationRecord>(join(res.dir, 'migrations.jsonl'));
    expect(lines).toHaveLength(2); // every migration has a line
    const wsetBytes = 24 * 2 ** 20;
    const rateBps = 50e6;
    for (const r of lines) {
      expect(r.status, r.reason ?? '').toBe('completed');
      expect(r.healthy).toBe(true);
      expect(r.transferred_bytes!).toBeGreaterThanOrEqual(wsetBytes);
      // physical bound: the bytes cannot cross the link faster than its rate
      expect(r.total_ms!).toBeGreaterThanOrEqual(((r.transferred_bytes! * 8) / rateBps) * 1000);
      expect(r.downtime_event_ms!).toBeGreaterThanOrEqual(r.downtime_reported_ms!);
      const tol = Math.max(3 * r.probe_interval_ms!, 0.25 * r.downtime_event_ms!);
      expect(Math.abs(r.downtime_observed_ms! - r.downtime_event_ms!)).toBeLessThanOrEqual(tol);
      expect(r.preop_ms!).toBeGreaterThan(0);
      expect(r.preop_ms!).toBeLessThanOrEqual(r.total_ms_harness!);
      expect(r.postop_ms!).toBeGreaterThanOrEqual(0);
      expect(r.passes!).toBeGreaterThanOrEqual(1);
    }
    expect(lines.map((r) => [r.src, r.dst])).toEqual([
      ['r1-h1', 'r1-h2'],
      ['r1-h2', 'r1-h1'],
    ]);
    const manifest = JSON.parse(readFileSync(join(res.dir, 'manifest.json'), 'utf8'));
    expect(['kvm', 'tcg']).toContain(manifest.accelerator);
    expect(manifest.ended_at).not.toBeNull();
    const progress = readJsonl<{ fields: { transferred: number } }>(join(res.dir, 'samples', 'migration_progress.jsonl'));
    // >= 10 Hz sampling over the migrations
    const totalS = lines.reduce((s, r) => s + r.total_ms_harness!, 0) / 1000;
    expect(progress.length).toBeGreaterThanOrEqual(totalS * 8);
    expect(existsSync(join(res.dir, 'samples', 'probe.jsonl'))).toBe(true);
    expect(await leftovers(res.dir)).toEqual({ qemu: [], ns: [] });
  });

  it('records a destination killed mid-migration as failed, keeps the source, and goes on', async () => {
    let killed: number | null = null;
    const running = runExperiment({ specFile: `${ROOT}test/e2e/specs/migrate-basic.yaml`, outDir: out, log });
    // find the first destination QEMU (-incoming) and kill it once data flows
    const runDirOf = () => {
      const lines = readdirRuns();
      return lines[lines.length - 1];
    };
    await waitFor(
      () => {
        const dir = runDirOf();
        if (!dir) return false;
        // a restored source guest started with -incoming too: its kernel parameters carry mb.wait=1
        const dst = qemuPidsMentioning(dir).find(
          (p) => cmdlineOf(p).includes('-incoming') && !cmdlineOf(p).some((w) => w.includes('mb.wait=1')),
        );
        if (!dst) return false;
        const prog = join(dir, 'samples', 'migration_progress.jsonl');
        if (!existsSync(prog)) return false;
        const ps = readJsonl<{ fields: { transferred: number | null } }>(prog);
        if (!ps.some((p) => (p.fields.transferred ?? 0) > 8 * 2 ** 20)) return false;
        process.kill(dst, 'SIGKILL');
        killed = dst;
        return true;
      },
      300_000,
      'a destination QEMU in the middle of a migration',
    );
    const res = await running;
    expect(killed).not.toBeNull();
    const lines = readJsonl<MigrationRecord>(join(res.dir, 'migrations.jsonl'));
    expect(lines).toHaveLength(2);
    expect(lines[0].status).toBe('failed');
    expect(lines[0].reason).toMatch(/destination QEMU exited|failed/);
    expect(lines[0].source_running).toBe(true);
    expect(lines[0].health.answers).toBe(true); // the source guest still answers the probe
    expect(lines[0].transferred_bytes!).toBeGreaterThan(8 * 2 ** 20); // statistics so far are kept
    // the next migration of the run was still executed, from the same source
    expect(lines[1].src).toBe('r1-h1');
    expect(lines[1].status).toBe('completed');
    expect(await leftovers(res.dir)).toEqual({ qemu: [], ns: [] });
  });

  it('cancels a migration that cannot converge at max_time instead of hanging', async () => {
    const t0 = Date.now();
    const res = await runExperiment({ specFile: `${ROOT}test/e2e/specs/migrate-noconverge.yaml`, outDir: out, log });
    const [r] = readJsonl<MigrationRecord>(join(res.dir, 'migrations.jsonl'));
    expect(r.status).toBe('cancelled');
    expect(r.reason).toMatch(/max_time 20s/);
    expect(r.total_ms_harness!).toBeGreaterThanOrEqual(20_000);
    expect(r.source_running).toBe(true);
    expect(r.transferred_bytes!).toBeGreaterThan(0);
    // what was sent before the cancel fits through the 20 Mbit/s link in that time
    expect((r.transferred_bytes! * 8) / 20e6).toBeLessThanOrEqual((r.total_ms_harness! / 1000) * 1.02);
    // bounded: boot + max_time + cancel, nowhere near a hang
    expect(Date.now() - t0).toBeLessThan(240_000);
    expect(await leftovers(res.dir)).toEqual({ qemu: [], ns: [] });
  });
});

function readdirRuns(): string[] {
  return readdirSync(out)
    .filter((d) => d.includes('e2e-mig'))
    .sort()
    .map((d) => join(out, d));
}
