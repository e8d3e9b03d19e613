import { createHash } from 'node:crypto';
import { existsSync, mkdirSync, readFileSync } from 'node:fs';
import { writeFileAtomic } from '../util/atomic-write.ts';
import { dirname, join, resolve } from 'node:path';
import { execa } from 'execa';
import { buildGuestImage, type GuestImage } from '../image/build.ts';
import { probeAccelerator } from '../hypervisor/accel.ts';
import { assertQemuUsable } from '../hypervisor/version.ts';
import { loadSpec, parseSpecText } from '../spec/load.ts';
import type { Spec } from '../spec/schema.ts';
import { UserError, errorMessage } from '../util/errors.ts';
import { coldBootReason } from '../hypervisor/saved-guest.ts';
import { savedGuestsMaxBytes } from '../hypervisor/saved-guest-cache.ts';
import { PACKAGE_ROOT } from '../util/paths.ts';
import { Interrupted, registerCleanup } from '../util/signals.ts';
import { InfluxSink } from '../store/influx.ts';
import { powerModelFrom } from '../power/testbed-power.ts';
import type { PowerMeter } from '../power/meter.ts';
import { workloadLabel } from '../migration/placement.ts';
import { LocalSession } from '../driver/local-session.ts';
import type { DriverSession } from '../driver/session.ts';
import { SshSession } from '../driver/ssh/session.ts';
import { inventoryFromObject, loadInventory, type Inventory } from '../inventory/load.ts';
import { jsonlLines, parseJsonlLine } from '../store/jsonl.ts';
import {
  issueText,
  MANIFEST_SCHEMA_VERSION,
  ManifestSchema,
  type DutyCycle,
  type Manifest,
  type MigrationRecord,
  type TreatmentLine,
} from '../store/schema/index.ts';
import { counts, initialState, prepareResume, readState, type CampaignState, type UnitState } from './campaign-state.ts';
import { peakPower } from './peak-power.ts';
import { Progress } from './progress.ts';
import { runTreatment } from './treatment.ts';
import { expandTreatments, type Treatment } from './treatments.ts';
import { RunDir } from './rundir.ts';
import { dutyCycle } from './duty-cycle.ts';
import { SpanClock } from './timing.ts';

/**
 * `migbench run` and `migbench resume`: spec -> treatments -> units
 * (treatment x repetition) -> testbed -> guests -> measured migrations ->
 * run directory. State is persisted after every unit; everything started is
 * stopped on success, failure and Ctrl-C; a run killed with -9 resumes.
 */
export interface RunOptions {
  specFile: string;
  outDir: string;
  log: (line: string) => void;
  /** Stream samples to InfluxDB 1.x (buffered to the run directory while it is unreachable). */
  influx?: string;
  /** The CLI's progress display (a bar on a terminal); without it, plain status lines go to `log`. */
  progress?: Progress;
  /** Run on the servers of this inventory (ssh driver) instead of the spec's testbed. */
  inventory?: string;
}

export interface ResumeOptions {
  runDir: string;
  log: (line: string) => void;
  influx?: string;
  retryFailed?: boolean;
  progress?: Progress;
}

export interface RunResult {
  dir: string;
  /** Migrations measured by this invocation. */
  records: MigrationRecord[];
  state: CampaignState;
  /** This invocation's time migrating / wall time and the dead-time breakdown (also in manifest.timing). */
  duty?: DutyCycle;
}

async function gitCommit(): Promise<string | null> {
  const r = await execa('git', ['-C', PACKAGE_ROOT, 'rev-parse', 'HEAD'], { reject: false });
  return r.exitCode === 0 ? String(r.stdout).trim() : null;
}

function harnessVersion(): string {
  return (JSON.parse(readFileSync(join(PACKAGE_ROOT, 'package.json'), 'utf8')) as { version: string }).version;
}

function preflight(spec: Spec, file: string, where: Where): void {
  if (!spec.migration) throw new UserError(`${file}: migration: missing; 'run' needs migration.moves`);
  if (spec.vms.length === 0) throw new UserError(`${file}: vms: 'run' needs at least one VM`);
  if (!where.inventory && process.getuid?.() !== 0) throw new UserError('migbench run drives the local testbed and needs root');
  // the guest-start settings from the environment, read at every start: a bad value stops the run here, not at its first guest
  coldBootReason({});
  savedGuestsMaxBytes();
}

