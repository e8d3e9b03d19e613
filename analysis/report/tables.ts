/**
 * The report's tables as plain header/row string grids, shared by the HTML
 * and Markdown renderers. A section without data carries a one-line note.
 */
import type { AnalysisResult } from '../analyze.ts';
import { MVM_ENERGY, type EnergyReport } from '../models/energy.ts';
import { problemText, type RunDir } from '../rundir.ts';
import { ENERGY_MIN_COVERAGE } from '../analyze.ts';
import { MODEL_TITLES, MODELS, type ModelPrediction } from '../calibration/predict.ts';
import { advisorTables } from '../calibration/advise-table.ts';
import type { FTest, Interaction } from '../twofactor-interaction.ts';
import { featuresTable } from './features-table.ts';
import { numericOrder } from '../order.ts';

export interface Table {
  title: string;
  headers: string[];
  rows: string[][];
  note?: string;
  caption?: string;
}

export function num(x: number | null | undefined, digits = 3): string {
  if (x === null || x === undefined || !Number.isFinite(x)) return '–';
  const a = Math.abs(x);
  if (a !== 0 && (a >= 1e6 || a < 1e-3)) return x.toExponential(2);
  return x.toFixed(a >= 100 ? 1 : digits);
}
const pct = (x: number) => (Number.isFinite(x) ? `${(x * 100).toFixed(1)} %` : '–');

export function runInfo(run: RunDir, a: AnalysisResult): Table {
  const m = run.manifest;
  const c = a.counts;
  const rows: [string, string][] = [
    ['name', m.name],
    ['started / ended', `${m.started_at ?? '?'} / ${m.ended_at ?? '?'}`],
    ['harness', `${m.harness?.version ?? '?'} (${m.harness?.commit ?? '?'})`],
    ['QEMU / accelerator', `${m.qemu_version ?? '?'} / ${m.accelerator ?? '?'}`],
    ['kernels host / guest', `${m.host_kernel ?? '?'} / ${m.guest_kernel ?? '?'}`],
    [
      'shaping',
      Object.entries(m.shaping_mechanisms ?? {})
        .map(([k, v]) => `${k}: ${v}`)
        .join(', ') || '?',
    ],
    ['power source', m.power_source ?? '?'],
    ['treatments', String(m.treatments.length)],
    [
      'factors',
      Object.entries(m.factors)
        .map(([k, v]) => `${k} ∈ {${v.join(', ')}}`)
        .join('; ') || 'none',
    ],
    ['migrations', `${c.total} (completed ${c.completed}, failed ${c.failed}, cancelled ${c.cancelled}, partial ${c.partial})`],
  ];
  if (Object.keys(c.reasons).length)
    rows.push([
      'failure reasons',
      Object.entries(c.reasons)
        .map(([r, n]) => `${r}: ${n}`)
        .join('; '),
    ]);
  return { title: 'Run', headers: ['', ''], rows };
}

export function energyTable(pooled: EnergyReport, perWorkload?: EnergyReport, lowCoverage = 0): Table {
  const fits = [...pooled.fits, ...(perWorkload && perWorkload.fits.length > 1 ? perWorkload.fits : [])];
  const left = lowCoverage
    ? ` ${lowCoverage} migration(s) left out: power readings covered less than ${ENERGY_MIN_COVERAGE * 100} % of the migration.`
    : '';
  return {
    title: 'Energy model E = α·V + β',
    caption: `V in MB transferred. mVM's calibration: α = ${MVM_ENERGY.alpha} J/MB, β = ${MVM_ENERGY.beta} J. 95 % intervals by seeded bootstrap.${left}`,
    headers: ['group', 'n', 'α (J/MB)', 'α 95 % CI', 'β (J)', 'β 95 % CI', 'R²'],
    rows: fits.map((f) => [
      f.group === 'all' ? 'pooled' : f.group,
      String(f.n),
      num(f.alpha, 4),
      `[${num(f.alphaCi.low, 4)}, ${num(f.alphaCi.high, 4)}]`,
      num(f.beta),
      `[${num(f.betaCi.low)}, ${num(f.betaCi.high)}]`,
      num(f.r2, 4),
    ]),
    note: fits.length ? undefined : pooled.note,
  };
}

