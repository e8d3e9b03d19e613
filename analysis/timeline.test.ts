import { describe, expect, it } from 'vitest';
import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { inMemoryRun, loadRunDir, normalizeMigration } from './rundir.ts';
import {
  collectTimelineSamples,
  findMigration,
  isoMs,
  migrationTimeline,
  PAGE_BYTES,
  representativeMigration,
  timelineEmpty,
  type TimelineSamples,
} from './timeline.ts';
import { timelineSvg, zoomDomain } from './report/timeline-plot.ts';

const FIXTURE = new URL('../test/fixtures/timeline/', import.meta.url).pathname;
const ID = 't4f53cda1-r0-vm1';
const MiB = 1024 * 1024;
const lines = (f: string) =>
  readFileSync(join(FIXTURE, 'samples', f), 'utf8')
    .trim()
    .split('\n')
    .map((l) => JSON.parse(l) as { t: string; tags: Record<string, string>; fields: Record<string, number | string | null> });

async function fixtureTimeline(throughputWindowS?: number) {
  const run = loadRunDir(FIXTURE);
  const m = findMigration(run, ID).migration!;
  const samples = await collectTimelineSamples(run, m);
  return { m, samples, tl: migrationTimeline(m, samples, { throughputWindowS }) };
}

describe('timeline of a recorded migration (test/fixtures/timeline)', () => {
  it('puts STOP, RESUME and completed at the QMP event times, relative to t_cmd', async () => {
    const { m, tl } = await fixtureTimeline();
    const t0 = isoMs(m.t_cmd!);
    expect(tl.t0Ms).toBe(t0);
    const events = lines('qmp_event.jsonl').filter((e) => e.tags.migration === ID);
    const at = (side: string, ev: string, status?: string) =>
      (isoMs(events.find((e) => e.tags.side === side && e.fields.event === ev && (status === undefined || e.fields.status === status))!.t) -
        t0) /
      1000;
    expect(tl.markers.map((k) => [k.kind, k.source])).toEqual([
      ['STOP', 'event'],
      ['completed', 'event'],
      ['RESUME', 'event'],
    ]);
    const byKind = Object.fromEntries(tl.markers.map((k) => [k.kind, k.t]));
    expect(byKind.STOP).toBeCloseTo(at('src', 'STOP'), 9);
    expect(byKind.RESUME).toBeCloseTo(at('dst', 'RESUME'), 9);
    expect(byKind.completed).toBeCloseTo(at('src', 'MIGRATION', 'completed'), 9);
    // the record says the same: STOP - t_cmd is its pre-operation time, RESUME - STOP its event downtime
    expect(byKind.STOP * 1000).toBeCloseTo(m.preop_ms!, 3);
    expect((byKind.RESUME - byKind.STOP) * 1000).toBeCloseTo(m.downtime_event_ms!, 3);
    expect(tl.missing).toEqual({});
  });

  it('shades the outage over the probe gap: its length is the recorded observed downtime', async () => {
    const { m, tl } = await fixtureTimeline();
    // independently: the loss run in the probe records, bounded by the answered probes around it
    const probes = lines('probe.jsonl')
      .map((s) => ({ seq: s.fields.seq as number, sent: s.fields.sent_us as number, recv: s.fields.recv_us }))
      .sort((a, b) => a.seq - b.seq);
    const firstLost = probes.findIndex((p) => p.recv === null);
    let lastLost = firstLost;
    while (probes[lastLost + 1].recv === null) lastLost++;
    const gapMs = (probes[lastLost + 1].sent - probes[firstLost - 1].sent) / 1000 - m.probe_interval_ms!;
    expect(tl.outages).toHaveLength(1);
    const o = tl.outages[0];
    expect(o.lost).toBe(lastLost - firstLost + 1);
    expect(o.ms).toBeCloseTo(gapMs, 6);
    expect(o.ms).toBeCloseTo(m.downtime_observed_ms!, 6);
    expect((o.t1 - o.t0) * 1000).toBeCloseTo(o.ms, 6);
    expect(o.t0).toBeCloseTo((probes[firstLost].sent / 1000 - tl.t0Ms) / 1000, 9);
    // it starts after STOP and ends after RESUME, the guest answering again
    const stop = tl.markers.find((k) => k.kind === 'STOP')!.t;
    const resume = tl.markers.find((k) => k.kind === 'RESUME')!.t;
    expect(o.t0).toBeGreaterThan(stop);
    expect(o.t1).toBeGreaterThan(resume);
    // answered probes only, inside the window
    expect(tl.probe.every((p) => p.rttMs >= 0 && p.t >= tl.from && p.t <= tl.to)).toBe(true);
    expect(zoomDomain(tl)![0]).toBeLessThan(stop);
    expect(zoomDomain(tl)![1]).toBeGreaterThan(o.t1);
  });

  it('computes throughput from transferred deltas, passes from MIGRATION_PASS, dirty rate and power', async () => {
    const { m, tl, samples } = await fixtureTimeline(0);
    const prog = lines('migration_progress.jsonl').filter((s) => typeof s.fields.transferred === 'number');
    expect(tl.bytes).toHaveLength(prog.length);
    expect(tl.bytes.at(-1)!.transferredMiB * MiB).toBe(m.transferred_bytes);
    // window 0: one value per pair of consecutive progress samples
    const [a, b] = prog;
    const want = (((b.fields.transferred as number) - (a.fields.transferred as number)) * 8) / 1e6 / ((isoMs(b.t) - isoMs(a.t)) / 1000);
    expect(tl.throughput[0].mbit).toBeCloseTo(want, 6);
    expect(tl.throughput).toHaveLength(prog.length - 1);
    // averaged over >= 0.5 s: the time-weighted mean is still everything sent over the whole span
    const avg = migrationTimeline(m, samples).throughput;
    expect(avg.slice(0, -1).every((s) => s.t1 - s.t0 >= 0.5 - 1e-9)).toBe(true);
    const sentMbit = avg.reduce((s, x) => s + x.mbit * (x.t1 - x.t0), 0);
    const span = tl.bytes.at(-1)!.transferredMiB - tl.bytes[0].transferredMiB;
    expect(sentMbit).toBeCloseTo((span * MiB * 8) / 1e6, 6);
    // physically plausible against the 100 Mbit/s link: the median average is within the shaped rate
    const med = [...avg.map((s) => s.mbit)].sort((x, y) => x - y)[Math.floor(avg.length / 2)];
    expect(med).toBeGreaterThan(80);
    expect(med).toBeLessThan(105);
    expect(tl.linkRateMbit).toBe(100);

    expect(tl.passes.map((p) => p.pass)).toEqual([1, 2, 3, 4, 5, 6]);
    expect(tl.passes.length).toBe(m.passes);
    for (let i = 1; i < tl.passes.length; i++) expect(tl.passes[i].t0).toBe(tl.passes[i - 1].t1);
    const pass2 = lines('qmp_event.jsonl').find((e) => e.tags.migration === ID && e.tags.side === 'src' && e.fields.pass === 2)!;
    expect(tl.passes[1].t0).toBeCloseTo((isoMs(pass2.t) - tl.t0Ms) / 1000, 9);

    const qemu = tl.dirty.filter((d) => d.source === 'QEMU');
    expect(qemu[0].mibS).toBeCloseTo((386 * PAGE_BYTES) / MiB, 9); // from the second sync on (386 pages/s)
    expect(tl.dirty.filter((d) => d.source === 'guest').every((d) => Math.abs(d.mibS - 1.56) < 0.05)).toBe(true);

    expect(new Set(tl.power.map((p) => `${p.host}:${p.role}`))).toEqual(new Set(['r1-h1:source', 'r1-h2:destination']));
    expect(tl.power.every((p) => p.watts > 100 && p.watts < 200)).toBe(true);
  });

  it('draws every panel, the link rate, the markers and the outage into the SVG', async () => {
    const { tl } = await fixtureTimeline();
    const svg = await timelineSvg(tl);
    expect(svg.startsWith('<svg')).toBe(true);
    for (const text of [
      `Timeline of migration ${ID}`,
      'Transferred and remaining (MiB)',
      'link rate 100 Mbit/s, the physical limit',
      'Dirty rate (MiB/s)',
      'Probe RTT (ms), every 10 ms',
      'outage 359.9',
      'Power (W) of source and destination',
      'r1-h1 (source)',
      'Around the downtime',
      '>STOP<',
      '>RESUME<',
      '>completed<',
      'pass 1',
    ])
      expect(svg, text).toContain(text);
    expect(svg).not.toContain('No data');
  });
});

