import { afterAll, describe, expect, it } from 'vitest';
import { existsSync, readdirSync, readFileSync } from 'node:fs';
import { join } from 'node:path';
import type { CampaignState } from '../../harness/experiment/campaign-state.ts';
import type { MigrationRecord } from '../../harness/migration/migrate.ts';
import { readJsonl } from '../../harness/store/jsonl.ts';
import type { Sample } from '../../harness/store/sample.ts';
import { down } from '../../harness/testbed/local.ts';
import { migbench, netnsList, ROOT, waitFor } from '../support/cli.ts';
import { qemuPidsMentioning } from '../support/procs.ts';
import { fileScratchDir } from '../support/scratch.ts';

const out = fileScratchDir('mb-e2e-campaign-');
afterAll(async () => {
  await down('mbcmp');
});

function state(dir: string): CampaignState | null {
  try {
    return JSON.parse(readFileSync(join(dir, 'state.json'), 'utf8')) as CampaignState;
  } catch {
    return null;
  }
}

describe('resumable campaign', () => {
  it('survives SIGKILL in the middle of a unit: resume ends with exactly 12 units, no duplicates, partial data marked', async () => {
    const child = migbench(['run', `${ROOT}test/e2e/specs/campaign.yaml`, '--out', out]);
    let dir = '';
    let victim: { treatment: string; rep: number } | null = null;
    await waitFor(
      () => {
        const d = readdirSync(out)[0];
        if (!d) return false;
        dir = join(out, d);
        const s = state(dir);
        const running = s?.units.find((u) => u.status === 'running');
        if (!s || !running || s.units.filter((u) => u.status === 'done').length < 3) return false;
        // kill once the running unit's migration is streaming progress samples
        const prog = join(dir, 'samples', 'migration_progress.jsonl');
        if (!existsSync(prog)) return false;
        const mine = readJsonl<Sample>(prog).filter((p) => p.tags.treatment === running.treatment && p.tags.rep === String(running.rep));
        if (mine.length < 5) return false;
        victim = { treatment: running.treatment, rep: running.rep };
        return true;
      },
      600_000,
      'the campaign to be in the middle of its 4th unit or later',
    );
    child.kill('SIGKILL');
    await child;
    const before = state(dir)!;
    expect(before.units.find((u) => u.treatment === victim!.treatment && u.rep === victim!.rep)!.status).toBe('running');
    const doneBefore = before.units.filter((u) => u.status === 'done').map((u) => `${u.treatment}/${u.rep}`);

    const r = await migbench(['resume', dir]);
    expect(r.exitCode, String(r.stderr)).toBe(0);
    const after = state(dir)!;
    expect(after.units).toHaveLength(12);
    expect(after.units.every((u) => u.status === 'done')).toBe(true);
    // completed units were not repeated
    for (const key of doneBefore) expect(after.units.find((u) => `${u.treatment}/${u.rep}` === key)!.attempts).toBe(1);
    const v = after.units.find((u) => u.treatment === victim!.treatment && u.rep === victim!.rep)!;
    expect(v.attempts).toBe(2);
    expect(after.interrupted).toEqual([expect.objectContaining({ treatment: v.treatment, rep: v.rep, attempt: 1 })]);

    const migs = readJsonl<MigrationRecord>(join(dir, 'migrations.jsonl'));
    const valid = migs.filter((m) => !m.partial);
    expect(valid).toHaveLength(12);
    expect(new Set(valid.map((m) => `${m.treatment}/${m.rep}`)).size).toBe(12);
    expect(valid.every((m) => m.status === 'completed')).toBe(true);
    // the interrupted attempt's data is told apart: partial records, attempt-1 samples
    for (const m of migs.filter((x) => x.treatment === v.treatment && x.rep === v.rep && x.attempt === 1)) expect(m.partial).toBe(true);
    const prog = readJsonl<Sample>(join(dir, 'samples', 'migration_progress.jsonl'));
    expect(prog.some((p) => p.tags.treatment === v.treatment && p.tags.rep === String(v.rep) && p.tags.attempt === '1')).toBe(true);
    expect(prog.some((p) => p.tags.treatment === v.treatment && p.tags.rep === String(v.rep) && p.tags.attempt === '2')).toBe(true);

    expect(qemuPidsMentioning(dir)).toEqual([]);
    expect((await netnsList()).filter((n) => n.startsWith('mb-mbcmp-'))).toEqual([]);
  });
});
