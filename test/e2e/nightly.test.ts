import { afterAll, describe, expect, it } from 'vitest';
import { existsSync, mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import type { Night } from '../../analysis/nightly/history.ts';
import { down } from '../../harness/testbed/local.ts';
import { migbench, ROOT } from '../support/cli.ts';

const hist = mkdtempSync(join(tmpdir(), 'mb-e2e-nightly-'));
afterAll(async () => {
  await down('mbh5');
  rmSync(hist, { recursive: true, force: true });
});

const nights = (): Night[] =>
  readFileSync(join(hist, 'history.jsonl'), 'utf8')
    .trim()
    .split('\n')
    .map((l) => JSON.parse(l) as Night);

describe('migbench nightly', () => {
  it('two alike nights pass; a third with the migration link at half the rate exits 1 naming the metric, the size and what changed', async () => {
    const base = `${ROOT}test/e2e/specs/nightly-base.yaml`;
    const slow = `${ROOT}test/e2e/specs/nightly-slow.yaml`;

    const r1 = await migbench(['nightly', base, '--history', hist]);
    expect(r1.exitCode, `${r1.stdout}\n${r1.stderr}`).toBe(0);
    expect(String(r1.stdout)).toMatch(/first night: no baseline yet/);

    const r2 = await migbench(['nightly', base, '--history', hist]);
    expect(r2.exitCode, `${r2.stdout}\n${r2.stderr}`).toBe(0);
    const [n1, n2] = nights();
    expect(n2.baseline).toBe(n1.id);
    expect(n2.spec_changes).toEqual([]);

    const r3 = await migbench(['nightly', slow, '--history', hist]);
    const out = String(r3.stdout);
    console.log(`third night:\n${out}`); // the figures behind the verdict, for whoever reads the test log
    expect(r3.exitCode, `${out}\n${r3.stderr}`).toBe(1);
    // the metric and the size of the effect ...
    expect(out).toMatch(
      /(REGRESSION|INSUFFICIENT) total_ms \[\(single treatment\)\]: .*effect \+\d+\.\d %|REGRESSION total_ms .*\(\+\d+\.\d %\)/,
    );
    // ... and what changed since the baseline night
    expect(out).toMatch(/spec changed since the baseline: .*testbed\.shaping\[0\]\.rate: 100mbit -> 50mbit/);

    const all = nights();
    expect(all).toHaveLength(3);
    expect(all.map((n) => n.verdict)).toEqual(['pass', 'pass', 'regression']);
    expect(all.map((n) => n.exit_code)).toEqual([0, 0, 1]);
    const n3 = all[2];
    expect(n3.baseline).toBe(n2.id);
    const total = n3.findings.find((f) => f.metric === 'total_ms')!;
    expect(total).toBeDefined();
    const m1 = n1.treatments[0].metrics.total_ms!.median,
      m3 = n3.treatments[0].metrics.total_ms!.median;
    expect(m3 / m1).toBeGreaterThan(1.5); // half the rate: close to twice the time
    for (const n of all) {
      expect(n.env.qemu_version).toBeTruthy();
      expect(n.env.accelerator).toMatch(/kvm|tcg/);
      expect(n.env.hosts).toEqual(['r1-h1', 'r1-h2']);
      expect(n.treatments[0].failures.n).toBe(2);
      expect(existsSync(n.run_dir!)).toBe(true);
    }
    const junit = readFileSync(join(hist, 'junit.xml'), 'utf8');
    expect(junit).toMatch(/<testcase classname="\(single treatment\)" name="total_ms">\s*<failure /);
    const html = readFileSync(join(hist, 'report', 'index.html'), 'utf8');
    expect(html).toContain('<svg');
    expect(html).toContain('total_ms');
  }, 1_500_000);
});
