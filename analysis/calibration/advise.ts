/**
 * Plan advisor: predicts, for a set of moves, the completion time, mean
 * migration time and energy of sequential, parallel, capped-k and
 * per-server-k plans from calibrated parameters, and picks one.
 *
 * Each migration follows the QEMU-like pre-copy model (models/precopy.ts)
 * at the bandwidth it gets; concurrent migrations share every link
 * direction they cross max-min fairly (water-filling, as TCP flows roughly
 * do), so a shared interlink slows them all, and more pages get re-sent. As
 * shares change while others start and end, a migration advances at
 * 1 / d(current share) of its work per second (exact at a constant share).
 * A migration whose share never lets it converge runs until max_time and is
 * counted as cancelled. Energy is mVM's E = alpha * V + beta per migration
 * with V the predicted volume. Pure: the caller resolves the spec.
 */
import { buildPlanGraph, type MigrateAction, type PlanAction, type PlanGraph, type PlanMove } from '../../harness/plan/graph.ts';
import { PlanSpec, type PlanSpecT } from '../../harness/plan/schema.ts';
import { simulate, type ProgressModel } from '../../harness/plan/simulate.ts';
import { UserError } from '../../harness/util/errors.ts';
import type { HotColdParams } from '../models/duration.ts';
import { simulatePrecopy } from '../models/precopy.ts';

/** What the advisor knows of one VM to move. */
export interface AdviseVm {
  workload: string;
  hc: HotColdParams;
  /** Non-zero memory the bulk pass sends, MiB. */
  muMiB: number;
  muSource: 'measured' | 'configured';
}

export interface AdviseInput {
  moves: PlanMove[];
  /** Per moved VM. */
  vms: ReadonlyMap<string, AdviseVm>;
  /** Link directions a migration from -> to crosses. */
  resources: (from: string, to: string) => string[];
  /** Goodput of a link direction, MiB/s. */
  capacityMiBps: (resource: string) => number;
  downtimeLimitS: number;
  maxTimeS: number;
  /** migration.max_bandwidth, MiB/s, when set. */
  maxBandwidthMiBps: number | null;
  syncS: number;
  /** QEMU setup before the first page, s (part of QEMU's total time). */
  setupS: number;
  /** Harness time per migration action outside QEMU's total time (destination start, QMP), s. */
  overheadS: number;
  energy: { alpha: number; beta: number } | null;
  bootS: number;
  shutdownS: number;
}

export interface MigrationForecast {
  vm: string;
  from: string;
  to: string;
  startS: number;
  endS: number;
  /** Predicted QEMU total time (action span less the harness overhead), s. */
  migrationS: number;
  /** Time-weighted mean bandwidth share, MiB/s. */
  meanBwMiBps: number;
  transferredMiB: number;
  converges: boolean;
}

export interface PlanForecast {
  label: string;
  plan: PlanSpecT;
  /** Set when the plan cannot be built from these moves (e.g. a sync unit larger than k). */
  error?: string;
  completionS: number;
  meanMigrationS: number;
  /** Sum over migrations of alpha * V + beta, J; null without an energy calibration. */
  energyJ: number | null;
  transferredMB: number;
  /** Migrations predicted not to converge (cancelled at max_time). */
  cancelled: number;
  peakConcurrent: number;
  /** Link direction that limited migrations longest, with the most migrations sharing it at once. */
  bottleneck: { resource: string; sharedBy: number } | null;
  migrations: MigrationForecast[];
}

export interface Advice {
  plans: PlanForecast[];
  /** Label of the recommended plan, null when no plan could be predicted. */
  pick: string | null;
  why: string;
}