/**
 * A spec asking for power where the session cannot measure it (an inventory
 * without BMC addresses) runs without it, said in the log and the manifest
 * (never modelled numbers presented as measured).
 */
function withoutUnmeasurablePower(spec: Spec, why: string | null, manifest: Manifest, log: (l: string) => void): Spec {
  if (!spec.measure.power || why === null) return spec;
  log(`measure.power: not measured (${why}); energy figures stay empty`);
  manifest.power_source = 'none';
  manifest.power_model = null;
  manifest.power_note = `measure.power was requested; ${why}`;
  return { ...spec, measure: { ...spec.measure, power: undefined } };
}

/** Where a run's testbed is: the local one, or the servers of an inventory (ssh driver). */
interface Where {
  /** The inventory file, or the spec's inline `{oar_nodefile}` form with the spec file anchoring relative paths. */
  inventory: { file: string } | { inline: Record<string, unknown>; specFile: string } | null;
}

function whereOf(spec: Spec, specFile: string, inventoryFlag: string | undefined): Where {
  if (inventoryFlag) return { inventory: { file: resolve(inventoryFlag) } };
  if (spec.testbed.driver !== 'ssh') return { inventory: null };
  const inv = spec.testbed.inventory;
  if (!inv)
    throw new UserError(`${specFile}: testbed.inventory: missing; the ssh driver needs an inventory file (or pass --inventory <file>)`);
  if (typeof inv === 'string') return { inventory: { file: resolve(dirname(resolve(specFile)), inv) } };
  return { inventory: { inline: inv, specFile: resolve(specFile) } };
}

function loadWhere(w: Where): Inventory | null {
  const i = w.inventory;
  if (!i) return null;
  if ('file' in i) return loadInventory(i.file);
  return inventoryFromObject(i.inline, `${i.specFile}: testbed.inventory`, dirname(i.specFile));
}

export async function runExperiment(o: RunOptions): Promise<RunResult> {
  const { spec, raw, text } = loadSpec(o.specFile);
  const where = whereOf(spec, o.specFile, o.inventory);
  preflight(spec, o.specFile, where);
  // inventory errors before anything is created (exit 2, located like spec errors)
  loadWhere(where);
  const treatments = expandTreatments(spec, raw, o.specFile);
  mkdirSync(o.outDir, { recursive: true });
  const rd = RunDir.create(o.outDir, spec.name);
  const manifest = buildManifest({
    spec,
    specFile: o.specFile,
    text,
    treatments,
    harness: { version: harnessVersion(), commit: await gitCommit() },
  });
  const state = initialState(treatments, spec.repetitions);
  rd.writeState(state);
  if (where.inventory) manifest.where = where.inventory;
  rd.writeManifest(manifest);
  o.log(`run directory: ${rd.path}`);
  return campaign({
    rd,
    spec,
    treatments,
    state,
    manifest,
    specFile: o.specFile,
    log: o.log,
    influx: o.influx,
    progress: o.progress,
    where,
  });
}

export async function resumeExperiment(o: ResumeOptions): Promise<RunResult> {
  const dir = resolve(o.runDir);
  const mpath = join(dir, 'manifest.json');
  if (!existsSync(mpath)) throw new UserError(`${o.runDir}: not a run directory (no manifest.json)`);
  const manifest = readManifestForResume(mpath);
  const state = readState(dir);
  if (!state || typeof manifest.spec_text !== 'string')
    throw new UserError(`${o.runDir}: no campaign state to resume (state.json or the spec text is missing)`);
  // the spec as it was when the run started, not as the file is now
  const { spec, raw } = parseSpecText(manifest.spec_text, `${o.runDir}/manifest.json:spec_text`);
  // the servers the run started on (an inventory given to 'run --inventory' is in the manifest)
  const where: Where = { inventory: (manifest.where as Where['inventory'] | undefined) ?? null };
  preflight(spec, String(manifest.spec_file), where);
  const treatments = expandTreatments(spec, raw, String(manifest.spec_file));
  const { interrupted, retried } = prepareResume(state, !!o.retryFailed);
  if (interrupted.length) {
    markPartial(dir, interrupted);
    const detectedAt = new Date().toISOString();
    const cut = interrupted.map((u) => ({ treatment: u.treatment, rep: u.rep, attempt: u.attempts, detected_at: detectedAt }));
    state.interrupted = [...(state.interrupted ?? []), ...cut];
    o.log(`resuming: ${interrupted.length} interrupted unit(s) will be redone, their partial records are marked partial`);
  }
  if (retried.length) o.log(`resuming: retrying ${retried.length} failed unit(s)`);
  const c = counts(state);
  if (c.pending === 0) {
    o.log(`nothing to resume: ${c.done} done, ${c.failed} failed${c.failed ? ' (pass --retry-failed to retry them)' : ''}`);
    return { dir, records: [], state };
  }
  manifest.resumed_at = [...(manifest.resumed_at ?? []), new Date().toISOString()];
  manifest.ended_at = null;
  manifest.schema_version = MANIFEST_SCHEMA_VERSION;
  const rd = new RunDir(dir, o.log);
  rd.writeState(state);
  rd.writeManifest(manifest);
  return campaign({
    rd,
    where,
    spec,
    treatments,
    state,
    manifest,
    specFile: String(manifest.spec_file),
    log: o.log,
    influx: o.influx,
    progress: o.progress,
  });
}

