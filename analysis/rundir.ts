/**
 * Loads a run directory (manifest.json, migrations.jsonl, samples/*.jsonl)
 * into typed records. Lenient with missing optional fields: absent numbers
 * become null, absent labels empty. Samples are streamed, never slurped,
 * because a campaign can hold millions of power readings.
 */
import { createReadStream, existsSync, readdirSync, readFileSync, statSync } from 'node:fs';
import { join } from 'node:path';
import { createInterface } from 'node:readline';
import { UserError } from '../harness/util/errors.ts';
import type { Sample } from '../harness/store/sample.ts';

export type Level = string | number | boolean;

export interface Treatment {
  id: string;
  levels: Record<string, Level>;
  workload?: string;
}

export interface CompareSettings {
  threshold?: number;
  alpha?: number;
  metrics?: string[];
}

export interface Manifest {
  name: string;
  spec: Record<string, unknown>;
  spec_hash?: string;
  harness?: { version?: string; commit?: string };
  qemu_version?: string;
  accelerator?: string;
  host_kernel?: string;
  guest_kernel?: string;
  shaping_mechanisms?: Record<string, string>;
  power_source?: 'measured' | 'modelled' | 'none';
  started_at?: string;
  ended_at?: string;
  factors: Record<string, Level[]>;
  treatments: Treatment[];
  compare?: CompareSettings;
}

export type MigrationStatus = 'completed' | 'failed' | 'cancelled';

export interface PlanRef {
  kind: string;
  action_id?: string;
  start_ms?: number;
  end_ms?: number;
}

export interface Migration {
  id: string;
  treatment: string;
  rep: number;
  vm: string;
  src: string;
  dst: string;
  status: MigrationStatus;
  reason?: string;
  partial?: boolean;
  plan?: PlanRef;
  t_cmd: string | null;
  t_stop: string | null;
  t_resume: string | null;
  t_done: string | null;
  total_ms: number | null;
  downtime_reported_ms: number | null;
  downtime_event_ms: number | null;
  downtime_observed_ms: number | null;
  preop_ms: number | null;
  postop_ms: number | null;
  transferred_bytes: number | null;
  passes: number | null;
  setup_ms: number | null;
  energy_j: number | null;
  link_rate_mbit: number | null;
  memory_mib: number | null;
  workload: string;
  downtime_limit_ms: number | null;
  healthy: boolean;
}

/** Numeric per-migration responses analyses can use. */
export const NUMERIC_METRICS = [
  'total_ms', 'downtime_reported_ms', 'downtime_event_ms', 'downtime_observed_ms',
  'preop_ms', 'postop_ms', 'transferred_bytes', 'passes', 'setup_ms', 'energy_j',
] as const;
export type NumericMetric = (typeof NUMERIC_METRICS)[number];

export interface RunDir {
  dir: string;
  manifest: Manifest;
  migrations: Migration[];
  /** Files under samples/, absolute paths. */
  sampleFiles: string[];
}

function num(v: unknown): number | null {
  if (typeof v === 'number' && Number.isFinite(v)) return v;
  if (typeof v === 'string' && v.trim() !== '' && Number.isFinite(Number(v))) return Number(v);
  return null;
}
function str(v: unknown): string | null {
  return typeof v === 'string' ? v : null;
}

function readJsonFile(path: string): unknown {
  let text: string;
  try {
    text = readFileSync(path, 'utf8');
  } catch (e) {
    throw new UserError(`cannot read ${path}: ${(e as Error).message}`);
  }
  try {
    return JSON.parse(text);
  } catch (e) {
    throw new UserError(`${path} is not valid JSON (${(e as Error).message}); is this a migbench run directory?`);
  }
}

/** A factor level as analysis handles it: objects (e.g. a whole plan) become compact JSON text. */
export function toLevel(v: unknown): Level {
  return typeof v === 'string' || typeof v === 'number' || typeof v === 'boolean' ? v : JSON.stringify(v);
}

function levelsRecord(v: unknown): Record<string, Level> {
  if (typeof v !== 'object' || v === null) return {};
  return Object.fromEntries(Object.entries(v).map(([k, x]) => [k, toLevel(x)]));
}

/** Shaping mechanism per link as one word each ('htb', 'htb+delayfwd'); older manifests nest them. */
function shapingText(v: unknown): Record<string, string> {
  if (typeof v !== 'object' || v === null) return {};
  const out: Record<string, string> = {};
  for (const [k, x] of Object.entries(v)) out[k] = typeof x === 'string' ? x : JSON.stringify(x);
  return out;
}

export function normalizeManifest(raw: unknown, path: string): Manifest {
  if (typeof raw !== 'object' || raw === null) throw new UserError(`${path}: expected a JSON object`);
  const m = raw as Record<string, unknown>;
  const treatments = Array.isArray(m.treatments)
    ? (m.treatments as Record<string, unknown>[]).map((t, i) => ({
        id: String(t.id ?? `t${i}`),
        levels: levelsRecord(t.levels),
        workload: str(t.workload) ?? undefined,
      }))
    : [];
  const spec = (typeof m.spec === 'object' && m.spec !== null ? m.spec : {}) as Record<string, unknown>;
  const compare = (m.compare ?? spec.compare) as CompareSettings | undefined;
  return {
    ...(m as object),
    name: String(m.name ?? 'unnamed'),
    spec,
    factors: Object.fromEntries(Object.entries(typeof m.factors === 'object' && m.factors !== null ? m.factors : {}).map(([k, v]) => [k, Array.isArray(v) ? v.map(toLevel) : []])),
    shaping_mechanisms: shapingText(m.shaping_mechanisms),
    treatments,
    compare: typeof compare === 'object' && compare !== null ? compare : undefined,
  } as Manifest;
}