/** Bandwidth of each flow (a list of resources) under max-min fairness. */
export function maxMinShares(flows: readonly (readonly string[])[], capacity: (r: string) => number): number[] {
  const share = flows.map(() => NaN);
  const left = new Map<string, number>();
  for (const f of flows) for (const r of f) left.set(r, capacity(r));
  const open = new Set(flows.map((_, i) => i));
  while (open.size) {
    // the most contended resource fixes the share of every open flow crossing it
    let best = Infinity;
    let bestRes: string | null = null;
    for (const [r, cap] of left) {
      const n = [...open].filter((i) => flows[i].includes(r)).length;
      if (n && cap / n < best) {
        best = cap / n;
        bestRes = r;
      }
    }
    if (bestRes === null) {
      for (const i of open) share[i] = Infinity;
      break;
    }
    for (const i of [...open]) {
      if (!flows[i].includes(bestRes)) continue;
      share[i] = Math.max(0, best);
      open.delete(i);
      for (const r of flows[i]) left.set(r, left.get(r)! - share[i]);
    }
  }
  return share;
}

interface AtRate {
  /** Action span at this bandwidth, s (QEMU total + harness overhead). */
  spanS: number;
  converges: boolean;
  transferredMiB: number;
}

const planKey = (p: PlanSpecT) => JSON.stringify([p.kind, p.k ?? null, p.dst_k ?? null, p.groups ?? null, p.after, p.sync]);

export function planLabel(p: PlanSpecT): string {
  const k = p.k !== undefined ? ` k=${p.k}` : '';
  const dstK = p.dst_k !== undefined ? ` dst_k=${p.dst_k}` : '';
  return p.kind + k + dstK + (p.groups ? ` (${p.groups.length} groups)` : '');
}

/** Plans worth comparing for these moves, keeping the spec plan's constraints (after, sync, boot, shutdown). */
export function candidatePlans(moves: readonly PlanMove[], specPlan: PlanSpecT, maxK = 8): PlanSpecT[] {
  const base = { after: specPlan.after, sync: specPlan.sync, boot: specPlan.boot, shutdown: specPlan.shutdown };
  const out: PlanSpecT[] = [PlanSpec.parse({ ...base, kind: 'sequential' }), PlanSpec.parse({ ...base, kind: 'parallel' })];
  const n = moves.length;
  for (let k = 2; k < Math.min(n, maxK + 1); k++) out.push(PlanSpec.parse({ ...base, kind: 'capped', k }));
  const perSource = new Map<string, number>();
  for (const m of moves) perSource.set(m.from, (perSource.get(m.from) ?? 0) + 1);
  const widest = Math.max(0, ...perSource.values());
  // with one source, per_server k is capped k; at k >= the busiest source it is parallel
  if (perSource.size > 1) for (let k = 1; k < Math.min(widest, maxK + 1); k++) out.push(PlanSpec.parse({ ...base, kind: 'per_server', k }));
  const seen = new Set(out.map(planKey));
  if (!seen.has(planKey(specPlan))) out.push(specPlan);
  return out;
}

/** A migration's prediction at one bandwidth, cached per VM and rate. */
function rateModel(input: AdviseInput): (vm: string, bw: number) => AtRate {
  const cache = new Map<string, AtRate>();
  return (vm, bwIn) => {
    const bw = input.maxBandwidthMiBps !== null ? Math.min(bwIn, input.maxBandwidthMiBps) : bwIn;
    const key = `${vm}|${bw.toPrecision(9)}`;
    const hit = cache.get(key);
    if (hit) return hit;
    const v = input.vms.get(vm)!;
    const q = simulatePrecopy(v.hc, {
      bw,
      mu: v.muMiB,
      D: input.downtimeLimitS,
      setup: input.setupS,
      syncS: input.syncS,
      maxTime: input.maxTimeS,
    });
    const r: AtRate =
      q.converges && q.d <= input.maxTimeS
        ? { spanS: q.d + input.overheadS, converges: true, transferredMiB: q.transferred }
        : // the harness cancels at max_time; until then QEMU keeps sending at the full share
          {
            spanS: input.maxTimeS + input.overheadS,
            converges: false,
            transferredMiB: (Number.isFinite(bw) ? bw : 0) * Math.max(0, input.maxTimeS - input.setupS),
          };
    cache.set(key, r);
    return r;
  };
}

