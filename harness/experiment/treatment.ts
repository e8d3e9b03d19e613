import { flagRecord } from '../migration/flags.ts';
import { mkdirSync } from 'node:fs';
import { join } from 'node:path';
import type { GuestImage } from '../image/build.ts';
import { migrateVm } from '../migration/migrate.ts';
import { bootVm, releaseVm, workloadLabel, type PlacedVm, type VmEnv } from '../migration/placement.ts';
import type { TestbedDriver } from '../driver/types.ts';
import { recordProbeFacts, type ProbeStream } from '../migration/probe-stream.ts';
import { buildPlanGraph, type PlanMove } from '../plan/graph.ts';
import { executePlan, type ActionResult, type PlanRun } from '../plan/execute.ts';
import type { PowerMeter } from '../power/meter.ts';
import { JsonlAppendError } from '../store/jsonl.ts';
import type { MigrationRecord, PlanLine, Sample } from '../store/schema/index.ts';
import { UserError } from '../util/errors.ts';
import { checkInterrupted, registerCleanup } from '../util/signals.ts';
import { parseDirtyReport } from '../workloads/dirty.ts';
import { watchGuestReports } from '../workloads/guest-reports.ts';
import { PhaseClock } from '../workloads/phases.ts';
import type { ClientSet } from '../workloads/clients.ts';
import { workloadWarmupMs } from '../workloads/guest-spec.ts';
import type { UnitState } from './campaign-state.ts';
import type { RunDir } from './rundir.ts';
import type { Treatment } from './treatments.ts';
import { addMigrationStep, SpanClock } from './timing.ts';

/**
 * One treatment on the testbed: boot its guests, then for each pending
 * repetition execute the migration plan over all moves (ping-pong: each VM
 * goes away from home, or back home), measuring every migration.
 */
export interface TreatmentContext {
  treatment: Treatment;
  units: UnitState[];
  driver: TestbedDriver;
  image: GuestImage;
  accel: 'kvm' | 'tcg';
  rd: RunDir;
  experiment: string;
  power: PowerMeter | null;
  log: (l: string) => void;
  /** The runner's clock for the spans between migrations (duty cycle); none in tests that drive a treatment alone. */
  timing?: SpanClock;
  /** Called around each unit so the campaign can persist state. */
  unitStarted: (u: UnitState) => void;
  unitEnded: (u: UnitState, records: MigrationRecord[]) => void;
}

/**
 * A migration (or plan) record measured but not written (disk full). The
 * unit stays 'running' in state.json, so 'migbench resume' redoes it.
 */
export class NotRecorded extends UserError {
  constructor(what: string, reason: string, runDir: string) {
    super(`${what} measured but NOT recorded: ${reason}; free space and run 'migbench resume ${runDir}'`);
  }
}

/** What a treatment starts (guests, probes, client load); it stops them on every exit, Ctrl-C and crashes included. */
class Started {
  readonly placed = new Map<string, PlacedVm>();
  readonly probes: ProbeStream[] = [];
  readonly clients: ClientSet[] = [];

  constructor(private readonly env: VmEnv) {}

  async stop(): Promise<void> {
    for (const cl of this.clients.splice(0)) await cl.stop().catch(() => undefined);
    for (const p of this.probes.splice(0)) await p.stop().catch(() => undefined);
    for (const vm of this.placed.values()) await releaseVm(this.env, vm.host, vm.index, vm.proc);
    this.placed.clear();
  }
}

export async function runTreatment(c: TreatmentContext): Promise<MigrationRecord[]> {
  const dir = join(c.rd.path, 'vms', c.treatment.id);
  mkdirSync(dir, { recursive: true });
  const env: VmEnv = { driver: c.driver, topo: c.driver.topology, image: c.image, accel: c.accel, dir, bootTimeoutMs: 180_000 };
  const own = new Started(env);
  const unregister = registerCleanup(() => own.stop());
  try {
    return await runUnits(c, env, own);
  } finally {
    unregister();
    const start = Date.now();
    await own.stop();
    c.timing?.add('teardown', start, { treatment: c.treatment.id });
  }
}

