import { afterAll, afterEach, describe, expect, it, vi } from 'vitest';
import { cpSync, existsSync, mkdtempSync, readFileSync, readdirSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import yargs from 'yargs';
import { analysisCommands } from './cli.ts';
import { generateSyntheticRun } from '../test/fixtures/synthetic-run.ts';
import { UserError } from '../harness/util/errors.ts';
import { haveCommand } from '../harness/util/exec.ts';

const chromium = (await haveCommand('chromium')) || (await haveCommand('chromium-browser')) || (await haveCommand('google-chrome'));
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
    expect((html.match(/<svg/g) ?? []).length).toBe(9); // with Figure 4, the two-factor heat maps and the timeline
    expect(html).toContain('<h2>Timeline</h2>');
    expect(html).toMatch(/Plot any other migration with: migbench plot &lt;runDir&gt; &lt;id&gt;, e.g. migbench plot \.\.\.\/base m\d+/);
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

  it('plot writes the timeline of a migration as SVG; an unknown id is a UserError listing valid ids', async () => {
    const rec = join(root, 'rec');
    cpSync(new URL('../test/fixtures/timeline/', import.meta.url).pathname, rec, { recursive: true });
    const o = await cli(['plot', rec, 't4f53cda1-r0-vm1']);
    const path = join(rec, 'timeline-t4f53cda1-r0-vm1.svg');
    expect(o).toContain(`wrote ${path}`);
    const svg = readFileSync(path, 'utf8');
    expect(svg.startsWith('<svg')).toBe(true);
    expect(svg).toContain('Timeline of migration t4f53cda1-r0-vm1');
    await cli(['plot', rec, 't4f53cda1-r0-vm1', '--out', join(root, 'plots', 'x.svg')]);
    expect(existsSync(join(root, 'plots', 'x.svg'))).toBe(true);
    const err = await cli(['plot', rec, 'nope']).catch((e: unknown) => e);
    expect(err).toBeInstanceOf(UserError);
    expect((err as UserError).exitCode).toBe(2);
    expect((err as Error).message).toMatch(/migration 'nope' is not in .*valid ids include t4f53cda1-r0-vm1/);
    // a run whose migrations have no samples at all: said so, nothing written
    await expect(cli(['plot', dark, 'm1'])).rejects.toThrow(/migration m1 has no samples to draw/);
  });

  it.skipIf(!chromium)(
    'plot --out x.png renders the SVG to a PNG through headless Chromium',
    async () => {
      const rec = join(root, 'rec-png');
      cpSync(new URL('../test/fixtures/timeline/', import.meta.url).pathname, rec, { recursive: true });
      const png = join(root, 'plots', 'x.png');
      await cli(['plot', rec, 't4f53cda1-r0-vm1', '--out', png]);
      const head = readFileSync(png).subarray(0, 24);
      expect(head.subarray(1, 4).toString()).toBe('PNG');
      expect(head.readUInt32BE(16)).toBeGreaterThan(700); // width from the SVG
    },
    60_000,
  );
});
