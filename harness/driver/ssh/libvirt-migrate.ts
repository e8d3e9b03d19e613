/**
 * A measured live migration through libvirt (the ssh driver's `libvirt` back end): the
 * control half, like migrate.ts is for QMP. `virsh migrate --live --p2p` runs on the source
 * server towards the destination's libvirt over qemu+ssh, the migration data itself on
 * `--migrateuri tcp:<destination address>:<port>` (the shaped data or migration network).
 * What is observed fills the same MigrationObservation as the qemu back end, so
 * deriveMigration computes every number of the record:
 *  - progress: `virsh domjobinfo --rawstats` of the running job, polled through one virsh
 *    shell at twice the spec's progress rate at most, as fast as libvirtd answers (the rate
 *    reached is recorded: libvirt.job_poll_hz);
 *  - the final statistics: `virsh domjobinfo --completed --rawstats` on the source (downtime,
 *    setup_time, time_elapsed, memory_processed = QEMU's ram.transferred, memory_iteration,
 *    memory_dirty_rate), kept whole in the record (libvirt.completed);
 *  - STOP (source), RESUME (destination) and MIGRATION status events with QEMU's own
 *    timestamps from `virsh qemu-monitor-event --loop --timestamp` on each side, corrected
 *    by the clock offsets measured at preflight.
 */
import type { VmProcess } from '../../hypervisor/qemu.ts';
import {
  answeredSince,
  emptyControlFacts,
  finalAnswer,
  migrationEndMs,
  probeWindow,
  type MigrationObservation,
  type QueryMigrateAnswer,
} from '../../migration/derive.ts';
import { HeartbeatCheck } from '../../migration/heartbeat-check.ts';
import { derivedRecord, SERIOUS, settleHealth, type MigrationContext, type MigrationRecord } from '../../migration/migrate.ts';
import { tapName, type PlacedVm } from '../../migration/placement.ts';
import type { RemoteProcess } from '../../ssh/connection.ts';
import type { Sample } from '../../store/sample.ts';
import { expectedPath, pathBetween, type HostNode } from '../../testbed/topology.ts';
import { UserError, errorMessage } from '../../util/errors.ts';
import { iso, sleep } from '../../util/time.ts';
import { SshDriver } from './driver.ts';
import { VirshShell } from './libvirt-shell.ts';
import { answerFromStats, lineSplitter, parseJobStats, parseMonitorEvent, type JobStats } from './libvirt-stats.ts';
import { endDomain, noSuchDomain, virsh, type LibvirtVmProcess } from './libvirt-vm.ts';
import { within } from '../../util/timers.ts';

/** virsh migrate's options for the spec's migration (what libvirt cannot do is refused before anything runs). */
export function migrateArgs(
  m: MigrationContext['migration'],
  o: { domain: string; peerUri: string; migrateUri: string; listen: string },
): string[] {
  if (m.mode !== 'live')
    throw new UserError(`migration.mode ${m.mode}: the libvirt back end does only live (pre-copy) migration yet; use hypervisor: qemu`);
  const args = [
    'migrate',
    '--live',
    '--p2p',
    '--persistent',
    o.domain,
    o.peerUri,
    '--migrateuri',
    o.migrateUri,
    '--listen-address',
    o.listen,
  ];
  const c = m.capabilities;
  if (c.auto_converge) {
    args.push('--auto-converge');
    if (m.throttle?.initial) args.push('--auto-converge-initial', String(m.throttle.initial.pct));
    if (m.throttle?.increment) args.push('--auto-converge-increment', String(m.throttle.increment.pct));
  }
  if (c.multifd) args.push('--parallel', '--parallel-connections', String(m.multifd_channels ?? 2));
  if (c.xbzrle) {
    args.push('--compressed', '--comp-methods', 'xbzrle');
    if (m.xbzrle_cache) args.push('--comp-xbzrle-cache', String(m.xbzrle_cache.bytes));
  }
  // MiB/s, at least 1 (0 would mean unlimited)
  if (m.max_bandwidth) args.push('--bandwidth', String(Math.max(1, Math.round(m.max_bandwidth.bps / 8 / 2 ** 20))));
  return args;
}

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
      expected_downtime_ms: null,
      total_time_ms: a['total-time'] ?? null,
      setup_time_ms: a['setup-time'] ?? null,
      downtime_ms: a.downtime ?? null,
      error_desc: a['error-desc'] ?? null,
      zero_pages: ram.duplicate ?? null,
      normal_bytes: ram['normal-bytes'] ?? null,
      page_size: ram['page-size'] ?? null,
      source: 'virsh domjobinfo',
    },
  };
}