async function runUnits(c: TreatmentContext, env: VmEnv, own: Started): Promise<MigrationRecord[]> {
  const { treatment: t, rd } = c;
  const spec = t.spec;
  const mig = spec.migration!;
  const topo = env.topo;
  const emit = (s: Sample[]) => rd.appendSamples(s);
  const probeIntervalMs = spec.measure.probe_interval.ms;
  const attempt = Math.max(...c.units.map((u) => u.attempts + 1));
  const baseTags = { experiment: c.experiment, treatment: t.id, attempt: String(attempt) };

  // guest-side reports: the generator's achieved dirty rate, traces D(t), other workloads' reports
  const watchSerial = (vm: PlacedVm) => {
    const tags = { ...baseTags, vm: vm.spec.name, host: vm.host.name, workload: workloadLabel(vm.spec.workload) };
    watchGuestReports(vm.proc, tags, emit);
    vm.proc.onSerialLine((line) => {
      const r = parseDirtyReport(line);
      if (r)
        emit([
          {
            t: new Date().toISOString(),
            measurement: 'dirty_rate',
            tags,
            fields: { pages_s: r.pagesPerS, mib_s: r.mibPerS, target_pages_s: r.targetPagesPerS, late: r.late },
          },
        ]);
    });
  };
  const phases = new PhaseClock();
  const clock = c.timing ?? new SpanClock();

  const vmProbes = new Map<string, ProbeStream>();
  const boot = (v: (typeof spec.vms)[number], i: number) => {
    checkInterrupted();
    const host = topo.hosts.find((h) => h.name === v.host)!;
    c.log(`  booting ${v.name} on ${host.name} (${v.memory}, ${workloadLabel(v.workload)})`);
    return clock
      .time('guest-start', () => bootVm(env, v, i, host), { treatment: t.id, vm: v.name })
      .then((vm) => {
        own.placed.set(v.name, vm); // placed as soon as it runs: a sibling's failure still releases it
        const how = vm.start.mode === 'restored' ? `restored from saved guest ${vm.start.from}` : `cold boot: ${vm.start.reason}`;
        c.log(`  ${v.name} ready in ${vm.start.ready_ms} ms (${how})`);
        if (vm.proc.startNote) c.log(`  ${vm.proc.startNote}`);
        watchSerial(vm); // its reports count from its start, not from its siblings'
        return vm;
      });
  };
  // a treatment's guests start at once where the driver allows it (a restore is mostly QEMU start and reading the
  // saved state; 4 guests one after the other took 10-20 s per treatment of mvm's scheduler study)
  const booted: PlacedVm[] = [];
  if (env.driver.concurrentGuestStart) {
    const all = await Promise.allSettled(spec.vms.map((v, i) => boot(v, i)));
    const failed = all.find((r): r is PromiseRejectedResult => r.status === 'rejected');
    if (failed) throw failed.reason;
    booted.push(...all.map((r) => (r as PromiseFulfilledResult<PlacedVm>).value));
  } else for (const [i, v] of spec.vms.entries()) booted.push(await boot(v, i));
  for (const [i, v] of spec.vms.entries()) {
    checkInterrupted();
    const vm = booted[i];
    const p = env.driver.probe(vm.ip, probeIntervalMs, { ...baseTags, vm: v.name }, emit);
    if (p) {
      own.probes.push(p);
      await clock.time('probe-start', () => p.start(), { treatment: t.id, vm: v.name });
      vmProbes.set(v.name, p);
    }
    if (v.clients.length) {
      const started = env.driver.startClients({
        vm: v.name,
        ip: vm.ip,
        clients: v.clients,
        clock: phases,
        tags: baseTags,
        emit,
        log: c.log,
      });
      if (started) {
        c.log(`  starting ${v.clients.length} client(s) of ${v.name}: ${v.clients.map((x) => x.kind).join(', ')}`);
        own.clients.push(await clock.time('clients-start', () => started, { treatment: t.id, vm: v.name }));
      } else c.log(`  ${v.name}: no client vantage point on this testbed; its clients do not run`);
    }
  }
  // warm-up from the spec: let workloads and clients settle before the first migration
  const warmup = Math.max(0, ...spec.vms.map((v) => workloadWarmupMs(v.workload)));
  if (warmup > 0) {
    c.log(`  warming up for ${(warmup / 1000).toFixed(1)} s`);
    await clock.time('warmup', () => sleepInterruptible(warmup), { treatment: t.id });
  }

  const home = new Map(spec.vms.map((v) => [v.name, v.host]));
  const all: MigrationRecord[] = [];
  const pauseMs = mig.pause.ms;
  let writing: Promise<void> = Promise.resolve();
  try {
    for (const unit of c.units) {
      checkInterrupted();
      await clock.time('pause', () => sleepInterruptible(pauseMs), { treatment: t.id, rep: unit.rep });
      const rep = unit.rep;
      // ping-pong: away from home, or back home from wherever the guest is
      const moves: PlanMove[] = mig.moves.map((m) => {
        const at = own.placed.get(m.vm)!.host.name;
        return { vm: m.vm, from: at, to: at === m.to ? home.get(m.vm)! : m.to };
      });
      const graph = buildPlanGraph(moves, mig.plan, { file: 'spec', planPath: 'migration.plan', movesPath: 'migration.moves' });
      unit.attempts++;
      const saveStart = Date.now();
      c.unitStarted(unit);
      clock.add('record', saveStart, { treatment: t.id, rep });
      const records: MigrationRecord[] = [];
      /** Per record: its energy, health and flags are final (and it can be written) once this settled. */
      const settling: Promise<void>[] = [];
      const ctxBase = {
        env,
        experiment: c.experiment,
        treatment: t.id,
        rep,
        attempt: unit.attempts,
        migration: mig,
        probeIntervalMs,
        progressIntervalMs: spec.measure.progress_interval.ms,
        network: topo.networks.includes('mig') ? ('mig' as const) : ('data' as const),
        emit,
        log: c.log,
        phases,
      };
      const run = await executePlan(graph, async (action): Promise<ActionResult> => {
        if (action.kind !== 'migrate') return powerAction(c, action.kind, action.host);
        const vm = own.placed.get(action.vm)!;
        const dst = topo.hosts.find((h) => h.name === action.to)!;
        // the step's time outside the migration window is dead time: before the command, and after the window
        const stepStart = Date.now();
        const stepCtx = { treatment: t.id, rep, vm: action.vm };
        const { record, vm: after } = await migrateVm({ ...ctxBase, probe: vmProbes.get(action.vm) ?? null }, vm, dst).catch(
          (e: unknown) => {
            clock.add('migrate-prepare', stepStart, stepCtx);
            throw e;
          },
        );
        addMigrationStep(clock, stepStart, record.t_cmd, stepCtx);
        record.plan = { kind: mig.plan.kind, k: mig.plan.k ?? null, action_id: action.id, start_ms: null, end_ms: null };
        record.guest_start = vm.start;
        recordProbeFacts(vmProbes.get(action.vm), record);
        records.push(record);
        if (after !== vm) {
          own.placed.set(action.vm, after);
          watchSerial(after);
        }
        c.log(
          `  ${record.id}: ${record.status}${record.reason ? ` (${record.reason})` : ''}` +
            (record.status === 'completed'
              ? `, total ${record.total_ms} ms, downtime reported/event/observed ${record.downtime_reported_ms}/${fmt(record.downtime_event_ms)}/${fmt(record.downtime_observed_ms)} ms, ${(record.transferred_bytes! / 2 ** 20).toFixed(1)} MiB`
              : ''),
        );
        // what settles after the move (each host's first power reading at or past its end, the workload's heartbeat on
        // the destination) is awaited while the next migration runs, not before it
        const energy = clock.time('energy-wait', () => addEnergy(c.power, record), { treatment: t.id, rep, vm: action.vm });
        settling.push(
          Promise.all([energy, after !== vm ? after.settling : undefined]).then(() => {
            record.flags = flagRecord(record);
            for (const f of record.flags) c.log(`  ${record.id}: FLAGGED ${f.code}: ${f.reason}`);
          }),
        );
        if (after.proc.hasExited()) throw new Error(`VM ${action.vm} is gone after ${record.id}`);
        return record.status === 'completed' ? { ok: true } : { ok: false, reason: record.reason ?? record.status };
      });
      // this unit's records are written once they settled, while the next unit already migrates;
      // units are written in order, and every exit (error, Ctrl-C) writes what was measured before the guests stop
      const unitSettled = Promise.all(settling);
      await writing;
      writing = unitSettled.then(() => {
        writeUnit(c, clock, unit, records, run);
        all.push(...records);
      });
      writing.catch(() => undefined); // observed by the next await; no unhandled rejection meanwhile
    }
    // nothing runs after the last unit: its heartbeat checks and power readings are waited for here
    await clock.time('settle', () => writing, { treatment: t.id });
    return all;
  } catch (e) {
    await writing.catch(() => undefined);
    throw e;
  }
}
/** Writes a unit's records and its plan line, then marks it done. */
function writeUnit(c: TreatmentContext, clock: SpanClock, unit: UnitState, records: MigrationRecord[], run: PlanRun): void {
  const { rd, treatment: t } = c;
  const mig = t.spec.migration!;
  const rep = unit.rep;
  const recordStart = Date.now();
  // the executor's clock is the plan's: action start/end and completion time
  const notRecorded: string[] = [];
  let why = '';
  for (const r of records) {
    const a = run.records.find((x) => x.action.id === r.plan!.action_id);
    r.plan!.start_ms = a?.start ?? null;
    r.plan!.end_ms = a?.end ?? null;
    r.plan_completion_ms = run.completionMs;
    try {
      rd.appendMigration(r);
    } catch (e) {
      if (!(e instanceof JsonlAppendError)) throw e;
      notRecorded.push(r.id);
      why ||= e.message;
    }
  }
  if (notRecorded.length) {
    const more = notRecorded.length > 1 ? ` (and ${notRecorded.length - 1} more of this unit)` : '';
    throw new NotRecorded(`migration ${notRecorded[0]}${more}`, why, rd.path);
  }
  appendPlanOrStop(rd, `plan of ${t.id} rep ${rep}`, {
    experiment: c.experiment,
    treatment: t.id,
    rep,
    attempt: unit.attempts,
    kind: mig.plan.kind,
    k: mig.plan.k ?? null,
    start: run.start,
    end: run.end,
    completion_ms: run.completionMs,
    ok: run.ok,
    actions: run.records.map((a) => ({
      id: a.action.id,
      kind: a.action.kind,
      vm: a.action.kind === 'migrate' ? a.action.vm : null,
      host: a.action.kind === 'migrate' ? null : a.action.host,
      from: a.action.kind === 'migrate' ? a.action.from : null,
      to: a.action.kind === 'migrate' ? a.action.to : null,
      status: a.status,
      start: a.start,
      end: a.end,
      reason: a.reason ?? null,
    })),
  });
  c.unitEnded(unit, records);
  clock.add('record', recordStart, { treatment: t.id, rep });
}

