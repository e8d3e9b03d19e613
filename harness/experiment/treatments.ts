import { seededRng } from '../util/rng.ts';
import { createHash } from 'node:crypto';
import { UserError } from '../util/errors.ts';
import { factorPathProblem, loadSpec, parseFactorPath, validateSpec } from '../spec/load.ts';
import type { Spec } from '../spec/schema.ts';
import { movesFromSpec } from '../plan/estimate.ts';
import { buildPlanGraph } from '../plan/graph.ts';

/**
 * Factors -> treatments: the full factorial of the levels, each applied to a
 * copy of the raw spec and re-validated (a level can be as wrong as any
 * other spec value), its migration plan built (an impossible plan fails
 * here, before any image build or testbed action, not minutes into a run). A treatment's id derives from its levels only, so the
 * same treatment has the same id in every run and campaigns can be compared.
 */
export type Levels = Record<string, unknown>;

export interface Treatment {
  id: string;
  /** Position in the full factorial (before ordering). */
  index: number;
  levels: Levels;
  spec: Spec;
}

export function treatmentId(levels: Levels): string {
  const keys = Object.keys(levels).sort();
  const canon = JSON.stringify(keys.map((k) => [k, levels[k]]));
  return `t${createHash('sha256').update(canon).digest('hex').slice(0, 8)}`;
}

/** Treatments a campaign may have: the product of the level counts is checked before anything is expanded. */
export const MAX_TREATMENTS = 10_000;

/** Splits 'vms[0].workload.wset' into ['vms', 0, 'workload', 'wset']. */
export function parsePath(path: string): Array<string | number> {
  const parts = parseFactorPath(path);
  if (!parts) throw new Error(`bad path '${path}'`);
  return parts;
}

/** Sets a value at a path in a deep copy; the path must lead into the spec (see factorPathProblem). */
export function setPath(obj: unknown, path: string, value: unknown): unknown {
  const problem = factorPathProblem(obj, path);
  if (problem) throw new Error(problem);
  const copy = structuredClone(obj) as Record<string | number, unknown>;
  const parts = parsePath(path);
  let cur: Record<string | number, unknown> = copy;
  for (let i = 0; i < parts.length - 1; i++) cur = cur[parts[i]] as Record<string | number, unknown>;
  Object.defineProperty(cur, parts[parts.length - 1], { value, enumerable: true, writable: true, configurable: true });
  return copy;
}

/** How many treatments the factors make, without making them. */
export function treatmentCount(factors: Record<string, unknown[]>): number {
  return Object.values(factors).reduce((n, levels) => n * levels.length, 1);
}

export function fullFactorial(factors: Record<string, unknown[]>): Levels[] {
  let combos: Levels[] = [{}];
  for (const [path, levels] of Object.entries(factors)) {
    combos = combos.flatMap((c) => levels.map((l) => ({ ...c, [path]: l })));
  }
  return combos;
}

export function shuffle<T>(xs: T[], seed: number): T[] {
  const out = [...xs];
  const r = seededRng(seed).next;
  for (let i = out.length - 1; i > 0; i--) {
    const j = Math.floor(r() * (i + 1));
    [out[i], out[j]] = [out[j], out[i]];
  }
  return out;
}

/** Builds a spec's migration plan, which rejects an impossible one with the spec path. */
export function checkPlan(spec: Spec, file: string): void {
  if (spec.migration) buildPlanGraph(movesFromSpec(spec, file), spec.migration.plan, { file });
}

/**
 * Every treatment, each one validated as a whole spec and its plan built:
 * the checks that need no testbed, done before anything runs.
 */
export function expandTreatments(spec: Spec, raw: unknown, file: string): Treatment[] {
  const n = treatmentCount(spec.factors);
  if (n > MAX_TREATMENTS) {
    const sizes = Object.values(spec.factors)
      .map((l) => l.length)
      .join(' x ');
    throw new UserError(
      `${file}: factors: ${sizes} = ${n.toExponential(2)} treatments, more than the ${MAX_TREATMENTS} a campaign may have; use fewer factors or levels`,
    );
  }
  const base = structuredClone(raw) as Record<string, unknown>;
  delete base.factors;
  const combos = fullFactorial(spec.factors);
  const treatments = combos.map((levels, index) => {
    let doc: unknown = base;
    for (const [path, value] of Object.entries(levels)) {
      try {
        doc = setPath(doc, path, value);
      } catch (e) {
        throw new UserError(`${file}: factors.${path}: ${(e as Error).message}`);
      }
    }
    const where = combos.length > 1 ? `${file} (treatment ${JSON.stringify(levels)})` : file;
    const resolved = validateSpec(doc, where);
    checkPlan(resolved, where);
    return { id: treatmentId(levels), index, levels, spec: resolved };
  });
  if (spec.order.kind === 'random') return shuffle(treatments, spec.order.seed ?? 1);
  return treatments;
}

/**
 * Everything about a spec file that can be checked without a testbed:
 * YAML, schema, bounds, names, factor paths, every treatment and its plan.
 * `run`, `run --dry-run` and `plan show` call it before anything is built.
 */
export function checkExperiment(
  file: string,
  needs: 'run' | 'plan' = 'run',
): { spec: Spec; raw: unknown; text: string; treatments: Treatment[] } {
  const loaded = loadSpec(file);
  const { spec } = loaded;
  if (!spec.migration) throw new UserError(`${file}: migration: missing; '${needs === 'run' ? 'run' : 'plan show'}' needs migration.moves`);
  if (needs === 'run' && spec.vms.length === 0) throw new UserError(`${file}: vms: 'run' needs at least one VM`);
  return { ...loaded, treatments: expandTreatments(spec, loaded.raw, file) };
}
