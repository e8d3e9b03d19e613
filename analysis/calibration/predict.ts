/**
 * Predicts migrations from calibrated parameters with each model variant
 * and scores them: relative duration error for migrations that completed,
 * and a convergence verdict for every migration (a cancelled migration is
 * one that did not converge). Migrations that calibrated the parameters are
 * labelled in-sample and left out of every score.
 */
import { quantile } from '../stats/descriptive.ts';
import { mbitToMiBps, predictDuration } from '../models/duration.ts';
import { simulatePrecopy } from '../models/precopy.ts';
import { calibrationKeys, type HotColdEntryT, type ParamsT } from './params.ts';

export const MODELS = ['mvm', 'mvm-mu', 'qemu'] as const;
export type ModelName = (typeof MODELS)[number];
export const MODEL_TITLES: Record<ModelName, string> = {
  mvm: 'mVM as published (configured memory as mu)',
  'mvm-mu': 'mVM with measured memory in use',
  qemu: "QEMU's stop rule (passes, bw x downtime limit)",
};

/** One migration as prediction needs it. */
export interface PredictInput {
  key: string;
  id: string;
  workload: string;
  status: 'completed' | 'failed' | 'cancelled';
  reason?: string | null;
  total_ms: number | null;
  link_rate_mbit: number | null;
  memory_mib: number | null;
  /** Non-zero memory sent by the bulk pass, MiB (measured), null when unknown. */
  mu_mib: number | null;
  downtime_limit_ms: number | null;
  setup_ms: number | null;
}

export type Verdict = 'right' | 'wrong' | 'n/a';

export interface ModelPrediction {
  converges: boolean;
  predictedS: number | null;
  relError: number | null;
  verdict: Verdict;
  note?: string;
}

export interface PredictRow {
  key: string;
  id: string;
  workload: string;
  status: PredictInput['status'];
  observedS: number | null;
  bwMiBps: number | null;
  muMiB: number | null;
  inSample: boolean;
  models: Partial<Record<ModelName, ModelPrediction>>;
  note?: string;
}

export interface ModelScore {
  model: ModelName;
  n: number;
  median_rel_error: number | null;
  p90_rel_error: number | null;
  verdicts_right: number;
  verdicts_wrong: number;
}

export interface PredictionResult {
  rows: PredictRow[];
  scores: ModelScore[];
  /** Rows left out of the scores because they calibrated the parameters. */
  in_sample: number;
  /** Rows without parameters for their workload or without a link rate. */
  unpredicted: number;
}

function verdictOf(converges: boolean, status: PredictInput['status']): Verdict {
  if (status === 'failed') return 'n/a'; // a killed destination says nothing about convergence
  return converges === (status === 'completed') ? 'right' : 'wrong';
}

function one(converges: boolean, d: number | null, inp: PredictInput, note?: string): ModelPrediction {
  const obs = inp.status === 'completed' && inp.total_ms !== null ? inp.total_ms / 1000 : null;
  return {
    converges,
    predictedS: converges ? d : null,
    relError: converges && d !== null && obs ? Math.abs(d - obs) / obs : null,
    verdict: verdictOf(converges, inp.status),
    note,
  };
}

export function predictOne(params: ParamsT, hc: HotColdEntryT, inp: PredictInput): Partial<Record<ModelName, ModelPrediction>> {
  const bw = mbitToMiBps(inp.link_rate_mbit!, params.goodput);
  const D = (inp.downtime_limit_ms ?? 300) / 1000;
  const out: Partial<Record<ModelName, ModelPrediction>> = {};
  if (inp.memory_mib !== null) {
    const r = predictDuration(hc, { bw, mu: inp.memory_mib, D });
    out.mvm = one(r.converges, r.converges ? r.d : null, inp, r.converges ? undefined : r.reason);
  }
  const mu = inp.mu_mib ?? hc.mu_mib;
  if (mu !== null) {
    const r = predictDuration(hc, { bw, mu, D });
    out['mvm-mu'] = one(r.converges, r.converges ? r.d : null, inp, r.converges ? undefined : r.reason);
    const q = simulatePrecopy(hc, { bw, mu, D, setup: (inp.setup_ms ?? 0) / 1000, syncS: params.sync_s });
    out.qemu = one(q.converges, q.converges ? q.d : null, inp, q.converges ? undefined : q.reason);
  }
  return out;
}