/** The plan line completes a unit's records: without it the unit is not done. */
function appendPlanOrStop(rd: RunDir, what: string, line: PlanLine): void {
  try {
    rd.appendPlan(line);
  } catch (e) {
    if (e instanceof JsonlAppendError) throw new NotRecorded(what, e.message, rd.path);
    throw e;
  }
}

/** Host power actions go through the BMC; without BMCs they are recorded as not possible. */
async function powerAction(c: TreatmentContext, kind: 'power-on' | 'power-off', host: string): Promise<ActionResult> {
  if (!c.power) return { ok: false, reason: `${kind} ${host}: no BMC (measure.power is not configured)` };
  const ok = await c.power.chassis(host, kind === 'power-on' ? 'on' : 'off');
  return ok ? { ok: true } : { ok: false, reason: `${kind} ${host}: BMC refused` };
}

/**
 * Energy of source + destination above idle over the migration, once each
 * host has a reading at or past its end: the poller delivers a host's
 * readings in time order, so later ones cannot change the integral over
 * [t_cmd, t_done] (harness/power/energy.test.ts). (It waited for a reading
 * one interval past the end: 1-2 s instead of 0-1 s, for the same figures.)
 */
async function addEnergy(power: PowerMeter | null, record: MigrationRecord): Promise<void> {
  if (!power || !record.t_cmd || !record.t_done) return;
  const from = Date.parse(record.t_cmd);
  const to = Date.parse(record.t_done);
  await power.readingsAfter(to, [record.src, record.dst]);
  const es = power.energy(record.src, from, to);
  const ed = power.energy(record.dst, from, to);
  record.energy_j = es.joules + ed.joules;
  record.energy_src_j = es.joules;
  record.energy_dst_j = ed.joules;
  record.energy_coverage = Math.min(es.coveredFraction, ed.coveredFraction);
}

/** A wait that ends early on Ctrl-C (checked every 200 ms). */
async function sleepInterruptible(ms: number): Promise<void> {
  const end = Date.now() + ms;
  while (Date.now() < end) {
    checkInterrupted();
    await new Promise((r) => setTimeout(r, Math.min(200, end - Date.now())));
  }
}

function fmt(v: number | null): string {
  return v === null ? '-' : v.toFixed(1);
}
