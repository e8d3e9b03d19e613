import { PassThrough } from 'node:stream';
import { describe, expect, it } from 'vitest';
import { estimateEta, fmt, fmtBytes, plainLine, Progress, statusText, type ProgressSnapshot } from './progress.ts';

const MiB = 2 ** 20;

describe('estimateEta', () => {
  it('is unknown before a unit ended and zero when none is left', () => {
    expect(estimateEta({ elapsedMs: 30_000, sinceLastMs: 30_000, durations: [], startupMs: 0, unitsDone: 0, unitsTotal: 4 })).toBeNull();
    expect(estimateEta({ elapsedMs: 40_000, sinceLastMs: 0, durations: [10_000, 10_000], startupMs: 0, unitsDone: 4, unitsTotal: 4 })).toBe(
      0,
    );
  });

  it('counts time between units (later boots) per unit, but not the startup', () => {
    // 20 s of startup, then 2 units of 10 s with 10 s between them: 15 s per unit, 3 units left
    const e = { elapsedMs: 50_000, sinceLastMs: 0, durations: [10_000, 10_000], startupMs: 20_000, unitsDone: 2, unitsTotal: 5 };
    expect(estimateEta(e)).toBe(45_000);
  });

  it('counts down while the current unit runs, never below the units after it', () => {
    const base = { durations: [10_000, 10_000], startupMs: 0, unitsDone: 2, unitsTotal: 5 };
    // 6 s into the third unit: 45 s - 6 s
    expect(estimateEta({ ...base, elapsedMs: 36_000, sinceLastMs: 6_000 })).toBe(39_000);
    // the third unit overran (40 s): still two units of 15 s after it
    expect(estimateEta({ ...base, elapsedMs: 70_000, sinceLastMs: 40_000 })).toBe(30_000);
  });

  it('follows the last 10 unit durations', () => {
    const durations = [...Array<number>(10).fill(1_000), ...Array<number>(10).fill(5_000)];
    const sum = durations.reduce((a, b) => a + b, 0);
    expect(estimateEta({ elapsedMs: sum, sinceLastMs: 0, durations, startupMs: 0, unitsDone: 20, unitsTotal: 22 })).toBe(10_000);
  });
});

describe('formatting', () => {
  it('formats durations and bytes', () => {
    expect(fmt(4_400)).toBe('4s');
    expect(fmt(61_000)).toBe('1m01s');
    expect(fmt(3_725_000)).toBe('1h02m');
    expect(fmtBytes(45.24 * MiB)).toBe('45.2 MiB');
    expect(fmtBytes(1536 * MiB)).toBe('1.5 GiB');
  });

  const snap: ProgressSnapshot = {
    unitsDone: 3,
    unitsTotal: 6,
    migrationsDone: 3,
    migrationsTotal: 6,
    elapsedMs: 62_000,
    etaMs: 41_000,
    current: [{ id: 'vm1', sentBytes: 45.2 * MiB, remainingBytes: 60.1 * MiB }],
  };

  it('shows unit k/N, migrations done/total, elapsed, ETA and the current migration', () => {
    expect(statusText(snap)).toBe('unit 3/6 | migrations 3/6 | 1m02s elapsed, ETA 41s | vm1 45.2 MiB sent, 60.1 MiB left');
    expect(statusText({ ...snap, etaMs: null, migrationsTotal: null, current: [] })).toBe('unit 3/6 | migrations 3 | 1m02s elapsed, ETA –');
  });

  it('sums migrations running in parallel', () => {
    const two = [
      { id: 'vm1', sentBytes: 10 * MiB, remainingBytes: null },
      { id: 'vm2', sentBytes: 5 * MiB, remainingBytes: null },
    ];
    expect(statusText({ ...snap, current: two })).toBe('unit 3/6 | migrations 3/6 | 1m02s elapsed, ETA 41s | 2 migrating, 15.0 MiB sent');
  });

  it('plain lines leave the current migration out', () => {
    expect(plainLine(snap)).toBe('[unit 3/6 | migrations 3/6 | 1m02s elapsed, ETA 41s]');
  });
});

describe('Progress', () => {
  it('without a terminal: log lines as they are, one status line per unit', () => {
    let t = 1_000_000;
    const lines: string[] = [];
    const p = new Progress({ tty: false, line: (l) => lines.push(l), now: () => t });
    p.start({ unitsTotal: 4, unitsDone: 1, migrationsTotal: 8, migrationsDone: 2 });
    p.log('booting');
    t += 20_000;
    p.migrationBytes('vm1', 10 * MiB, { remainingBytes: 90 * MiB });
    p.migrationBytes('vm2', 1 * MiB);
    p.migrationBytes('vm1', 110 * MiB, { remainingBytes: 0, ended: true });
    expect(p.snapshot().current).toEqual([{ id: 'vm2', sentBytes: 1 * MiB, remainingBytes: null }]);
    p.unitDone(15_000, 2);
    p.end();
    // 5 s of startup, one unit of 15 s: 15 s per unit, 2 units left
    expect(lines).toEqual(['booting', '[unit 2/4 | migrations 4/8 | 20s elapsed, ETA 30s]']);
    expect(p.snapshot().current).toEqual([]);
  });

  it('on a terminal: the bar is drawn under the log lines, which are never lost', async () => {
    const out = new PassThrough();
    let text = '';
    out.on('data', (d: Buffer) => (text += d.toString()));
    Object.assign(out, { isTTY: true, columns: 200 });
    const plain: string[] = [];
    const p = new Progress({ tty: true, line: (l) => plain.push(l), stream: out });
    p.start({ unitsTotal: 2, unitsDone: 0, migrationsTotal: 2, migrationsDone: 0 });
    p.log('first line');
    p.migrationBytes('vm1', 3 * MiB);
    await new Promise((r) => setTimeout(r, 400)); // the bar redraws 4 times a second
    p.unitDone(1_000, 1);
    p.log('last line');
    p.end();
    expect(plain).toEqual([]);
    expect(text).toContain('first line\n');
    expect(text).toContain('last line\n');
    expect(text).toContain('unit 0/2 | migrations 0/2 | 0s elapsed, ETA – | vm1 3.0 MiB sent');
    expect(text.indexOf('first line')).toBeLessThan(text.lastIndexOf('unit 1/2 | migrations 1/2'));
    // the final bar comes after the last log line
    expect(text.lastIndexOf('unit 1/2')).toBeGreaterThan(text.indexOf('last line'));
  });
});
