/**
 * The history of nightly runs: `<dir>/history.jsonl`, one night per line,
 * and `<dir>/baseline.json` when a baseline night is pinned. A night holds
 * what trends and baselines need without reopening its run directory:
 * environment, per-treatment medians and spreads, failure counts, verdict.
 */
import { existsSync, readFileSync, rmSync } from 'node:fs';
import { basename, join } from 'node:path';
import { writeFileAtomic, writeJsonAtomic } from '../../harness/util/atomic-write.ts';
import { UserError } from '../../harness/util/errors.ts';
import { describeLevels, failureCounts, levelKey, type FailureCounts } from '../compare.ts';
import { quantile } from '../stats/descriptive.ts';
import { NUMERIC_METRICS, observations, type Level, type Migration, type NumericMetric, type RunDir } from '../rundir.ts';

export interface MetricSummary {
  n: number;
  median: number;
  /** Spread: quartiles and range of the night's repetitions. */
  q1: number;
  q3: number;
  min: number;
  max: number;
}

export interface NightTreatment {
  /** Factor levels as canonical JSON: how treatments are matched across nights. */
  key: string;
  scenario: string;
  levels: Record<string, Level>;
  failures: FailureCounts;
  metrics: Partial<Record<NumericMetric, MetricSummary>>;
}

/** What a night ran on; a change between nights is named in the report. */
export interface NightEnv {
  harness_commit: string | null;
  harness_version: string | null;
  qemu_version: string | null;
  host_kernel: string | null;
  guest_kernel: string | null;
  accelerator: string | null;
  hosts: string[];
  spec_hash: string | null;
}

export type NightVerdict = 'pass' | 'regression' | 'broken';

export interface Finding {
  scenario: string;
  metric: string;
  verdict: string;
  detail: string;
}

export interface HistoryChange {
  scenario: string;
  metric: string;
  /** Id of the first night after the step. */
  night: string;
  before: number;
  after: number;
  rel: number;
  /** Environment or spec changes on that night, if any (a likely cause). */
  coincides: string[];
}

export interface Night {
  id: string;
  run_dir: string | null;
  date: string;
  spec_file: string | null;
  env: NightEnv;
  treatments: NightTreatment[];
  verdict: NightVerdict;
  exit_code: 0 | 1 | 2;
  /** Why the night is broken (exit 2), or a note on a pass without baseline. */
  reason?: string;
  baseline: string | null;
  baseline_pinned: boolean;
  /** Environment and spec differences against the baseline night. */
  env_changes: string[];
  spec_changes: string[];
  findings: Finding[];
  /** Steps found over the history as of this night. */
  changes: HistoryChange[];
}

export function historyPath(dir: string): string {
  return join(dir, 'history.jsonl');
}
function pinPath(dir: string): string {
  return join(dir, 'baseline.json');
}

/** Reads the history; a torn last line (a crash mid-write) is skipped, any other bad line is a located error. */
export function readHistory(dir: string): Night[] {
  const p = historyPath(dir);
  if (!existsSync(p)) return [];
  const lines = readFileSync(p, 'utf8').split('\n');
  const out: Night[] = [];
  lines.forEach((line, i) => {
    if (line.trim() === '') return;
    let v: unknown;
    try {
      v = JSON.parse(line);
    } catch (e) {
      if (i === lines.length - 1) return;
      throw new UserError(`${p}:${i + 1}: not valid JSON (${(e as Error).message}); fix or remove that line`);
    }
    const n = v as Partial<Night>;
    if (typeof n !== 'object' || n === null || typeof n.id !== 'string' || !Array.isArray(n.treatments) || typeof n.verdict !== 'string') {
      throw new UserError(`${p}:${i + 1}: not a night record (needs id, verdict, treatments); fix or remove that line`);
    }
    out.push(n as Night);
  });
  return out;
}

/** Appends a night by rewriting the whole file atomically: a crash leaves the old history or the new one, never half a line. */
export function appendNight(dir: string, night: Night): void {
  const p = historyPath(dir);
  const old = existsSync(p) ? readFileSync(p, 'utf8') : '';
  // a torn last line (no newline: a crash mid-write of an older version) was skipped on reading; drop it here
  writeFileAtomic(p, old.slice(0, old.lastIndexOf('\n') + 1) + JSON.stringify(night) + '\n');
}

export function readPin(dir: string): string | null {
  const p = pinPath(dir);
  if (!existsSync(p)) return null;
  try {
    const v = JSON.parse(readFileSync(p, 'utf8')) as { night?: unknown };
    if (typeof v.night === 'string') return v.night;
    if (v.night === null) return null;
  } catch {
    // fall through to the error below
  }
  throw new UserError(`${p}: not a baseline pin ({"night": "<id>"}); run 'migbench baseline ${dir} --set <night>' or delete it`);
}

export function writePin(dir: string, night: string | null): void {
  if (night === null) {
    rmSync(pinPath(dir), { force: true });
    return;
  }
  writeJsonAtomic(pinPath(dir), { night, pinned_at: new Date().toISOString() });
}

/** Finds a night by id, run directory path or 1-based position ("3", "-1" for the last). */
export function findNight(history: readonly Night[], ref: string): Night | undefined {
  const byId = history.find((n) => n.id === ref || n.run_dir === ref || (n.run_dir && basename(n.run_dir) === basename(ref)));
  if (byId) return byId;
  if (/^-?\d+$/.test(ref)) {
    const k = Number(ref);
    return k > 0 ? history[k - 1] : k < 0 ? history[history.length + k] : undefined;
  }
  return undefined;
}

