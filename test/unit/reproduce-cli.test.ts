import { describe, expect, it } from 'vitest';
import { cpSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { FindingsFileSchema } from '../../harness/store/schema/findings.ts';
import { derivedSpecText } from '../../harness/cli/reproduce.ts';
import { STUDIES } from '../../analysis/reproduce/studies.ts';
import { migbench, ROOT } from '../support/cli.ts';

const NAMES = ['maintenance-plans', 'mvm', 'salfner', 'truong', 'iffland'];

describe('migbench reproduce', { timeout: 60_000 }, () => {
  it('--list names the five studies with their specs', async () => {
    const r = await migbench(['reproduce', '--list']);
    expect(r.exitCode).toBe(0);
    for (const n of NAMES) expect(r.stdout).toContain(`experiments/${n}/`);
  });

  it('an unknown study is a user error listing the studies (exit 2)', async () => {
    const r = await migbench(['reproduce', 'kherbache']);
    expect(r.exitCode).toBe(2);
    expect(r.stderr).toContain("unknown study 'kherbache'");
    for (const n of NAMES) expect(r.stderr).toContain(n);
    expect(r.stderr).not.toMatch(/\bat .*\.ts:\d+/);
  });

  it('no study and no --list is a user error (exit 2)', async () => {
    const r = await migbench(['reproduce']);
    expect(r.exitCode).toBe(2);
    expect(r.stderr).toContain('--list');
  });

  it('--from evaluates a study directory made before: findings.json, findings.md and the table', async () => {
    const dir = mkdtempSync(join(tmpdir(), 'mb-repro-'));
    try {
      const rd = join(dir, '2026-11-30T15-45-35Z-salfner-grid');
      cpSync(join(ROOT, 'test/fixtures/reproduce/salfner-sweep'), rd, { recursive: true });
      const mf = join(rd, 'manifest.json');
      writeFileSync(mf, JSON.stringify({ ...JSON.parse(readFileSync(mf, 'utf8')), name: 'salfner-grid' }));
      const r = await migbench(['reproduce', 'salfner', '--from', dir]);
      expect(r.exitCode, r.stderr).toBe(0);
      const f = FindingsFileSchema.parse(JSON.parse(readFileSync(join(dir, 'findings.json'), 'utf8')));
      expect(f.study).toBe('salfner');
      expect(f.runs).toEqual(['2026-11-30T15-45-35Z-salfner-grid']);
      expect(f.findings.map((x) => x.id)).toContain('wset-at-rate0');
      // the load-fill spec did not run: its findings say so
      expect(f.findings.find((x) => x.id === 'load-no-effect')?.verdict).toBe('not run');
      expect(r.stdout).toContain('not run');
      expect(readFileSync(join(dir, 'findings.md'), 'utf8')).toContain('| finding | paper | here | verdict | why |');
    } finally {
      rmSync(dir, { recursive: true, force: true });
    }
  });
});

describe('quick specs', () => {
  it('replace the factors and repetitions they name, keep the rest, and set a testbed id when asked', () => {
    const sp = STUDIES.find((s) => s.name === 'salfner')!.specs[0];
    const text = readFileSync(join(ROOT, 'experiments/salfner', sp.file), 'utf8');
    const out = derivedSpecText(text, sp, { quick: true, testbedId: 'rpx' });
    expect(out).toMatch(/vms\[0\]\.workload\.wset: \[ 8MiB, 40MiB \]/);
    expect(out).toMatch(/repetitions: 3/);
    expect(out).toMatch(/bpc: \[ 0, 16 \]/);
    expect(out).toMatch(/id: rpx/);
    expect(out).toContain('downtime_limit: 300ms');
    expect(derivedSpecText(text, sp, { quick: false })).toMatch(/bpc: \[ ?0, 4, 16 ?\]/);
  });
});
