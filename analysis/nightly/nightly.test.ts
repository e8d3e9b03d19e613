import { afterAll, describe, expect, it } from 'vitest';
import { appendFileSync, mkdirSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { execa } from 'execa';
import { generateSyntheticRun } from '../../test/fixtures/synthetic-run.ts';
import { nightly } from '../../harness/cli/nightly.ts';
import { isUserError } from '../../harness/util/errors.ts';
import { envChanges, readHistory, specChanges, writePin, type Night } from './history.ts';

const ROOT = fileURLToPath(new URL('../..', import.meta.url));
const root = mkdtempSync(join(tmpdir(), 'migbench-nightly-'));
afterAll(() => rmSync(root, { recursive: true, force: true }));

/** A night's run: one treatment (256 MiB, 16 MiB working set, 100 Mbit/s), 6 repetitions, seeded. */
function runOf(name: string, o: Parameters<typeof generateSyntheticRun>[1] & { qemu?: string } = {}): string {
  const dir = generateSyntheticRun(join(root, 'runs', name), { reps: 6, ratesMbit: [100], wsetsMiB: [16], noPower: true, ...o });
  const mpath = join(dir, 'manifest.json');
  const m = JSON.parse(readFileSync(mpath, 'utf8')) as Record<string, unknown>;
  Object.assign(m, {
    qemu_version: o.qemu ?? '9.2.0',
    host_kernel: '6.1.0-28-amd64',
    accelerator: 'tcg',
    harness: { version: '0.1.0', commit: 'c0ffee' },
  });
  writeFileSync(mpath, JSON.stringify(m));
  return dir;
}

async function night(hist: string, run: string, extra: Record<string, unknown> = {}): Promise<{ code: number; out: string }> {
  const lines: string[] = [];
  const code = await nightly({ history: hist, run, ...extra }, (l) => lines.push(l));
  return { code, out: lines.join('\n') };
}

describe('migbench nightly (recording existing runs)', () => {
  const hist = join(root, 'hist');

  it('first night passes and becomes the baseline; an alike night passes; a 40 % slowdown is a regression naming metric and size', async () => {
    const n1 = await night(hist, runOf('n1', { seed: 1 }));
    expect(n1.code).toBe(0);
    expect(n1.out).toMatch(/first night: no baseline yet/);
    expect((await night(hist, runOf('n2', { seed: 2 }))).code).toBe(0);
    const n3 = await night(hist, runOf('n3', { seed: 3, slowdown: 1.4 }));
    expect(n3.code).toBe(1);
    expect(n3.out).toMatch(/REGRESSION total_ms \[.*\]: median .* \(\+[34]\d\.\d %\)/);
    expect(n3.out).toMatch(/baseline: n2 \(last night that passed\)/);
    const h = readHistory(hist);
    expect(h.map((x) => [x.id, x.verdict, x.exit_code])).toEqual([
      ['n1', 'pass', 0],
      ['n2', 'pass', 0],
      ['n3', 'regression', 1],
    ]);
    expect(h[2].findings.some((f) => f.metric === 'total_ms' && f.verdict === 'regression')).toBe(true);
    const t = h[2].treatments[0];
    expect(t.metrics.total_ms!.n).toBe(6);
    expect(t.metrics.total_ms!.q1).toBeLessThanOrEqual(t.metrics.total_ms!.median);
    expect(h[2].env).toMatchObject({ qemu_version: '9.2.0', accelerator: 'tcg', harness_commit: 'c0ffee' });
    expect(readFileSync(join(hist, 'junit.xml'), 'utf8')).toMatch(/name="total_ms">\s*<failure [^>]*type="regression"/);
    const html = readFileSync(join(hist, 'report', 'index.html'), 'utf8');
    expect(html).toContain('<svg');
    expect(readFileSync(join(hist, 'report', 'summary.md'), 'utf8')).toMatch(/\| n3 \|.*\| regression \|/);
  });

  it('the baseline after a regression is still the last night that passed; a pinned night overrides it', async () => {
    const n4 = await night(hist, runOf('n4', { seed: 4 }));
    expect(n4.code).toBe(0);
    expect(readHistory(hist).at(-1)!.baseline).toBe('n2');
    writePin(hist, 'n1');
    const n5 = await night(hist, runOf('n5', { seed: 5 }));
    expect(n5.out).toMatch(/baseline: n1 \(pinned\)/);
    expect(readHistory(hist).at(-1)).toMatchObject({ baseline: 'n1', baseline_pinned: true });
    writePin(hist, null);
  });

  it('failures are results: counts and reasons recorded, a regression when the baseline had none', async () => {
    const h = join(root, 'hist-fail');
    await night(h, runOf('f1', { seed: 11 }));
    const f2 = await night(h, runOf('f2', { seed: 12, failRate: 0.34 }));
    expect(f2.code).toBe(1);
    expect(f2.out).toMatch(/failures \[.*\]: \d failed \+ 0 cancelled of 6: synthetic failure \(\d\)/);
    const last = readHistory(h).at(-1)!;
    expect(last.verdict).toBe('regression');
    expect(last.treatments[0].failures.failed).toBeGreaterThan(0);
    expect(last.treatments[0].failures.reasons['synthetic failure']).toBe(last.treatments[0].failures.failed);
    expect(last.findings.map((f) => f.metric)).toContain('failed_or_cancelled');
  });

  it('a changed environment is compared and labelled with what changed', async () => {
    const h = join(root, 'hist-env');
    await night(h, runOf('e1', { seed: 21 }));
    const e2 = await night(h, runOf('e2', { seed: 22, qemu: '9.2.1' }));
    expect(e2.code).toBe(0);
    expect(e2.out).toMatch(/environment changed since the baseline: QEMU 9\.2\.0 -> 9\.2\.1/);
    expect(readHistory(h).at(-1)!.env_changes).toEqual(['QEMU 9.2.0 -> 9.2.1']);
  });

  it('a broken run (no migration recorded) exits 2 with the reason, is recorded, and is never the baseline', async () => {
    const h = join(root, 'hist-broken');
    await night(h, runOf('b1', { seed: 31 }));
    const empty = runOf('b2', { seed: 32 });
    writeFileSync(join(empty, 'migrations.jsonl'), '');
    const b2 = await night(h, empty);
    expect(b2.code).toBe(2);
    expect(b2.out).toMatch(/BROKEN.*\n.*recorded no migrations/);
    expect(readFileSync(join(h, 'junit.xml'), 'utf8')).toMatch(/<error [^>]*type="broken-run"/);
    await night(h, runOf('b3', { seed: 33 }));
    expect(readHistory(h).map((n: Night) => [n.id, n.verdict, n.baseline])).toEqual([
      ['b1', 'pass', null],
      ['b2', 'broken', 'b1'],
      ['b3', 'pass', 'b1'],
    ]);
  });

  it('refuses unusable input before spending a night: damaged history, both or neither of spec and --run, --inventory', async () => {
    const h = join(root, 'hist-bad');
    mkdirSync(h, { recursive: true });
    writeFileSync(
      join(h, 'history.jsonl'),
      '{"id":"x","verdict":"pass","treatments":[]}\n{oops\n{"id":"y","verdict":"pass","treatments":[]}\n',
    );
    const err = (p: Promise<unknown>) =>
      p.then(
        () => null,
        (e: unknown) => (isUserError(e) ? e.message : `not a UserError: ${String(e)}`),
      );
    expect(await err(night(h, runOf('x1', { seed: 41 })))).toMatch(/history\.jsonl:2: not valid JSON/);
    expect(await err(nightly({ history: hist }))).toMatch(/either a spec to run or --run/);
    expect(await err(nightly({ history: hist, spec: 'a.yaml', run: 'r' }))).toMatch(/not both/);
    expect(await err(nightly({ history: hist, spec: 'a.yaml', inventory: 'inv.yaml' }))).toMatch(
      /--inventory needs the ssh testbed driver/,
    );
    // a torn last line (a crash mid-write) is skipped, not fatal
    const t = join(root, 'hist-torn');
    await night(t, runOf('t1', { seed: 51 }));
    appendFileSync(join(t, 'history.jsonl'), '{"id":"half');
    expect((await night(t, runOf('t2', { seed: 52 }))).code).toBe(0);
    expect(readHistory(t).map((n) => n.id)).toEqual(['t1', 't2']);
  });
});

describe('migbench baseline', () => {
  it('shows, pins (by id or position), refuses unknown nights, and unpins', async () => {
    const h = join(root, 'hist-pin');
    await night(h, runOf('p1', { seed: 61 }));
    await night(h, runOf('p2', { seed: 62 }));
    const cli = (...args: string[]) => execa('node', [join(ROOT, 'bin/migbench.js'), 'baseline', h, ...args], { reject: false });
    expect((await cli()).stdout).toMatch(/baseline: p2 \(last night that passed/);
    expect((await cli('--set', '1')).stdout).toMatch(/baseline pinned: p1/);
    expect((await cli()).stdout).toMatch(/baseline: p1 \(pinned/);
    const bad = await cli('--set', 'p9');
    expect(bad.exitCode).toBe(2);
    expect(bad.stderr).toMatch(/no night 'p9' .*nights: p1, p2/);
    expect((await cli('--clear')).stdout).toMatch(/baseline: p2 \(last night that passed/);
  }, 60_000);
});

describe('what changed between nights', () => {
  it('names environment and spec differences', () => {
    const env = {
      harness_commit: 'a'.repeat(40),
      harness_version: '0.1.0',
      qemu_version: '9.0.2',
      host_kernel: '6.1',
      guest_kernel: '6.1',
      accelerator: 'kvm',
      hosts: ['a', 'b'],
      spec_hash: 'x',
    };
    expect(envChanges(env, { ...env, accelerator: 'tcg', hosts: ['a', 'c'], harness_commit: 'b'.repeat(40) })).toEqual([
      'accelerator kvm -> tcg',
      `harness commit ${'a'.repeat(12)} -> ${'b'.repeat(12)}`,
      'host set a,b -> a,c',
    ]);
    expect(
      specChanges(
        { testbed: { shaping: [{ link: 'x', rate: '100mbit' }] }, repetitions: 2 },
        { testbed: { shaping: [{ link: 'x', rate: '50mbit' }] }, repetitions: 2 },
      ),
    ).toEqual(['testbed.shaping[0].rate: 100mbit -> 50mbit']);
  });
});
