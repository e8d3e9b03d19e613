/**
 * `migbench fit <runDir...> --out params.json` and `migbench predict
 * params.json <runDir...>`: calibration written down with its sources,
 * prediction scored only on what did not calibrate it.
 */
import { resolve } from 'node:path';
import { UserError } from '../../harness/util/errors.ts';
import type { Table } from '../report/tables.ts';
import { fitParams } from './fit.ts';
import { readCalibrationRun } from './io.ts';
import { MVM_ENERGY } from '../models/energy.ts';
import { readParams, writeParams, type ParamsT } from './params.ts';
import { checkEnergy, MODEL_TITLES, predictAll, type EnergyCheck, type PredictionResult } from './predict.ts';

const pct = (x: number | null) => (x === null ? '–' : `${(100 * x).toFixed(1)} %`);
const f2 = (x: number | null | undefined) => (x === null || x === undefined ? '–' : x.toFixed(2));

export async function fitToFile(dirs: readonly string[], out: string, syncS?: number): Promise<{ params: ParamsT; lines: string[] }> {
  const runs = [];
  for (const d of dirs) runs.push(await readCalibrationRun(d));
  const { params, lowCoverage } = fitParams(runs, { syncS });
  if (params.hotcold.length === 0 && params.energy.length === 0) {
    throw new UserError(
      `nothing to calibrate in ${dirs.join(', ')}: no D(t) trace (workload.trace), no workload migrated at two or more link rates, and fewer than 3 migrations with energy figures`,
    );
  }
  writeParams(resolve(out), params);
  const lines = [`wrote ${resolve(out)}`];
  for (const h of params.hotcold) {
    lines.push(
      `  ${h.workload}: HPs ${f2(h.HPs)} MiB, HPd ${f2(h.HPd)} s, CPr ${f2(h.CPr)} MiB/s (from ${h.method === 'curve' ? 'its D(t) trace' : 'durations'}, ` +
        `R² ${f2(h.r2)}); memory in use ${f2(h.mu_mib)} MiB`,
    );
  }
  for (const e of params.energy) {
    lines.push(
      `  energy: alpha ${f2(e.alpha)} J/MB [${f2(e.alpha_ci.low)}, ${f2(e.alpha_ci.high)}], beta ${f2(e.beta)} J, n ${e.n} (mVM: 0.512 J/MB, 20.165 J)`,
    );
  }
  if (lowCoverage) lines.push(`  ${lowCoverage} energy figure(s) left out: power readings covered < 80 % of the migration`);
  return { params, lines };
}

export interface PredictReport {
  params: string;
  duration: PredictionResult;
  /** E = alpha * MB + beta as calibrated, checked on held-out migrations. */
  energy: EnergyCheck | null;
  /** The calibrated energy line (alpha J/MB, beta J, 95 % intervals), null without one. */
  energy_fit: ParamsT['energy'][number] | null;
  /** mVM's published alpha/beta checked on the same held-out migrations, for reference. */
  energy_mvm: EnergyCheck | null;
}

export async function predictFromFile(paramsPath: string, dirs: readonly string[]): Promise<PredictReport> {
  const params = readParams(resolve(paramsPath));
  const runs = [];
  for (const d of dirs) runs.push(await readCalibrationRun(d));
  const migrations = runs.flatMap((r) => r.migrations.filter((m) => !m.partial));
  const fit = params.energy[0] ?? null;
  const mvm: ParamsT | null = fit && {
    ...params,
    energy: [
      {
        ...fit,
        group: 'mVM',
        alpha: MVM_ENERGY.alpha,
        beta: MVM_ENERGY.beta,
        alpha_ci: { low: null, high: null },
        beta_ci: { low: null, high: null },
      },
    ],
  };
  return {
    params: resolve(paramsPath),
    duration: predictAll(params, migrations),
    energy: checkEnergy(params, migrations),
    energy_fit: fit,
    energy_mvm: mvm && checkEnergy(mvm, migrations),
  };
}

export function predictionTables(r: PredictReport): Table[] {
  const d = r.duration;
  const scores: Table = {
    title: 'Duration prediction, held-out migrations',
    headers: ['model', 'n', 'median error', 'p90 error', 'verdicts right', 'verdicts wrong'],
    rows: d.scores.map((s) => [
      MODEL_TITLES[s.model],
      String(s.n),
      pct(s.median_rel_error),
      pct(s.p90_rel_error),
      String(s.verdicts_right),
      String(s.verdicts_wrong),
    ]),
    note:
      (d.in_sample ? `${d.in_sample} migration(s) calibrated these parameters and are left out (in-sample). ` : '') +
      (d.unpredicted ? `${d.unpredicted} migration(s) could not be predicted (no parameters for the workload or no link rate).` : ''),
  };
  const rows: Table = {
    title: 'Predicted vs observed per migration',
    headers: ['migration', 'status', 'bw MiB/s', 'mu MiB', 'observed s', 'mVM s', 'mVM+mu s', 'QEMU-like s', 'verdict (QEMU-like)', 'note'],
    rows: d.rows.map((x) => [
      x.id + (x.inSample ? ' (in-sample)' : ''),
      x.status,
      f2(x.bwMiBps),
      f2(x.muMiB),
      f2(x.observedS),
      x.models.mvm ? (x.models.mvm.converges ? f2(x.models.mvm.predictedS) : 'no conv.') : '–',
      x.models['mvm-mu'] ? (x.models['mvm-mu'].converges ? f2(x.models['mvm-mu'].predictedS) : 'no conv.') : '–',
      x.models.qemu ? (x.models.qemu.converges ? f2(x.models.qemu.predictedS) : 'no conv.') : '–',
      x.models.qemu?.verdict ?? '–',
      x.note ?? x.models.qemu?.note ?? '',
    ]),
  };
  // the energy check sits next to the duration scores: both are held-out errors of the same params
  const tables = [scores];
  if (r.energy && r.energy_fit) {
    const e = r.energy_fit;
    const ci = (i: { low: number | null; high: number | null }) => `[${f2(i.low)}, ${f2(i.high)}]`;
    const row = (name: string, a: string, aci: string, b: string, bci: string, c: EnergyCheck) => [
      name,
      a,
      aci,
      b,
      bci,
      String(c.n),
      pct(c.median_rel_error),
      pct(c.p90_rel_error),
      String(c.in_sample),
    ];
    tables.push({
      title: 'Energy model E = α·V + β, held-out migrations',
      caption: `V in MB transferred; energy figures with power readings over at least 80 % of their migration.`,
      headers: ['α/β from', 'α J/MB', 'α 95 % CI', 'β J', 'β 95 % CI', 'held-out n', 'median error', 'p90 error', 'in-sample (left out)'],
      rows: [
        row(`calibrated here (n ${e.n})`, f2(e.alpha), ci(e.alpha_ci), f2(e.beta), ci(e.beta_ci), r.energy),
        ...(r.energy_mvm ? [row("mVM's published", String(MVM_ENERGY.alpha), '–', String(MVM_ENERGY.beta), '–', r.energy_mvm)] : []),
      ],
    });
  }
  tables.push(rows);
  return tables;
}
