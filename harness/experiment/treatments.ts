import { seededRng } from '../util/rng.ts';
import { createHash } from 'node:crypto';
import { UserError } from '../util/errors.ts';
import { validateSpec } from '../spec/load.ts';
import type { Spec } from '../spec/schema.ts';

/**
 * Factors -> treatments: the full factorial of the levels, each applied to a
 * copy of the raw spec and re-validated (a level can be as wrong as any
 * other spec value). A treatment's id derives from its levels only, so the
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

/** Splits 'vms[0].workload.wset' into ['vms', 0, 'workload', 'wset']. */
export function parsePath(path: string): Array<string | number> {
  const out: Array<string | number> = [];
  for (const part of path.split('.')) {
    const m = /^([^[\]]+)((?:\[\d+\])*)$/.exec(part);
    if (!m) throw new Error(`bad path segment '${part}'`);
    out.push(m[1]);
    for (const idx of m[2].matchAll(/\[(\d+)\]/g)) out.push(Number(idx[1]));
  }
  return out;
}

/** Sets a value at a path in a deep copy; the path's parent must exist. */
export function setPath(obj: unknown, path: string, value: unknown): unknown {
  const copy = structuredClone(obj) as Record<string | number, unknown>;
  const parts = parsePath(path);
  let cur: Record<string | number, unknown> = copy;
  for (let i = 0; i < parts.length - 1; i++) {
    const next = cur[parts[i]];
    if (next === null || typeof next !== 'object') throw new Error(`'${parts.slice(0, i + 1).join('.')}' does not exist in the spec`);
    cur = next as Record<string | number, unknown>;
  }
  cur[parts[parts.length - 1]] = value;
  return copy;
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

export function expandTreatments(spec: Spec, raw: unknown, file: string): Treatment[] {
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
    const resolved = validateSpec(doc, `${file} (treatment ${JSON.stringify(levels)})`);
    return { id: treatmentId(levels), index, levels, spec: resolved };
  });
  if (spec.order.kind === 'random') return shuffle(treatments, spec.order.seed ?? 1);
  return treatments;
}
