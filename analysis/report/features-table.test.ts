import { describe, expect, it } from 'vitest';
import type { RunDir } from '../rundir.ts';
import { featuresTable } from './features-table.ts';

const run = (migrations: unknown[]) => ({ migrations }) as unknown as RunDir;

describe('features table', () => {
  it('is absent when no migration requested a feature or moved a disk', () => {
    expect(featuresTable(run([{ id: 'a', features: {}, total_ms: 1 }, { id: 'b' }]))).toEqual([]);
  });

  it('shows each feature with its evidence and a requested feature that never engaged', () => {
    const [t] = featuresTable(
      run([
        {
          id: 'm1',
          total_ms: 11089,
          features: {
            auto_converge: {
              requested: true,
              engaged: true,
              max_throttle_pct: 90,
              throttle: [
                [5812, 50],
                [8624, 70],
                [10729, 90],
              ],
            },
            multifd: { requested: true, engaged: false, channels: 4, multifd_bytes: 0 },
          },
        },
        {
          id: 'm2',
          total_ms: 3803,
          features: {},
          block: {
            disk_bytes: 64 * 2 ** 20,
            mirror_ms: 380,
            switchover_ms: 8.2,
            total_ms: 4234,
            t_mirror_done: 'x',
            content: { verified: false },
          },
        },
      ]),
    );
    expect(t.rows.map((r) => r.slice(0, 3))).toEqual([
      ['m1', 'multifd', 'NO (flagged: requested, never engaged)'],
      ['m1', 'auto-converge', 'yes'],
      ['m2', 'block migration', 'yes'],
    ]);
    expect(t.rows[1][3]).toBe('CPU throttle 50 % @5.8 s → 70 % @8.6 s → 90 % @10.7 s; max 90 %');
    expect(t.rows[2][3]).toContain(
      'disk 64.0 MiB (– allocated on the destination) mirrored to READY in 380 ms; RAM 3803 ms; switchover 8 ms',
    );
    expect(t.rows[2][3]).toContain('CONTENT DIFFERS');
  });
});
