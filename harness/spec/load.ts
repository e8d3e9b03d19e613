import { readFileSync } from 'node:fs';
import { parseDocument } from 'yaml';
import type { z } from 'zod';
import { UserError } from '../util/errors.ts';
import { hostNames, linkNames } from '../testbed/topology.ts';
import { ExperimentSpec, type Spec } from './schema.ts';

/** A spec problem located by its path inside the file, e.g. testbed.racks[0].hosts. */
export interface SpecIssue {
  path: string;
  message: string;
}

export function formatPath(path: readonly PropertyKey[]): string {
  let out = '';
  for (const p of path) out += typeof p === 'number' ? `[${p}]` : out ? `.${String(p)}` : String(p);
  return out || '(top level)';
}

function zodIssues(err: z.ZodError): SpecIssue[] {
  return err.issues.map((i) => {
    if (i.code === 'unrecognized_keys') {
      const keys = (i as { keys: string[] }).keys;
      return {
        path: formatPath([...i.path, keys[0]]),
        message: `unknown key '${keys.join("', '")}'`,
      };
    }
    if (i.code === 'invalid_type' && /received undefined/.test(i.message)) {
      return { path: formatPath(i.path), message: `missing; ${i.message.replace(/^Invalid input: /, '').replace(/, received undefined$/, '')}` };
    }
    if (i.code === 'too_small' && (i as { origin?: string }).origin === 'number') {
      const min = (i as { minimum?: number | bigint }).minimum;
      return { path: formatPath(i.path), message: `expected a number >= ${String(min)}` };
    }
    return { path: formatPath(i.path), message: i.message.replace(/^Invalid input: /, '') };
  });
}

/** Checks that need the whole spec: names that must refer to something. */
export function semanticIssues(spec: Spec): SpecIssue[] {
  const issues: SpecIssue[] = [];
  const rackOf = new Map<string, string>();
  spec.testbed.racks.forEach((rack, ri) => {
    for (const h of hostNames(rack)) {
      const prev = rackOf.get(h);
      if (prev !== undefined) {
        issues.push({ path: `testbed.racks[${ri}].hosts`, message: `host '${h}' is already in rack '${prev}'; a host belongs to one rack` });
      } else rackOf.set(h, rack.name);
    }
  });
  const rackNames = spec.testbed.racks.map((r) => r.name);
  rackNames.forEach((n, i) => {
    if (rackNames.indexOf(n) !== i) issues.push({ path: `testbed.racks[${i}].name`, message: `rack name '${n}' is used twice` });
  });
  const links = new Set(linkNames(spec.testbed));
  spec.testbed.shaping.forEach((s, i) => {
    if (!links.has(s.link)) {
      const sample = [...links].slice(0, 6).join(', ');
      issues.push({ path: `testbed.shaping[${i}].link`, message: `unknown link '${s.link}'; links of this testbed are: ${sample}${links.size > 6 ? ', ...' : ''}` });
    }
  });
  const vmNames = new Set<string>();
  spec.vms.forEach((vm, i) => {
    if (vmNames.has(vm.name)) issues.push({ path: `vms[${i}].name`, message: `vm name '${vm.name}' is used twice` });
    vmNames.add(vm.name);
    if (!rackOf.has(vm.host)) issues.push({ path: `vms[${i}].host`, message: `unknown host '${vm.host}'; hosts are: ${[...rackOf.keys()].join(', ')}` });
  });
  spec.migration?.moves.forEach((mv, i) => {
    if (!vmNames.has(mv.vm)) issues.push({ path: `migration.moves[${i}].vm`, message: `unknown vm '${mv.vm}'` });
    if (!rackOf.has(mv.to)) issues.push({ path: `migration.moves[${i}].to`, message: `unknown host '${mv.to}'` });
  });
  return issues;
}

export function specError(file: string, issues: SpecIssue[]): UserError {
  const lines = issues.map((i) => `${file}: ${i.path}: ${i.message}`);
  return new UserError(lines.length === 1 ? lines[0] : `${file}: ${issues.length} problems\n  ${lines.join('\n  ')}`);
}

/** Validates an already-parsed spec object; throws UserError naming file and path. */
export function validateSpec(raw: unknown, file: string): Spec {
  const parsed = ExperimentSpec.safeParse(raw);
  if (!parsed.success) throw specError(file, zodIssues(parsed.error));
  const issues = semanticIssues(parsed.data);
  if (issues.length) throw specError(file, issues);
  return parsed.data;
}

export function parseSpecText(text: string, file: string): { spec: Spec; raw: unknown } {
  const doc = parseDocument(text, { prettyErrors: true, uniqueKeys: true });
  if (doc.errors.length) {
    const e = doc.errors[0];
    const pos = e.linePos?.[0];
    throw new UserError(`${file}${pos ? `:${pos.line}:${pos.col}` : ''}: not valid YAML: ${e.message.split('\n')[0]}`);
  }
  const raw: unknown = doc.toJS();
  if (raw === null || typeof raw !== 'object' || Array.isArray(raw)) {
    throw new UserError(`${file}: expected a YAML mapping with at least 'name' and 'testbed'`);
  }
  return { spec: validateSpec(raw, file), raw };
}

export function loadSpec(file: string): { spec: Spec; raw: unknown; text: string } {
  let text: string;
  try {
    text = readFileSync(file, 'utf8');
  } catch (e) {
    throw new UserError(`cannot read spec '${file}': ${(e as NodeJS.ErrnoException).code === 'ENOENT' ? 'no such file' : (e as Error).message}`);
  }
  return { ...parseSpecText(text, file), text };
}

/** The testbed id used in namespace names. */
export function testbedId(spec: Spec): string {
  return spec.testbed.id ?? spec.name.slice(0, 12).replace(/-+$/, '');
}
