/**
 * Kherbache et al. (seed 000): sequential vs parallel vs k-by-k per server
 * over a limited interlink (Table 1: completion, mean and sd of migration
 * durations, energy, peak power; Tables 2-3: the hybrid plans).
 */
import { ENERGY_MIN_COVERAGE } from '../analyze.ts';
import { planEnergies } from '../plan-energy.ts';
import { analyzePlans, type PlanSummary } from '../plans.ts';
import { mean, median } from '../stats/descriptive.ts';
import { observations, type Migration } from '../rundir.ts';
import { fmt, greater, nums, ratio, specRun, type Finding, type StudyData, type Verdict } from './common.ts';

export const MAINTENANCE_SPECS = { plans: 'maint-plans' } as const;

interface PlanData {
  kind: string;
  summary: PlanSummary;
  durationsMs: number[];
  /** Completion per repetition, s. */
  completionsS: number[];
  /** Energy above idle of the plan's hosts over its window, per repetition with enough power readings, J. */
  energiesJ: number[];
  /** Repetitions whose plan energy is unknown (no idle power, readings covering too little of the window). */
  energyMissing: number;
}

/** Per plan kind ('sequential', 'parallel', 'per_server', ...): the Table 1 row and the raw values behind it. */
export function planData(d: StudyData): Map<string, PlanData> {
  const r = specRun(d, MAINTENANCE_SPECS.plans);
  const out = new Map<string, PlanData>();
  if (!r) return out;
  const peak = new Map(r.run.treatmentTotals.filter((t) => t.peak_w !== null).map((t) => [t.treatment, t.peak_w as number]));
  const a = analyzePlans(r.run, peak);
  const obs = observations(r.run.migrations).filter((m) => m.plan);
  const energies = [...planEnergies(r.run, r.power ?? [], ENERGY_MIN_COVERAGE).values()];
  for (const p of a.plans) {
    const ms = obs.filter((m) => m.treatment === p.treatment);
    const kind = ms[0]?.plan?.kind ?? p.label;
    const es = energies.filter((e) => e.window.treatment === p.treatment);
    out.set(kind, {
      kind: kind + (ms[0]?.plan?.k ? ` k=${ms[0].plan.k}` : ''),
      summary: p,
      durationsMs: nums(ms.map((m) => m.total_ms)),
      completionsS: completions(ms),
      energiesJ: nums(es.map((e) => e.joules)),
      energyMissing: new Set(ms.map((m) => m.rep)).size - nums(es.map((e) => e.joules)).length,
    });
  }
  return out;
}

function completions(ms: Migration[]): number[] {
  const byRep = new Map<number, Migration[]>();
  for (const m of ms) byRep.set(m.rep, [...(byRep.get(m.rep) ?? []), m]);
  return [...byRep.values()].flatMap((rms) => {
    const c = rms.find((m) => typeof m.plan_completion_ms === 'number')?.plan_completion_ms;
    if (typeof c === 'number') return [c / 1000];
    const st = nums(rms.map((m) => m.plan?.start_ms ?? null));
    const en = nums(rms.map((m) => m.plan?.end_ms ?? null));
    return st.length && en.length ? [(Math.max(...en) - Math.min(...st)) / 1000] : [];
  });
}

const kindOf = (x: PlanData) => x.kind;

/** Absolute deviations from the median (Brown-Forsythe): a spread test as a test of means. */
const spread = (xs: number[]) => {
  const md = median(xs);
  return xs.map((x) => Math.abs(x - md));
};

/**
 * a > b: Welch when both sides have 2+ values; otherwise the point estimates
 * decide and the reason says that no test was possible (a quick run: 1 repetition).
 */
function larger(a: number[], b: number[], what: string): { verdict: Verdict; reason: string; test: Finding['test'] } {
  const g = greater(a, b);
  if (g.holds !== null)
    return { verdict: g.holds ? 'holds' : 'does not hold', reason: `${what}: one-sided Welch p ${fmt(g.test.p)}`, test: g.test };
  if (!a.length || !b.length) return { verdict: 'inconclusive', reason: `${what}: not measured`, test: null };
  const ma = a.reduce((x, y) => x + y, 0) / a.length;
  const mb = b.reduce((x, y) => x + y, 0) / b.length;
  return { verdict: ma > mb ? 'holds' : 'does not hold', reason: `${what}: point estimates (too few values for a test)`, test: null };
}