/** The manifest as written by `run`, for `resume`; a newer layout is refused rather than rewritten. */
function readManifestForResume(path: string): Manifest {
  let raw: unknown;
  try {
    raw = JSON.parse(readFileSync(path, 'utf8'));
  } catch (e) {
    throw new UserError(`${path}: not valid JSON (${errorMessage(e)}); cannot resume this run directory`);
  }
  const v = (raw as { schema_version?: unknown } | null)?.schema_version;
  if (typeof v === 'number' && v > MANIFEST_SCHEMA_VERSION)
    throw new UserError(`${path}: written by a newer migbench (schema ${v}); upgrade migbench to resume it`);
  const r = ManifestSchema.safeParse(raw);
  if (!r.success) throw new UserError(`${path}: ${issueText(r.error)}; cannot resume this run directory`);
  return r.data;
}

/** The manifest at the start of a run; facts found later (QEMU version, shaping, power) are filled in by `campaign`. */
export function buildManifest(o: {
  spec: Spec;
  specFile: string;
  text: string;
  treatments: readonly Treatment[];
  harness: { version: string; commit: string | null };
}): Manifest {
  const { spec } = o;
  return {
    schema_version: MANIFEST_SCHEMA_VERSION,
    name: spec.name,
    spec: spec as unknown as Record<string, unknown>,
    spec_file: resolve(o.specFile),
    spec_text: o.text,
    spec_hash: createHash('sha256').update(o.text).digest('hex'),
    harness: o.harness,
    started_at: new Date().toISOString(),
    ended_at: null,
    factors: spec.factors as Record<string, unknown[]>,
    repetitions: spec.repetitions,
    order: spec.order,
    treatments: o.treatments.map((t) => ({
      id: t.id,
      levels: t.levels,
      workload: t.spec.vms.map((v) => workloadLabel(v.workload)).join('; '),
    })),
    power_source: spec.measure.power ? 'modelled' : 'none',
    power_model: spec.measure.power ? powerModelFrom(spec.measure.power) : null,
    shaping_mechanisms: {},
    compare: spec.compare,
  };
}

/**
 * Rewrites migrations.jsonl (atomically) so the records of interrupted
 * attempts say so; analysis leaves partial records out. Lines that do not
 * parse are kept as they are (analysis reports them), except a torn tail.
 */
export function markPartial(dir: string, units: readonly UnitState[]): void {
  const p = join(dir, 'migrations.jsonl');
  if (!existsSync(p)) return;
  const hit = (r: Partial<MigrationRecord>) =>
    units.some((u) => u.treatment === r.treatment && u.rep === r.rep && (r.attempt ?? 1) === u.attempts);
  const out: string[] = [];
  for (const l of jsonlLines(readFileSync(p, 'utf8'))) {
    const r = parseJsonlLine(l.text, l.unterminated);
    if (r?.ok === false && r.kind === 'truncated') continue;
    const rec = r?.ok ? (r.value as Partial<MigrationRecord>) : null;
    out.push(rec && hit(rec) ? JSON.stringify({ ...rec, partial: true, partial_reason: 'unit interrupted; redone on resume' }) : l.text);
  }
  writeFileAtomic(p, out.map((l) => l + '\n').join(''));
}

