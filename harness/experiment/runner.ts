import { createHash } from 'node:crypto';
import { mkdirSync, readFileSync } from 'node:fs';
import { join } from 'node:path';
import { execa } from 'execa';
import { buildGuestImage, type GuestImage } from '../image/build.ts';
import { probeAccelerator } from '../hypervisor/accel.ts';
import { assertQemuUsable } from '../hypervisor/version.ts';
import { loadSpec, testbedId } from '../spec/load.ts';
import type { Spec } from '../spec/schema.ts';
import { parseDuration } from '../spec/units.ts';
import type { Sample } from '../store/sample.ts';
import { down, up } from '../testbed/local.ts';
import { loadState, type TestbedState } from '../testbed/state.ts';
import { buildTopology } from '../testbed/topology.ts';
import { delayForwarderPath } from '../native/programs.ts';
import { UserError, errorMessage } from '../util/errors.ts';
import { PACKAGE_ROOT } from '../util/paths.ts';
import { checkInterrupted, registerCleanup } from '../util/signals.ts';
import { bootVm, deleteTap, tapName, workloadLabel, type PlacedVm, type VmEnv } from '../migration/placement.ts';
import { migrateVm, type MigrationRecord } from '../migration/migrate.ts';
import { ProbeStream } from '../migration/probe-stream.ts';
import { parseDirtyReport } from '../../workloads/dirty/spec.ts';
import { expandTreatments, type Treatment } from './treatments.ts';
import { RunDir } from './rundir.ts';

/**
 * `migbench run`: spec -> treatments -> testbed -> guests -> measured
 * migrations -> run directory. Everything it starts is stopped on success,
 * failure and Ctrl-C; every migration, failed ones included, is on disk the
 * moment it ends.
 */
export interface RunOptions {
  specFile: string;
  outDir: string;
  log: (line: string) => void;
}

export interface RunResult {
  dir: string;
  records: MigrationRecord[];
}

async function gitCommit(): Promise<string | null> {
  const r = await execa('git', ['-C', PACKAGE_ROOT, 'rev-parse', 'HEAD'], { reject: false });
  return r.exitCode === 0 ? String(r.stdout).trim() : null;
}

function harnessVersion(): string {
  return (JSON.parse(readFileSync(join(PACKAGE_ROOT, 'package.json'), 'utf8')) as { version: string }).version;
}

/** Brings the treatment's testbed up, reusing one that is already up with the same topology. */
async function ensureTestbed(spec: Spec, specFile: string, current: TestbedState | null, log: (l: string) => void): Promise<{ state: TestbedState; ours: boolean }> {
  if (spec.testbed.driver !== 'local') throw new UserError(`${specFile}: testbed.driver: 'run' drives the local testbed only in this version`);
  const id = testbedId(spec);
  const topology = buildTopology(spec.testbed, id);
  const want = JSON.stringify(topology);
  if (current && JSON.stringify(current.topology) === want) return { state: current, ours: true };
  if (current) await down(current.id);
  const existing = loadState(id);
  if (existing && existing.complete && JSON.stringify(existing.topology) === want) {
    log(`using testbed '${id}' that is already up`);
    return { state: existing, ours: false };
  }
  if (existing) throw new UserError(`testbed '${id}' is up with a different topology; run 'migbench testbed down ${id}' first`);
  log(`building testbed '${id}' (${topology.hosts.length} hosts)`);
  return { state: await up({ id, specFile, topology, delayForwarder: delayForwarderPath }), ours: true };
}

