import { iso, sleep } from '../util/time.ts';
import type { MigrationSpecT } from '../spec/schema.ts';
import type { Sample } from '../store/sample.ts';
import type { VmProcess } from '../hypervisor/qemu.ts';
import type { QmpEvent } from '../hypervisor/qmp.ts';
import { expectedPath, pathBetween, type HostNode } from '../testbed/topology.ts';
import { errorMessage } from '../util/errors.ts';
import { startIncoming, tapName, workloadLabel, type PlacedVm, type VmEnv } from './placement.ts';
import type { ProbeStream } from './probe-stream.ts';
import {
  answeredSince,
  deriveMigration,
  emptyControlFacts,
  finalAnswer,
  migrationEndMs,
  probeWindow,
  type MigrationObservation,
  type QueryMigrateAnswer,
} from './derive.ts';
import { HeartbeatCheck } from './heartbeat-check.ts';
import {
  abandonMirror,
  allocatedBytes,
  diskCheck,
  diskPath,
  exportDisk,
  finishMirror,
  guestDiskOp,
  nbdPort,
  queryMirror,
  removeDisk,
  startMirror,
  stopExport,
} from './disk.ts';
import type { BlockJobInfo, BlockObservation, FeatureRequest } from './features.ts';
import { migrateViaLibvirt } from '../driver/ssh/libvirt-migrate.ts';

/**
 * One live migration, measured from several independent sources: the
 * harness clock, QMP events (STOP on the source, RESUME on the destination,
 * MIGRATION status, MIGRATION_PASS), query-migrate sampled at >= 10 Hz, and
 * the client-side probe. A migration that fails is a result, not an
 * exception: it is recorded with its reason and the statistics so far.
 */
export type { MigrationRecord } from '../store/schema/migration.ts';
import type { MigrationRecord } from '../store/schema/migration.ts';
import { within } from '../util/timers.ts';

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

const TERMINAL = new Set(['completed', 'failed', 'cancelled']);
/** Console problems that make a guest unhealthy (the kinds of serial.ts's SerialProblem). */
export const SERIOUS = new Set(['panic', 'oops', 'bug', 'gpf']);

function capabilityList(m: MigrationSpecT, side: 'src' | 'dst'): Array<{ capability: string; state: boolean }> {
  const caps = [{ capability: 'events', state: true }];
  if (m.capabilities.auto_converge && side === 'src') caps.push({ capability: 'auto-converge', state: true });
  if (m.capabilities.multifd) caps.push({ capability: 'multifd', state: true });
  if (m.capabilities.xbzrle) caps.push({ capability: 'xbzrle', state: true });
  if (m.mode === 'postcopy') caps.push({ capability: 'postcopy-ram', state: true });
  return caps;
}

/** What the spec asks of QEMU's features (their evidence is derived in features.ts). */
function featureRequest(m: MigrationSpecT): FeatureRequest {
  return {
    postcopy: m.mode === 'postcopy',
    multifd: m.capabilities.multifd ? { channels: m.multifd_channels ?? 2 } : null,
    xbzrle: m.capabilities.xbzrle ? { cacheBytes: m.xbzrle_cache?.bytes ?? 64 * 2 ** 20 } : null,
    autoConverge: m.capabilities.auto_converge,
  };
}

/** migrate-set-parameters for the features' settings (multifd channels must match on both sides). */
function featureParams(m: MigrationSpecT, side: 'src' | 'dst'): Record<string, unknown> {
  const p: Record<string, unknown> = {};
  if (m.capabilities.multifd && m.multifd_channels) p['multifd-channels'] = m.multifd_channels;
  if (side === 'dst') return p;
  if (m.capabilities.xbzrle && m.xbzrle_cache) p['xbzrle-cache-size'] = m.xbzrle_cache.bytes;
  if (m.capabilities.auto_converge && m.throttle?.initial) p['cpu-throttle-initial'] = m.throttle.initial.pct;
  if (m.capabilities.auto_converge && m.throttle?.increment) p['cpu-throttle-increment'] = m.throttle.increment.pct;
  return p;
}

/** The disk mirror's progress as a block_job sample (query-block-jobs offset/len). */
function blockJobSample(tMs: number, job: BlockJobInfo | null, tags: Record<string, string>): Sample {
  return {
    t: iso(tMs)!,
    measurement: 'block_job',
    tags,
    fields: { offset: job?.offset ?? null, len: job?.len ?? null, ready: job?.ready ?? null, status: job?.status ?? null },
  };
}

