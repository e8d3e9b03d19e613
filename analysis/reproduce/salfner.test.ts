import { describe, expect, it } from 'vitest';
import { fileURLToPath } from 'node:url';
import { loadRunDir } from '../rundir.ts';
import { FindingSchema } from '../../harness/store/schema/findings.ts';
import { dirtyParams, evaluateSalfner, grid, SALFNER_SPECS } from './salfner.ts';
import { mig, migs, run, study } from './fixture.test-helpers.ts';
import type { Migration } from '../rundir.ts';

const label = (wset: number, bpc: number, fill = 100) => `dirty wset=${wset}MiB period=10ms bpc=${bpc} fill=${fill}%`;

/** A WSET x RATE grid: time = base + a*wset + b*rate, downtime = constant + noise. */
function gridRun(timeOf: (w: number, bpc: number) => number, downOf: (w: number, bpc: number) => number = () => 300): Migration[] {
  const out: Migration[] = [];
  for (const w of [8, 40])
    for (const bpc of [0, 16]) {
      const t = timeOf(w, bpc);
      const dt = downOf(w, bpc);
      out.push(...migs(`t${w}-${bpc}`, [t * 0.98, t, t * 1.02], { workload: label(w, bpc) }, [dt - 10, dt, dt + 10]));
    }
  return out;
}

const byId = (fs: ReturnType<typeof evaluateSalfner>, id: string) => fs.find((f) => f.id === id)!;

describe('salfner evaluator', () => {
  it('reads WSET, RATE (blocks/ms) and FILL from the workload label', () => {
    expect(dirtyParams({ workload: label(40, 16, 10) })).toEqual({ wsetMiB: 40, rate: 1.6, fillPct: 10 });
    expect(dirtyParams({ workload: 'cpu util=100%' })).toBeNull();
  });

  it('QEMU-like data: WSET matters at RATE 0 -> differs; downtime near the limit -> differs; time grows with RATE -> holds', () => {
    const ms = gridRun((w, bpc) => 2000 + 150 * w + 600 * bpc);
    const fs = evaluateSalfner(study({ name: SALFNER_SPECS.grid, run: run(SALFNER_SPECS.grid, ms) }));
    for (const f of fs) expect(FindingSchema.safeParse(f).success).toBe(true);
    expect(byId(fs, 'wset-at-rate0').verdict).toBe('differs');
    expect(byId(fs, 'wset-at-rate0').reason).toMatch(/zero page/);
    expect(byId(fs, 'downtime-wset-rate').verdict).toBe('differs');
    expect(byId(fs, 'migtime-rate').verdict).toBe('holds');
    expect(byId(fs, 'migtime-above-jump').verdict).toBe('differs');
    expect(byId(fs, 'variability').verdict).toBe('holds');
    // no load-fill run: those findings are not run, saying why
    expect(byId(fs, 'load-no-effect').verdict).toBe('not run');
  });

  it('Xen-like data: no WSET effect at RATE 0 holds; downtime growing with WSET and RATE holds', () => {
    const ms = gridRun(
      (w, bpc) => (bpc === 0 ? 10000 : 10000 + 200 * w + 500 * bpc),
      (w, bpc) => 100 + 10 * w + 20 * bpc,
    );
    const fs = evaluateSalfner(study({ name: SALFNER_SPECS.grid, run: run(SALFNER_SPECS.grid, ms) }));
    expect(byId(fs, 'wset-at-rate0').verdict).toBe('holds');
    expect(byId(fs, 'downtime-wset-rate').verdict).toBe('holds');
  });

  it('LOAD and FILL: equal responses hold, a clear difference does not', () => {
    const same = [5000, 5050, 4950, 5000];
    const lf = [
      ...migs('idle', same, { workload: 'idle' }, [300, 310, 290, 300]),
      ...migs('cpu', same, { workload: 'cpu util=100%' }, [300, 305, 295, 300]),
      ...migs('f100', same, { workload: label(40, 16) }, [300, 300, 300, 300]),
      ...migs('f10', [8000, 8100, 7900, 8000], { workload: label(40, 16, 10) }, [300, 300, 300, 300]),
    ];
    const fs = evaluateSalfner(study({ name: SALFNER_SPECS.loadFill, run: run(SALFNER_SPECS.loadFill, lf) }));
    expect(byId(fs, 'load-no-effect').verdict).toBe('holds');
    expect(byId(fs, 'load-no-effect').test?.name).toBe('welch-equivalence');
    expect(byId(fs, 'fill-no-effect').verdict).toBe('does not hold');
  });

  it('FILL takes its 100 % baseline from the grid when the load-fill run lacks it', () => {
    const g = migs('g', [6000, 6100, 5900], { workload: label(40, 16) });
    const lf = [...migs('f10', [6000, 6050, 5950], { workload: label(40, 16, 10) }), ...migs('idle', [1000, 1000], { workload: 'idle' })];
    const fs = evaluateSalfner(
      study(
        { name: SALFNER_SPECS.grid, run: run(SALFNER_SPECS.grid, g) },
        { name: SALFNER_SPECS.loadFill, run: run(SALFNER_SPECS.loadFill, lf) },
      ),
    );
    expect(byId(fs, 'fill-no-effect').verdict).not.toBe('not run');
    expect(byId(fs, 'fill-no-effect').measured).toContain('fill=10%');
  });

  it('counts cancelled migrations per cell instead of averaging them', () => {
    const ms = [
      ...migs('a', [1000, 1000], { workload: label(8, 0) }),
      mig({ treatment: 'a', status: 'cancelled', total_ms: 60000, workload: label(8, 0) }),
    ];
    expect(grid(ms)).toEqual([expect.objectContaining({ wsetMiB: 8, rate: 0, n: 2, notCompleted: 1, totalMs: [1000, 1000] })]);
  });

  it('on a recorded sweep (QEMU 10, TCG): the 24 MiB / 0.8 blocks/ms cell is the mean of its 6 completed migrations', () => {
    const r = loadRunDir(fileURLToPath(new URL('../../test/fixtures/reproduce/salfner-sweep', import.meta.url)));
    const cells = grid(r.migrations);
    const c = cells.find((x) => x.wsetMiB === 24 && x.rate === 0.8)!;
    expect(c.n).toBe(6);
    expect(c.totalMs.reduce((a, b) => a + b, 0) / c.n).toBeCloseTo((19730 + 19791 + 10521 + 10476 + 6533 + 6344) / 6);
    const hot = cells.find((x) => x.wsetMiB === 40)!;
    expect(hot.notCompleted).toBe(2);
    const fs = evaluateSalfner(study({ name: SALFNER_SPECS.grid, run: r }));
    expect(fs).toHaveLength(7);
    for (const f of fs) expect(FindingSchema.safeParse(f).success).toBe(true);
  });
});