export async function runExperiment(o: RunOptions): Promise<RunResult> {
  const { spec, raw, text } = loadSpec(o.specFile);
  if (!spec.migration) throw new UserError(`${o.specFile}: migration: missing; 'run' needs migration.moves`);
  if (spec.vms.length === 0) throw new UserError(`${o.specFile}: vms: 'run' needs at least one VM`);
  if (process.getuid?.() !== 0) throw new UserError('migbench run drives the local testbed and needs root');
  const treatments = expandTreatments(spec, raw, o.specFile);
  const log = o.log;

  log('preparing guest image and accelerator');
  const image: GuestImage = await buildGuestImage();
  const accel = await probeAccelerator(image);
  const qemu = await assertQemuUsable(accel.accel);
  log(`accelerator: ${accel.accel} (${accel.reason}); QEMU ${qemu.raw}`);

  mkdirSync(o.outDir, { recursive: true });
  const rd = RunDir.create(o.outDir, spec.name);
  const startedAt = new Date();
  const manifest: Record<string, unknown> = {
    name: spec.name,
    spec,
    spec_file: o.specFile,
    spec_hash: createHash('sha256').update(text).digest('hex'),
    harness: { version: harnessVersion(), commit: await gitCommit() },
    qemu_version: qemu.raw,
    accelerator: accel.accel,
    accelerator_reason: accel.reason,
    host_kernel: (await execa('uname', ['-r'])).stdout.trim(),
    guest_kernel: image.kernelVersion,
    guest_image: image.hash,
    power_source: 'none',
    started_at: startedAt.toISOString(),
    ended_at: null,
    factors: spec.factors,
    repetitions: spec.repetitions,
    order: spec.order,
    treatments: treatments.map((t) => ({ id: t.id, levels: t.levels, workload: t.spec.vms.map((v) => workloadLabel(v.workload)).join('; ') })),
    shaping_mechanisms: {},
    compare: spec.compare,
  };
  rd.writeJson('manifest.json', manifest);
  const progress = { done: [] as string[], failed: [] as string[], pending: treatments.map((t) => t.id) };
  rd.writeJson('state.json', progress);
  log(`run directory: ${rd.path}`);

  const records: MigrationRecord[] = [];
  let testbed: { state: TestbedState; ours: boolean } | null = null;
  const placed = new Map<string, PlacedVm>();
  const probes: ProbeStream[] = [];
  const stopAll = async () => {
    for (const p of probes.splice(0)) await p.stop().catch(() => undefined);
    for (const vm of placed.values()) {
      await vm.proc.kill().catch(() => undefined);
      await deleteTap(vm.host.ns, tapName(vm.index));
    }
    placed.clear();
  };
  const unregister = registerCleanup(async () => {
    await stopAll();
    if (testbed?.ours) await down(testbed.state.id);
  });
  try {
    for (const [ti, t] of treatments.entries()) {
      checkInterrupted();
      log(`treatment ${ti + 1}/${treatments.length} ${t.id} ${JSON.stringify(t.levels)}`);
      testbed = await ensureTestbed(t.spec, o.specFile, testbed?.ours ? testbed.state : null, log);
      (manifest.shaping_mechanisms as Record<string, unknown>)[t.id] = testbed.state.mechanisms;
      rd.writeJson('manifest.json', manifest);
      try {
        records.push(...(await runTreatment(t, testbed.state, image, accel.accel, rd, placed, probes, spec.name, log)));
        progress.done.push(t.id);
      } catch (e) {
        if ((e as Error).name === 'Interrupted' || e instanceof UserError) throw e;
        log(`treatment ${t.id} failed: ${errorMessage(e)}`);
        progress.failed.push(t.id);
        rd.appendSamples([{ t: new Date().toISOString(), measurement: 'treatment_error', tags: { experiment: spec.name, treatment: t.id }, fields: { reason: errorMessage(e) } }]);
      } finally {
        await stopAll();
        progress.pending = progress.pending.filter((x) => x !== t.id);
        rd.writeJson('state.json', progress);
      }
    }
  } finally {
    unregister();
    await stopAll();
    if (testbed?.ours) await down(testbed.state.id);
    manifest.ended_at = new Date().toISOString();
    rd.writeJson('manifest.json', manifest);
    rd.close();
  }
  return { dir: rd.path, records };
}

