import { afterAll, describe, expect, it } from 'vitest';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { analyzeRun } from '../analyze.ts';
import { analysisJson } from '../json.ts';
import { loadRunDir } from '../rundir.ts';
import { generateSyntheticRun } from '../../test/fixtures/synthetic-run.ts';
import { figure4, figure4Data, twoFactorHeatmaps } from './plots.ts';
import { allTables } from './tables.ts';

const root = mkdtempSync(join(tmpdir(), 'migbench-views-'));
afterAll(() => rmSync(root, { recursive: true, force: true }));

describe('analyze on a multi-rate, multi-factor synthetic campaign without a trace', () => {
  it('validates by leaving rates out, reports every migration, the JSON keys, Figure 4 and the heat maps', async () => {
    const dir = generateSyntheticRun(join(root, 's'), {
      seed: 5,
      reps: 3,
      wsetsMiB: [16, 64],
      ratesMbit: [40, 100, 200, 400],
      failRate: 0.05,
      noTrace: true,
      progress: true,
    });
    const rd = loadRunDir(dir);
    const a = await analyzeRun(rd);
    expect(a.validation.rows).toHaveLength(rd.migrations.length); // failed ones included
    expect(a.validation.folds.every((f) => f.method === 'leave-rate-out')).toBe(true);
    for (const r of a.validation.rows) if (r.fold) expect(r.calibrates).not.toContain(r.fold);
    const j = analysisJson(rd, a) as { duration: { models: Record<string, Record<string, unknown>>; migrations: unknown[] } };
    for (const model of ['mvm', 'mvm-mu', 'qemu'])
      expect(Object.keys(j.duration.models[model]).sort()).toEqual([
        'median_rel_error',
        'n',
        'p90_rel_error',
        'verdicts_right',
        'verdicts_wrong',
      ]);
    // the generator's durations are mVM's model with mu = the VM size, 3 % noise: held-out mVM error stays small
    expect(j.duration.models['mvm-mu'].median_rel_error as number).toBeLessThan(0.1);
    expect(JSON.parse(JSON.stringify(j))).toEqual(j);
    expect(a.twoFactor.map((v) => `${v.a} x ${v.b}`)).toEqual([
      'vms[0].workload.wset x testbed.shaping[0].rate',
      'vms[0].workload.wset x testbed.shaping[0].rate',
    ]);
    const f4 = figure4Data(a);
    // 40 Mbit/s with a 64 MiB working set: the generator's model never converges there, so the curves have a gap
    expect(f4.regions.some((r) => r.workload === 'dirty wset=64M' && (r.x0 as number) <= 40)).toBe(true);
    expect(f4.spread.length).toBe(7); // 8 treatments, one with no completed migration
    expect(figure4(a)).not.toBeNull();
    expect(twoFactorHeatmaps(a)).not.toBeNull();
    const titles = allTables(rd, a).map((t) => t.title);
    expect(titles).toEqual(
      expect.arrayContaining(['Duration models on validated migrations', 'Calibration and validation', 'Flagged migrations']),
    );
  });
});