export function hotColdTable(a: AnalysisResult): Table {
  return {
    title: 'Hot/cold pages per workload',
    caption:
      'Fitted on the whole run (the trace, else all durations): these draw the model curves; scores come from the calibration table below.',
    headers: ['workload', 'from', 'HPs (MiB)', 'HPd (s)', 'HPr (MiB/s)', 'CPr (MiB/s)', 'R²', 'n'],
    rows: a.duration.params.map((p) => [
      p.workload,
      p.fit.method === 'curve' ? 'D(t) curve' : 'durations',
      num(p.fit.HPs),
      num(p.fit.HPd),
      num(p.fit.HPr),
      num(p.fit.CPr),
      num(p.fit.r2, 4),
      String(p.fit.n),
    ]),
    note: a.duration.params.length ? undefined : 'no dirty_trace samples and no workload measured at two or more bandwidths',
  };
}

const MODEL_SHORT = { mvm: 'mVM', 'mvm-mu': 'mVM + measured mu', qemu: 'QEMU-like' } as const;

/** The three model variants side by side, scored on validated migrations only. */
export function validationScores(a: AnalysisResult): Table {
  const v = a.validation;
  return {
    title: 'Duration models on validated migrations',
    caption:
      `${v.validated} migration(s) validated, ${v.notPredicted} not predicted. Each migration is predicted by parameters it did not calibrate: ` +
      'from the D(t) trace when the workload was traced, else from the durations at the other link rates (leave one rate out). ' +
      'Error |predicted − observed| / observed over completed migrations; a verdict (converges or not) for every migration, a cancelled one did not converge, a failed one says nothing.',
    headers: ['model', 'n (completed)', 'median error', 'p90 error', 'verdicts right', 'verdicts wrong'],
    rows: (v.validated ? v.scores : []).map((s) => [
      MODEL_TITLES[s.model],
      String(s.n),
      s.median_rel_error === null ? '–' : pct(s.median_rel_error),
      s.p90_rel_error === null ? '–' : pct(s.p90_rel_error),
      String(s.verdicts_right),
      String(s.verdicts_wrong),
    ]),
    note: `no migration validated: ${v.folds.find((f) => f.note)?.note ?? 'no migration could be predicted from data it did not calibrate'}`,
  };
}

/** Which migrations calibrated which predictions. */
export function calibrationTable(a: AnalysisResult): Table {
  return {
    title: 'Calibration and validation',
    caption: 'One row per calibration: what it was fitted on, its parameters, and the migrations it predicted (never its own).',
    headers: ['workload', 'calibrated from', 'predicts', 'HPs (MiB)', 'HPd (s)', 'CPr (MiB/s)', 'mu (MiB)', 'validated', 'note'],
    rows: a.validation.folds.map((f) => [
      f.workload,
      f.method === 'trace'
        ? 'D(t) trace'
        : f.calibratedBy.length
          ? `${f.calibratedBy.length} migration(s) at ${f.calibrationRatesMbit.join(', ')} Mbit/s`
          : f.calibrationRatesMbit.length
            ? `${f.calibrationRatesMbit.join(', ')} Mbit/s (not enough)`
            : '–',
      f.method === 'trace' ? 'every rate' : `${f.heldOutRateMbit} Mbit/s`,
      num(f.params?.HPs),
      num(f.params?.HPd),
      num(f.params?.CPr),
      num(f.params?.mu_mib),
      String(f.validated.length),
      f.note ?? '',
    ]),
    note: 'no migrations',
  };
}

function cellOf(p: ModelPrediction | undefined): string {
  if (!p) return '–';
  return `${p.converges ? num(p.predictedS) : 'no conv.'} (${p.verdict})`;
}