async function runTreatment(
  t: Treatment, tb: TestbedState, image: GuestImage, accel: 'kvm' | 'tcg', rd: RunDir,
  placed: Map<string, PlacedVm>, probes: ProbeStream[], experiment: string, log: (l: string) => void,
): Promise<MigrationRecord[]> {
  const spec = t.spec;
  const mig = spec.migration!;
  const topo = tb.topology;
  const dir = join(rd.path, 'vms', t.id);
  mkdirSync(dir, { recursive: true });
  const env: VmEnv = { topo, image, accel, dir, bootTimeoutMs: 180_000 };
  const emit = (s: Sample[]) => rd.appendSamples(s);
  const probeIntervalMs = parseDuration(spec.measure.probe_interval)!;
  const baseTags = { experiment, treatment: t.id };

  // guest-side achieved dirty rate, from the generator's console reports
  const watchSerial = (vm: PlacedVm) =>
    vm.proc.onSerialLine((line) => {
      const r = parseDirtyReport(line);
      if (r) emit([{ t: new Date().toISOString(), measurement: 'dirty_rate', tags: { ...baseTags, vm: vm.spec.name, host: vm.host.name },
        fields: { pages_s: r.pagesPerS, mib_s: r.mibPerS, target_pages_s: r.targetPagesPerS, late: r.late } }]);
    });

  const vmProbes = new Map<string, ProbeStream>();
  for (const [i, v] of spec.vms.entries()) {
    const host = topo.hosts.find((h) => h.name === v.host)!;
    log(`  booting ${v.name} on ${host.name} (${v.memory}, ${workloadLabel(v.workload)})`);
    const vm = await bootVm(env, v, i, host);
    placed.set(v.name, vm);
    watchSerial(vm);
    if (topo.clientNs) {
      const p = new ProbeStream(topo.clientNs, vm.ip, probeIntervalMs, { ...baseTags, vm: v.name }, emit);
      probes.push(p);
      await p.start();
      vmProbes.set(v.name, p);
    }
  }
  const records: MigrationRecord[] = [];
  const home = new Map(spec.vms.map((v) => [v.name, v.host]));
  for (let rep = 0; rep < spec.repetitions; rep++) {
    for (const move of mig.moves) {
      checkInterrupted();
      const vm = placed.get(move.vm)!;
      // ping-pong: away from home, or back home from wherever it is (a failed migration leaves it in place)
      const target = vm.host.name === move.to ? home.get(move.vm)! : move.to;
      if (target === vm.host.name) throw new UserError(`migration.moves: ${move.vm} would migrate to the host it runs on (${target})`);
      const dst = topo.hosts.find((h) => h.name === target)!;
      const { record, vm: after } = await migrateVm(
        { env, experiment, treatment: t.id, rep, migration: mig, probe: vmProbes.get(move.vm) ?? null, probeIntervalMs,
          progressIntervalMs: parseDuration(spec.measure.progress_interval)!, network: topo.networks.includes('mig') ? 'mig' : 'data', emit, log },
        vm, dst,
      );
      rd.appendMigration(record);
      records.push(record);
      log(`  ${record.id}: ${record.status}${record.reason ? ` (${record.reason})` : ''}` +
        (record.status === 'completed' ? `, total ${record.total_ms} ms, downtime reported/event/observed ${record.downtime_reported_ms}/${fmt(record.downtime_event_ms)}/${fmt(record.downtime_observed_ms)} ms, ${(record.transferred_bytes! / 2 ** 20).toFixed(1)} MiB` : ''));
      if (after !== vm) {
        placed.set(move.vm, after);
        watchSerial(after);
      }
      if (after.proc.hasExited()) throw new Error(`VM ${move.vm} is gone after ${record.id}: cannot continue this treatment`);
    }
  }
  return records;
}

function fmt(v: number | null): string {
  return v === null ? '-' : v.toFixed(1);
}