/** One query-migrate answer as a migration_progress sample; the raw QEMU fields are kept so the record can be re-derived. */
function progressSample(tMs: number, tCmd: number, a: QueryMigrateAnswer, tags: Record<string, string>): Sample {
  const ram = a.ram ?? {};
  return {
    t: iso(tMs)!,
    measurement: 'migration_progress',
    tags,
    fields: {
      status: a.status ?? null,
      elapsed_ms: a['total-time'] ?? tMs - tCmd,
      transferred: ram.transferred ?? null,
      remaining: ram.remaining ?? null,
      total: ram.total ?? null,
      dirty_pages_rate: ram['dirty-pages-rate'] ?? null,
      mbps: ram.mbps ?? null,
      dirty_sync_count: ram['dirty-sync-count'] ?? null,
      expected_downtime_ms: a['expected-downtime'] ?? null,
      total_time_ms: a['total-time'] ?? null,
      setup_time_ms: a['setup-time'] ?? null,
      downtime_ms: a.downtime ?? null,
      error_desc: a['error-desc'] ?? null,
      // zero pages found so far and the page size: memory in use = total - zero pages once the bulk pass ended
      zero_pages: ram.duplicate ?? null,
      normal_bytes: ram['normal-bytes'] ?? null,
      page_size: ram['page-size'] ?? null,
      // where the bytes went (pre-copy, stop-and-copy, post-copy) and post-copy page requests
      precopy_bytes: ram['precopy-bytes'] ?? null,
      downtime_bytes: ram['downtime-bytes'] ?? null,
      postcopy_bytes: ram['postcopy-bytes'] ?? null,
      postcopy_requests: ram['postcopy-requests'] ?? null,
      // feature evidence (features.ts): multifd bytes, xbzrle cache, auto-converge throttle
      multifd_bytes: ram['multifd-bytes'] ?? null,
      xbzrle_pages: a['xbzrle-cache']?.pages ?? null,
      xbzrle_bytes: a['xbzrle-cache']?.bytes ?? null,
      xbzrle_cache_miss: a['xbzrle-cache']?.['cache-miss'] ?? null,
      xbzrle_cache_miss_rate: a['xbzrle-cache']?.['cache-miss-rate'] ?? null,
      xbzrle_encoding_rate: a['xbzrle-cache']?.['encoding-rate'] ?? null,
      xbzrle_overflow: a['xbzrle-cache']?.overflow ?? null,
      xbzrle_cache_size: a['xbzrle-cache']?.['cache-size'] ?? null,
      cpu_throttle_pct: a['cpu-throttle-percentage'] ?? null,
    },
  };
}

/**
 * Migrates `vm` to `dst`; returns the record and the VM as it runs afterwards (moved or not).
 * This is the control half: it drives QEMU, fills a MigrationObservation as it goes (also as
 * samples: qmp_event, migration_progress, migration_control) and leaves every number of the
 * record to deriveMigration (derive.ts).
 */
