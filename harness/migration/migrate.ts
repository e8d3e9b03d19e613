import { iso, sleep } from '../util/time.ts';
import { longestOutage } from '../native/programs.ts';
import type { MigrationSpecT } from '../spec/schema.ts';
import { parseDuration, parseRate } from '../spec/units.ts';
import type { Sample } from '../store/sample.ts';
import type { VmProcess } from '../hypervisor/qemu.ts';
import type { QmpEvent } from '../hypervisor/qmp.ts';
import { expectedPath, pathBetween, type HostNode } from '../testbed/topology.ts';
import { errorMessage } from '../util/errors.ts';
import { deleteTap, startIncoming, tapName, workloadLabel, type PlacedVm, type VmEnv } from './placement.ts';
import type { ProbeStream } from './probe-stream.ts';
import { WORKLOAD_HEARTBEAT } from '../workloads/guest-reports.ts';

/**
 * One live migration, measured from several independent sources: the
 * harness clock, QMP events (STOP on the source, RESUME on the destination,
 * MIGRATION status, MIGRATION_PASS), query-migrate sampled at >= 10 Hz, and
 * the client-side probe. A migration that fails is a result, not an
 * exception: it is recorded with its reason and the statistics so far.
 */
export interface MigrationRecord {
  id: string;
  experiment: string;
  treatment: string;
  rep: number;
  vm: string;
  src: string;
  dst: string;
  status: 'completed' | 'failed' | 'cancelled';
  reason: string | null;
  partial: boolean;
  t_cmd: string | null;
  t_stop: string | null;
  t_resume: string | null;
  t_done: string | null;
  total_ms: number | null;
  total_ms_harness: number | null;
  downtime_reported_ms: number | null;
  downtime_event_ms: number | null;
  downtime_observed_ms: number | null;
  preop_ms: number | null;
  postop_ms: number | null;
  setup_ms: number | null;
  transferred_bytes: number | null;
  passes: number | null;
  /** Energy of source + destination above idle over the migration (J), and its parts. */
  energy_j: number | null;
  energy_src_j?: number | null;
  energy_dst_j?: number | null;
  /** Share of the migration interval covered by power readings on both hosts (0..1). */
  energy_coverage?: number | null;
  link_rate_mbit: number | null;
  memory_mib: number;
  workload: string;
  downtime_limit_ms: number;
  probe_interval_ms: number;
  healthy: boolean | null;
  health: { answers: boolean | null; workload_running: boolean | null; problems: string[] };
  source_running: boolean | null;
  migration_uri: string;
  /** Attempt of the campaign unit this migration belongs to (a redone unit has a higher one). */
  attempt?: number;
  /** Plan action and its executor times (epoch ms); the plan's completion time. */
  plan?: { kind: string; k: number | null; action_id: string; start_ms: number | null; end_ms: number | null };
  plan_completion_ms?: number | null;
}

export interface MigrationContext {
  env: VmEnv;
  experiment: string;
  treatment: string;
  rep: number;
  /** Attempt of the campaign unit (tags every sample, so a redone unit's data is told apart). */
  attempt?: number;
  migration: MigrationSpecT;
  probe: ProbeStream | null;
  probeIntervalMs: number;
  progressIntervalMs: number;
  network: 'data' | 'mig';
  emit: (samples: Sample[]) => void;
  log: (line: string) => void;
  /** Told when the migration starts and ends, so client samples get before/during/after labels. */
  phases?: { migrationStarted(tMs: number): void; migrationEnded(tMs: number): void };
}

interface QueryMigrate {
  status?: string;
  'total-time'?: number;
  downtime?: number;
  'setup-time'?: number;
  'expected-downtime'?: number;
  ram?: Record<string, number>;
  'error-desc'?: string;
}

const TERMINAL = new Set(['completed', 'failed', 'cancelled']);
const SERIOUS = new Set(['panic', 'oops', 'bug', 'gpf']);