export function predictAll(params: ParamsT, inputs: readonly PredictInput[]): PredictionResult {
  const byWorkload = new Map(params.hotcold.map((h) => [h.workload, h]));
  const calib = calibrationKeys(params, 'duration');
  const rows: PredictRow[] = [];
  let unpredicted = 0;
  for (const inp of inputs) {
    const hc = byWorkload.get(inp.workload);
    const base = {
      key: inp.key,
      id: inp.id,
      workload: inp.workload,
      status: inp.status,
      observedS: inp.status === 'completed' && inp.total_ms !== null ? inp.total_ms / 1000 : null,
      bwMiBps: inp.link_rate_mbit !== null ? mbitToMiBps(inp.link_rate_mbit, params.goodput) : null,
      muMiB: inp.mu_mib,
      inSample: calib.has(inp.key),
    };
    if (!hc || inp.link_rate_mbit === null) {
      unpredicted++;
      rows.push({
        ...base,
        models: {},
        note: !hc ? `no calibrated parameters for workload '${inp.workload}'` : 'no link rate in the record',
      });
      continue;
    }
    rows.push({ ...base, models: predictOne(params, hc, inp) });
  }
  const scored = rows.filter((r) => !r.inSample);
  return { rows, scores: scoreRows(scored), in_sample: rows.length - scored.length, unpredicted };
}

/** Scores per model over rows that are all held out (the caller leaves in-sample rows out). */
export function scoreRows(scored: readonly PredictRow[]): ModelScore[] {
  return MODELS.map((model): ModelScore => {
    const preds = scored.map((r) => r.models[model]).filter((p): p is ModelPrediction => p !== undefined);
    const errs = preds.map((p) => p.relError).filter((e): e is number => e !== null);
    return {
      model,
      n: errs.length,
      median_rel_error: errs.length ? quantile(errs, 0.5) : null,
      p90_rel_error: errs.length ? quantile(errs, 0.9) : null,
      verdicts_right: preds.filter((p) => p.verdict === 'right').length,
      verdicts_wrong: preds.filter((p) => p.verdict === 'wrong').length,
    };
  });
}

export interface EnergyInput {
  key: string;
  id: string;
  transferred_bytes: number | null;
  energy_j: number | null;
  energy_coverage: number | null;
}

export interface EnergyCheck {
  /** Held-out migrations with an energy figure (coverage >= the calibration threshold). */
  n: number;
  median_rel_error: number | null;
  p90_rel_error: number | null;
  in_sample: number;
}

/** E = alpha * MB + beta checked on migrations that did not calibrate it. */
export function checkEnergy(params: ParamsT, inputs: readonly EnergyInput[], minCoverage = 0.8): EnergyCheck | null {
  const fit = params.energy[0];
  if (!fit) return null;
  const calib = calibrationKeys(params, 'energy');
  const usable = inputs.filter((m) => m.energy_j !== null && m.transferred_bytes !== null && (m.energy_coverage ?? 1) >= minCoverage);
  const held = usable.filter((m) => !calib.has(m.key));
  const errs = held
    .filter((m) => Math.abs(m.energy_j!) > 0)
    .map((m) => Math.abs(fit.alpha * (m.transferred_bytes! / 1e6) + fit.beta - m.energy_j!) / Math.abs(m.energy_j!));
  return {
    n: errs.length,
    median_rel_error: errs.length ? quantile(errs, 0.5) : null,
    p90_rel_error: errs.length ? quantile(errs, 0.9) : null,
    in_sample: usable.length - held.length,
  };
}