export async function migrateVm(ctx: MigrationContext, vm: PlacedVm, dst: HostNode): Promise<{ record: MigrationRecord; vm: PlacedVm }> {
  // the ssh driver's libvirt back end migrates through virsh (its own measurement: driver/ssh/libvirt-migrate.ts)
  if (ctx.env.driver.backend === 'libvirt') return migrateViaLibvirt(ctx, vm, dst);
  const { env, migration: m } = ctx;
  const id = `${ctx.treatment}-r${ctx.rep}-${vm.spec.name}`;
  const tags = {
    experiment: ctx.experiment,
    treatment: ctx.treatment,
    rep: String(ctx.rep),
    attempt: String(ctx.attempt ?? 1),
    vm: vm.spec.name,
    migration: id,
  };
  const dstIp = ctx.network === 'mig' ? dst.migIp! : dst.dataIp;
  const uri = `tcp:${dstIp}:${4400 + vm.index}`;
  const path = pathBetween(env.topo, vm.host.name, dst.name, ctx.network);
  const rate = expectedPath(path).rateBps;
  const downtimeLimitMs = m.downtime_limit.ms;
  const maxTimeMs = m.max_time.ms;
  const obs: MigrationObservation = {
    version: 1,
    id,
    config: {
      mode: m.mode,
      downtimeLimitMs,
      maxTimeMs,
      probeIntervalMs: ctx.probeIntervalMs,
      linkRateBps: rate || null,
      features: featureRequest(m),
    },
    tCmdMs: null,
    tEndMs: null,
    events: [],
    queries: [],
    probe: null,
    control: emptyControlFacts(),
  };
  let measuring = true;
  const control = (tMs: number, action: string, detail: string | null = null) =>
    ctx.emit([{ t: iso(tMs)!, measurement: 'migration_control', tags, fields: { action, detail } }]);
  ctx.probe?.setTags(tags);
  const src = vm.proc;
  let dstProc: VmProcess | null = null;
  // QMP event times come from each host's clock: put them on the controller's (ssh driver; 0 locally)
  const offsets = { src: env.driver.clockOffset(vm.host.name), dst: env.driver.clockOffset(dst.name) };
  const onEvent = (side: 'src' | 'dst') => (e: QmpEvent) => {
    if (!measuring) return;
    const timestampMs = e.timestampMs - (offsets[side]?.offsetMs ?? 0);
    obs.events.push({ side, event: e.event, timestampMs, receivedAtMs: e.receivedAtMs, data: e.data ?? {} });
    ctx.emit([
      {
        t: iso(Number.isFinite(timestampMs) ? timestampMs : e.receivedAtMs)!,
        measurement: 'qmp_event',
        tags: { ...tags, side },
        fields: {
          event: e.event,
          status: typeof e.data?.status === 'string' ? e.data.status : null,
          pass: typeof e.data?.pass === 'number' ? e.data.pass : null,
          received_ms: e.receivedAtMs,
          // the host's clock minus the controller's, taken out of `t` (ssh driver)
          ...(offsets[side] ? { clock_offset_ms: offsets[side].offsetMs } : {}),
          data: JSON.stringify(e.data ?? {}),
        },
      },
    ]);
  };
  const srcListener = onEvent('src');
  const dstListener = onEvent('dst');
  src.qmp.on('event', srcListener);
  let phaseOpen = false;
  /** A probe reply came after RESUME (null: not checked). */
  let answeredAfterResume: boolean | null = null;
  let dstCancelSent = false;
  // block migration of a VM with a disk of its own on each host
  const blockObs: BlockObservation | null =
    m.mode === 'block' && vm.spec.disk?.storage === 'local' ? { mirrorStartMs: null, jobs: [], cancelMs: null, check: null } : null;
  obs.block = blockObs;
  let diskBefore: { bytes: number; sha256: string } | null = null;
  try {
    const params: Record<string, unknown> = { 'downtime-limit': downtimeLimitMs };
    if (m.max_bandwidth) params['max-bandwidth'] = Math.round(m.max_bandwidth.bps / 8);
    Object.assign(params, featureParams(m, 'src'));
    // the source is set up while the destination QEMU starts (~150 ms); its error, if any, is kept until then
    const srcSetUp = (async () => {
      await src.qmp.execute('migrate-set-capabilities', { capabilities: capabilityList(m, 'src') });
      await src.qmp.execute('migrate-set-parameters', params);
    })().then(
      () => null,
      (e: unknown) => e,
    );
    // destination: paused, listening, with the same devices
    dstProc = await startIncoming(env, vm, dst, `${vm.spec.name}.${dst.name}.r${ctx.rep}`).catch(async (e: unknown) => {
      await srcSetUp;
      throw e;
    });
    dstProc.qmp.on('event', dstListener);
    const srcError = await srcSetUp;
    if (srcError) throw srcError;
    await dstProc.qmp.execute('migrate-set-capabilities', { capabilities: capabilityList(m, 'dst') });
    const dstParams = featureParams(m, 'dst');
    if (Object.keys(dstParams).length) await dstProc.qmp.execute('migrate-set-parameters', dstParams);
    await dstProc.qmp.execute('migrate-incoming', { uri });
    void dstProc.exited.then((x) => {
      if (!measuring) return; // our own cleanup
      const description = `destination QEMU exited during the migration (${x.signal ? `signal ${x.signal}` : `exit ${x.code}`})`;
      obs.control.dstExit = { tMs: Date.now(), description };
      control(obs.control.dstExit.tMs, 'dst_exit', description);
    });

    // QMP to the destination closing without its QEMU exiting: the connection to it was cut (ssh driver)
    dstProc.qmp.once('close', () => {
      if (!measuring || obs.control.dstLost) return;
      void within(dstProc!.exited, 1000).then(() => {
        if (!measuring || obs.control.dstExit || dstProc!.hasExited()) return;
        const description = `lost the connection to the destination ${dst.name} (its QMP closed while its QEMU still ran)`;
        obs.control.dstLost = { tMs: Date.now(), description };
        control(obs.control.dstLost.tMs, 'dst_lost', description);
      });
    });

    if (blockObs) {
      // block migration: a known pattern on the disk, the disk mirrored to the destination until READY, then the RAM
      diskBefore = await guestDiskOp(src, 'write').catch((e: unknown) => {
        ctx.log(`  ${vm.spec.name}: ${errorMessage(e)}`);
        return null;
      });
      const port = nbdPort(vm.index);
      await exportDisk(dstProc.qmp, dstIp, port);
      blockObs.mirrorStartMs = Date.now();
      control(blockObs.mirrorStartMs, 'mirror_start', `nbd:${dstIp}:${port}`);
      ctx.phases?.migrationStarted(blockObs.mirrorStartMs);
      phaseOpen = true;
      ctx.log(`  mirroring ${vm.spec.name}'s disk ${vm.host.name} -> ${dst.name} over nbd:${dstIp}:${port}`);
      await startMirror(src.qmp, dstIp, port);
      for (;;) {
        const t = Date.now();
        const job = await queryMirror(src.qmp);
        blockObs.jobs.push({ tMs: t, job });
        ctx.emit([blockJobSample(t, job, tags)]);
        if (!job) throw new Error('the disk mirror job ended before it was ready');
        if (job.ready) break;
        if (t - blockObs.mirrorStartMs > maxTimeMs) throw new Error(`the disk mirror was not ready within max_time ${m.max_time}`);
        await sleep(Math.max(0, ctx.progressIntervalMs - (Date.now() - t)));
      }
      control(Date.now(), 'mirror_ready');
    }

    const tCmd = Date.now();
    obs.tCmdMs = tCmd;
    control(tCmd, 'migrate', uri);
    if (!phaseOpen) ctx.phases?.migrationStarted(tCmd);
    phaseOpen = true;
    ctx.log(`  migrating ${vm.spec.name} ${vm.host.name} -> ${dst.name} over ${uri}`);
    await src.qmp.execute('migrate', { uri });
    const answered = (tMs: number, a: QueryMigrateAnswer) => {
      obs.queries.push({ tMs, answer: a });
      ctx.emit([progressSample(tMs, tCmd, a, tags)]);
    };

    // poll progress until a terminal status; switch to post-copy when asked; cancel at max_time
    for (;;) {
      const t = Date.now();
      let a: QueryMigrateAnswer;
      try {
        a = await src.qmp.execute<QueryMigrateAnswer>('query-migrate', undefined, { timeoutMs: 10_000 });
      } catch (e) {
        obs.control.srcUnanswered = errorMessage(e);
        control(Date.now(), 'src_unanswered', obs.control.srcUnanswered);
        break;
      }
      answered(t, a);
      if (a.status && TERMINAL.has(a.status)) break;
      if (m.mode === 'postcopy' && obs.control.postcopyStartMs === null && m.postcopy_after) {
        const passes = a.ram?.['dirty-sync-count'] ?? 0;
        const byPasses = m.postcopy_after.passes !== undefined && passes >= m.postcopy_after.passes;
        const byTime = m.postcopy_after.time !== undefined && t - tCmd >= m.postcopy_after.time.ms;
        if (byPasses || byTime) {
          obs.control.postcopyStartMs = Date.now();
          control(obs.control.postcopyStartMs, 'postcopy_start');
          await src.qmp.execute('migrate-start-postcopy');
        }
      }
      if (obs.control.dstLost && !dstCancelSent) {
        // nothing can be measured on the destination any more: keep the guest on the source
        dstCancelSent = true;
        ctx.log(`  ${vm.spec.name}: ${obs.control.dstLost.description}; cancelling the migration`);
        control(Date.now(), 'cancel_dst_lost');
        await src.qmp.execute('migrate_cancel').catch(() => undefined);
      }
      if (obs.control.cancelledAtMs === null && t - tCmd > maxTimeMs) {
        ctx.log(`  ${vm.spec.name}: not completed after ${m.max_time}; cancelling`);
        obs.control.cancelledAtMs = Date.now();
        control(obs.control.cancelledAtMs, 'cancel');
        await src.qmp.execute('migrate_cancel').catch(() => undefined);
      }
      if (t - tCmd > maxTimeMs + 60_000) {
        obs.control.cancelStuck = true;
        control(Date.now(), 'cancel_stuck');
        break;
      }
      await sleep(Math.max(0, ctx.progressIntervalMs - (Date.now() - t)));
    }
    obs.tEndMs = Date.now();
    control(obs.tEndMs, 'end', finalAnswer(obs).status ?? null);
    ctx.phases?.migrationEnded(migrationEndMs(obs)!);
    phaseOpen = false;

    if (finalAnswer(obs).status === 'completed') {
      if (blockObs) {
        // the source stopped with every write mirrored (write-blocking): end the mirror, keeping the copy, and the export
        blockObs.cancelMs = Date.now();
        control(blockObs.cancelMs, 'mirror_cancel');
        await finishMirror(src.qmp)
          .then(() => stopExport(dstProc!.qmp))
          .catch((e: unknown) => control(Date.now(), 'mirror_error', errorMessage(e)));
        blockObs.dstAllocatedBytes = await allocatedBytes(diskPath(env, vm.spec, vm.spec.disk!, dst)).catch(() => null);
        control(Date.now(), 'disk_allocated', String(blockObs.dstAllocatedBytes));
      }
      // QEMU fills total-time/downtime at completion; older versions a moment later
      for (let i = 0; i < 30 && (finalAnswer(obs)['total-time'] === undefined || finalAnswer(obs).downtime === undefined); i++) {
        await sleep(100);
        const t = Date.now();
        answered(t, await src.qmp.execute<QueryMigrateAnswer>('query-migrate'));
      }
      // completed before the cut was noticed: a fresh QMP connection keeps the moved guest usable (ssh driver)
      const reopen = (dstProc as Partial<{ reopenQmp(): Promise<unknown> }>).reopenQmp;
      if (obs.control.dstLost && reopen) await reopen().catch((e: unknown) => ctx.log(`  ${vm.spec.name}: ${errorMessage(e)}`));
      // wait for what derivation needs: RESUME on the destination, then a probe reply after it; the probes before
      // that reply without an outcome by then are lost (outage-settle.ts), their 1 s timeouts are not waited for
      const resume = await dstProc.qmp.waitForEvent('RESUME', () => true, 30_000, { since: 0 }).catch(() => null);
      if (ctx.probe && resume) {
        const first = await ctx.probe
          .waitFor(answeredSince(resume.timestampMs), 20_000, `a probe reply from ${vm.ip} after resume`)
          .catch(() => null);
        answeredAfterResume = first !== null;
        if (first) {
          obs.probePending = await ctx.probe.settle(first);
          control(Date.now(), 'probe_settled', `${obs.probePending.length} probe(s) before #${first.seq} without an outcome: lost`);
        }
      }
      if (blockObs) {
        // the pattern read back from the destination's disk (direct I/O: not the page cache that moved with RAM)
        const after = await guestDiskOp(dstProc, 'check').catch((e: unknown) => {
          ctx.log(`  ${vm.spec.name}: ${errorMessage(e)}`);
          return null;
        });
        blockObs.check = diskCheck(diskBefore, after);
      }
    }
  } catch (e) {
    obs.control.error = errorMessage(e);
    control(Date.now(), 'error', obs.control.error);
  } finally {
    src.qmp.off('event', srcListener);
    // the destination's QMP lives on as the VM's: stop recording its events under this migration
    dstProc?.qmp.off('event', dstListener);
    // an error mid-migration must not leave the clients' phase window open forever
    if (phaseOpen) ctx.phases?.migrationEnded(Date.now());
  }
  if (ctx.probe && obs.tCmdMs !== null) obs.probe = probeWindow(ctx.probe.records, obs.tCmdMs);
  measuring = false;

  const rec = derivedRecord(ctx, vm, dst, { id, uri, downtimeLimitMs, offsets, obs });

  if (rec.status === 'completed' && dstProc) {
    rec.health.answers = answeredAfterResume;
    const moved = dstProc;
    // every workload program prints a report line per second: one on the destination's console proves it runs there.
    // The check settles while the caller goes on (the next migration can start from the destination at once); the
    // record's health is final when `settling` resolves. Whoever ends the guest awaits that first.
    const heartbeat = new HeartbeatCheck(moved, !!vm.workload);
    vm.heartbeat?.movedOn(heartbeat); // the last move's check, if still open, is decided on the new console from here
    await src
      .quit(10_000)
      .catch(() => src.kill())
      .then(() => env.driver.releaseGuest(vm.host, tapName(vm.index)));
    if (blockObs) removeDisk(env, vm.spec, vm.host); // the guest's disk is the destination's copy now
    const settling = heartbeat.verdict.then((running) => settleHealth(rec, moved, running));
    return { record: rec, vm: { ...vm, host: dst, proc: dstProc, heartbeat, settling } };
  }
  // failed: remove the destination, check the source guest still runs
  if (blockObs?.mirrorStartMs) await abandonMirror(src.qmp); // the source keeps its own disk
  if (dstProc && !dstProc.hasExited()) await dstProc.kill().catch(() => undefined);
  if (dstProc) await env.driver.releaseGuest(dst, tapName(vm.index));
  if (blockObs) removeDisk(env, vm.spec, dst);
  rec.source_running = await sourceRunning(src);
  rec.health.problems = src
    .serialProblems()
    .filter((p) => SERIOUS.has(p.kind))
    .map((p) => `${p.kind}: ${p.line}`);
  if (ctx.probe && rec.source_running) {
    const t = Date.now();
    rec.health.answers = await ctx.probe.waitFor(answeredSince(t), 20_000, 'probe reply from the source guest').then(
      () => true,
      () => false,
    );
  }
  rec.healthy = rec.source_running === true && rec.health.answers !== false && rec.health.problems.length === 0;
  return { record: rec, vm };
}

