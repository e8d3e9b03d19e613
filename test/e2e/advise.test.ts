import { afterAll, describe, expect, it } from 'vitest';
import { appendFileSync } from 'node:fs';
import { join } from 'node:path';
import { advise } from '../../analysis/calibration/advise.ts';
import { adviseInputFromSpec } from '../../analysis/calibration/advise-spec.ts';
import { ADVISE_DEFAULTS } from '../../analysis/calibration/advise-table.ts';
import { fitToFile } from '../../analysis/calibration/commands.ts';
import { loadRunDir } from '../../analysis/rundir.ts';
import { runExperiment } from '../../harness/experiment/runner.ts';
import { loadSpec } from '../../harness/spec/load.ts';
import { down } from '../../harness/testbed/local.ts';
import { ROOT } from '../support/cli.ts';
import { testScratchDir } from '../support/scratch.ts';

/**
 * The plan advisor against measured plans. Calibration, in its own run
 * (advise-trace.yaml): the workload's D(t) trace gives its hot/cold
 * parameters, one migration its memory in use and the harness time around
 * a migration. Prediction: sequential, parallel and per-server k=1 plans of
 * three guests across a shared interlink (advise-plans.yaml), measured in
 * another run. ~4-5 min.
 *
 * Tolerances from three runs of this test on a 2-core machine (2026-11-30):
 * completion errors -6.3..+1.5 %, mean migration time -4.5..+10.4 % (parallel's,
 * over-predicted by ~10 % in the two trace-calibrated runs); the same
 * plan measured in different runs differed by up to 8 % (parallel's mean
 * migration time, 23.6 vs 25.6 s). About twice those: TOL_* for the errors,
 * and the advisor must order two plans as measured whenever they differ by
 * more than NOISE.
 */
const TOL_COMPLETION = 0.12;
const TOL_MEAN = 0.2;
const NOISE = 0.15;

afterAll(async () => {
  await down('h4trc');
  await down('h4pln');
});

const log = (l: string) => process.stderr.write(`${l}\n`);

describe('plan advisor vs measured plans', () => {
  it('predicts completion and mean migration time of each plan and ranks them as measured', async () => {
    const tmp = testScratchDir('mb-e2e-advise-');
    const cal = await runExperiment({ specFile: `${ROOT}test/e2e/specs/advise-trace.yaml`, outDir: join(tmp, 'runs'), log });
    const { params } = await fitToFile([cal.dir], join(tmp, 'params.json'));
    expect(params.hotcold).toMatchObject([{ method: 'curve' }]);
    expect(params.hotcold[0].mu_mib).not.toBeNull();
    expect(params.action_overhead_s).not.toBeNull();

    const planSpec = `${ROOT}test/e2e/specs/advise-plans.yaml`;
    const res = await runExperiment({ specFile: planSpec, outDir: join(tmp, 'runs'), log });
    const run = loadRunDir(res.dir);
    expect(run.migrations.every((m) => m.status === 'completed')).toBe(true);

    const { spec } = loadSpec(planSpec);
    const { input } = adviseInputFromSpec(spec, params, { ...ADVISE_DEFAULTS, file: planSpec });
    const advice = advise(input, spec.migration!.plan);

    const label = (kind: string, k: number | null) => (k === null ? kind : `${kind} k=${k}`);
    const measured = run.plans.map((p) => {
      const ms = run.migrations.filter((m) => m.treatment === p.treatment).map((m) => m.total_ms! / 1000);
      return { label: label(p.kind, p.k), completionS: p.completion_ms! / 1000, meanS: ms.reduce((a, b) => a + b, 0) / ms.length };
    });
    expect(measured.map((m) => m.label).sort()).toEqual(['parallel', 'per_server k=1', 'sequential']);
    const rows = measured.map((m) => {
      const p = advice.plans.find((x) => x.label === m.label)!;
      return {
        ...m,
        predCompletionS: p.completionS,
        predMeanS: p.meanMigrationS,
        completionErr: (p.completionS - m.completionS) / m.completionS,
        meanErr: (p.meanMigrationS - m.meanS) / m.meanS,
      };
    });
    log(`advisor vs measured (${res.dir}):\n${JSON.stringify(rows, null, 1)}\n${advice.why}`);
    // MB_ADVISE_LOG collects the errors of repeated runs (how TOL and NOISE were set)
    if (process.env.MB_ADVISE_LOG) appendFileSync(process.env.MB_ADVISE_LOG, `${JSON.stringify({ run: res.dir, calib: cal.dir, rows })}\n`);

    for (const r of rows) {
      expect(Math.abs(r.completionErr), `${r.label} completion`).toBeLessThanOrEqual(TOL_COMPLETION);
      expect(Math.abs(r.meanErr), `${r.label} mean migration time`).toBeLessThanOrEqual(TOL_MEAN);
    }
    // ranking: every pair the measurement separates beyond noise is ordered the same way by the advisor
    let compared = 0;
    for (const key of ['completion', 'mean'] as const) {
      const m = (r: (typeof rows)[number]) => (key === 'completion' ? r.completionS : r.meanS);
      const p = (r: (typeof rows)[number]) => (key === 'completion' ? r.predCompletionS : r.predMeanS);
      for (const a of rows)
        for (const b of rows) {
          if (m(a) <= m(b) * (1 + NOISE)) continue;
          compared++;
          expect(p(a), `${key}: ${a.label} (${m(a).toFixed(1)} s) measured longer than ${b.label} (${m(b).toFixed(1)} s)`).toBeGreaterThan(
            p(b),
          );
        }
    }
    // sequential vs the concurrent plans on completion, and parallel vs the others on migration time, at least
    expect(compared).toBeGreaterThanOrEqual(3);
  });
});