export async function migrateViaLibvirt(
  ctx: MigrationContext,
  vm: PlacedVm,
  dst: HostNode,
): Promise<{ record: MigrationRecord; vm: PlacedVm }> {
  const { env, migration: m } = ctx;
  const driver = env.driver;
  if (!(driver instanceof SshDriver)) throw new Error('the libvirt back end runs under the ssh driver only');
  const src = vm.proc as LibvirtVmProcess;
  const domain = src.domain;
  const id = `${ctx.treatment}-r${ctx.rep}-${vm.spec.name}`;
  const tags = {
    experiment: ctx.experiment,
    treatment: ctx.treatment,
    rep: String(ctx.rep),
    attempt: String(ctx.attempt ?? 1),
    vm: vm.spec.name,
    migration: id,
  };
  const srcSide = driver.libvirtSide(vm.host);
  const dstSide = driver.libvirtSide(dst);
  const dstIp = ctx.network === 'mig' ? dst.migIp! : dst.dataIp;
  const uri = `tcp:${dstIp}:${4400 + vm.index}`;
  const t = dstSide.server.ssh;
  // the source's libvirtd reaches the destination's as the harness does (root's key on the servers)
  const peerUri = `qemu+ssh://${t.user}@${t.host}${t.port === 22 ? '' : `:${t.port}`}/system`;
  const args = migrateArgs(m, { domain, peerUri, migrateUri: uri, listen: dstIp });
  const path = pathBetween(env.topo, vm.host.name, dst.name, ctx.network);
  const rate = expectedPath(path).rateBps;
  const obs: MigrationObservation = {
    version: 1,
    id,
    config: {
      mode: m.mode,
      downtimeLimitMs: m.downtime_limit.ms,
      maxTimeMs: m.max_time.ms,
      probeIntervalMs: ctx.probeIntervalMs,
      linkRateBps: rate || null,
      features: {
        postcopy: false,
        multifd: m.capabilities.multifd ? { channels: m.multifd_channels ?? 2 } : null,
        xbzrle: m.capabilities.xbzrle ? { cacheBytes: m.xbzrle_cache?.bytes ?? 64 * 2 ** 20 } : null,
        autoConverge: m.capabilities.auto_converge,
      },
    },
    tCmdMs: null,
    tEndMs: null,
    events: [],
    queries: [],
    probe: null,
    control: emptyControlFacts(),
    note: 'libvirt back end: progress and final statistics from virsh domjobinfo, events from virsh qemu-monitor-event',
  };
  let measuring = true;
  const control = (tMs: number, action: string, detail: string | null = null) =>
    ctx.emit([{ t: iso(tMs)!, measurement: 'migration_control', tags, fields: { action, detail } }]);
  ctx.probe?.setTags(tags);
  const offsets = { src: env.driver.clockOffset(vm.host.name), dst: env.driver.clockOffset(dst.name) };
  const onEvent = (side: 'src' | 'dst') => (line: string) => {
    const e = parseMonitorEvent(line, domain);
    if (!e || !measuring) return;
    const receivedAtMs = Date.now();
    const timestampMs = e.timestampMs - (offsets[side]?.offsetMs ?? 0);
    obs.events.push({ side, event: e.event, timestampMs, receivedAtMs, data: e.data });
    ctx.emit([
      {
        t: iso(timestampMs)!,
        measurement: 'qmp_event',
        tags: { ...tags, side },
        fields: {
          event: e.event,
          status: typeof e.data.status === 'string' ? e.data.status : null,
          pass: typeof e.data.pass === 'number' ? e.data.pass : null,
          received_ms: receivedAtMs,
          ...(offsets[side] ? { clock_offset_ms: offsets[side].offsetMs } : {}),
          data: JSON.stringify(e.data),
          source: 'virsh qemu-monitor-event',
        },
      },
    ]);
  };
  const monitors: RemoteProcess[] = [];
  let shell: VirshShell | null = null;
  let dstProc: VmProcess | null = null;
  let phaseOpen = false;
  let answeredAfterResume: boolean | null = null;
  let completed: JobStats | null = null;
  let polls = 0;
  let pollEndMs: number | null = null;
  let migrateErr = '';
  try {
    await driver.ensureGuestImage(dst, env.image);
    // the destination's files (serial log, our QMP socket) live in the run directory there too
    await dstSide.conn.run([
      'sh',
      '-c',
      'mkdir -p -- "$1" && rm -f -- "$2" "$3"',
      'mb',
      src.remote.dir,
      src.remote.serialLog,
      src.remote.qmp,
    ]);
    driver.recordDomain(dstSide.server.name, domain);
    // the source by domain; on the destination the domain appears during the migration: all, filtered by name
    const monitor = (side: 'src' | 'dst', conn: typeof srcSide.conn, extra: string[]) =>
      conn.spawn(['env', 'TZ=UTC', ...virsh('qemu-monitor-event', '--loop', '--timestamp', ...extra)], {
        label: `virsh qemu-monitor-event on ${conn.name}`,
        onStdout: lineSplitter(onEvent(side)),
      });
    monitors.push(await monitor('src', srcSide.conn, ['--domain', domain]), await monitor('dst', dstSide.conn, []));
    shell = await VirshShell.open(srcSide.conn);
    const dt = await srcSide.conn.exec(virsh('migrate-setmaxdowntime', domain, String(m.downtime_limit.ms)), {
      label: 'virsh migrate-setmaxdowntime',
    });
    if (dt.code !== 0) throw srcSide.conn.error(`cannot set the downtime limit of ${domain}: ${dt.stderr.trim()}`);
    // the event listeners register with libvirtd while virsh starts: a moment before the migration starts
    await sleep(300);

    const tCmd = Date.now();
    obs.tCmdMs = tCmd;
    control(tCmd, 'migrate', `virsh ${args.join(' ')}`);
    ctx.phases?.migrationStarted(tCmd);
    phaseOpen = true;
    ctx.log(`  migrating ${vm.spec.name} ${vm.host.name} -> ${dst.name} through libvirt over ${uri}`);
    const mig = await srcSide.conn.spawn(virsh(...args), {
      label: `virsh migrate ${domain}`,
      onStderr: (s) => (migrateErr = (migrateErr + s).slice(-2000)),
    });
    let ended: { code: number | null } | null = null;
    let lost: string | null = null;
    void mig.done.then(
      (r) => (ended = r),
      (e: unknown) => (lost = errorMessage(e)),
    );
    for (;;) {
      const tq = Date.now();
      if (ended || lost) break;
      let text: string;
      try {
        text = await shell.run(['domjobinfo', domain, '--rawstats']);
      } catch (e) {
        obs.control.srcUnanswered = errorMessage(e);
        control(Date.now(), 'src_unanswered', obs.control.srcUnanswered);
        break;
      }
      polls++;
      const s = parseJobStats(text);
      if (s.type === 'unbounded' || s.type === 'bounded') {
        const a = answerFromStats(s);
        obs.queries.push({ tMs: tq, answer: a });
        ctx.emit([progressSample(tq, tCmd, a, tags)]);
      }
      if (obs.control.cancelledAtMs === null && tq - tCmd > m.max_time.ms) {
        ctx.log(`  ${vm.spec.name}: not completed after ${m.max_time}; aborting the libvirt job`);
        obs.control.cancelledAtMs = Date.now();
        control(obs.control.cancelledAtMs, 'cancel');
        await srcSide.conn.exec(virsh('domjobabort', domain), { timeoutMs: 15_000 }).catch(() => undefined);
      }
      if (tq - tCmd > m.max_time.ms + 60_000) {
        obs.control.cancelStuck = true;
        control(Date.now(), 'cancel_stuck');
        break;
      }
      // each answer costs a round trip over SSH through libvirtd: aim at twice the spec's rate to stay at or above it
      await sleep(Math.max(0, ctx.progressIntervalMs / 2 - (Date.now() - tq)));
    }
    pollEndMs = Date.now();
    const r =
      ended ??
      (await within(
        mig.done.catch(() => null),
        5_000,
      ));
    if (lost) throw new Error(`lost the SSH connection to ${vm.host.name} running virsh migrate: ${lost}`);
    const ok = r?.code === 0;
    // the source domain stays defined (inactive) after the move: its completed job is read there
    const st = await shell
      .run(['domjobinfo', domain, '--completed', '--rawstats', '--keep-completed', ...(ok ? [] : ['--anystats'])])
      .catch(() => '');
    completed = parseJobStats(st);
    const status = ok ? 'completed' : obs.control.cancelledAtMs !== null ? 'cancelled' : 'failed';
    const final = answerFromStats(completed, status);
    if (!ok)
      final['error-desc'] =
        migrateErr
          .replace(/^error:\s*/gim, '')
          .trim()
          .split('\n')
          .join('; ') || `virsh migrate exit ${r?.code ?? '?'}`;
    obs.queries.push({ tMs: Date.now(), answer: final });
    if (ok) {
      // the source's MIGRATION completed event and the destination's RESUME: a moment after virsh returns at most
      for (let i = 0; i < 50 && !obs.events.some((e) => e.side === 'dst' && e.event === 'RESUME'); i++) await sleep(100);
      const q = qemuTotalMs(obs);
      if (q !== null) final['total-time'] = q;
    }
    obs.tEndMs = Date.now();
    control(obs.tEndMs, 'end', status);
    ctx.phases?.migrationEnded(migrationEndMs(obs)!);
    phaseOpen = false;
    if (ok) {
      dstProc = await driver.adoptLibvirtGuest(dst, { name: vm.spec.name, domain, accel: src.accel }, env.dir);
      const resume = obs.events.find((e) => e.side === 'dst' && e.event === 'RESUME');
      if (ctx.probe && resume) {
        const first = await ctx.probe
          .waitFor(answeredSince(resume.timestampMs), 20_000, `a probe reply from ${vm.ip} after resume`)
          .catch(() => null);
        answeredAfterResume = first !== null;
        if (first) obs.probePending = await ctx.probe.settle(first); // no 1 s timeout wait: outage-settle.ts
      }
    }
  } catch (e) {
    obs.control.error = errorMessage(e);
    control(Date.now(), 'error', obs.control.error);
  } finally {
    if (phaseOpen) ctx.phases?.migrationEnded(Date.now());
    await Promise.all(monitors.map((p) => p.stop(1000).catch(() => undefined)));
    await shell?.close();
  }
  if (ctx.probe && obs.tCmdMs !== null) obs.probe = probeWindow(ctx.probe.records, obs.tCmdMs);
  measuring = false;
  // answers per second while virsh migrate ran
  const pollHz = obs.tCmdMs !== null && pollEndMs !== null && polls > 0 ? polls / Math.max(0.001, (pollEndMs - obs.tCmdMs) / 1000) : null;

  const rec = derivedRecord(ctx, vm, dst, { id, uri, downtimeLimitMs: m.downtime_limit.ms, offsets, obs });
  Object.assign(rec, {
    backend: 'libvirt',
    libvirt: {
      job_polls: polls,
      job_poll_hz: pollHz === null ? null : Math.round(pollHz * 10) / 10,
      // libvirt's job time also covers its own phases before QEMU migrates (connecting to the destination, starting its QEMU)
      time_elapsed_ms: typeof completed?.fields.time_elapsed === 'number' ? completed.fields.time_elapsed : null,
      total_ms_from: qemuTotalMs(obs) !== null ? 'QEMU MIGRATION events setup -> completed on the source' : 'libvirt time_elapsed',
      completed: completed?.fields ?? null,
    },
    null_reasons: nullReasons(rec, obs),
  });

  if (rec.status === 'completed' && dstProc) {
    rec.health.answers = answeredAfterResume;
    const moved = dstProc;
    // as under the qemu back end (migrate.ts): the workload's heartbeat on the destination's console settles while
    // the caller goes on; the record's health is final when `settling` resolves (it blocked here, ~0.5 s per move)
    const heartbeat = new HeartbeatCheck(moved, !!vm.workload);
    vm.heartbeat?.movedOn(heartbeat); // the last move's check, if still open, is decided on the new console from here
    // libvirt ended the source QEMU; its definition (kept for the completed statistics) goes now
    await src.kill().catch((e: unknown) => ctx.log(`  ${vm.spec.name}: ${errorMessage(e)}`));
    await env.driver.releaseGuest(vm.host, tapName(vm.index));
    const settling = heartbeat.verdict.then((running) => settleHealth(rec, moved, running));
    return { record: rec, vm: { ...vm, host: dst, proc: dstProc, heartbeat, settling } };
  }
  // failed: nothing of the guest stays on the destination; the source guest should still run
  if (dstProc && !dstProc.hasExited()) await dstProc.kill().catch(() => undefined);
  await endDomain(dstSide.conn, domain).catch(() => undefined);
  rec.source_running = await domainRunning(srcSide.conn, domain);
  rec.health.problems = src
    .serialProblems()
    .filter((p) => SERIOUS.has(p.kind))
    .map((p) => `${p.kind}: ${p.line}`);
  if (ctx.probe && rec.source_running) {
    const t0 = Date.now();
    rec.health.answers = await ctx.probe.waitFor(answeredSince(t0), 20_000, 'probe reply from the source guest').then(
      () => true,
      () => false,
    );
  }
  rec.healthy = rec.source_running === true && rec.health.answers !== false && rec.health.problems.length === 0;
  return { record: rec, vm };
}

