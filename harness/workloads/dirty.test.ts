import { describe, expect, it } from 'vitest';
import { execFileSync, spawnSync } from 'node:child_process';
import { join } from 'node:path';
import { compileC } from '../util/compile.ts';
import { PACKAGE_ROOT } from '../util/paths.ts';
import { UserError } from '../util/errors.ts';
import { dirtyWorkloadSpec, parseDirtyReport } from './dirty.ts';

const build = () => compileC({ name: 'mb-dirty', sources: [join(PACKAGE_ROOT, 'workloads', 'dirty', 'dirty.c')], static: true });

describe('dirty workload spec', () => {
  it('formats the guest workload string', () => {
    expect(
      dirtyWorkloadSpec({ wsetBytes: 64 << 20, periodMs: 10, bpc: 64, fill: 100, hotBytes: 16 << 20, hotPeriodMs: 500, mlock: true }),
    ).toBe('dirty:wset=64M,period=10ms,bpc=64,fill=100,hot=16M,hotperiod=500ms,mlock');
    expect(dirtyWorkloadSpec({ wsetBytes: 12288 })).toBe('dirty:wset=12K');
    expect(() => dirtyWorkloadSpec({ wsetBytes: 1 << 20, fill: 120 })).toThrow(UserError);
    expect(() => dirtyWorkloadSpec({ wsetBytes: 1 << 20, hotBytes: 2 << 20 })).toThrow(/hot/);
  });

  it('parses report lines, with console noise in front', () => {
    const r = parseDirtyReport(
      '/ # MB-DIRTY up=2.001 pages_s=6398 mib_s=24.99 target_pages_s=6400 hot_pages_s=0 cold_pages_s=6398 late=3 cycles=200',
    );
    expect(r).toEqual({
      upS: 2.001,
      pagesPerS: 6398,
      mibPerS: 24.99,
      targetPagesPerS: 6400,
      hotPagesPerS: 0,
      coldPagesPerS: 6398,
      late: 3,
    });
    expect(parseDirtyReport('MB-DIRTY-START pid=1 wset_pages=4')).toBeNull();
    expect(parseDirtyReport('MB-READY vm=a')).toBeNull();
  });
});

describe('mb-dirty binary', () => {
  it('reaches its target rate with the hot/cold split and reports once a second', async () => {
    const bin = await build();
    // hot: 1024 pages every 500 ms = 2048 pages/s; cold: 20 blocks / 10 ms = 2000 pages/s
    const out = execFileSync(bin, ['wset=8M', 'period=10ms', 'bpc=20', 'fill=25', 'hot=4M', '--hotperiod', '500ms', 'duration=2.2s'], {
      timeout: 30_000,
    }).toString();
    const lines = out.trim().split('\n');
    expect(lines[0]).toMatch(
      /^MB-DIRTY-START pid=\d+ wset_pages=2048 hot_pages=1024 cold_pages=1024 .*words_per_block=128 .*target_pages_s=4048$/,
    );
    const reports = lines.slice(1).map(parseDirtyReport);
    expect(reports.length).toBeGreaterThanOrEqual(2);
    for (const r of reports) {
      expect(r).not.toBeNull();
      // physical bound: never above target; a noisy box may fall short, but not to nothing
      expect(r!.pagesPerS).toBeLessThanOrEqual(4048 * 1.02);
      expect(r!.pagesPerS).toBeGreaterThan(4048 * 0.3);
      expect(r!.hotPagesPerS).toBeLessThanOrEqual(2048 * 1.02);
      expect(r!.coldPagesPerS).toBeLessThanOrEqual(2000 * 1.02);
      expect(r!.mibPerS).toBeCloseTo((r!.pagesPerS * 4096) / 2 ** 20, 1);
    }
  });

  it('rejects bad arguments with exit code 2 and a message', async () => {
    const bin = await build();
    for (const args of [['wset=12X'], ['period=1ms'], ['wset=1M', 'hot=2M'], ['wset=1M', 'fill=101'], ['wset=1M', 'bogus=1']]) {
      const r = spawnSync(bin, args);
      expect(r.status).toBe(2);
      expect(r.stderr.toString()).toMatch(/^mb-dirty: /);
    }
  });
});