export function normalizeMigration(raw: Record<string, unknown>, line: number): Migration {
  const status = raw.status === 'completed' || raw.status === 'failed' || raw.status === 'cancelled' ? raw.status : 'failed';
  const plan = typeof raw.plan === 'object' && raw.plan !== null ? (raw.plan as PlanRef) : undefined;
  return {
    id: String(raw.id ?? `m${line}`),
    treatment: String(raw.treatment ?? ''),
    rep: num(raw.rep) ?? 0,
    vm: String(raw.vm ?? ''),
    src: String(raw.src ?? ''),
    dst: String(raw.dst ?? ''),
    status,
    reason: str(raw.reason) ?? undefined,
    partial: raw.partial === true,
    plan,
    t_cmd: str(raw.t_cmd),
    t_stop: str(raw.t_stop),
    t_resume: str(raw.t_resume),
    t_done: str(raw.t_done),
    total_ms: num(raw.total_ms),
    downtime_reported_ms: num(raw.downtime_reported_ms),
    downtime_event_ms: num(raw.downtime_event_ms),
    downtime_observed_ms: num(raw.downtime_observed_ms),
    preop_ms: num(raw.preop_ms),
    postop_ms: num(raw.postop_ms),
    transferred_bytes: num(raw.transferred_bytes),
    passes: num(raw.passes),
    setup_ms: num(raw.setup_ms),
    energy_j: num(raw.energy_j),
    link_rate_mbit: num(raw.link_rate_mbit),
    memory_mib: num(raw.memory_mib),
    workload: String(raw.workload ?? ''),
    downtime_limit_ms: num(raw.downtime_limit_ms),
    healthy: raw.healthy !== false,
  };
}

/** Parses JSON Lines text; a torn last line is ignored, any other bad line is a UserError. */
export function parseJsonlText(text: string, path: string): Record<string, unknown>[] {
  const lines = text.split('\n');
  const out: Record<string, unknown>[] = [];
  for (let i = 0; i < lines.length; i++) {
    const line = lines[i];
    if (line.trim() === '') continue;
    try {
      out.push(JSON.parse(line));
    } catch (e) {
      if (i === lines.length - 1) break;
      throw new UserError(`${path}:${i + 1}: not valid JSON (${(e as Error).message})`);
    }
  }
  return out;
}

export function loadRunDir(dir: string): RunDir {
  if (!existsSync(dir) || !statSync(dir).isDirectory()) {
    throw new UserError(`run directory ${dir} does not exist; pass a directory under runs/ (e.g. runs/<UTC start>-<name>)`);
  }
  const manifestPath = join(dir, 'manifest.json');
  if (!existsSync(manifestPath)) throw new UserError(`${dir} has no manifest.json; is it a migbench run directory?`);
  const manifest = normalizeManifest(readJsonFile(manifestPath), manifestPath);
  const migPath = join(dir, 'migrations.jsonl');
  const migrations = existsSync(migPath)
    ? parseJsonlText(readFileSync(migPath, 'utf8'), migPath).map((r, i) => normalizeMigration(r, i + 1))
    : [];
  const sdir = join(dir, 'samples');
  const sampleFiles = existsSync(sdir)
    ? readdirSync(sdir).filter((f) => f.endsWith('.jsonl')).sort().map((f) => join(sdir, f))
    : [];
  return { dir, manifest, migrations, sampleFiles };
}

/** Migrations that count as observations: completed and not partial. */
export function observations(migrations: readonly Migration[]): Migration[] {
  return migrations.filter((m) => m.status === 'completed' && !m.partial);
}

/**
 * Streams every sample of the run, calling `onSample` for those whose
 * measurement is in `measurements` (all when omitted). A cheap substring
 * test skips lines of other measurements before JSON.parse.
 */
export async function streamSamples(
  run: RunDir,
  onSample: (s: Sample) => void,
  measurements?: readonly string[],
): Promise<number> {
  let count = 0;
  // Substring prefilter on the quoted name; robust to whitespace in the JSON.
  const needles = measurements?.map((m) => `"${m}"`);
  for (const file of run.sampleFiles) {
    const rl = createInterface({ input: createReadStream(file, { encoding: 'utf8', highWaterMark: 1 << 20 }), crlfDelay: Infinity });
    let lineNo = 0;
    let pendingError: string | null = null;
    for await (const line of rl) {
      lineNo++;
      if (line === '') continue;
      if (pendingError) throw new UserError(pendingError);
      if (needles && !needles.some((n) => line.includes(n))) continue;
      let s: Sample;
      try {
        s = JSON.parse(line) as Sample;
      } catch (e) {
        // Only the last line may be torn; defer the error until we know it is not last.
        pendingError = `${file}:${lineNo}: not valid JSON (${(e as Error).message})`;
        continue;
      }
      if (measurements && !measurements.includes(s.measurement)) continue;
      count++;
      onSample(s);
    }
  }
  return count;
}

/** Treatment levels by id (empty when the manifest does not list it). */
export function levelsOf(run: RunDir): Map<string, Record<string, Level>> {
  return new Map(run.manifest.treatments.map((t) => [t.id, t.levels]));
}
