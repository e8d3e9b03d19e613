/**
 * Runs every analysis over a run directory in one pass over the samples:
 * energy fits, hot/cold parameters, duration prediction, variability tables,
 * plan metrics, and the power series the report plots.
 */
import { fitEnergy, type EnergyReport } from './models/energy.ts';
import type { CurvePoint } from './models/hotcold.ts';
import { analyzePlans, type PlanAnalysis } from './plans.ts';
import { planEnergy, planWindows } from './plan-energy.ts';
import { DEFAULT_GOODPUT, predictMigrations, workloadParams, type DurationReport } from './prediction.ts';
import { PeakAccumulator } from '../harness/experiment/peak-power.ts';
import type { PowerPoint } from '../harness/power/energy.ts';
import { IsoMsStream } from './iso-ms.ts';
import { timelinePowerTap } from './timeline.ts';
import { observations, streamSampleLines, type Migration, type RunDir } from './rundir.ts';
import { numberSample } from './load-sample-line.ts';
import type { Sample } from '../harness/store/schema/index.ts';
import { calibrationRunOf } from './calibration/io.ts';
import { runFlags, type FlagsReport } from './flags.ts';
import { twoFactorViews, type TwoFactorView } from './twofactor.ts';
import { validateRun, type ValidationResult } from './validation.ts';
import { VARIABILITY_METRICS, variabilityTable, type VariabilityTable } from './variability.ts';
import { numericOrder } from './order.ts';

export interface RunCounts {
  total: number;
  completed: number;
  failed: number;
  cancelled: number;
  partial: number;
  /** Failure reasons with counts. */
  reasons: Record<string, number>;
}

/** A host's power reading in the timeline window (a recorded reading, not a gap: harness/power/energy.ts's PowerPoint can be one). */
export interface HostReading {
  t: number;
  host: string;
  watts: number;
}

/** Energy figures covering less of their migration than this (power readings missing) are left out of the fits. */
export const ENERGY_MIN_COVERAGE = 0.8;

/** Per-treatment totals from treatments.jsonl, with the peak computed from the samples when there are any. */
export interface TreatmentEnergy {
  treatment: string;
  migrations: number;
  completed: number;
  energyJ: number | null;
  /** Lowest coverage of the treatment's interval by power readings over its hosts (0..1). */
  coverage: number | null;
  peakPowerW: number | null;
}

export interface AnalysisResult {
  counts: RunCounts;
  energy: {
    pooled: EnergyReport;
    perWorkload: EnergyReport;
    /** Completed migrations whose energy was left out for low power coverage. */
    lowCoverage: number;
  };
  treatments: TreatmentEnergy[];
  /** Hot/cold parameters fitted on the whole run (display); `duration.rows` are in-sample and never reported as accuracy. */
  duration: DurationReport;
  /** Calibration apart from validation: which migrations calibrated, which validated, scores on validated ones only. */
  validation: ValidationResult;
  /** Flagged migrations (recorded, or computed at analysis time for older records). */
  flags: FlagsReport;
  /** Mean responses over every pair of factors (two or more factors varied). */
  twoFactor: TwoFactorView[];
  curves: Map<string, CurvePoint[]>;
  variability: VariabilityTable[];
  plans: PlanAnalysis;
  /** Power in the window of the first migrations (for the timeline plot). */
  power: { window: { start: number; end: number } | null; points: HostReading[]; samples: number };
  /** Migration spans inside the power window, ms epoch. */
  powerWindowMigrations: { id: string; vm: string; start: number; end: number }[];
}

export interface AnalyzeOptions {
  goodput?: number;
  seed?: number;
  /** How many migrations the power timeline covers. */
  powerWindowMigrations?: number;
}

export function countRun(run: RunDir): RunCounts {
  const c: RunCounts = { total: run.migrations.length, completed: 0, failed: 0, cancelled: 0, partial: 0, reasons: {} };
  for (const m of run.migrations) {
    if (m.partial) c.partial++;
    if (m.status === 'completed') c.completed++;
    else {
      if (m.status === 'failed') c.failed++;
      else c.cancelled++;
      const r = m.reason ?? m.status;
      c.reasons[r] = (c.reasons[r] ?? 0) + 1;
    }
  }
  return c;
}