/** The moved guest's health once its heartbeat check settled (`running`: null without a workload). */
/** A completed move's final health once its heartbeat check settled (null: no workload to check); shared with the libvirt path. */
export function settleHealth(rec: MigrationRecord, moved: Pick<VmProcess, 'serialProblems'>, running: boolean | null): void {
  if (running !== null) rec.health.workload_running = running;
  rec.health.problems = moved
    .serialProblems()
    .filter((p) => SERIOUS.has(p.kind))
    .map((p) => `${p.kind}: ${p.line}`);
  const content = rec.block?.content;
  if (content && content.verified !== true) {
    rec.health.problems.push(
      content.verified === false
        ? `disk content differs after the move (sha256 ${content.sha256_before} written, ${content.sha256_after} read back)`
        : 'disk content not checked (the guest did not run the disk check)',
    );
  }
  rec.healthy = rec.health.answers !== false && rec.health.workload_running !== false && rec.health.problems.length === 0;
}

async function sourceRunning(src: VmProcess): Promise<boolean> {
  for (let i = 0; i < 100 && !src.hasExited(); i++) {
    const st = await src.qmp.execute<{ status: string; running: boolean }>('query-status').catch(() => null);
    if (st?.running) return true;
    await sleep(100);
  }
  return false;
}

/**
 * A migration's record: who, what and how it was configured, the clock offsets of its two hosts,
 * and every measured field derived from the observation (the qemu and libvirt paths share it).
 */
