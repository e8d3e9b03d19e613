import { describe, expect, it } from 'vitest';
import { DutyCycleSchema } from '../store/schema/index.ts';
import { dutyCycle, dutyCycleText, unionOf } from './duty-cycle.ts';
import { addMigrationStep, SpanClock } from './timing.ts';

describe('unionOf', () => {
  it('merges overlapping and touching spans, drops empty ones', () => {
    expect(
      unionOf([
        [5, 7],
        [0, 2],
        [1, 3],
        [3, 4],
        [9, 9],
        [8, 6],
      ]),
    ).toEqual([
      [0, 4],
      [5, 7],
    ]);
  });
});

describe('dutyCycle', () => {
  it('time migrating over wall time, overlapping migrations counted once', () => {
    const d = dutyCycle({
      startMs: 0,
      endMs: 100,
      migrations: [
        { start: 10, end: 40 },
        { start: 30, end: 50 }, // overlaps the first: 10..50 is 40 ms migrating
        { start: 80, end: 90 },
      ],
      spans: [],
    });
    expect(d.migrating_ms).toBe(50);
    expect(d.duty_cycle).toBeCloseTo(0.5, 12);
    expect(d.unaccounted_ms).toBe(50);
    expect(DutyCycleSchema.parse(d)).toEqual(d);
  });

  it('dead time per kind outside the migration windows, largest first; the rest unaccounted', () => {
    const d = dutyCycle({
      startMs: 0,
      endMs: 100,
      migrations: [{ start: 20, end: 60 }],
      spans: [
        { kind: 'guest-start', start_ms: 0, end_ms: 15 },
        // a migration step from its command on: only its time after the window is dead (3)
        { kind: 'migrate-prepare', start_ms: 15, end_ms: 20 },
        { kind: 'migrate-wrapup', start_ms: 20, end_ms: 63 },
        { kind: 'pause', start_ms: 63, end_ms: 70 },
        { kind: 'pause', start_ms: 65, end_ms: 72 }, // overlaps the previous pause: 63..72 counts once
        { kind: 'close', start_ms: 95, end_ms: 120 }, // clipped at the end of the wall time
      ],
    });
    expect(d.migrating_ms).toBe(40);
    expect(d.dead_ms).toEqual([
      { kind: 'guest-start', ms: 15, count: 1 },
      { kind: 'pause', ms: 9, count: 2 },
      { kind: 'close', ms: 5, count: 1 },
      { kind: 'migrate-prepare', ms: 5, count: 1 },
      { kind: 'migrate-wrapup', ms: 3, count: 1 },
    ]);
    // 0..72 and 95..100 covered: 72..95 is unaccounted
    expect(d.unaccounted_ms).toBe(23);
    expect(d.migrating_ms + d.dead_ms.reduce((a, x) => a + x.ms, 0) + d.unaccounted_ms).toBe(d.wall_ms);
    const text = dutyCycleText(d);
    expect(text).toMatch(/^duty cycle: 40\.0 % \(0\.0 s migrating of 0\.1 s wall time, 1 migrations\)/);
    expect(text).toContain('dead time: unaccounted 0.0 s (23.0 %), guest-start 0.0 s (15.0 %), pause 0.0 s (9.0 %, 2x)');
  });

  it('an empty wall time has no duty cycle', () => {
    const d = dutyCycle({ startMs: 5, endMs: 5, migrations: [], spans: [] });
    expect(d.duty_cycle).toBeNull();
    expect(dutyCycleText(d)).toMatch(/^duty cycle: - /);
  });
});

describe('SpanClock', () => {
  it('records a span also when its work throws, and survives a sink that throws', async () => {
    const sunk: string[] = [];
    const c = new SpanClock((l) => {
      sunk.push(l.kind);
      throw new Error('disk full');
    });
    await expect(c.time('guest-start', () => Promise.reject(new Error('no boot')), { treatment: 't1', vm: 'vm1' })).rejects.toThrow(
      'no boot',
    );
    expect(await c.time('pause', () => 7)).toBe(7);
    expect(sunk).toEqual(['guest-start', 'pause']);
    expect(c.lines[0]).toMatchObject({ kind: 'guest-start', treatment: 't1', vm: 'vm1', rep: null });
    expect(c.lines[0].end_ms).toBeGreaterThanOrEqual(c.lines[0].start_ms);
  });
});

describe('addMigrationStep', () => {
  it('splits a step at its migrate command; a step without one is all prepare', () => {
    const c = new SpanClock();
    addMigrationStep(c, 1000, new Date(1200).toISOString(), { rep: 1 }, 5000);
    addMigrationStep(c, 6000, null, { rep: 2 }, 6100);
    addMigrationStep(c, 7000, new Date(100).toISOString(), { rep: 3 }, 7100); // a command outside the step: not trusted
    expect(c.lines.map((l) => [l.kind, l.start_ms, l.end_ms, l.rep])).toEqual([
      ['migrate-prepare', 1000, 1200, 1],
      ['migrate-wrapup', 1200, 5000, 1],
      ['migrate-prepare', 6000, 6100, 2],
      ['migrate-prepare', 7000, 7100, 3],
    ]);
  });
});
