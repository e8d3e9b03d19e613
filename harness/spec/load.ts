import { createHash } from 'node:crypto';
import { readFileSync, statSync } from 'node:fs';
import { isAlias, isCollection, isPair, isScalar, LineCounter, parseDocument, visit, type Document } from 'yaml';
import type { z } from 'zod';
import { UserError } from '../util/errors.ts';
import { hostNames, linkNames } from './names.ts';
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
      return {
        path: formatPath(i.path),
        message: `missing; ${i.message.replace(/^Invalid input: /, '').replace(/, received undefined$/, '')}`,
      };
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
        issues.push({
          path: `testbed.racks[${ri}].hosts`,
          message: `host '${h}' is already in rack '${prev}'; a host belongs to one rack`,
        });
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
      issues.push({
        path: `testbed.shaping[${i}].link`,
        message: `unknown link '${s.link}'; links of this testbed are: ${sample}${links.size > 6 ? ', ...' : ''}`,
      });
    }
  });
  const vmNames = new Set<string>();
  spec.vms.forEach((vm, i) => {
    if (vmNames.has(vm.name)) issues.push({ path: `vms[${i}].name`, message: `vm name '${vm.name}' is used twice` });
    vmNames.add(vm.name);
    if (!rackOf.has(vm.host))
      issues.push({ path: `vms[${i}].host`, message: `unknown host '${vm.host}'; hosts are: ${[...rackOf.keys()].join(', ')}` });
  });
  spec.migration?.moves.forEach((mv, i) => {
    if (!vmNames.has(mv.vm)) issues.push({ path: `migration.moves[${i}].vm`, message: `unknown vm '${mv.vm}'` });
    if (!rackOf.has(mv.to)) issues.push({ path: `migration.moves[${i}].to`, message: `unknown host '${mv.to}'` });
    // a disk of its own on each host is only consistent after a move when block migration copies it
    const vi = spec.vms.findIndex((v) => v.name === mv.vm);
    if (vi >= 0 && spec.vms[vi].disk?.storage === 'local' && spec.migration?.mode !== 'block') {
      issues.push({
        path: `vms[${vi}].disk.storage`,
        message: `vm '${mv.vm}' has a local disk but migration.mode is '${spec.migration?.mode}': use mode 'block' (copies the disk) or storage 'shared'`,
      });
    }
  });
  if (spec.migration?.mode === 'block' && spec.testbed.driver !== 'local') {
    issues.push({
      path: 'migration.mode',
      message: "block migration is implemented for the local driver only; use testbed.driver 'local'",
    });
  }
  if (spec.testbed.driver !== 'local') {
    spec.vms.forEach((vm, i) => {
      if (vm.disk)
        issues.push({ path: `vms[${i}].disk`, message: "VM disks are implemented for the local driver only; use testbed.driver 'local'" });
    });
  }
  return issues;
}

export function specError(file: string, issues: SpecIssue[]): UserError {
  const lines = issues.map((i) => `${file}: ${i.path}: ${i.message}`);
  return new UserError(lines.length === 1 ? lines[0] : `${file}: ${issues.length} problems\n  ${lines.join('\n  ')}`);
}

/** Path segments a factor may never walk through: they reach Object.prototype, not the spec. */
const FORBIDDEN_SEGMENTS = new Set(['__proto__', 'constructor', 'prototype']);
/** What a factor may vary; name, factors, repetitions, order and compare describe the campaign, not a treatment. */
const FACTOR_ROOTS = new Set(['testbed', 'vms', 'migration', 'measure']);

/** Splits 'vms[0].workload.wset' into ['vms', 0, 'workload', 'wset']; null when malformed. */
export function parseFactorPath(path: string): Array<string | number> | null {
  const out: Array<string | number> = [];
  for (const part of path.split('.')) {
    const m = /^([A-Za-z_][A-Za-z0-9_]*)((?:\[\d{1,6}\])*)$/.exec(part);
    if (!m) return null;
    out.push(m[1]);
    for (const idx of m[2].matchAll(/\[(\d+)\]/g)) out.push(Number(idx[1]));
  }
  return out;
}

/**
 * Why a factor path does not lead into the spec as written, or null when it
 * does: every step but the last must exist (own properties only), the last
 * may be an optional key not written yet or an existing array element.
 */