export function derivedRecord(
  ctx: MigrationContext,
  vm: PlacedVm,
  dst: HostNode,
  o: {
    id: string;
    uri: string;
    downtimeLimitMs: number;
    offsets: Record<'src' | 'dst', { offsetMs: number; uncertaintyMs: number } | null>;
    obs: MigrationObservation;
  },
): MigrationRecord {
  const { id, uri, downtimeLimitMs, offsets, obs } = o;
  const rec: MigrationRecord = {
    id,
    flags: [],
    experiment: ctx.experiment,
    treatment: ctx.treatment,
    rep: ctx.rep,
    attempt: ctx.attempt ?? 1,
    vm: vm.spec.name,
    src: vm.host.name,
    dst: dst.name,
    status: 'failed',
    reason: null,
    partial: false,
    t_cmd: null,
    t_stop: null,
    t_resume: null,
    t_done: null,
    total_ms: null,
    total_ms_harness: null,
    downtime_reported_ms: null,
    downtime_event_ms: null,
    downtime_observed_ms: null,
    preop_ms: null,
    postop_ms: null,
    setup_ms: null,
    transferred_bytes: null,
    passes: null,
    energy_j: null,
    link_rate_mbit: null,
    memory_mib: vm.memoryMiB,
    workload: workloadLabel(vm.spec.workload),
    downtime_limit_ms: downtimeLimitMs,
    probe_interval_ms: ctx.probeIntervalMs,
    healthy: null,
    health: { answers: null, workload_running: null, problems: [] },
    source_running: null,
    migration_uri: uri,
  };
  if (offsets.src || offsets.dst) {
    rec.clock_offset_ms = (offsets.dst?.offsetMs ?? 0) - (offsets.src?.offsetMs ?? 0);
    rec.clock_uncertainty_ms = (offsets.dst?.uncertaintyMs ?? 0) + (offsets.src?.uncertaintyMs ?? 0);
  }
  Object.assign(rec, deriveMigration(obs));
  return rec;
}
