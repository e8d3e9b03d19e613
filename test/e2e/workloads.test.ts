import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fitHotColdCurve } from '../../analysis/models/hotcold.ts';
import { probeAccelerator } from '../../harness/hypervisor/accel.ts';
import { buildGuestImage, type GuestImage } from '../../harness/image/build.ts';
import { migrateVm } from '../../harness/migration/migrate.ts';
import { bootVm, releaseVm, type PlacedVm, type VmEnv } from '../../harness/migration/placement.ts';
import { LocalDriver } from '../../harness/driver/local.ts';
import { delayForwarderPath } from '../../harness/native/programs.ts';
import { loadSpec } from '../../harness/spec/load.ts';
import { ClientSpec, type Spec } from '../../harness/spec/schema.ts';
import type { Sample } from '../../harness/store/sample.ts';
import { down, up } from '../../harness/testbed/local.ts';
import { buildTopology, type Topology } from '../../harness/testbed/topology.ts';
import { runIn } from '../../harness/util/exec.ts';
import { parseTraceLine, watchGuestReports } from '../../harness/workloads/guest-reports.ts';
import { PhaseClock } from '../../harness/workloads/phases.ts';
import { dirtyRateSupport, measureDirtyRate, MIN_CALC_MS } from '../../harness/workloads/qmp-dirty-rate.ts';
import { parseDirtyReport } from '../../harness/workloads/dirty.ts';
import { ROOT, waitFor } from '../support/cli.ts';

/**
 * Real guests on the local testbed (id mbw1): the in-guest tracer, QMP
 * calc-dirty-rate and the generator's own report checked against each
 * other; migrations at three dirty rates; httperf and response-time probes
 * with phase labels. Everything waits on console markers or samples.
 */
const ID = 'mbw1';
const specFile = `${ROOT}test/e2e/specs/workloads-e2e.yaml`;
const log = (l: string) => process.stderr.write(`${l}\n`);
let spec: Spec;
let topo: Topology;
let driver: LocalDriver;
let image: GuestImage;
let accel: 'kvm' | 'tcg';
const dir = mkdtempSync(join(tmpdir(), 'mb-w-e2e-'));
const live: PlacedVm[] = [];

beforeAll(async () => {
  spec = loadSpec(specFile).spec;
  await down(ID).catch(() => undefined);
  const state = await up({ id: ID, specFile, topology: buildTopology(spec.testbed, ID), delayForwarder: delayForwarderPath });
  topo = state.topology;
  driver = new LocalDriver(state);
  image = await buildGuestImage();
  accel = (await probeAccelerator(image)).accel;
}, 300_000);

afterAll(async () => {
  for (const vm of live) await releaseVm(env(), vm.host, vm.index, vm.proc);
  await down(ID);
  rmSync(dir, { recursive: true, force: true });
}, 120_000);

/** Workload clients through the driver (the local testbed always has a client namespace). */
function clientsFrom(d: LocalDriver, o: Parameters<LocalDriver['startClients']>[0]) {
  const started = d.startClients(o);
  if (!started) throw new Error('the testbed has no client namespace');
  return started;
}

const env = (): VmEnv => ({ driver, topo, image, accel, dir, bootTimeoutMs: 180_000 });
const vmSpec = (name: string) => spec.vms.find((v) => v.name === name)!;
const hostNode = (name: string) => topo.hosts.find((h) => h.name === name)!;

async function boot(name: string): Promise<PlacedVm> {
  const i = spec.vms.findIndex((v) => v.name === name);
  const vm = await bootVm(env(), vmSpec(name), i, hostNode(vmSpec(name).host));
  live.push(vm);
  return vm;
}

async function retire(vm: PlacedVm): Promise<void> {
  await vm.proc.kill();
  await releaseVm(env(), vm.host, vm.index);
  live.splice(live.indexOf(vm), 1);
}

/** Next `n` MB-DIRTY reports after `since` (serial mark). */
async function dirtyReports(vm: PlacedVm, n: number, since: number) {
  await waitFor(
    () =>
      vm.proc
        .serialLines()
        .slice(since)
        .filter((l) => parseDirtyReport(l)).length >= n,
    60_000,
    `${n} MB-DIRTY reports`,
  );
  return vm.proc
    .serialLines()
    .slice(since)
    .map(parseDirtyReport)
    .filter((r) => r !== null)
    .slice(0, n);
}