export function factorPathProblem(raw: unknown, path: string): string | null {
  const parts = parseFactorPath(path);
  if (!parts) return "expected a path like 'vms[0].workload.wset' (keys, [index])";
  const bad = parts.find((p) => typeof p === 'string' && FORBIDDEN_SEGMENTS.has(p));
  if (bad !== undefined) return `'${String(bad)}' is not a spec key; a factor path cannot go through it`;
  if (!FACTOR_ROOTS.has(parts[0] as string)) return `a factor varies testbed, vms, migration or measure, not '${String(parts[0])}'`;
  let cur: unknown = raw;
  for (let i = 0; i < parts.length; i++) {
    const p = parts[i];
    const at = formatPath(parts.slice(0, i + 1));
    const last = i === parts.length - 1;
    if (typeof p === 'number') {
      if (!Array.isArray(cur)) return `'${formatPath(parts.slice(0, i))}' is not a list in the spec`;
      if (p >= cur.length) return `'${at}' does not exist in the spec (the list has ${cur.length} entries)`;
      cur = cur[p];
    } else {
      if (cur === null || typeof cur !== 'object' || Array.isArray(cur))
        return `'${formatPath(parts.slice(0, i))}' is not a mapping in the spec`;
      if (!Object.hasOwn(cur, p)) {
        if (last) return null; // an optional key the spec leaves out: the schema checks the level
        return `'${at}' does not exist in the spec; write it in the spec so the factor can vary it`;
      }
      cur = (cur as Record<string, unknown>)[p];
    }
  }
  return null;
}

/** How a factor is named in messages: factors.<path>, or quoted when the path is not one. */
export function factorLabel(path: string): string {
  return /^[A-Za-z0-9_.[\]-]+$/.test(path) ? `factors.${path}` : `factors[${JSON.stringify(path)}]`;
}

/** Validates an already-parsed spec object; throws UserError naming file and path. */
export function validateSpec(raw: unknown, file: string): Spec {
  const parsed = ExperimentSpec.safeParse(raw);
  if (!parsed.success) throw specError(file, zodIssues(parsed.error));
  const issues = semanticIssues(parsed.data);
  for (const path of Object.keys(parsed.data.factors)) {
    const problem = factorPathProblem(raw, path);
    if (problem) issues.push({ path: factorLabel(path), message: problem });
  }
  if (issues.length) throw specError(file, issues);
  return parsed.data;
}

/** Larger files are not specs; reading them whole would only cost memory. */
export const MAX_SPEC_BYTES = 1 << 20;
/** Nesting a spec may use (path entries: a pair and its collection per level); the deepest spec path has ~8 levels. */
const MAX_DEPTH = 64;
/** Alias expansions a spec may use (yaml's guard against a billion-laughs document). */
export const MAX_ALIAS_COUNT = 1000;

function yamlError(file: string, lc: LineCounter, offset: number | undefined, message: string): UserError {
  const pos = offset !== undefined ? lc.linePos(offset) : undefined;
  return new UserError(`${file}${pos ? `:${pos.line}:${pos.col}` : ''}: ${message}`);
}

/** Refuses what YAML allows but a spec cannot mean: aliases to no anchor, collection keys, unknown tags. */
function checkYamlNodes(doc: Document, file: string, lc: LineCounter): void {
  const anchors = new Set<string>();
  let problem: UserError | null = null;
  visit(doc, (_key, node, path) => {
    if (path.length > MAX_DEPTH) {
      problem = yamlError(
        file,
        lc,
        (node as { range?: [number] }).range?.[0],
        `not usable as a spec: nested deeper than ${MAX_DEPTH / 2} levels`,
      );
      return visit.BREAK;
    }
    if (isAlias(node)) {
      if (!anchors.has(node.source)) {
        problem = yamlError(file, lc, node.range?.[0], `not valid YAML: alias '*${node.source}' refers to no anchor defined before it`);
        return visit.BREAK;
      }
      return undefined;
    }
    const anchor = (node as { anchor?: string }).anchor;
    if (anchor) anchors.add(anchor);
    if (isPair(node) && isCollection(node.key)) {
      problem = yamlError(file, lc, node.key.range?.[0], 'not valid in a spec: a key must be a plain name, not a list or mapping');
      return visit.BREAK;
    }
    if (isPair(node) && isScalar(node.key) && FORBIDDEN_SEGMENTS.has(String(node.key.value))) {
      // as an object key it would set the prototype instead of a property
      problem = yamlError(file, lc, node.key.range?.[0], `not valid in a spec: '${String(node.key.value)}' is not a spec key`);
      return visit.BREAK;
    }
    return undefined;
  });
  if (problem) throw problem;
}

