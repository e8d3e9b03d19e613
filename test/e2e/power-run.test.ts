import { afterAll, describe, expect, it } from 'vitest';
import { existsSync, readdirSync, readFileSync } from 'node:fs';
import { join } from 'node:path';
import { InfluxDB } from 'influx';
import { runExperiment } from '../../harness/experiment/runner.ts';
import type { MigrationRecord } from '../../harness/migration/migrate.ts';
import { readJsonl } from '../../harness/store/jsonl.ts';
import { isoToMicros } from '../../harness/store/influx.ts';
import type { Sample } from '../../harness/store/sample.ts';
import { down } from '../../harness/testbed/local.ts';
import { stateDir } from '../../harness/util/paths.ts';
import { startInfluxd, type TestInfluxd } from '../support/influxd.ts';
import { netnsList, ROOT, waitFor } from '../support/cli.ts';
import { fileScratchDir } from '../support/scratch.ts';

/**
 * Power through real IPMI (3 ipmi_sim BMCs, ipmitool sessions) during real
 * migrations, streamed to a real influxd that is down for 30 s mid-run.
 */
const out = fileScratchDir('mb-e2e-power-');
let influxd: TestInfluxd | null = null;

afterAll(async () => {
  await influxd?.stop();
  await down('mbpow');
});

function mean(xs: number[]): number {
  return xs.reduce((a, b) => a + b, 0) / xs.length;
}

describe('power and InfluxDB during a run', () => {
  it('polls 3 BMCs at 1 Hz, attributes energy to the migration, and loses no point while influxd is down', async () => {
    influxd = await startInfluxd();
    const url = `${influxd.url}/migbench`;
    let outage: Promise<void> | null = null;
    const running = runExperiment({
      specFile: `${ROOT}test/e2e/specs/power.yaml`,
      outDir: out,
      influx: url,
      log: (l) => process.stderr.write(`${l}\n`),
    });
    let runError: unknown = null;
    running.catch((e) => (runError = e));
    // take influxd away for 30 s once the first migration is under way
    await waitFor(
      () => {
        if (runError) throw runError;
        const dirs = readdirSync(out);
        if (!dirs.length) return false;
        try {
          return readFileSync(join(out, dirs[0], 'samples', 'migration_progress.jsonl'), 'utf8').length > 0;
        } catch {
          return false;
        }
      },
      300_000,
      'the first migration to start',
    );
    outage = (async () => {
      influxd!.pause();
      await new Promise((r) => setTimeout(r, 30_000)); // the outage itself is the point of the test
      await influxd!.restart();
    })();
    const res = await running;
    await outage;

    const migs = readJsonl<MigrationRecord>(join(res.dir, 'migrations.jsonl'));
    expect(migs).toHaveLength(2);
    const power = readJsonl<Sample>(join(res.dir, 'samples', 'power.jsonl'));
    const byHost = (h: string) => power.filter((s) => s.tags.host === h);
    for (const h of ['r1-h1', 'r1-h2', 'r1-h3']) {
      const pts = byHost(h).filter((s) => typeof s.fields.watts === 'number');
      const span = (Date.parse(pts[pts.length - 1].t) - Date.parse(pts[0].t)) / 1000;
      expect(span).toBeGreaterThan(20);
      // 1 Hz: readings per second of span, allowing for a missed tick on a busy machine
      expect(pts.length / span).toBeGreaterThan(0.85);
      expect(pts.length / span).toBeLessThan(1.1);
    }
    const manifest = JSON.parse(readFileSync(join(res.dir, 'manifest.json'), 'utf8'));
    expect(manifest.power_source).toBe('modelled');
    const report = manifest.power_poller.mbpow;
    expect(report.jitter).toBeDefined(); // the poller reports its own jitter
    expect(JSON.stringify(manifest)).not.toContain(process.env.MIGBENCH_BMC_PASSWORD ?? '\u0000never');

    const m = migs[0];
    expect(m.status).toBe('completed');
    const from = Date.parse(m.t_cmd!);
    const to = Date.parse(m.t_done!);
    expect(to - from).toBeGreaterThan(15_000);
    const during = (h: string) =>
      byHost(h)
        .filter((s) => typeof s.fields.watts === 'number' && Date.parse(s.t) >= from && Date.parse(s.t) <= to)
        .map((s) => s.fields.watts as number);
    const before = (h: string) =>
      byHost(h)
        .filter((s) => typeof s.fields.watts === 'number' && Date.parse(s.t) < from)
        .map((s) => s.fields.watts as number);
    // the migration's hosts draw more than the idle third host, and the destination more than before
    expect(mean(during('r1-h1'))).toBeGreaterThan(mean(during('r1-h3')));
    expect(mean(during('r1-h2'))).toBeGreaterThan(mean(during('r1-h3')));
    expect(mean(during('r1-h2'))).toBeGreaterThan(mean(before('r1-h2')));

    // energy by hand: trapezoids of (P - idle) over the migration, clipped to it
    const idle = manifest.power_model.idleW as number;
    const byHand = (h: string) => {
      const pts = byHost(h)
        .filter((s) => typeof s.fields.watts === 'number')
        .map((s) => ({ t: Date.parse(s.t), w: s.fields.watts as number }));
      let j = 0;
      for (let i = 0; i + 1 < pts.length; i++) {
        const a = pts[i],
          b = pts[i + 1];
        const lo = Math.max(a.t, from),
          hi = Math.min(b.t, to);
        if (hi <= lo || b.t - a.t > 2500) continue;
        const w = (t: number) => a.w + ((b.w - a.w) * (t - a.t)) / (b.t - a.t);
        j += (((w(lo) + w(hi)) / 2 - idle) * (hi - lo)) / 1000;
      }
      return j;
    };
    expect(m.energy_j!).toBeGreaterThan(0);
    expect(m.energy_j!).toBeCloseTo(byHand('r1-h1') + byHand('r1-h2'), 3);

    // InfluxDB holds exactly the run directory's points
    const db = new InfluxDB(url);
    for (const meas of ['power', 'migration_progress', 'probe', 'qmp_event']) {
      const lines = readJsonl<Sample>(join(res.dir, 'samples', `${meas}.jsonl`));
      const rows = (await db.query(`SELECT * FROM "${meas}"`)) as unknown as Array<{ time: { getNanoTime(): string } }>;
      expect(rows.length, meas).toBe(lines.length);
      // point by point: the same timestamps (µs precision), none missing, none twice
      const want = lines.map((l) => isoToMicros(l.t)).sort();
      const got = rows.map((r) => (BigInt(r.time.getNanoTime()) / 1000n).toString()).sort();
      expect(got, meas).toEqual(want);
    }
    expect((await netnsList()).filter((n) => n.startsWith('mb-mbpow-'))).toEqual([]);
    // the BMCs' private files (this run's BMC password) are gone
    expect(existsSync(join(stateDir(), 'mbpow-bmc'))).toBe(false);
  });
});