export async function analyzeRun(run: RunDir, opts: AnalyzeOptions = {}): Promise<AnalysisResult> {
  const goodput = opts.goodput ?? DEFAULT_GOODPUT;
  // Window of the power timeline: the first N migrations in time.
  const spans = run.migrations
    .map((m) => ({ id: m.id, vm: m.vm, start: m.t_cmd ? Date.parse(m.t_cmd) : NaN, end: m.t_done ? Date.parse(m.t_done) : NaN }))
    .filter((s) => Number.isFinite(s.start) && Number.isFinite(s.end))
    .sort((a, b) => a.start - b.start);
  const inWindow = spans.slice(0, opts.powerWindowMigrations ?? 20);
  const window = inWindow.length ? { start: inWindow[0].start - 30_000, end: Math.max(...inWindow.map((s) => s.end)) + 30_000 } : null;

  const curves = new Map<string, CurvePoint[]>();
  const points: HostReading[] = [];
  // Peak power per treatment, defined once (harness/experiment/peak-power.ts) for the harness and analysis.
  const peaks = new Map<string, PeakAccumulator>();
  let powerSamples = 0;
  let lastT = '';
  let lastMs = NaN;
  const times = new IsoMsStream();
  // a plan's energy integrates its hosts' readings over its window: kept per host for runs with plans (1 Hz per host)
  const planPower = run.plans.length || run.migrations.some((m) => m.plan) ? new Map<string, PowerPoint[]>() : null;
  // the report's timeline takes its power readings from this pass
  const tap = timelinePowerTap(run);
  const onDirty = (s: Sample) => {
    const w = s.tags.workload ?? '';
    const t = Number(s.fields.window_s),
      d = Number(s.fields.dirtied_mib);
    if (!Number.isFinite(t) || !Number.isFinite(d)) return;
    let arr = curves.get(w);
    if (!arr) curves.set(w, (arr = []));
    arr.push({ t, d });
  };
  /** A power reading: its t text, tags and Number(fields.watts). */
  const onPower = (tText: string, tags: Readonly<Record<string, string>>, watts: number) => {
    if (!Number.isFinite(watts)) return;
    powerSamples++;
    // the two hosts' readings of one poll share their timestamp text: parse it once (from its minute's ms when that is the last one's)
    if (tText !== lastT) {
      lastT = tText;
      lastMs = times.ms(tText);
    }
    const t = lastMs;
    const host = tags.host ?? '';
    if (window && t >= window.start && t <= window.end) points.push({ t, host, watts });
    if (planPower && Number.isFinite(t)) {
      let arr = planPower.get(host);
      if (!arr) planPower.set(host, (arr = []));
      arr.push({ tMs: t, watts });
    }
    const tr = tags.treatment;
    if (tr) {
      let acc = peaks.get(tr);
      if (!acc) peaks.set(tr, (acc = new PeakAccumulator()));
      acc.add(t, host, watts);
    }
  };
  // the power poller's lines (one number) are read without making a sample each (streamSampleLines)
  await streamSampleLines(
    run,
    {
      onSample: (s, file) => {
        tap?.onSample(s, file);
        if (s.measurement === 'dirty_trace') onDirty(s);
        else onPower(s.t, s.tags, Number(s.fields.watts));
      },
      onNumber: (r, file) => {
        if (r.measurement === 'dirty_trace') {
          const s = numberSample(r);
          tap?.onSample(s, file);
          onDirty(s);
          return;
        }
        tap?.onNumber(r, file);
        // Number(fields.watts) of fields that are one number under r.key
        onPower(r.t, r.tags, r.key === 'watts' ? r.value : NaN);
      },
    },
    ['dirty_trace', 'power'],
  );
  tap?.done();
  const peak = new Map<string, number>();
  for (const [tr, acc] of peaks) {
    const total = acc.result().total;
    if (total !== null) peak.set(tr, total);
  }
  const treatments = treatmentEnergy(run, peak);
  // plans without power samples in the run directory still get the harness's per-treatment peak
  for (const t of treatments) if (!peak.has(t.treatment) && t.peakPowerW !== null) peak.set(t.treatment, t.peakPowerW);

  const params = workloadParams(run.migrations, curves, goodput);
  const forEnergy = energyMigrations(run);
  // parameters fitted inside an analysis are dated by the run, so analysing a run twice gives the same output
  const started = run.manifest.started_at ? new Date(run.manifest.started_at) : new Date(0);
  const pooled = fitEnergy(forEnergy.migrations, 'pooled', opts.seed);
  const validation = validateRun(await calibrationRunOf(run), {
    goodput,
    now: Number.isNaN(started.getTime()) ? new Date(0) : started,
    // the display fit's energy model is the pooled fit over the same points (seed 42): not bootstrapped twice
    energyFit: (opts.seed ?? 42) === 42 ? pooled.fits[0] : undefined,
  });
  return {
    counts: countRun(run),
    energy: {
      pooled,
      perWorkload: fitEnergy(forEnergy.migrations, 'per-workload', opts.seed),
      lowCoverage: forEnergy.lowCoverage,
    },
    treatments,
    duration: predictMigrations(run.migrations, params, goodput),
    validation,
    flags: runFlags(run.migrations),
    twoFactor: twoFactorViews(run),
    curves,
    variability: VARIABILITY_METRICS.map((m) => variabilityTable(run, m)).filter((t): t is VariabilityTable => t !== null),
    plans: analyzePlans(run, peak, planEnergyByRep(run, planPower)),
    power: { window, points, samples: powerSamples },
    powerWindowMigrations: window ? inWindow : [],
  };
}

