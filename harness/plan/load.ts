import { readFileSync } from 'node:fs';
import { parseDocument } from 'yaml';
import { formatPath, parseSpecText } from '../spec/load.ts';
import type { Spec } from '../spec/schema.ts';
import { UserError } from '../util/errors.ts';
import { movesFromSpec } from './estimate.ts';
import { buildPlanGraph, type PlanGraph } from './graph.ts';
import { PlanSpec, type PlanSpecT } from './schema.ts';

/**
 * Reads a spec and its migration plan. The plan is validated with
 * harness/plan/schema.ts and the rest of the spec with the spec schema, so
 * plans with groups/after/sync/boot/shutdown work whether or not the spec
 * schema has adopted the full plan schema yet.
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

export function loadPlan(file: string): LoadedPlan {
  let text: string;
  try {
    text = readFileSync(file, 'utf8');
  } catch (e) {
    throw new UserError(`cannot read spec '${file}': ${(e as NodeJS.ErrnoException).code === 'ENOENT' ? 'no such file' : (e as Error).message}`);
  }
  const doc = parseDocument(text, { uniqueKeys: true });
  // syntax errors: let the spec loader word them (with line and column)
  if (doc.errors.length) {
    parseSpecText(text, file);
    throw new UserError(`${file}: not valid YAML`);
  }
  const rawPlan: unknown = doc.getIn(['migration', 'plan'], false);
  const planJs: unknown = rawPlan && typeof rawPlan === 'object' && 'toJSON' in rawPlan ? (rawPlan as { toJSON(): unknown }).toJSON() : rawPlan;
  const plan = validatePlanSpec(planJs, file);
  if (doc.hasIn(['migration', 'plan'])) doc.deleteIn(['migration', 'plan']);
  const { spec } = parseSpecText(doc.toString(), file);
  if (!spec.migration) throw new UserError(`${file}: migration: missing; 'plan show' needs migration.moves and migration.plan`);
  const graph = buildPlanGraph(movesFromSpec(spec, file), plan, { file });
  return { spec, plan, graph };
}
