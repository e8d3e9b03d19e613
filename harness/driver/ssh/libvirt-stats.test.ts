import { readFileSync } from 'node:fs';
import { describe, expect, it } from 'vitest';
import { deriveMigration, emptyControlFacts, type MigrationObservation } from '../../migration/derive.ts';
import { qemuTotalMs } from './libvirt-migrate.ts';
import { takeAnswer } from './libvirt-shell.ts';
import { answerFromStats, lineSplitter, parseJobStats, parseMonitorEvent } from './libvirt-stats.ts';

/** Recorded virsh output (libvirt 11.3.0, QEMU 10.0.2): test/fixtures/libvirt/README.md. */
const fx = (f: string) => readFileSync(new URL(`../../../test/fixtures/libvirt/${f}`, import.meta.url), 'utf8');
const DOM = 'lvx-vm1';

describe('virsh domjobinfo --rawstats', () => {
  it('reads the running job as a query-migrate answer (downtime there is the expected one)', () => {
    const s = parseJobStats(fx('domjobinfo-running.txt'));
    expect(s.type).toBe('unbounded');
    const a = answerFromStats(s);
    expect(a.status).toBe('active');
    expect(a['total-time']).toBe(986);
    expect(a['expected-downtime']).toBe(300);
    expect(a.downtime).toBeUndefined();
    expect(a.ram).toMatchObject({
      transferred: 20280293,
      remaining: 106033152,
      total: 134873088,
      'dirty-sync-count': 1,
      'page-size': 4096,
    });
  });

  it('reads the completed job: downtime, setup, bytes, iterations', () => {
    const s = parseJobStats(fx('domjobinfo-completed-src.txt'));
    expect(s.type).toBe('completed');
    expect(s.fields).toMatchObject({ time_elapsed: 1369, downtime: 266, downtime_net: 262, setup_time: 2, memory_processed: 100042492 });
    const a = answerFromStats(s, 'completed');
    expect(a).toMatchObject({ status: 'completed', 'total-time': 1369, downtime: 266, 'setup-time': 2 });
    expect(a.ram).toMatchObject({ transferred: 100042492, 'dirty-sync-count': 3, 'dirty-pages-rate': 0, mbps: (241648531 * 8) / 1e6 });
  });

  it('gives nothing for no job and keeps unknown lines out', () => {
    expect(parseJobStats('Job type: 0\n\n')).toEqual({ type: 'none', fields: {} });
    expect(parseJobStats('error: failed to get domain\n').type).toBeNull();
  });
});

describe('virsh shell output', () => {
  it('splits answers at the echoed marker, without prompts and echoed commands', () => {
    const out = fx('virsh-shell-output.txt').replace(/MB-END \d+/g, (m, i: number) => (i > 0 ? 'MB-END-7' : m));
    const first = takeAnswer(out, 'MB-END-7');
    expect(first).not.toBeNull();
    // the command echo line of the marker itself ("virsh # echo MB-END-7") is not the marker
    expect(takeAnswer('virsh # echo MB-END-3\n', 'MB-END-3')).toBeNull();
    const r = takeAnswer('virsh # domjobinfo d --rawstats\nJob type: 0\n\nvirsh # echo MB-END-3\nMB-END-3virsh # next', 'MB-END-3')!;
    expect(r.body.trim()).toBe('Job type: 0');
    expect(r.rest).toBe('virsh # next');
    expect(takeAnswer('x\nMB-END-30', 'MB-END-3')).toBeNull();
  });
});

describe('virsh qemu-monitor-event', () => {
  it("reads QEMU's event times and data for our domain only", () => {
    const src = fx('monitor-events-src.txt')
      .split('\n')
      .map((l) => parseMonitorEvent(l, DOM))
      .filter((e) => e !== null);
    expect(src.map((e) => e.event)).toContain('STOP');
    const stop = src.find((e) => e.event === 'STOP')!;
    expect(stop.timestampMs).toBe(Date.parse('2026-11-30T20:31:54.846Z'));
    expect(stop.data).toEqual({});
    expect(src.find((e) => e.event === 'MIGRATION_PASS')!.data).toEqual({ pass: 1 });
    expect(parseMonitorEvent(`2026-11-30 20:31:54.846+0000: event STOP for domain 'other': <null>`, DOM)).toBeNull();
    expect(parseMonitorEvent("2026-11-30 21:31:54.846+0100: event STOP for domain 'lvx-vm1': <null>", DOM)!.timestampMs).toBe(
      stop.timestampMs,
    );
    expect(parseMonitorEvent('garbage', DOM)).toBeNull();
  });

  it('feeds deriveMigration: downtime from STOP -> RESUME, total from the MIGRATION events, bytes and passes from the job', () => {
    const events = (['src', 'dst'] as const).flatMap((side) => {
      const lines: string[] = [];
      lineSplitter((l) => lines.push(l))(fx(`monitor-events-${side}.txt`));
      return lines.flatMap((l) => {
        const e = parseMonitorEvent(l, DOM);
        return e ? [{ side, ...e, receivedAtMs: e.timestampMs }] : [];
      });
    });
    const final = answerFromStats(parseJobStats(fx('domjobinfo-completed-src.txt')), 'completed');
    const obs: MigrationObservation = {
      version: 1,
      id: 'x',
      config: { mode: 'live', downtimeLimitMs: 300, maxTimeMs: 60_000, probeIntervalMs: 10, linkRateBps: null },
      tCmdMs: Date.parse('2026-11-30T20:31:54.300Z'),
      tEndMs: Date.parse('2026-11-30T20:31:55.300Z'),
      events,
      queries: [],
      probe: null,
      control: emptyControlFacts(),
    };
    const total = qemuTotalMs(obs);
    expect(total).toBe(417); // setup 54.682 -> completed 55.099
    obs.queries.push({ tMs: obs.tEndMs!, answer: { ...final, 'total-time': total! } });
    const d = deriveMigration(obs);
    expect(d.status).toBe('completed');
    expect(d.downtime_event_ms).toBe(263); // STOP 54.846 (source) -> RESUME 55.109 (destination)
    expect(d.downtime_reported_ms).toBe(266);
    expect(d.total_ms).toBe(417);
    expect(d.transferred_bytes).toBe(100042492);
    expect(d.passes).toBe(3);
    expect(d.setup_ms).toBe(2);
    expect(d.t_done).toBe('2026-11-30T20:31:55.099Z');
  });
});