describe('timeline without samples and with fallbacks', () => {
  const rec = (extra: Record<string, unknown> = {}) =>
    normalizeMigration(
      {
        id: 'x-r0-vm1',
        vm: 'vm1',
        src: 'h1',
        dst: 'h2',
        status: 'completed',
        t_cmd: '2026-01-01T00:00:00.000Z',
        t_stop: '2026-01-01T00:00:05.000Z',
        t_resume: '2026-01-01T00:00:05.300Z',
        t_done: '2026-01-01T00:00:05.200Z',
        total_ms: 5200,
        ...extra,
      },
      0,
    );
  const none: TimelineSamples = { progress: [], events: [], probe: [], power: [], dirty: [] };

  it('takes markers from the record and says why each panel is empty', async () => {
    const tl = migrationTimeline(rec(), none);
    expect(tl.markers.map((k) => [k.kind, k.t, k.source])).toEqual([
      ['STOP', 5, 'record'],
      ['completed', 5.2, 'record'],
      ['RESUME', 5.3, 'record'],
    ]);
    expect(Object.keys(tl.missing).sort()).toEqual(['bytes', 'dirty', 'power', 'probe', 'throughput']);
    expect(tl.missing.power).toContain('no power samples of h1 or h2');
    expect(timelineEmpty(tl)).toBe(true);
    const svg = await timelineSvg(tl);
    expect(svg).toContain('No data: no migration_progress samples of x-r0-vm1');
    expect(() => migrationTimeline(rec({ t_cmd: null }), none)).toThrow(/never sent/);
  });

  it('counts passes from dirty_sync_count when there are no MIGRATION_PASS events; QEMU dirty rate from the second sync', () => {
    const p = (t: string, n: number, tr: number, rate: number) => ({
      t: `2026-01-01T00:00:0${t}Z`,
      measurement: 'migration_progress',
      tags: { migration: 'x-r0-vm1' },
      fields: { status: 'active', transferred: tr, remaining: 1e6 - tr, dirty_sync_count: n, dirty_pages_rate: rate },
    });
    const tl = migrationTimeline(rec(), {
      ...none,
      progress: [p('1.000', 1, 0, 0), p('2.000', 1, 1_000_000, 0), p('3.000', 2, 2_000_000, 256), p('4.000', 3, 2_500_000, 512)],
    });
    expect(tl.passes).toEqual([
      { pass: 1, t0: 1, t1: 3 },
      { pass: 2, t0: 3, t1: 4 },
      { pass: 3, t0: 4, t1: 5.2 },
    ]);
    expect(tl.dirty.map((d) => d.mibS)).toEqual([1, 2]); // 256 and 512 pages/s of 4 KiB
    expect(tl.throughput.map((s) => +s.mbit.toFixed(6))).toEqual([8, 8, 4]); // over >= 0.5 s: each 1 s apart
  });

  it('shows the completed migration with the median total time; finds ids or lists valid ones', () => {
    const mk = (id: string, total: number | null, status = 'completed', t_cmd: string | null = '2026-01-01T00:00:00.000Z') =>
      normalizeMigration({ id, status, total_ms: total, t_cmd }, 0);
    const run = inMemoryRun({
      manifest: { name: 'r' },
      migrations: [mk('a', 300), mk('b', 100), mk('c', 50, 'failed'), mk('d', 200), mk('e', 400), mk('f', null, 'failed', null)],
    });
    expect(representativeMigration(run)!.id).toBe('d'); // 100 200 | 300 400: the lower middle
    expect(
      representativeMigration(
        inMemoryRun({ manifest: { name: 'r' }, migrations: [mk('f', null, 'failed', null), mk('c', 50, 'cancelled')] }),
      )!.id,
    ).toBe('c');
    expect(representativeMigration(inMemoryRun({ manifest: { name: 'r' } }))).toBeNull();
    expect(findMigration(run, 'd').migration!.id).toBe('d');
    expect(findMigration(run, 'zz')).toEqual({
      error: expect.stringMatching(/migration 'zz' is not in .*valid ids include a, b, c, d, e \(6 in all\)/),
    });
  });
});
