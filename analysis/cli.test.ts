import { afterAll, afterEach, describe, expect, it, vi } from 'vitest';
import { existsSync, mkdtempSync, readFileSync, readdirSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import yargs from 'yargs';
import { analysisCommands } from './cli.ts';
import { generateSyntheticRun } from '../test/fixtures/synthetic-run.ts';
import { UserError } from '../harness/util/errors.ts';

const root = mkdtempSync(join(tmpdir(), 'migbench-analysis-cli-'));
afterAll(() => rmSync(root, { recursive: true, force: true }));
afterEach(() => {
  process.exitCode = undefined;
  vi.restoreAllMocks();
});

async function cli(args: string[]): Promise<string> {
  const chunks: string[] = [];
  vi.spyOn(process.stdout, 'write').mockImplementation((s) => (chunks.push(String(s)), true));
  vi.spyOn(process.stderr, 'write').mockImplementation((s) => (chunks.push(String(s)), true));
  try {
    await yargs(args)
      .command(analysisCommands)
      .strict()
      .fail((msg, err) => {
        throw err ?? new Error(msg);
      })
      .parseAsync();
  } finally {
    vi.restoreAllMocks();
  }
  return chunks.join('');
}

describe('analysis CLI commands', () => {
  const base = generateSyntheticRun(join(root, 'base'), { seed: 1, reps: 6, planVms: 3, failRate: 0.05 });
  const slow = generateSyntheticRun(join(root, 'slow'), { seed: 2, reps: 6, planVms: 3, slowdown: 1.3, shuffleIds: true });
  const dark = generateSyntheticRun(join(root, 'dark'), { seed: 3, reps: 4, noPower: true });

  it('report writes HTML with inline SVG and a Markdown summary; missing data is a note, not an error', async () => {
    const o = await cli(['report', base]);
    expect(o).toContain('index.html');
    const html = readFileSync(join(base, 'report', 'index.html'), 'utf8');
    expect((html.match(/<svg/g) ?? []).length).toBe(8); // with Figure 4 and the two-factor heat maps
    expect(html).not.toMatch(/src="http|href="http[^"]*\.css/);
    expect(readFileSync(join(base, 'report', 'summary.md'), 'utf8')).toContain('Variability (Salfner et al., Table II)');
    const o2 = await cli(['report', dark]);
    expect(o2).toMatch(/Power over time.*omitted/);
    const darkHtml = readFileSync(join(dark, 'report', 'index.html'), 'utf8');
    expect(darkHtml).toContain('no migration has an energy figure');
    expect(darkHtml).toContain('no migration belongs to a plan');
  });

  it('fit energy prints alpha near the truth; says so when there is no energy', async () => {
    const o = await cli(['fit', base, '--model', 'energy']);
    const alpha = Number(
      o
        .split('\n')
        .find((l) => l.startsWith('| pooled'))!
        .split('|')[3],
    );
    expect(Math.abs(alpha - 0.512)).toBeLessThan(0.01);
    await expect(cli(['fit', dark, '--model', 'energy'])).rejects.toThrow(UserError);
    expect(await cli(['fit', base, '--model', 'hotcold'])).toContain('dirty wset=64M');
  });

  it('compare sets exit code 1 on a regression, 0 on none, 2 on unusable input', async () => {
    await cli(['compare', base, slow, '--junit', join(root, 'j.xml')]);
    expect(process.exitCode).toBe(1);
    expect(readFileSync(join(root, 'j.xml'), 'utf8')).toContain('<failure');
    process.exitCode = undefined;
    await cli(['compare', base, base]);
    expect(process.exitCode).toBe(0);
    await cli(['compare', base, join(root, 'missing')]);
    expect(process.exitCode).toBe(2);
  });

  it('export --csv writes migrations.csv and one CSV per measurement', async () => {
    await cli(['export', base, '--csv', '--out', join(root, 'csv')]);
    expect(readdirSync(join(root, 'csv')).sort()).toEqual(['dirty_trace.csv', 'migrations.csv', 'power.csv']);
    const lines = readFileSync(join(root, 'csv', 'migrations.csv'), 'utf8')
      .trim()
      .split('\n');
    expect(lines.length).toBe(1 + 6 * 2 * 3 * 2 * 3); // header + treatments x reps x VMs
    expect(lines[0]).toContain('migration.plan.kind');
    expect(readFileSync(join(root, 'csv', 'power.csv'), 'utf8').split('\n')[0]).toBe('t,experiment,host,rep,treatment,watts');
    await expect(cli(['export', base])).rejects.toThrow(/--csv/);
  });

  it('analyze prints the tables; a missing run dir is a UserError', async () => {
    const o = await cli(['analyze', base]);
    expect(o).toContain('Duration models on validated migrations');
    expect(o).toContain('Predicted vs observed per migration: verdicts');
    const j = JSON.parse(await cli(['analyze', base, '--json']));
    for (const model of ['mvm', 'mvm-mu', 'qemu'])
      for (const k of ['median_rel_error', 'p90_rel_error', 'verdicts_right', 'verdicts_wrong'])
        expect(j.duration.models[model]).toHaveProperty(k);
    expect(j.duration.migrations).toHaveLength(6 * 2 * 3 * 2 * 3);
    expect(j.counts.total).toBe(6 * 2 * 3 * 2 * 3);
    await expect(cli(['analyze', join(root, 'nope')])).rejects.toThrow(UserError);
    expect(existsSync(join(root, 'nope'))).toBe(false);
  });
});