export function forecastPlan(graph: PlanGraph, input: AdviseInput, label = planLabel(graph.plan)): PlanForecast {
  const at = rateModel(input);
  const flows = new Map<string, string[]>();
  const flowOf = (a: MigrateAction) => {
    let f = flows.get(a.id);
    if (!f) flows.set(a.id, (f = input.resources(a.from, a.to)));
    return f;
  };
  const shares = (migs: readonly MigrateAction[]) => maxMinShares(migs.map(flowOf), input.capacityMiBps);
  const powerS = (a: PlanAction) => (a.kind === 'power-on' ? input.bootS : input.shutdownS);
  // work is 1 per action; a migration advances at 1 / span(its current share)
  const model: ProgressModel = {
    work: (a) => (a.kind === 'migrate' ? 1 : powerS(a) > 0 ? 1 : 0),
    rates: (running) => {
      const migs = running.filter((a): a is MigrateAction => a.kind === 'migrate');
      const s = shares(migs);
      const rateOf = new Map(migs.map((a, i) => [a.id, 1 / at(a.vm, s[i]).spanS]));
      return running.map((a) => (a.kind === 'migrate' ? rateOf.get(a.id)! : 1 / (powerS(a) || 1)));
    },
  };
  const schedule = simulate(graph, model);
  const migItems = schedule.items.filter((i): i is typeof i & { action: MigrateAction } => i.action.kind === 'migrate');

  // replay the schedule interval by interval: volume sent and bandwidth held at each share
  const times = [...new Set(migItems.flatMap((i) => [i.start, i.end]))].sort((a, b) => a - b);
  const acc = new Map(migItems.map((i) => [i.action.id, { mib: 0, bwTime: 0 }]));
  const limiting = new Map<string, { seconds: number; sharedBy: number }>();
  let peak = 0;
  for (let j = 0; j + 1 < times.length; j++) {
    const [t0, t1] = [times[j], times[j + 1]];
    const running = migItems.filter((i) => i.start <= t0 && t0 < i.end);
    if (!running.length) continue;
    peak = Math.max(peak, running.length);
    const s = shares(running.map((i) => i.action));
    running.forEach((i, n) => {
      const r = at(i.action.vm, s[n]);
      const a = acc.get(i.action.id)!;
      a.mib += ((t1 - t0) / r.spanS) * r.transferredMiB;
      a.bwTime += s[n] * (t1 - t0);
      // the resource giving this flow its share: the first at which capacity / users is smallest
      const flow = flowOf(i.action);
      const users = (res: string) => running.filter((x) => flowOf(x.action).includes(res)).length;
      const tight = flow.reduce((b, res) => (input.capacityMiBps(res) / users(res) < input.capacityMiBps(b) / users(b) ? res : b));
      const l = limiting.get(tight) ?? { seconds: 0, sharedBy: 0 };
      l.seconds += t1 - t0;
      l.sharedBy = Math.max(l.sharedBy, users(tight));
      limiting.set(tight, l);
    });
  }
  const migrations: MigrationForecast[] = migItems.map((i) => {
    const a = acc.get(i.action.id)!;
    const span = i.end - i.start;
    return {
      vm: i.action.vm,
      from: i.action.from,
      to: i.action.to,
      startS: i.start,
      endS: i.end,
      migrationS: Math.max(0, span - input.overheadS),
      meanBwMiBps: span > 0 ? a.bwTime / span : 0,
      transferredMiB: a.mib,
      // only a migration held at a non-converging share the whole time reaches max_time
      converges: span < input.maxTimeS + input.overheadS - 1e-6,
    };
  });
  const top = [...limiting].sort((x, y) => y[1].seconds - x[1].seconds || y[1].sharedBy - x[1].sharedBy)[0];
  const mb = (mib: number) => (mib * 2 ** 20) / 1e6;
  return {
    label,
    plan: graph.plan,
    completionS: schedule.completionMs,
    meanMigrationS: migrations.length ? migrations.reduce((s, m) => s + m.migrationS, 0) / migrations.length : 0,
    energyJ: input.energy ? migrations.reduce((s, m) => s + input.energy!.alpha * mb(m.transferredMiB) + input.energy!.beta, 0) : null,
    transferredMB: migrations.reduce((s, m) => s + mb(m.transferredMiB), 0),
    cancelled: migrations.filter((m) => !m.converges).length,
    peakConcurrent: peak,
    bottleneck: top ? { resource: top[0], sharedBy: top[1].sharedBy } : null,
    migrations,
  };
}

