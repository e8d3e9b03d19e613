import { describe, expect, it } from 'vitest';
import { runFlags } from './flags.ts';
import { normalizeMigration } from './rundir.ts';

describe('flags of old and new records', () => {
  it('uses recorded flags, computes them for records without the field and says so', () => {
    const fast = { status: 'completed', total_ms: 1000, transferred_bytes: 100 * 2 ** 20, link_rate_mbit: 100 };
    const old = normalizeMigration({ id: 'old', ...fast }, 1);
    expect(old.flags).toBeUndefined();
    const fresh = normalizeMigration({ id: 'new', ...fast, flags: [] }, 2);
    const own = normalizeMigration({ id: 'own', status: 'completed', flags: [{ code: 'clock_offset', reason: 'r' }] }, 3);
    const f = runFlags([old, fresh, own]);
    expect(f).toMatchObject({ recorded: 2, computed: 1, flagged: 2 });
    // 100 MiB in 1 s is 839 Mbit/s on a 100 Mbit/s link
    expect(f.rows[0]).toMatchObject({ id: 'old', code: 'faster_than_link', source: 'computed at analysis time' });
    expect(f.rows[0].reason).toMatch(/838\.9 Mbit\/s/);
    expect(f.rows[1]).toMatchObject({ id: 'own', code: 'clock_offset', source: 'recorded' });
  });
});
