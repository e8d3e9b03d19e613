/**
 * Reads run directories into what calibration and prediction need: the
 * migrations, each one's measured memory in use (from its progress
 * samples), and the D(t) curves per workload.
 */
import { resolve } from 'node:path';
import type { CurvePoint } from '../models/hotcold.ts';
import { loadRunDir, streamSamples, type Migration, type RunDir } from '../rundir.ts';
import type { CalibrationMigration, CalibrationRun } from './fit.ts';
import { memoryInUse, type ProgressPoint } from './memory.ts';
import { migrationKey } from './params.ts';

const numOrNull = (v: unknown): number | null => (typeof v === 'number' && Number.isFinite(v) ? v : null);

export async function readCalibrationRun(dirArg: string): Promise<CalibrationRun> {
  return calibrationRunOf(loadRunDir(resolve(dirArg)));
}

/** The same from a run directory already loaded (analyze reads it once). */
export async function calibrationRunOf(run: RunDir): Promise<CalibrationRun> {
  const dir = run.dir;
  const progress = new Map<string, ProgressPoint[]>();
  const curves = new Map<string, CurvePoint[]>();
  await streamSamples(
    run,
    (s) => {
      if (s.measurement === 'dirty_trace') {
        const w = s.tags.workload ?? '';
        const t = Number(s.fields.window_s);
        const d = Number(s.fields.dirtied_mib);
        if (!Number.isFinite(t) || !Number.isFinite(d)) return;
        let arr = curves.get(w);
        if (!arr) curves.set(w, (arr = []));
        arr.push({ t, d });
        return;
      }
      // a redone unit's samples carry a higher attempt; the record is the last attempt's
      const id = s.tags.migration;
      if (!id) return;
      let arr = progress.get(`${id}@${s.tags.attempt ?? '1'}`);
      if (!arr) progress.set(`${id}@${s.tags.attempt ?? '1'}`, (arr = []));
      arr.push({
        tMs: Date.parse(s.t),
        transferred: numOrNull(s.fields.transferred),
        remaining: numOrNull(s.fields.remaining),
        dirtySyncCount: numOrNull(s.fields.dirty_sync_count),
        total: numOrNull(s.fields.total),
        zeroPages: numOrNull(s.fields.zero_pages),
        pageSize: numOrNull(s.fields.page_size),
      });
    },
    ['dirty_trace', 'migration_progress'],
  );
  const migrations = run.migrations.map((m: Migration): CalibrationMigration => {
    const pts = progress.get(`${m.id}@${m.attempt ?? 1}`) ?? [];
    const mu =
      m.status === 'completed' || m.status === 'cancelled'
        ? memoryInUse(pts, m.status === 'completed' ? { transferred: m.transferred_bytes, passes: m.passes } : null)
        : null;
    return {
      key: migrationKey(dir, m.id),
      id: m.id,
      workload: m.workload,
      status: m.status,
      reason: m.reason ?? null,
      total_ms: m.total_ms,
      link_rate_mbit: m.link_rate_mbit,
      memory_mib: m.memory_mib,
      mu_mib: mu ? mu.bytes / 2 ** 20 : null,
      downtime_limit_ms: m.downtime_limit_ms,
      setup_ms: m.setup_ms,
      transferred_bytes: m.transferred_bytes,
      energy_j: m.energy_j,
      energy_coverage: m.energy_coverage ?? null,
      partial: m.partial === true,
      plan_span_ms: typeof m.plan?.start_ms === 'number' && typeof m.plan?.end_ms === 'number' ? m.plan.end_ms - m.plan.start_ms : null,
    };
  });
  return { runDir: dir, name: run.manifest.name, specHash: run.manifest.spec_hash ?? null, migrations, curves };
}