function capabilityList(m: MigrationSpecT, side: 'src' | 'dst'): Array<{ capability: string; state: boolean }> {
  const caps = [{ capability: 'events', state: true }];
  if (m.capabilities.auto_converge && side === 'src') caps.push({ capability: 'auto-converge', state: true });
  if (m.capabilities.multifd) caps.push({ capability: 'multifd', state: true });
  if (m.capabilities.xbzrle) caps.push({ capability: 'xbzrle', state: true });
  if (m.mode === 'postcopy') caps.push({ capability: 'postcopy-ram', state: true });
  return caps;
}

/** Migrates `vm` to `dst`; returns the record and the VM as it runs afterwards (moved or not). */
export async function migrateVm(ctx: MigrationContext, vm: PlacedVm, dst: HostNode): Promise<{ record: MigrationRecord; vm: PlacedVm }> {
  const { env, migration: m } = ctx;
  const id = `${ctx.treatment}-r${ctx.rep}-${vm.spec.name}`;
  const tags = { experiment: ctx.experiment, treatment: ctx.treatment, rep: String(ctx.rep), attempt: String(ctx.attempt ?? 1), vm: vm.spec.name, migration: id };
  const dstIp = ctx.network === 'mig' ? dst.migIp! : dst.dataIp;
  const uri = `tcp:${dstIp}:${4400 + vm.index}`;
  const path = pathBetween(env.topo, vm.host.name, dst.name, ctx.network);
  const rate = expectedPath(path).rateBps;
  const downtimeLimitMs = parseDuration(m.downtime_limit)!;
  const maxTimeMs = parseDuration(m.max_time)!;
  const rec: MigrationRecord = {
    id, experiment: ctx.experiment, treatment: ctx.treatment, rep: ctx.rep, attempt: ctx.attempt ?? 1, vm: vm.spec.name, src: vm.host.name, dst: dst.name,
    status: 'failed', reason: null, partial: false, t_cmd: null, t_stop: null, t_resume: null, t_done: null,
    total_ms: null, total_ms_harness: null, downtime_reported_ms: null, downtime_event_ms: null, downtime_observed_ms: null,
    preop_ms: null, postop_ms: null, setup_ms: null, transferred_bytes: null, passes: null, energy_j: null,
    link_rate_mbit: rate ? rate / 1e6 : null, memory_mib: vm.memoryMiB, workload: workloadLabel(vm.spec.workload),
    downtime_limit_ms: downtimeLimitMs, probe_interval_ms: ctx.probeIntervalMs, healthy: null,
    health: { answers: null, workload_running: null, problems: [] }, source_running: null, migration_uri: uri,
  };
  ctx.probe?.setTags(tags);
  const src = vm.proc;
  let dstProc: VmProcess | null = null;
  const events: Array<QmpEvent & { side: 'src' | 'dst' }> = [];
  const onEvent = (side: 'src' | 'dst') => (e: QmpEvent) => {
    events.push({ ...e, side });
    ctx.emit([{ t: iso(Number.isFinite(e.timestampMs) ? e.timestampMs : e.receivedAtMs)!, measurement: 'qmp_event', tags: { ...tags, side },
      fields: { event: e.event, status: typeof e.data?.status === 'string' ? e.data.status : null, pass: typeof e.data?.pass === 'number' ? e.data.pass : null, received_ms: e.receivedAtMs, data: JSON.stringify(e.data ?? {}) } }]);
  };
  const srcListener = onEvent('src');
  src.qmp.on('event', srcListener);
  let phaseOpen = false;
  let last: QueryMigrate = {};
  /** Last answer that still carried RAM statistics (a cancelled migration's final answer has none). */
  let lastRam: QueryMigrate = {};
  try {
    // destination first: paused, listening, with the same devices
    dstProc = await startIncoming(env, vm, dst, `${vm.spec.name}.${dst.name}.r${ctx.rep}`);
    dstProc.qmp.on('event', onEvent('dst'));
    await src.qmp.execute('migrate-set-capabilities', { capabilities: capabilityList(m, 'src') });
    await dstProc.qmp.execute('migrate-set-capabilities', { capabilities: capabilityList(m, 'dst') });
    const params: Record<string, unknown> = { 'downtime-limit': downtimeLimitMs };
    if (m.max_bandwidth) params['max-bandwidth'] = Math.round(parseRate(m.max_bandwidth)! / 8);
    await src.qmp.execute('migrate-set-parameters', params);
    await dstProc.qmp.execute('migrate-incoming', { uri });

    const dstExit = dstProc.exited.then((x) => x);
    let dstGone: string | null = null;
    void dstExit.then((x) => {
      dstGone = `destination QEMU exited during the migration (${x.signal ? `signal ${x.signal}` : `exit ${x.code}`})`;
    });

    const tCmd = Date.now();
    rec.t_cmd = iso(tCmd);
    ctx.phases?.migrationStarted(tCmd);
    phaseOpen = true;
    ctx.log(`  migrating ${vm.spec.name} ${vm.host.name} -> ${dst.name} over ${uri}`);
    await src.qmp.execute('migrate', { uri });

    // poll progress until a terminal status; cancel at max_time
    let cancelled = false;
    let postcopyStarted = false;
    for (;;) {
      const t = Date.now();
      try {
        last = await src.qmp.execute<QueryMigrate>('query-migrate', undefined, { timeoutMs: 10_000 });
      } catch (e) {
        rec.reason = `source QEMU stopped answering: ${errorMessage(e)}`;
        break;
      }
      if (last.ram) lastRam = last;
      const ram = last.ram ?? {};
      ctx.emit([{ t: iso(t)!, measurement: 'migration_progress', tags, fields: {
        status: last.status ?? null, elapsed_ms: last['total-time'] ?? t - tCmd, transferred: ram.transferred ?? null, remaining: ram.remaining ?? null,
        total: ram.total ?? null, dirty_pages_rate: ram['dirty-pages-rate'] ?? null, mbps: ram.mbps ?? null,
        dirty_sync_count: ram['dirty-sync-count'] ?? null, expected_downtime_ms: last['expected-downtime'] ?? null } }]);
      if (last.status && TERMINAL.has(last.status)) break;
      if (m.mode === 'postcopy' && !postcopyStarted && m.postcopy_after) {
        const passes = ram['dirty-sync-count'] ?? 0;
        const byPasses = m.postcopy_after.passes !== undefined && passes >= m.postcopy_after.passes;
        const byTime = m.postcopy_after.time !== undefined && t - tCmd >= parseDuration(m.postcopy_after.time)!;
        if (byPasses || byTime) {
          await src.qmp.execute('migrate-start-postcopy');
          postcopyStarted = true;
        }
      }
      if (!cancelled && t - tCmd > maxTimeMs) {
        ctx.log(`  ${vm.spec.name}: not completed after ${m.max_time}; cancelling`);
        rec.reason = `not completed within max_time ${m.max_time}; cancelled`;
        cancelled = true;
        await src.qmp.execute('migrate_cancel').catch(() => undefined);
      }
      if (t - tCmd > maxTimeMs + 60_000) {
        rec.reason = `${rec.reason ?? ''} migration did not stop within 60 s of migrate_cancel`.trim();
        break;
      }
      await sleep(Math.max(0, ctx.progressIntervalMs - (Date.now() - t)));
    }
    const tDoneHarness = Date.now();
    const doneEv = events.find((e) => e.side === 'src' && e.event === 'MIGRATION' && e.data?.status === last.status);
    const tDone = doneEv && Number.isFinite(doneEv.timestampMs) ? doneEv.timestampMs : tDoneHarness;
    rec.t_done = iso(tDone);
    ctx.phases?.migrationEnded(tDone);
    phaseOpen = false;
    rec.total_ms_harness = tDone - tCmd;

    if (last.status === 'completed') {
      // QEMU fills total-time/downtime at completion; older versions a moment later
      for (let i = 0; i < 30 && (last['total-time'] === undefined || last.downtime === undefined); i++) {
        await sleep(100);
        last = await src.qmp.execute<QueryMigrate>('query-migrate');
      }
      rec.status = 'completed';
      const stop = events.find((e) => e.side === 'src' && e.event === 'STOP');
      const resume = await dstProc.qmp.waitForEvent('RESUME', () => true, 30_000, { since: 0 }).catch(() => null);
      if (stop) rec.t_stop = iso(stop.timestampMs);
      if (resume) rec.t_resume = iso(resume.timestampMs);
      if (stop) rec.preop_ms = stop.timestampMs - tCmd;
      if (stop && resume) rec.downtime_event_ms = resume.timestampMs - stop.timestampMs;
      if (ctx.probe && resume) {
        const first = await ctx.probe
          .waitFor((r) => r.recvUs !== null && r.sentUs >= resume.timestampMs * 1000, 20_000, `a probe reply from ${vm.ip} after resume`)
          .catch(() => null);
        rec.health.answers = first !== null;
        if (first) {
          rec.postop_ms = first.sentUs / 1000 - resume.timestampMs;
          await ctx.probe.settled(first.seq, 5_000).catch(() => undefined);
          const o = longestOutage(ctx.probe.records, ctx.probeIntervalMs, { fromUs: tCmd * 1000, toUs: first.sentUs });
          rec.downtime_observed_ms = o ? o.durationMs : 0;
        }
      }
    } else {
      rec.status = cancelled ? 'cancelled' : 'failed';
      rec.reason = rec.reason ?? dstGone ?? `migration ${last.status ?? 'ended'}${last['error-desc'] ? `: ${last['error-desc']}` : ''}`;
      if (!cancelled && dstGone) rec.reason = dstGone;
    }
  } catch (e) {
    rec.status = 'failed';
    rec.reason = rec.reason ?? errorMessage(e);
  } finally {
    src.qmp.off('event', srcListener);
    // an error mid-migration must not leave the clients' phase window open forever
    if (phaseOpen) ctx.phases?.migrationEnded(Date.now());
  }
  // statistics as far as they got (also for failed migrations)
  if (last.ram) lastRam = last;
  const ram = lastRam.ram ?? {};
  rec.total_ms = last.status === 'completed' ? last['total-time'] ?? null : lastRam['total-time'] ?? null;
  rec.downtime_reported_ms = last.status === 'completed' ? last.downtime ?? null : null;
  rec.setup_ms = lastRam['setup-time'] ?? last['setup-time'] ?? null;
  rec.transferred_bytes = ram.transferred ?? null;
  rec.passes = ram['dirty-sync-count'] ?? null;

  if (rec.status === 'completed' && dstProc) {
    const since = 0;
    if (vm.workload) {
      // every workload program prints a report line per second: one on the destination's console proves it runs there
      rec.health.workload_running = await dstProc.waitForSerial(WORKLOAD_HEARTBEAT, 10_000, { since }).then(() => true, () => false);
    }
    rec.health.problems = dstProc.serialProblems().filter((p) => SERIOUS.has(p.kind)).map((p) => `${p.kind}: ${p.line}`);
    rec.healthy = rec.health.answers !== false && rec.health.workload_running !== false && rec.health.problems.length === 0;
    // the source is paused in 'postmigrate': end it, the guest lives on dst now
    await src.quit(10_000).catch(() => src.kill());
    await deleteTap(vm.host.ns, tapName(vm.index));
    return { record: rec, vm: { ...vm, host: dst, proc: dstProc } };
  }
  // failed: remove the destination, check the source guest still runs
  if (dstProc && !dstProc.hasExited()) await dstProc.kill().catch(() => undefined);
  await deleteTap(dst.ns, tapName(vm.index));
  rec.source_running = await sourceRunning(src);
  rec.health.problems = src.serialProblems().filter((p) => SERIOUS.has(p.kind)).map((p) => `${p.kind}: ${p.line}`);
  if (ctx.probe && rec.source_running) {
    const t = Date.now() * 1000;
    rec.health.answers = await ctx.probe.waitFor((r) => r.recvUs !== null && r.sentUs >= t, 20_000, 'probe reply from the source guest').then(() => true, () => false);
  }
  rec.healthy = rec.source_running === true && rec.health.answers !== false && rec.health.problems.length === 0;
  return { record: rec, vm };
}

async function sourceRunning(src: VmProcess): Promise<boolean> {
  for (let i = 0; i < 100 && !src.hasExited(); i++) {
    const st = await src.qmp.execute<{ status: string; running: boolean }>('query-status').catch(() => null);
    if (st?.running) return true;
    await sleep(100);
  }
  return false;
}