/** Every migration, cancelled and failed included: predicted converges or not, and how long, against what happened. */
export function verdictTable(a: AnalysisResult): Table {
  const rows = a.validation.rows;
  return {
    title: 'Predicted vs observed per migration: verdicts',
    caption:
      'Each model cell: predicted seconds or "no conv." with its verdict against what happened (right / wrong; n/a for a failed migration). ' +
      '"calibrates" lists the predictions this migration\'s duration helped fit (never its own).',
    headers: [
      'migration',
      'status',
      'link (Mbit/s)',
      'mu (MiB)',
      'observed (s)',
      'role',
      ...MODELS.map((m) => MODEL_SHORT[m]),
      'error (QEMU-like)',
      'calibrates',
      'note',
    ],
    rows: rows.map((r) => [
      r.id,
      r.status,
      r.linkRateMbit === null ? '–' : String(r.linkRateMbit),
      num(r.muMiB),
      num(r.observedS),
      r.role === 'validated' ? `validated (${r.fold?.endsWith('trace') ? 'trace' : 'other rates'})` : 'not predicted',
      ...MODELS.map((m) => cellOf(r.models[m])),
      r.models.qemu?.relError != null ? pct(r.models.qemu.relError) : '–',
      r.calibrates.length ? r.calibrates.map((f) => f.split(' | ')[1]).join('; ') : '',
      r.note ?? r.models.qemu?.note ?? '',
    ]),
    note: 'no migrations',
  };
}

export function flagsTable(a: AnalysisResult): Table {
  const f = a.flags;
  return {
    title: 'Flagged migrations',
    caption:
      `${f.flagged} of ${f.recorded + f.computed} migration(s) flagged. ` +
      (f.computed
        ? `${f.computed} record(s) carry no flags field (written before the harness checked them): their flags were computed at analysis time from the record (harness/migration/flags.ts).`
        : 'Every record carries the flags the harness computed when it was made.'),
    headers: ['migration', 'treatment', 'status', 'code', 'reason', 'source'],
    rows: f.rows.map((r) => [r.id, r.treatment, r.status, r.code, r.reason, r.source]),
    note:
      `none: ${f.recorded + f.computed} migration(s) checked` +
      (f.computed ? `, ${f.computed} of them at analysis time (records without a flags field)` : '') +
      ', no physics or sanity check failed',
  };
}

export function variabilitySummary(a: AnalysisResult): Table {
  return {
    title: 'Variability (Salfner et al., Table II)',
    caption: 'All values in ms. Ratios are max:min.',
    headers: ['response', 'n', 'overall mean', 'max:min treatment means', 'max:min all', 'largest within-treatment sd', 'overall sd'],
    rows: a.variability.map((t) => [
      t.metric,
      String(t.n),
      num(t.overallMean),
      num(t.treatmentMeansRatio),
      num(t.allRatio),
      num(t.maxWithinSd),
      num(t.overallSd),
    ]),
    note: a.variability.length ? undefined : 'no completed migrations with a migration time or downtime',
  };
}

export function perTreatmentTable(run: RunDir, a: AnalysisResult): Table {
  const metrics = a.variability.map((t) => t.metric);
  const byT = new Map<string, Map<string, string>>();
  const levels = new Map<string, string>();
  for (const t of a.variability)
    for (const p of t.perTreatment) {
      if (!byT.has(p.treatment)) byT.set(p.treatment, new Map());
      byT.get(p.treatment)!.set(t.metric, `${num(p.mean)} [${num(p.ciLow)}, ${num(p.ciHigh)}] n=${p.n}`);
      levels.set(p.treatment, Object.values(p.levels).join(', '));
    }
  const ids = [...byT.keys()].sort(numericOrder);
  return {
    title: 'Per-treatment means with 95 % confidence intervals (t distribution)',
    headers: ['treatment', 'levels', ...metrics],
    rows: ids.map((id) => [id, levels.get(id) ?? '', ...metrics.map((m) => byT.get(id)!.get(m) ?? '–')]),
    note: ids.length ? undefined : 'no completed migrations',
    caption: run.manifest.factors ? `Factors: ${Object.keys(run.manifest.factors).join(', ') || 'none'}.` : undefined,
  };
}

function fText(t: FTest | null, note: string | null = null): string {
  if (!t) return note ?? '–';
  const p = t.p < 0.001 ? 'p < 0.001' : `p = ${t.p.toFixed(3)}`;
  return `F(${t.df1}, ${t.df2}) = ${Number.isFinite(t.f) ? num(t.f, 2) : '∞'}, ${p}${t.p < 0.05 ? ': yes' : ': not significant'}`;
}

function interactionSize(i: Interaction): string {
  if (i.contrast) return `Δ of Δ ${num(i.contrast.value)} [${num(i.contrast.low)}, ${num(i.contrast.high)}]`;
  return i.maxDeviation === null ? '–' : `largest cell deviation from additive ${num(i.maxDeviation)}`;
}