const s1 = (x: number) => `${x.toFixed(1)} s`;

/** Plans within this share of the fastest completion count as finishing together. */
export const TIE = 0.05;

/** The recommended plan and one sentence saying why. */
export function pickPlan(plans: readonly PlanForecast[]): { pick: string | null; why: string } {
  const ok = plans.filter((p) => !p.error);
  if (!ok.length) return { pick: null, why: 'no plan could be predicted for these moves' };
  // a plan that leaves migrations unconverged is a plan that fails; among the rest, the soonest done,
  // and among those finishing together, the shortest migrations (less time exposed), then the least energy
  const fewest = Math.min(...ok.map((p) => p.cancelled));
  const pool = ok.filter((p) => p.cancelled === fewest);
  const soonest = Math.min(...pool.map((p) => p.completionS));
  const tied = pool.filter((p) => p.completionS <= soonest * (1 + TIE));
  const best = [...tied].sort((a, b) => a.meanMigrationS - b.meanMigrationS || (a.energyJ ?? 0) - (b.energyJ ?? 0))[0];
  const parts = [
    `Pick ${best.label}: ${fewest ? `fewest unconverged migrations (${fewest}), ` : ''}predicted to finish in ${s1(best.completionS)}`,
  ];
  const seq = ok.find((p) => p.plan.kind === 'sequential');
  if (seq && seq !== best) {
    const gain = 1 - best.completionS / seq.completionS;
    parts.push(
      gain > 0.005
        ? `${(100 * gain).toFixed(0)} % sooner than sequential (${s1(seq.completionS)})`
        : `no sooner than sequential (${s1(seq.completionS)})`,
    );
  }
  const rival = tied.filter((p) => p !== best).sort((a, b) => a.completionS - b.completionS)[0];
  if (rival && rival.meanMigrationS > best.meanMigrationS) {
    const b = rival.bottleneck;
    parts.push(
      `${rival.label} finishes about as soon (${s1(rival.completionS)}) but its migrations take ${s1(rival.meanMigrationS)} on average instead of ` +
        `${s1(best.meanMigrationS)}${b && b.sharedBy > 1 ? ` (${b.resource} shared ${b.sharedBy} ways)` : ''}`,
    );
  } else if (best.plan.kind === 'sequential') {
    const par = ok.find((p) => p.plan.kind === 'parallel');
    const b = par?.bottleneck;
    if (par)
      parts.push(
        `running them at once gains nothing${b && b.sharedBy > 1 ? ` (they share ${b.resource})` : ''} ` +
          `and parallel migrations take ${s1(par.meanMigrationS)} instead of ${s1(best.meanMigrationS)}`,
      );
  }
  const failing = ok.filter((p) => p.cancelled > fewest);
  if (failing.length) parts.push(`${failing.map((p) => p.label).join(', ')} would leave migrations unconverged`);
  return { pick: best.label, why: `${parts.join('; ')}.` };
}

/** Forecasts every candidate plan of the moves and picks one. */
export function advise(input: AdviseInput, specPlan: PlanSpecT, source: { file?: string } = {}): Advice {
  const plans = candidatePlans(input.moves, specPlan).map((plan): PlanForecast => {
    try {
      return forecastPlan(buildPlanGraph(input.moves, plan, { file: source.file }), input);
    } catch (e) {
      if (!(e instanceof UserError)) throw e;
      return {
        label: planLabel(plan),
        plan,
        error: e.message,
        completionS: NaN,
        meanMigrationS: NaN,
        energyJ: null,
        transferredMB: NaN,
        cancelled: 0,
        peakConcurrent: 0,
        bottleneck: null,
        migrations: [],
      };
    }
  });
  return { plans, ...pickPlan(plans) };
}
