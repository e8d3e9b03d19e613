/**
 * Calibration apart from validation inside one run directory, for `analyze`
 * and the report. Per workload:
 * - with a D(t) trace, hot/cold comes from the trace alone, so every
 *   migration of that workload validates;
 * - without one, leave one link rate out: the durations at the other rates
 *   calibrate, the held-out rate is predicted; a rate with no other rate to
 *   fit from (or too few completed migrations there) is "not predicted".
 * No migration is ever scored by parameters its own duration helped fit.
 * The three model variants and the verdicts are those of `migbench predict`
 * (calibration/predict.ts).
 */
import { fitParams, type CalibrationMigration, type CalibrationRun, type FitOptions } from './calibration/fit.ts';
import type { HotColdEntryT, ParamsT } from './calibration/params.ts';
import { predictAll, scoreRows, type ModelScore, type PredictRow } from './calibration/predict.ts';
import { numericOrder } from './order.ts';

export type FoldMethod = 'trace' | 'leave-rate-out';

/** One calibration: what it was fitted on and what it predicted. */
export interface Fold {
  id: string;
  workload: string;
  method: FoldMethod;
  /** Link rate predicted (leave-rate-out), null for a trace fold (all rates). */
  heldOutRateMbit: number | null;
  /** Link rates whose durations calibrated it (empty for a trace fold). */
  calibrationRatesMbit: number[];
  /** Migrations whose durations calibrated it (empty for a trace fold: the trace did). */
  calibratedBy: string[];
  /** Parameters fitted; null when nothing could be fitted. */
  params: HotColdEntryT | null;
  /** Migrations predicted by it (all held out). */
  validated: string[];
  note?: string;
}

export interface ValidationRow extends PredictRow {
  linkRateMbit: number | null;
  /** total_ms in s whatever the status (a cancelled migration: time until it was cancelled). */
  elapsedS: number | null;
  /** Downtime limit of the migration, s (0.3 when the record has none, as the models assume). */
  downtimeLimitS: number;
  /** 'validated': predicted by parameters it did not calibrate; 'not predicted': no such parameters. */
  role: 'validated' | 'not predicted';
  /** Fold that predicted it (or tried to). */
  fold: string | null;
  /** Folds whose calibration used this migration's duration. */
  calibrates: string[];
}

export interface ValidationResult {
  folds: Fold[];
  /** Every non-partial migration, cancelled and failed ones included. */
  rows: ValidationRow[];
  /** Per model, over validated migrations only. */
  scores: ModelScore[];
  validated: number;
  notPredicted: number;
  /**
   * Parameters fitted on the whole run (trace, else all durations), for
   * drawing the model curves only: never used to score.
   */
  display: ParamsT;
}

const byNum = (a: number, b: number) => a - b;

function notPredicted(m: CalibrationMigration, fold: string | null, note: string): ValidationRow {
  return {
    key: m.key,
    id: m.id,
    workload: m.workload,
    status: m.status,
    observedS: m.status === 'completed' && m.total_ms !== null ? m.total_ms / 1000 : null,
    bwMiBps: null,
    muMiB: m.mu_mib,
    inSample: false,
    models: {},
    note,
    linkRateMbit: m.link_rate_mbit,
    elapsedS: m.total_ms !== null ? m.total_ms / 1000 : null,
    downtimeLimitS: (m.downtime_limit_ms ?? 300) / 1000,
    role: 'not predicted',
    fold,
    calibrates: [],
  };
}