describe('dirty-page tracing and measurement', () => {
  it('tracer, calc-dirty-rate and the generator agree; the hot set shows as the knee of D(t)', async () => {
    const vm = await boot('hotcold');
    const samples: Sample[] = [];
    const unwatch = watchGuestReports(vm.proc, { vm: 'hotcold', workload: 'hotcold-16M' }, (s) => samples.push(...s));
    await vm.proc.waitForSerial(/MB-TRACE-DONE/, 120_000);
    unwatch();
    const mark = vm.proc.serialMark();
    const sup = await dirtyRateSupport(vm.proc.qmp, accel);
    log(`calc-dirty-rate support: ${JSON.stringify(sup)}`);
    expect(sup.available).toBe(true);
    expect(sup.modes).toContain('page-sampling');
    const qmp = await measureDirtyRate(vm.proc.qmp, sup, { calcTimeMs: 1000, samplePages: 10000 });
    const reports = await dirtyReports(vm, 3, mark);
    const achievedMiBs = reports.reduce((s, r) => s + r.mibPerS, 0) / reports.length;

    const trace = samples.filter((s) => s.measurement === 'dirty_trace');
    expect(trace).toHaveLength(10);
    const pts = trace.map((s) => ({ t: Number(s.fields.window_s), d: Number(s.fields.dirtied_mib) }));
    log(
      `D(t): ${pts.map((p) => `${p.t.toFixed(2)}s=${p.d.toFixed(2)}MiB`).join(' ')}; generator ${achievedMiBs.toFixed(2)} MiB/s; QMP ${qmp.dirtyRateMiBs} MiB/s`,
    );
    // a 1 s window sees the hot set rewritten once plus 1 s of cold writes: the generator's rate
    const oneSecond = pts.find((p) => Math.abs(p.t - 1) < 0.05)!;
    expect(Math.abs(oneSecond.d / oneSecond.t - achievedMiBs) / achievedMiBs).toBeLessThanOrEqual(0.25);
    expect(Math.abs(qmp.dirtyRateMiBs - achievedMiBs) / achievedMiBs).toBeLessThanOrEqual(0.25);
    // D(t) never shrinks with the window, beyond the noise of one cycle
    const sorted = [...pts].sort((a, b) => a.t - b.t);
    for (let i = 1; i < sorted.length; i++) expect(sorted[i].d).toBeGreaterThanOrEqual(sorted[i - 1].d - 0.5);
    const fit = fitHotColdCurve(pts)!;
    log(`hot/cold fit: HPs=${fit.HPs.toFixed(2)} MiB HPd=${fit.HPd.toFixed(2)} s CPr=${fit.CPr.toFixed(2)} MiB/s r2=${fit.r2.toFixed(3)}`);
    expect(Math.abs(fit.HPs - 16) / 16).toBeLessThanOrEqual(0.25);
    // cold rate: bpc=2 per 10 ms = 200 pages/s = 0.78 MiB/s
    expect(fit.CPr).toBeGreaterThan(0.78 * 0.5);
    expect(fit.CPr).toBeLessThan(0.78 * 1.5);
    await retire(vm);
  }, 400_000);
});