/** Each executed plan's energy (J, null where readings or idle power are missing), keyed "treatment|rep". */
function planEnergyByRep(run: RunDir, power: Map<string, PowerPoint[]> | null): Map<string, number | null> {
  if (!power?.size) return new Map();
  const idle = run.manifest.power_idle_w ?? {};
  return new Map(planWindows(run).map((w) => [`${w.treatment}|${w.rep}`, planEnergy(w, power, idle, ENERGY_MIN_COVERAGE).joules]));
}

/**
 * The migrations for energy fits: an energy figure whose migration was
 * covered by power readings for less than ENERGY_MIN_COVERAGE (the poller
 * missed readings) is left out (energy_j null), and counted.
 */
export function energyMigrations(run: RunDir): { migrations: Migration[]; lowCoverage: number } {
  let lowCoverage = 0;
  const migrations = run.migrations.map((m) => {
    if (m.energy_j === null || typeof m.energy_coverage !== 'number' || m.energy_coverage >= ENERGY_MIN_COVERAGE) return m;
    if (observations([m]).length) lowCoverage++;
    return { ...m, energy_j: null };
  });
  return { migrations, lowCoverage };
}

/** Per-treatment energy and peak power from treatments.jsonl (the last line per treatment: a resumed run appends again). */
export function treatmentEnergy(run: RunDir, peakFromSamples: Map<string, number> = new Map()): TreatmentEnergy[] {
  const last = new Map(run.treatmentTotals.map((t) => [t.treatment, t]));
  return [...last.values()]
    .map((t) => {
      const cov = Object.values(t.hosts)
        .map((h) => h.coverage)
        .filter((c): c is number => c !== null);
      const hostPeaks = Object.values(t.hosts)
        .map((h) => h.peak_w)
        .filter((w): w is number => w !== null);
      return {
        treatment: t.treatment,
        migrations: t.migrations,
        completed: t.completed,
        energyJ: t.energy_j,
        coverage: cov.length ? Math.min(...cov) : null,
        // older run directories hold only per-host peaks: their sum bounds the summed peak from above
        peakPowerW: peakFromSamples.get(t.treatment) ?? t.peak_w ?? (hostPeaks.length ? hostPeaks.reduce((a, b) => a + b, 0) : null),
      };
    })
    .sort((a, b) => numericOrder(a.treatment, b.treatment));
}