export function validateRun(cr: CalibrationRun, o: FitOptions = {}): ValidationResult {
  const migs = cr.migrations.filter((m) => !m.partial);
  const workloads = [...new Set([...migs.map((m) => m.workload), ...cr.curves.keys()])].sort((a, b) => numericOrder(a, b));
  const folds: Fold[] = [];
  const rows = new Map<string, ValidationRow>();
  const calibrates = new Map<string, string[]>();
  const predicted = (fold: Fold, params: ParamsT, held: CalibrationMigration[]) => {
    const res = predictAll(params, held);
    const byKey = new Map(held.map((m) => [m.key, m]));
    for (const r of res.rows) {
      // the held-out migrations never calibrated this fold; a bug here must not pass as validation
      if (r.inSample) throw new Error(`validation: ${r.id} is in-sample in fold ${fold.id}`);
      const m = byKey.get(r.key)!;
      const ok = Object.keys(r.models).length > 0;
      rows.set(r.key, {
        ...r,
        linkRateMbit: m.link_rate_mbit,
        elapsedS: m.total_ms !== null ? m.total_ms / 1000 : null,
        downtimeLimitS: (m.downtime_limit_ms ?? 300) / 1000,
        role: ok ? 'validated' : 'not predicted',
        fold: fold.id,
        calibrates: [],
        note: r.note ?? (ok ? undefined : 'no memory size for the models'),
      });
      if (ok) fold.validated.push(r.id);
    }
  };
  for (const w of workloads) {
    const mine = migs.filter((m) => m.workload === w);
    const curve = cr.curves.get(w);
    if (curve?.length) {
      // the trace alone calibrates (no migration is given to the fit); memory in use is measured per migration
      const { params } = fitParams([{ ...cr, migrations: [], curves: new Map([[w, curve]]) }], o);
      const hc = params.hotcold.find((h) => h.workload === w && h.method === 'curve');
      if (hc) {
        const mus = mine.filter((m) => m.status === 'completed' && m.mu_mib !== null).map((m) => m.mu_mib!);
        const entry = { ...hc, mu_mib: mus.length ? mus.sort(byNum)[Math.floor((mus.length - 1) / 2)] : null };
        const fold: Fold = {
          id: `${w} | D(t) trace`,
          workload: w,
          method: 'trace',
          heldOutRateMbit: null,
          calibrationRatesMbit: [],
          calibratedBy: [],
          params: entry,
          validated: [],
        };
        folds.push(fold);
        predicted(fold, { ...params, hotcold: [entry], sources: [] }, mine);
        continue;
      }
    }
    const rates = [...new Set(mine.map((m) => m.link_rate_mbit).filter((r): r is number => r !== null))].sort(byNum);
    for (const m of mine) if (m.link_rate_mbit === null) rows.set(m.key, notPredicted(m, null, 'no link rate in the record'));
    for (const rate of rates) {
      const held = mine.filter((m) => m.link_rate_mbit === rate);
      const train = mine.filter((m) => m.link_rate_mbit !== null && m.link_rate_mbit !== rate);
      const others = [...new Set(train.map((m) => m.link_rate_mbit!))].sort(byNum);
      const fold: Fold = {
        id: `${w} | ${rate} Mbit/s held out`,
        workload: w,
        method: 'leave-rate-out',
        heldOutRateMbit: rate,
        calibrationRatesMbit: others,
        calibratedBy: [],
        params: null,
        validated: [],
      };
      folds.push(fold);
      if (others.length === 0) {
        fold.note = 'no other link rate to calibrate from (and no D(t) trace)';
        for (const m of held) rows.set(m.key, notPredicted(m, fold.id, `not predicted: ${fold.note}`));
        continue;
      }
      // only the fold's hot/cold parameters are used: no energy model (its bootstrap) for each fold
      const { params } = fitParams([{ ...cr, migrations: train, curves: new Map() }], { ...o, energy: false });
      const hc = params.hotcold.find((h) => h.workload === w);
      if (!hc) {
        fold.note = `durations at ${others.join(', ')} Mbit/s do not calibrate (needs >= 3 completed migrations at >= 2 rates)`;
        for (const m of held) rows.set(m.key, notPredicted(m, fold.id, `not predicted: ${fold.note}`));
        continue;
      }
      fold.params = hc;
      fold.calibratedBy = params.sources.flatMap((s) => s.duration_migrations);
      const used = new Set(fold.calibratedBy);
      fold.calibrationRatesMbit = [...new Set(train.filter((m) => used.has(m.id)).map((m) => m.link_rate_mbit!))].sort(byNum);
      const trainKey = new Map(train.map((m) => [m.id, m.key]));
      for (const id of fold.calibratedBy) {
        const key = trainKey.get(id)!;
        calibrates.set(key, [...(calibrates.get(key) ?? []), fold.id]);
      }
      predicted(fold, params, held);
    }
  }
  const ordered = migs.map((m) => rows.get(m.key)).filter((r): r is ValidationRow => r !== undefined);
  for (const r of ordered) r.calibrates = calibrates.get(r.key) ?? [];
  const validatedRows = ordered.filter((r) => r.role === 'validated');
  return {
    folds,
    rows: ordered,
    scores: scoreRows(validatedRows),
    validated: validatedRows.length,
    notPredicted: ordered.length - validatedRows.length,
    display: fitParams([cr], o).params,
  };
}