/**
 * QEMU's own migration time, as its total-time under the qemu back end: the source's MIGRATION
 * `setup` to `completed` events (one clock); null without both.
 */
export function qemuTotalMs(obs: MigrationObservation): number | null {
  const at = (status: string) =>
    obs.events.find((e) => e.side === 'src' && e.event === 'MIGRATION' && e.data.status === status)?.timestampMs;
  const a = at('setup');
  const b = at('completed');
  return a !== undefined && b !== undefined ? Math.round(b - a) : null;
}

async function domainRunning(conn: LibvirtSideConn, domain: string): Promise<boolean> {
  const r = await conn.exec(virsh('domstate', domain), { timeoutMs: 15_000 }).catch(() => null);
  if (!r || (r.code !== 0 && noSuchDomain(r.stderr))) return false;
  return r.stdout.trim() === 'running';
}
type LibvirtSideConn = ReturnType<SshDriver['libvirtSide']>['conn'];

/** Why a measured field of a completed migration is null under this back end (none when all are there). */
export function nullReasons(rec: MigrationRecord, obs: MigrationObservation): Record<string, string> {
  if (rec.status !== 'completed') return {};
  const why: Record<string, string> = {};
  const final = finalAnswer(obs);
  if (rec.total_ms === null) why.total_ms = 'libvirt reported no time_elapsed for the completed job';
  if (rec.downtime_reported_ms === null) why.downtime_reported_ms = 'libvirt reported no downtime for the completed job';
  if (rec.setup_ms === null) why.setup_ms = 'libvirt reported no setup_time for the completed job';
  if (rec.transferred_bytes === null) why.transferred_bytes = 'libvirt reported no memory_processed';
  if (rec.passes === null) why.passes = `libvirt reported no memory_iteration${final.ram ? '' : ' (no memory statistics at all)'}`;
  const stop = obs.events.some((e) => e.side === 'src' && e.event === 'STOP');
  const resume = obs.events.some((e) => e.side === 'dst' && e.event === 'RESUME');
  const missing = [stop ? '' : 'STOP on the source', resume ? '' : 'RESUME on the destination'].filter(Boolean).join(' and ');
  if (rec.downtime_event_ms === null) why.downtime_event_ms = `no ${missing} event from virsh qemu-monitor-event`;
  if (rec.downtime_observed_ms === null)
    why.downtime_observed_ms = obs.probe ? 'no probe reply after RESUME' : 'no probe (no client vantage point)';
  return why;
}