const PAPER = {
  longer: 'Table 1: mean migration 12.2 s sequential vs 192.9 s parallel (x15.8, Scenario 1); 11.2 vs 158.0 s (Scenario 2)',
  unstable: 'Table 1: sd 5.41 s sequential vs 45.12 s parallel (Scenario 1); 4.81 vs 52.97 s (Scenario 2)',
  completion: 'Table 1: completion 2871 s sequential vs 446 s parallel (Scenario 1); 3467 vs 384 s (Scenario 2)',
  hybrid: 'Table 2: time spent to migrate 604 s parallel (A1) vs 213 s 3-by-3 (A2) vs 148 s probed paths (A3)',
  hybridDur: 'Table 2: mean migration 284.2 s parallel (A1) vs 63.7 s (A2); Table 3: 49.5 (B1) vs 15.4 (B2) vs 7.7 s (B3)',
  peak: 'Table 1: peak power 2.70 kW sequential vs 4.47 kW parallel (Scenario 1): simultaneous boots',
  energy: 'Table 1: energy 2098.4 sequential vs 366.4 parallel (Scenario 1): shorter completion',
  probe: 'Table 2, A3: an iperf probe of the interlink picks a dedicated 1 Gbit/s path per server: -65 s, -13 s mean',
};

export function evaluateMaintenancePlans(d: StudyData): Finding[] {
  const p = planData(d);
  const seq = p.get('sequential');
  const par = p.get('parallel');
  const hyb = p.get('per_server') ?? p.get('capped');
  const missing = (id: string, claim: string, paper: string): Finding => ({
    id,
    claim,
    paper,
    measured: '-',
    verdict: 'not run',
    reason: `needs the sequential, parallel and per_server plans of spec '${MAINTENANCE_SPECS.plans}'; found: ${[...p.keys()].join(', ') || 'none'}`,
    numbers: {},
    test: null,
  });
  const out: Finding[] = [];
  const row = (x: PlanData | undefined) =>
    x
      ? `${kindOf(x)}: completion ${fmt(x.summary.completionS)} s, mean ${fmt(x.summary.meanDurationS)} s, sd ${fmt(x.summary.sdDurationS)} s`
      : '-';

  let c = 'Parallel migrations take longer than sequential ones over a saturated interlink';
  if (!seq || !par) out.push(missing('parallel-longer', c, PAPER.longer));
  else {
    const v = larger(par.durationsMs, seq.durationsMs, 'durations parallel > sequential');
    const f = ratio(par.summary.meanDurationS, seq.summary.meanDurationS);
    out.push({
      id: 'parallel-longer',
      claim: c,
      paper: PAPER.longer,
      measured: `mean migration ${fmt(seq.summary.meanDurationS)} s sequential vs ${fmt(par.summary.meanDurationS)} s parallel (x${fmt(f)})`,
      ...v,
      numbers: { seq_mean_s: seq.summary.meanDurationS, par_mean_s: par.summary.meanDurationS, factor: f },
    });
  }

  c = 'Parallel migration durations are less stable (larger sd) than sequential ones';
  if (!seq || !par) out.push(missing('parallel-unstable', c, PAPER.unstable));
  else {
    const v = larger(spread(par.durationsMs), spread(seq.durationsMs), 'spread parallel > sequential (Brown-Forsythe)');
    out.push({
      id: 'parallel-unstable',
      claim: c,
      paper: PAPER.unstable,
      measured: `sd ${fmt(seq.summary.sdDurationS)} s sequential vs ${fmt(par.summary.sdDurationS)} s parallel`,
      ...v,
      numbers: { seq_sd_s: seq.summary.sdDurationS, par_sd_s: par.summary.sdDurationS },
    });
  }

  c = 'Parallel plans complete sooner than sequential ones';
  if (!seq || !par) out.push(missing('parallel-completion', c, PAPER.completion));
  else {
    const v = larger(seq.completionsS, par.completionsS, 'completion sequential > parallel');
    out.push({
      id: 'parallel-completion',
      claim: c,
      paper: PAPER.completion,
      measured: `completion ${fmt(seq.summary.completionS)} s sequential vs ${fmt(par.summary.completionS)} s parallel`,
      ...v,
      numbers: { seq_completion_s: seq.summary.completionS, par_completion_s: par.summary.completionS },
    });
  }

  c = 'The hybrid plan (k-by-k per server) completes sooner than both pure plans';
  if (!seq || !par || !hyb) out.push(missing('hybrid-completion', c, PAPER.hybrid));
  else {
    const best = seq.summary.completionS <= par.summary.completionS ? seq : par;
    const v = larger(best.completionsS, hyb.completionsS, `completion ${kindOf(best)} (the better pure plan) > hybrid`);
    out.push({
      id: 'hybrid-completion',
      claim: c,
      paper: PAPER.hybrid,
      measured: [row(seq), row(par), row(hyb)].join('; '),
      ...v,
      numbers: {
        seq_completion_s: seq.summary.completionS,
        par_completion_s: par.summary.completionS,
        hybrid_completion_s: hyb.summary.completionS,
      },
    });
  }

  c = 'The hybrid plan gives shorter migrations than the parallel one';
  if (!par || !hyb) out.push(missing('hybrid-durations', c, PAPER.hybridDur));
  else {
    const v = larger(par.durationsMs, hyb.durationsMs, 'durations parallel > hybrid');
    out.push({
      id: 'hybrid-durations',
      claim: c,
      paper: PAPER.hybridDur,
      measured: `mean migration ${fmt(par.summary.meanDurationS)} s parallel vs ${fmt(hyb.summary.meanDurationS)} s ${kindOf(hyb)}`,
      ...v,
      numbers: { par_mean_s: par.summary.meanDurationS, hybrid_mean_s: hyb.summary.meanDurationS },
    });
  }

  c = 'Parallel plans draw a higher peak power than sequential ones';
  const pk = (x: PlanData | undefined) => x?.summary.peakPowerW ?? null;
  if (!seq || !par) out.push(missing('peak-power', c, PAPER.peak));
  else if (pk(seq) === null || pk(par) === null)
    out.push({ ...missing('peak-power', c, PAPER.peak), reason: 'no power readings (measure.power) in the run' });
  else
    out.push({
      id: 'peak-power',
      claim: c,
      paper: PAPER.peak,
      measured: `peak ${fmt(pk(seq))} W sequential vs ${fmt(pk(par))} W parallel (summed hosts, simulated BMCs)`,
      verdict: pk(par)! > pk(seq)! ? 'holds' : 'differs',
      reason:
        pk(par)! > pk(seq)!
          ? 'one peak per treatment (no test); power from the testbed power model, not real servers'
          : "the paper's peaks come from booting all destination servers at once; this plan boots none (hosts stay on)",
      numbers: { seq_peak_w: pk(seq), par_peak_w: pk(par) },
      test: null,
    });

  c = 'Parallel plans use less energy than sequential ones (shorter completion)';
  const en = (x: PlanData) => (x.energiesJ.length ? mean(x.energiesJ) : null);
  if (!seq || !par) out.push(missing('energy', c, PAPER.energy));
  else if (en(seq) === null || en(par) === null)
    out.push({
      ...missing('energy', c, PAPER.energy),
      reason: !(d.runs.find((x) => x.name === MAINTENANCE_SPECS.plans)?.power ?? []).length
        ? 'no power samples (samples/power.jsonl) in the run: measure.power was not on'
        : `no plan energy for a plan: ${[seq, par]
            .filter((x) => en(x) === null)
            .map((x) => kindOf(x))
            .join(', ')} (power readings missing or no idle power)`,
    });
  else {
    const v = larger(seq.energiesJ, par.energiesJ, 'plan energy sequential > parallel');
    const left = seq.energyMissing + par.energyMissing;
    out.push({
      id: 'energy',
      claim: c,
      paper: PAPER.energy,
      measured:
        `energy above idle of the plan's hosts integrated over the plan window (start..end), mean per repetition: ` +
        `${fmt(en(seq))} J sequential vs ${fmt(en(par))} J parallel (completion ${fmt(seq.summary.completionS)} vs ` +
        `${fmt(par.summary.completionS)} s)` +
        (left ? `; ${left} repetition(s) without a plan energy left out` : ''),
      ...v,
      reason:
        `${v.reason}; the paper's plans boot the spare servers and shut the emptied ones down, and its energy is the ` +
        "servers' whole consumption; here the hosts stay on in every plan, so only the power above idle differs",
      numbers: {
        seq_energy_j: en(seq),
        par_energy_j: en(par),
      },
    });
  }

  out.push({
    id: 'interlink-probe',
    claim: 'Probing the interlink to give each server a dedicated path shortens the plan further',
    paper: PAPER.probe,
    measured: '-',
    verdict: 'not run',
    reason:
      "the paper's gain comes from an unfair LACP hash over 3 aggregated links; migbench shapes one interlink per rack and has no link aggregation to probe",
    numbers: {},
    test: null,
  });
  return out;
}