export function mainEffectsTable(a: AnalysisResult): Table {
  const rows: string[][] = [];
  for (const t of a.variability) {
    for (const e of t.mainEffects)
      rows.push([
        t.metric,
        e.factor,
        e.levels.map((l) => `${l.level}: ${num(l.mean)}`).join('; '),
        num(e.spread),
        num(e.ratio),
        fText(e.test),
      ]);
    for (const i of t.interactions)
      rows.push([
        t.metric,
        `${i.a} × ${i.b}`,
        i.cells.map((c) => `${c.a} × ${c.b}: ${c.mean === null ? 'none' : num(c.mean)}`).join('; '),
        interactionSize(i),
        '–',
        fText(i.test, i.note) + (i.test && i.note ? ` (${i.note})` : ''),
      ]);
  }
  return {
    title: 'Main effects (mean response per factor level) and two-factor interactions',
    caption:
      'A × B rows are interactions: the cell means of A × B, and how far they are from additive (each factor acting alone). ' +
      "For 2 × 2 levels: the difference of differences (B's effect at A's second level minus at its first) with a 95 % t interval; " +
      'otherwise the largest deviation of a cell mean from the additive fit. F tests (two-way ANOVA) compare each effect ' +
      'with the variance of repetitions within treatments; yes: p < 0.05.',
    headers: ['response', 'factor', 'level means (ms)', 'spread (max − min) / interaction (ms)', 'max:min', 'F test'],
    rows,
    note: rows.length ? undefined : 'no factors varied in this run',
  };
}

export function planTable(a: AnalysisResult): Table {
  return {
    title: 'Migration plans (Kherbache et al., Table 1)',
    headers: ['treatment', 'plan', 'reps', 'completion (s)', 'mean duration (s)', 'sd duration (s)', 'energy (J)', 'peak power (W)'],
    rows: a.plans.plans.map((p) => [
      p.treatment,
      p.label,
      String(p.reps),
      num(p.completionS),
      num(p.meanDurationS),
      num(p.sdDurationS),
      num(p.energyJ),
      num(p.peakPowerW),
    ]),
    note: a.plans.plans.length ? undefined : a.plans.note,
  };
}

/** Per-treatment energy and peak power (treatments.jsonl; peak from the power samples where present). */
export function treatmentEnergyTable(a: AnalysisResult): Table {
  return {
    title: 'Energy and peak power per treatment',
    caption:
      'Energy above idle summed over the hosts for the whole treatment; coverage is the lowest share of the interval covered by power readings.',
    headers: ['treatment', 'migrations (completed)', 'energy (J)', 'coverage', 'peak power (W)'],
    rows: a.treatments.map((t) => [
      t.treatment,
      `${t.migrations} (${t.completed})`,
      num(t.energyJ),
      t.coverage === null ? '–' : pct(t.coverage),
      num(t.peakPowerW),
    ]),
    note: a.treatments.length ? undefined : 'no treatments.jsonl (a run without a power source, or written before it existed)',
  };
}

/** What analysis skipped or doubts, by file and line: damaged lines, damaged manifest pieces, suspect values. */
export function problemsTable(run: RunDir): Table {
  const truncated = run.problems.filter((p) => p.kind === 'truncated').length;
  return {
    title: 'Problems in the run directory',
    caption: truncated ? `${truncated} truncated last line(s) (a crash mid-write) skipped.` : undefined,
    headers: ['where', 'kind', 'problem'],
    rows: run.problems.map((p) => {
      const t = problemText(run, p);
      const at = t.indexOf(': ');
      return [t.slice(0, at), p.kind, t.slice(at + 2)];
    }),
    note: 'none: every line read',
  };
}

export function allTables(run: RunDir, a: AnalysisResult): Table[] {
  return [
    runInfo(run, a),
    problemsTable(run),
    energyTable(a.energy.pooled, a.energy.perWorkload, a.energy.lowCoverage),
    treatmentEnergyTable(a),
    hotColdTable(a),
    validationScores(a),
    calibrationTable(a),
    flagsTable(a),
    ...featuresTable(run),
    variabilitySummary(a),
    mainEffectsTable(a),
    planTable(a),
    ...advisorTables(run, a),
    verdictTable(a),
    perTreatmentTable(run, a),
  ];
}