interface CampaignOptions {
  rd: RunDir;
  spec: Spec;
  treatments: Treatment[];
  state: CampaignState;
  manifest: Manifest;
  specFile: string;
  log: (l: string) => void;
  influx?: string;
  progress?: Progress;
  where: Where;
}

async function campaign(o: CampaignOptions): Promise<RunResult> {
  const { rd, spec, treatments, state, manifest, specFile, influx } = o;
  // the runner's own spans between migrations (timing.jsonl), for the duty cycle
  const campaignStart = Date.now();
  const clock = new SpanClock((l) => rd.appendTiming(l));
  let duty: DutyCycle | undefined;
  const log = o.log; // on a terminal, the CLI's log writes above the progress bar
  const progress = o.progress ?? new Progress({ tty: false, line: log });
  const movesOf = new Map(treatments.map((t) => [t.id, t.spec.migration?.moves.length ?? 1]));
  const migrationsOf = (us: readonly UnitState[]) => us.reduce((n, u) => n + (movesOf.get(u.treatment) ?? 1), 0);
  const c0 = counts(state);
  progress.start({
    unitsTotal: state.units.length,
    unitsDone: c0.done + c0.failed,
    migrationsTotal: migrationsOf(state.units),
    migrationsDone: migrationsOf(state.units.filter((u) => u.status === 'done' || u.status === 'failed')),
  });
  // the running migration's sent bytes, from its progress samples (the VM's name is unique within a unit)
  rd.onSample((s) => {
    if (s.measurement !== 'migration_progress' || typeof s.fields.transferred !== 'number') return;
    const remainingBytes = typeof s.fields.remaining === 'number' ? s.fields.remaining : null;
    const ended = ['completed', 'failed', 'cancelled'].includes(String(s.fields.status));
    progress.migrationBytes(s.tags.vm ?? s.tags.migration ?? '?', s.fields.transferred, { remainingBytes, ended });
  });

  const inventory = loadWhere(o.where);
  // ssh driver: preflight of every server before anything is built or changed anywhere
  const ssh = inventory ? await SshSession.open({ spec, inventory, source: o.where.inventory!, runDir: rd.path, log }) : null;
  const session: DriverSession = ssh ?? new LocalSession(specFile, rd.path, log);
  log('preparing guest image and accelerator');
  let image: GuestImage;
  let accel: { accel: 'kvm' | 'tcg'; reason: string };
  try {
    image = await buildGuestImage();
    accel = ssh ? ssh.accel() : await probeAccelerator(image);
  } catch (e) {
    await session.close().catch(() => undefined);
    throw e;
  }
  const qemu = ssh ? { raw: ssh.qemuVersions() } : await assertQemuUsable(accel.accel);
  log(`accelerator: ${accel.accel} (${accel.reason}); QEMU ${qemu.raw}`);
  rd.setLog(log);
  manifest.qemu_version = qemu.raw;
  manifest.accelerator = accel.accel;
  manifest.accelerator_reason = accel.reason;
  manifest.driver = { kind: ssh ? 'ssh' : 'local', backend: 'qemu', ...session.facts() };
  manifest.host_kernel = (await execa('uname', ['-r'])).stdout.trim();
  manifest.guest_kernel = image.kernelVersion;
  manifest.guest_image = image.hash;
  rd.writeManifest(manifest);

  const sink = influx ? new InfluxSink(influx, { runDir: rd.path, log }) : null;
  if (sink) rd.onSample((smp) => sink.write(smp));
  const records: MigrationRecord[] = [];
  let power: { it: PowerMeter; testbed: string } | null = null;
  const saveState = () => {
    try {
      rd.writeState(state);
    } catch (e) {
      // without state.json on disk, resume would redo or skip the wrong units: stop here
      throw new UserError(`cannot save ${rd.path}/state.json (${errorMessage(e)}); free space and run 'migbench resume ${rd.path}'`);
    }
  };
  // a treatment's totals wait for each host's first power reading past its end (up to a poll interval):
  // they are made while the next treatment starts, in order, and always before the poller stops
  let totalsPending: Promise<void> = Promise.resolve();
  const totalsDone = () => totalsPending;
  const stopPower = async () => {
    await totalsDone();
    if (!power) return;
    const report = await power.it.stop();
    manifest.power_poller = { ...(manifest.power_poller ?? {}), [power.testbed]: report };
    power = null;
  };
  const noted = new Set<string>();
  const noteOnce = (l: string) => {
    if (!noted.has(l)) log(l);
    noted.add(l);
  };
  const unregister = registerCleanup(async () => {
    await stopPower().catch(() => undefined);
    await session.close();
  });
  try {
    const noPower = treatments.some((t) => t.spec.measure.power) ? session.powerUnavailable() : null;
    const byId = new Map(treatments.map((t) => [t.id, { ...t, spec: withoutUnmeasurablePower(t.spec, noPower, manifest, noteOnce) }]));
    const order = [...new Set(state.units.map((u) => u.treatment))];
    clock.add('setup', campaignStart);
    for (const [ti, tid] of order.entries()) {
      const units = state.units.filter((u) => u.treatment === tid && u.status === 'pending');
      if (units.length === 0) continue;
      const t = byId.get(tid);
      if (!t) throw new UserError(`state.json names treatment ${tid}, which the spec no longer produces`);
      log(`treatment ${ti + 1}/${order.length} ${t.id} ${JSON.stringify(t.levels)}: ${units.length} unit(s)`);
      const driver = await clock.time('testbed', () => session.prepare(t.spec, stopPower), { treatment: t.id });
      if (power && power.testbed !== driver.id) await stopPower();
      if (t.spec.measure.power && !power) {
        const powerSpec = t.spec.measure.power;
        const it = await clock.time(
          'power-start',
          () => session.startPower(driver, powerSpec, { onSample: (smp) => rd.appendSamples([smp]), log, tags: { experiment: spec.name } }),
          { treatment: t.id },
        );
        power = { testbed: driver.id, it };
        manifest.power_source = it.source;
        if (it.source === 'measured') manifest.power_model = null; // the servers' own BMCs: no model involved
        manifest.power_idle_w = {
          ...manifest.power_idle_w,
          ...Object.fromEntries(driver.topology.hosts.map((h) => [h.name, it.idleW(h.name)])),
        };
      }
      power?.it.setTags({ experiment: spec.name, treatment: t.id });
      // per link, the mechanisms that shaped it (e.g. 'htb+delayfwd'), over all treatments
      const shaping = manifest.shaping_mechanisms;
      for (const [link, m] of Object.entries(session.mechanisms())) {
        const how = [m.rate, m.delay, m.loss].filter((x) => x !== 'none').join('+') || 'unshaped';
        shaping[link] = shaping[link] && !shaping[link].split(' | ').includes(how) ? `${shaping[link]} | ${how}` : how;
      }
      rd.writeManifest(manifest);
      const tStart = Date.now();
      try {
        const recs = await runTreatment({
          treatment: t,
          units,
          driver,
          image,
          accel: accel.accel,
          rd,
          experiment: spec.name,
          power: power?.it ?? null,
          log,
          timing: clock,
          unitStarted: (u) => {
            u.status = 'running';
            u.started_at = new Date().toISOString();
            saveState();
          },
          unitEnded: (u, recsOfUnit) => {
            u.status = 'done';
            u.ended_at = new Date().toISOString();
            // from its own start: a unit's records are written while the next unit already runs (treatment.ts)
            u.duration_ms = Date.now() - Date.parse(u.started_at!);
            delete u.reason;
            saveState();
            progress.unitDone(u.duration_ms, recsOfUnit.length);
          },
        });
        records.push(...recs);
      } catch (e) {
        if (e instanceof Interrupted || e instanceof UserError) throw e;
        // the treatment could not go on (a guest did not boot, a VM died): its remaining units fail with the reason
        log(`treatment ${t.id} failed: ${errorMessage(e)}`);
        for (const u of units.filter((x) => x.status !== 'done')) {
          u.status = 'failed';
          u.reason = errorMessage(e);
        }
        saveState();
      }
      const hostNames = driver.topology.hosts.map((h) => h.name);
      const tEnd = Date.now();
      const meter = power?.it ?? null;
      const recsOfT = records.filter((r) => r.treatment === t.id);
      totalsPending = totalsPending.then(() =>
        treatmentSummary(t.id, tStart, tEnd, recsOfT, hostNames, meter).then(
          (totals) => {
            try {
              rd.appendTreatment(totals);
            } catch (e) {
              // derivable again from the samples and migrations; not worth stopping the campaign for
              log(`treatment totals of ${t.id} not recorded: ${errorMessage(e)}`);
            }
          },
          (e: unknown) => log(`treatment totals of ${t.id} not recorded: ${errorMessage(e)}`),
        ),
      );
    }
    // only the last treatment's totals are still waited for here
    await clock.time('treatment-totals', totalsDone);
  } finally {
    unregister();
    progress.end();
    const closeStart = Date.now();
    await stopPower().catch((e) => log(`stopping the power poller: ${errorMessage(e)}`));
    await session.close();
    clock.add('close', closeStart);
    if (sink) {
      const st = await sink.close(30_000);
      manifest.influx = { url: sink.url, ...st }; // sink.url carries no credentials
      if (st.pendingOnDisk)
        log(
          `InfluxDB: ${st.pendingOnDisk} points still buffered in ${rd.path}/influx-buffer; replay with 'migbench export ${rd.path} --influx URL'`,
        );
    }
    manifest.ended_at = new Date().toISOString();
    duty = dutyCycle({ startMs: campaignStart, endMs: Date.now(), migrations: migrationWindows(records), spans: clock.lines });
    manifest.timing = [...(manifest.timing ?? []), duty];
    if (Object.keys(rd.samplesNotRecorded).length) {
      manifest.samples_not_recorded = { ...(manifest.samples_not_recorded ?? {}), ...rd.samplesNotRecorded };
      log(
        `samples not recorded (disk full?): ${Object.entries(rd.samplesNotRecorded)
          .map(([f, n]) => `${f}: ${n}`)
          .join(', ')}`,
      );
    }
    try {
      rd.writeManifest(manifest);
    } catch (e) {
      // a full disk must not hide the error that stopped the campaign; the manifest on disk is the previous one
      log(`could not update ${rd.path}/manifest.json: ${errorMessage(e)}`);
    }
    rd.close();
  }
  return { dir: rd.path, records, state, duty };
}