function summarize(values: number[]): MetricSummary | undefined {
  if (values.length === 0) return undefined;
  const q = (p: number) => quantile(values, p);
  return { n: values.length, median: q(0.5), q1: q(0.25), q3: q(0.75), min: Math.min(...values), max: Math.max(...values) };
}

/** Host names a spec's local testbed has (racks of N hosts are named <rack>-h<i>), else the hosts migrations touched. */
export function hostSet(run: RunDir): string[] {
  const testbed = (run.manifest.spec as { testbed?: { racks?: { name?: unknown; hosts?: unknown }[]; hosts?: unknown } }).testbed;
  const names = new Set<string>();
  for (const r of testbed?.racks ?? []) {
    if (typeof r.hosts === 'number') for (let i = 1; i <= r.hosts; i++) names.add(`${String(r.name)}-h${i}`);
    else if (Array.isArray(r.hosts)) for (const h of r.hosts) names.add(typeof h === 'string' ? h : String((h as { name?: unknown }).name));
  }
  if (Array.isArray(testbed?.hosts))
    for (const h of testbed.hosts) names.add(typeof h === 'string' ? h : String((h as { name?: unknown }).name));
  if (names.size === 0) for (const m of run.migrations) for (const h of [m.src, m.dst]) if (h) names.add(h);
  return [...names].sort();
}

export function nightEnv(run: RunDir): NightEnv {
  const m = run.manifest;
  const s = (v: unknown) => (typeof v === 'string' && v !== '' ? v : null);
  return {
    harness_commit: s(m.harness?.commit),
    harness_version: s(m.harness?.version),
    qemu_version: s(m.qemu_version),
    host_kernel: s(m.host_kernel),
    guest_kernel: s(m.guest_kernel),
    accelerator: s(m.accelerator),
    hosts: hostSet(run),
    spec_hash: s(m.spec_hash),
  };
}

/** Per treatment: failure counts and, over completed non-partial migrations, each metric's median and spread. */
export function nightTreatments(run: RunDir): NightTreatment[] {
  const all = new Map<string, Migration[]>();
  for (const mg of run.migrations) (all.get(mg.treatment) ?? all.set(mg.treatment, []).get(mg.treatment)!).push(mg);
  return run.manifest.treatments.map((t) => {
    const migs = all.get(t.id) ?? [];
    const obs = observations(migs);
    const metrics: NightTreatment['metrics'] = {};
    for (const metric of NUMERIC_METRICS) {
      const s = summarize(obs.map((mg) => mg[metric]).filter((v): v is number => v !== null));
      if (s) metrics[metric] = s;
    }
    return { key: levelKey(t.levels), scenario: describeLevels(t.levels), levels: t.levels, failures: failureCounts(migs), metrics };
  });
}

const ENV_LABELS: [keyof NightEnv, string][] = [
  ['qemu_version', 'QEMU'],
  ['host_kernel', 'host kernel'],
  ['guest_kernel', 'guest kernel'],
  ['accelerator', 'accelerator'],
  ['harness_commit', 'harness commit'],
  ['harness_version', 'harness version'],
];

/** What differs between two environments, e.g. "QEMU 9.0.2 -> 9.1.0", "hosts r1-h1,r1-h2 -> r1-h1,r1-h3". */
export function envChanges(before: NightEnv, after: NightEnv): string[] {
  const out: string[] = [];
  for (const [k, label] of ENV_LABELS) {
    const a = before[k],
      b = after[k];
    if (a !== b && !(a === null && b === null)) {
      const show = (v: unknown) =>
        v === null || v === undefined ? 'unknown' : k === 'harness_commit' ? String(v).slice(0, 12) : String(v);
      out.push(`${label} ${show(a)} -> ${show(b)}`);
    }
  }
  const ha = [...(before.hosts ?? [])].sort().join(','),
    hb = [...(after.hosts ?? [])].sort().join(',');
  if (ha !== hb) out.push(`host set ${ha || 'unknown'} -> ${hb || 'unknown'}`);
  return out;
}

/** Environment changes that make nights incomparable in kind (labelled in the report); a new harness commit alone is not one. */
export function isEnvironmentChange(change: string): boolean {
  return /^(QEMU|host kernel|guest kernel|accelerator|host set) /.test(change);
}

/** Leaf-by-leaf differences between two specs ("testbed.shaping[0].rate: 100mbit -> 50mbit"), at most `limit`. */
export function specChanges(a: unknown, b: unknown, limit = 12): string[] {
  const out: string[] = [];
  const walk = (x: unknown, y: unknown, path: string): void => {
    if (out.length >= limit) return;
    const isObj = (v: unknown) => typeof v === 'object' && v !== null;
    if (isObj(x) && isObj(y) && Array.isArray(x) === Array.isArray(y)) {
      const keys = new Set([...Object.keys(x as object), ...Object.keys(y as object)]);
      for (const k of keys) {
        const p = Array.isArray(x) ? `${path}[${k}]` : path ? `${path}.${k}` : k;
        walk((x as Record<string, unknown>)[k], (y as Record<string, unknown>)[k], p);
      }
      return;
    }
    if (JSON.stringify(x) !== JSON.stringify(y)) {
      const show = (v: unknown) => (v === undefined ? '(absent)' : typeof v === 'string' ? v : JSON.stringify(v));
      out.push(`${path}: ${show(x)} -> ${show(y)}`);
    }
  };
  walk(a, b, '');
  return out;
}
