import { formatPath, loadSpec } from '../spec/load.ts';
import type { Spec } from '../spec/schema.ts';
import { UserError } from '../util/errors.ts';
import { movesFromSpec } from './estimate.ts';
import { buildPlanGraph, type PlanGraph } from './graph.ts';
import { PlanSpec, type PlanSpecT } from './schema.ts';

/**
 * A spec's migration plan, built from the validated spec (the spec schema
 * includes harness/plan/schema.ts), so anchors, aliases and merge keys in
 * the file work as everywhere else. validatePlanSpec checks a plan object
 * on its own (tests, callers without a spec).
 */

export function validatePlanSpec(raw: unknown, file?: string, path = 'migration.plan'): PlanSpecT {
  const parsed = PlanSpec.safeParse(raw ?? {});
  if (parsed.success) return parsed.data;
  const lines = parsed.error.issues.map((i) => {
    const keys = i.code === 'unrecognized_keys' ? (i as { keys: string[] }).keys : null;
    const at = keys ? [...i.path, keys[0]] : i.path;
    const p = at.length ? `${path}${formatPath(at).replace(/^(?!\[)/, '.')}` : path;
    const msg = keys ? `unknown key '${keys.join("', '")}'` : i.message.replace(/^Invalid input: /, '');
    return `${file ? `${file}: ` : ''}${p}: ${msg}`;
  });
  throw new UserError(lines.length === 1 ? lines[0] : `${file ?? 'plan'}: ${lines.length} problems\n  ${lines.join('\n  ')}`);
}

export interface LoadedPlan {
  spec: Spec;
  plan: PlanSpecT;
  graph: PlanGraph;
}

/** The plan of an already-validated spec; `file` names the spec in errors. */
export function planOf(spec: Spec, file: string): LoadedPlan {
  if (!spec.migration) throw new UserError(`${file}: migration: missing; 'plan show' needs migration.moves and migration.plan`);
  const plan = spec.migration.plan;
  return { spec, plan, graph: buildPlanGraph(movesFromSpec(spec, file), plan, { file }) };
}

export function loadPlan(file: string): LoadedPlan {
  return planOf(loadSpec(file).spec, file);
}