/**
 * Each migration's window: t_cmd to the later of t_done and t_resume (the
 * guest runs on the destination only from RESUME, ~0.1 s after the source's
 * completed under TCG); a failed one without either: as long as the harness timed it.
 */
export function migrationWindows(records: readonly MigrationRecord[]): { start: number; end: number }[] {
  return records.flatMap((r) => {
    const start = r.t_cmd ? Date.parse(r.t_cmd) : NaN;
    const ends = [r.t_done, r.t_resume].map((t) => (t ? Date.parse(t) : NaN)).filter(Number.isFinite);
    const end = ends.length ? Math.max(...ends) : start + (r.total_ms_harness ?? 0);
    return Number.isFinite(start) && Number.isFinite(end) ? [{ start, end }] : [];
  });
}

/** Per-treatment totals for the run summary: energy and peak power per host and summed, migrations. */
async function treatmentSummary(
  id: string,
  from: number,
  to: number,
  recs: MigrationRecord[],
  hosts: string[],
  power: PowerMeter | null,
): Promise<TreatmentLine> {
  const perHost: TreatmentLine['hosts'] = {};
  let peakTotal: number | null = null;
  if (power) {
    await power.readingsAfter(to, hosts);
    const inside = hosts.flatMap((h) =>
      power
        .pointsAround(h, from, to)
        .filter((p) => p.tMs >= from && p.tMs <= to)
        .map((p) => ({ tMs: p.tMs, host: h, watts: p.watts })),
    );
    const peak = peakPower(inside);
    peakTotal = peak.total;
    for (const h of hosts) {
      const e = power.energy(h, from, to);
      perHost[h] = { energy_j: e.joules, coverage: e.coveredFraction, peak_w: peak.perHost[h] ?? null };
    }
  }
  return {
    treatment: id,
    t_start: new Date(from).toISOString(),
    t_end: new Date(to).toISOString(),
    migrations: recs.length,
    completed: recs.filter((r) => r.status === 'completed').length,
    energy_j: power ? Object.values(perHost).reduce((a, b) => a + b.energy_j, 0) : null,
    peak_w: peakTotal,
    hosts: perHost,
  };
}
