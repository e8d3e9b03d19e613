/**
 * `migbench analyze <runDir> --json`: the analysis as one JSON object (keys
 * documented in README.md, "analyze --json"). Plain data only: no Maps, no
 * samples, numbers in the units of their key names.
 */
import type { AnalysisResult } from './analyze.ts';
import { problemText, type RunDir } from './rundir.ts';

export function analysisJson(run: RunDir, a: AnalysisResult): Record<string, unknown> {
  const v = a.validation;
  const models = Object.fromEntries(
    v.scores.map((s) => [
      s.model,
      {
        n: s.n,
        median_rel_error: s.median_rel_error,
        p90_rel_error: s.p90_rel_error,
        verdicts_right: s.verdicts_right,
        verdicts_wrong: s.verdicts_wrong,
      },
    ]),
  );
  const pooled = a.energy.pooled.fits[0] ?? null;
  return {
    run: {
      dir: run.dir,
      name: run.manifest.name,
      schema_version: run.schemaVersion,
      factors: run.manifest.factors,
      treatments: run.manifest.treatments.length,
    },
    counts: a.counts,
    problems: run.problems.map((p) => ({ kind: p.kind, text: problemText(run, p) })),
    duration: {
      validated: v.validated,
      not_predicted: v.notPredicted,
      models,
      calibrations: v.folds.map((f) => ({
        id: f.id,
        workload: f.workload,
        method: f.method,
        held_out_rate_mbit: f.heldOutRateMbit,
        calibration_rates_mbit: f.calibrationRatesMbit,
        calibrated_by: f.calibratedBy,
        validated: f.validated,
        params: f.params,
        note: f.note ?? null,
      })),
      migrations: v.rows.map((r) => ({
        id: r.id,
        workload: r.workload,
        status: r.status,
        link_rate_mbit: r.linkRateMbit,
        mu_mib: r.muMiB,
        observed_s: r.observedS,
        role: r.role,
        calibration: r.fold,
        calibrates: r.calibrates,
        models: Object.fromEntries(
          Object.entries(r.models).map(([k, p]) => [
            k,
            { converges: p.converges, predicted_s: p.predictedS, rel_error: p.relError, verdict: p.verdict, note: p.note ?? null },
          ]),
        ),
        note: r.note ?? null,
      })),
      display_params: v.display.hotcold,
    },
    energy: {
      pooled: pooled && {
        alpha: pooled.alpha,
        beta: pooled.beta,
        alpha_ci: pooled.alphaCi,
        beta_ci: pooled.betaCi,
        r2: pooled.r2,
        n: pooled.n,
      },
      note: a.energy.pooled.note ?? null,
      low_coverage: a.energy.lowCoverage,
    },
    flags: {
      flagged: a.flags.flagged,
      recorded: a.flags.recorded,
      computed_at_analysis: a.flags.computed,
      migrations: a.flags.rows,
    },
    variability: a.variability.map((t) => ({
      metric: t.metric,
      n: t.n,
      overall_mean: t.overallMean,
      treatment_means_ratio: t.treatmentMeansRatio,
      all_ratio: t.allRatio,
      max_within_sd: t.maxWithinSd,
      overall_sd: t.overallSd,
    })),
    two_factor: a.twoFactor,
    plans: a.plans.plans,
  };
}