describe('web service clients and migrations', () => {
  let web: PlacedVm;
  beforeAll(async () => {
    web = await boot('web');
  }, 300_000);

  it('httperf at 100 req/s gets >= 95 % replies from an idle guest; pages dirtied in 30 ms at 100 and 200 req/s', async () => {
    const clock = new PhaseClock();
    const dirtied: Record<number, { traceMiB: number; qmpMiB: number }> = {};
    for (const rate of [100, 200]) {
      const samples: Sample[] = [];
      const set = await clientsFrom(driver, {
        vm: 'web',
        ip: web.ip,
        clients: [ClientSpec.parse({ kind: 'httperf', rate })],
        clock,
        tags: { test: 'httperf' },
        emit: (s) => samples.push(...s),
        log,
      });
      try {
        await waitFor(() => samples.length >= 2, 60_000, 'two httperf windows (warm-up)');
        // in-guest: every process's soft-dirty pages over 30 ms windows, started through the web service itself
        const mark = web.proc.serialMark();
        const r = await runIn(topo.clientNs!, 'busybox', [
          'wget',
          '-q',
          '-O',
          '-',
          `http://${web.ip}/cgi-bin/trace?pid=all&windows=30ms&reps=20`,
        ]);
        expect(r.stdout).toMatch(/started pid=\d+/);
        await web.proc.waitForSerial(/MB-TRACE-DONE/, 60_000, { since: mark });
        const tr = web.proc
          .serialLines()
          .slice(mark)
          .map(parseTraceLine)
          .filter((p) => p !== null);
        expect(tr).toHaveLength(20);
        // host side: the whole guest (kernel included), at QEMU's shortest window, scaled to 30 ms
        const sup = await dirtyRateSupport(web.proc.qmp, accel);
        const q = [];
        for (let i = 0; i < 5; i++) q.push(await measureDirtyRate(web.proc.qmp, sup, { calcTimeMs: MIN_CALC_MS, samplePages: 10000 }));
        dirtied[rate] = {
          traceMiB: tr.reduce((s, p) => s + p.dirtiedMiB * (0.03 / p.windowS), 0) / tr.length,
          qmpMiB: q.reduce((s, x) => s + x.dirtyRateMiBs * 0.03, 0) / q.length,
        };
        const n0 = samples.length;
        await waitFor(() => samples.length >= n0 + 3, 60_000, 'three more httperf windows');
      } finally {
        await set.stop();
      }
      const win = samples.filter((s) => s.measurement === 'httperf' && s.fields.partial === false);
      const req = win.reduce((s, x) => s + Number(x.fields.requests), 0);
      const rep = win.reduce((s, x) => s + Number(x.fields.status_2xx), 0);
      log(
        `httperf ${rate} req/s: ${rep}/${req} replies over ${win.length} windows; response ms ${win.map((w) => w.fields.response_ms).join(',')}; dirtied in 30 ms: ${JSON.stringify(dirtied[rate])} MiB`,
      );
      expect(win.length).toBeGreaterThanOrEqual(5);
      expect(win.every((w) => w.fields.phase === 'before')).toBe(true);
      if (rate === 100) expect(rep / req).toBeGreaterThanOrEqual(0.95);
      expect(dirtied[rate].traceMiB).toBeGreaterThanOrEqual(0);
      expect(dirtied[rate].qmpMiB).toBeGreaterThanOrEqual(0);
    }
  }, 400_000);

  it('transferred bytes and passes grow with the dirty rate at fixed WSET; response times carry phase labels', async () => {
    const clock = new PhaseClock();
    const samples: Sample[] = [];
    const clients = await clientsFrom(driver, {
      vm: 'web',
      ip: web.ip,
      clients: vmSpec('web').clients,
      clock,
      tags: { test: 'migrate' },
      emit: (s) => samples.push(...s),
      log,
    });
    const results: Array<{ bpc: number; mibS: number; transferred: number; passes: number }> = [];
    try {
      await waitFor(() => samples.filter((s) => s.fields.ok === true).length >= 20, 60_000, 'responses before the first migration');
      for (const bpc of [1, 8, 16]) {
        // restart the generator through the guest console with the next rate (WSET fixed at 24 MiB)
        const mark = web.proc.serialMark();
        web.proc.writeSerial(`kill $(pidof mb-dirty) 2>/dev/null; mb-dirty wset=24M period=10ms bpc=${bpc} >/dev/console 2>&1 &\n`);
        await web.proc.waitForSerial(new RegExp(`MB-DIRTY-START .*bpc=${bpc} `), 30_000, { since: mark });
        const rep = await dirtyReports(web, 2, mark);
        const dst = hostNode(web.host.name === 'r1-h1' ? 'r1-h2' : 'r1-h1');
        const t0 = Date.now();
        clock.migrationStarted(t0);
        const res = await migrateVm(
          {
            env: env(),
            experiment: 'workloads-e2e',
            treatment: `bpc${bpc}`,
            rep: 0,
            migration: spec.migration!,
            probe: null,
            probeIntervalMs: 10,
            progressIntervalMs: 100,
            network: 'mig',
            emit: () => undefined,
            log,
          },
          web,
          dst,
        );
        clock.migrationEnded(Date.now());
        live[live.indexOf(web)] = res.vm;
        web = res.vm;
        const r = res.record;
        expect(r.status, r.reason ?? '').toBe('completed');
        results.push({ bpc, mibS: rep[1].mibPerS, transferred: r.transferred_bytes!, passes: r.passes! });
        log(
          `bpc=${bpc} (${rep[1].mibPerS} MiB/s): ${(r.transferred_bytes! / 2 ** 20).toFixed(1)} MiB in ${r.passes} passes, ${r.total_ms} ms`,
        );
        await waitFor(
          () =>
            samples.some((s) => s.measurement === 'workload' && Date.parse(s.t) > clock.migrations.at(-1)!.endMs! && s.fields.ok === true),
          60_000,
          'a response after the migration',
        );
      }
    } finally {
      await clients.stop();
    }
    // the more the guest dirties, the more must be re-sent
    expect(results[1].transferred).toBeGreaterThan(results[0].transferred);
    expect(results[2].transferred).toBeGreaterThan(results[1].transferred);
    expect(results[2].passes).toBeGreaterThan(results[0].passes);
    expect(results[1].passes).toBeGreaterThanOrEqual(results[0].passes);
    const wl = samples.filter((s) => s.measurement === 'workload');
    const byPhase = (p: string) => wl.filter((s) => s.fields.phase === p);
    for (const p of ['before', 'during', 'after']) expect(byPhase(p).length, p).toBeGreaterThan(0);
    for (const op of ['rate-20', 'probe-search'])
      expect(
        byPhase('during').some((s) => s.tags.op === op && s.fields.ok === true),
        op,
      ).toBe(true);
    // phases follow the clock: every 'during' sample was sent inside a migration window
    for (const s of byPhase('during')) {
      const t = Date.parse(s.t);
      expect(clock.migrations.some((w) => t >= w.startMs - 1 && t <= w.endMs! + 1)).toBe(true);
    }
    const before = byPhase('before').filter((s) => s.fields.ok === true);
    expect(before.length / byPhase('before').length).toBeGreaterThanOrEqual(0.95);
  }, 900_000);
});