export function parseSpecText(text: string, file: string): { spec: Spec; raw: unknown } {
  if (text.length > MAX_SPEC_BYTES)
    throw new UserError(`${file}: (top level): ${text.length} characters; a spec is at most ${MAX_SPEC_BYTES} (1 MiB)`);
  const lineCounter = new LineCounter();
  let doc: Document;
  try {
    doc = parseDocument(text, { prettyErrors: true, uniqueKeys: true, merge: true, lineCounter });
  } catch (err) {
    // the parser recurses: a pathologically nested document can exhaust the stack
    throw new UserError(`${file}: not valid YAML: ${(err as Error).message.split('\n')[0]}`);
  }
  const e = doc.errors[0] ?? doc.warnings[0];
  if (e) {
    const pos = e.linePos?.[0];
    throw new UserError(`${file}${pos ? `:${pos.line}:${pos.col}` : ''}: not valid YAML: ${e.message.split('\n')[0]}`);
  }
  checkYamlNodes(doc, file, lineCounter);
  let raw: unknown;
  try {
    raw = doc.toJS({ maxAliasCount: MAX_ALIAS_COUNT });
  } catch (err) {
    // yaml throws ReferenceError for an alias bomb (and for aliases it cannot resolve)
    const first = firstAliasOffset(doc);
    throw yamlError(
      file,
      lineCounter,
      first,
      `not usable as a spec: ${(err as Error).message.replace(/\.$/, '')}; write the values out or use fewer aliases`,
    );
  }
  if (raw === null || typeof raw !== 'object' || Array.isArray(raw)) {
    throw new UserError(`${file}: (top level): expected a YAML mapping with at least 'name' and 'testbed'`);
  }
  return { spec: validateSpec(raw, file), raw };
}

function firstAliasOffset(doc: Document): number | undefined {
  let at: number | undefined;
  visit(doc, {
    Alias(_k, node) {
      at = node.range?.[0];
      return visit.BREAK;
    },
  });
  return at;
}

export function loadSpec(file: string): { spec: Spec; raw: unknown; text: string } {
  let text: string;
  try {
    if (statSync(file).size > MAX_SPEC_BYTES)
      throw new UserError(`${file}: (top level): larger than ${MAX_SPEC_BYTES} bytes (1 MiB); this is not a spec`);
    text = readFileSync(file, 'utf8');
  } catch (e) {
    if (e instanceof UserError) throw e;
    throw new UserError(
      `cannot read spec '${file}': ${(e as NodeJS.ErrnoException).code === 'ENOENT' ? 'no such file' : (e as Error).message}`,
    );
  }
  return { ...parseSpecText(text, file), text };
}

/** Testbed ids are namespace-name material: at most 12 characters from a-z, 0-9 and '-' (as an explicit testbed.id). */
export const TESTBED_ID_MAX = 12;

/**
 * The testbed id used in namespace names (mb-<id>-<host>): an explicit
 * testbed.id as written; else the experiment name when it fits; else a
 * prefix of the name and a hash of the whole name, so names that share
 * their first 12 characters (salfner-wset-a, salfner-wset-b) still get
 * different testbeds.
 */
export function testbedId(spec: Pick<Spec, 'name'> & { testbed: Pick<Spec['testbed'], 'id'> }): string {
  if (spec.testbed.id !== undefined) return spec.testbed.id;
  if (spec.name.length <= TESTBED_ID_MAX) return spec.name;
  const hash = createHash('sha256').update(spec.name).digest('hex').slice(0, 5);
  return `${spec.name.slice(0, TESTBED_ID_MAX - hash.length - 1).replace(/-+$/, '')}-${hash}`;
}
