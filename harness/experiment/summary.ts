import type { MigrationRecord } from '../store/schema/index.ts';

/** The table `migbench run` prints at the end: one row per treatment. */
export function summaryTable(records: readonly MigrationRecord[]): string {
  const by = new Map<string, MigrationRecord[]>();
  for (const r of records) by.set(r.treatment, [...(by.get(r.treatment) ?? []), r]);
  const mean = (xs: Array<number | null>) => {
    const v = xs.filter((x): x is number => x !== null && Number.isFinite(x));
    return v.length ? v.reduce((a, b) => a + b, 0) / v.length : null;
  };
  const f = (v: number | null, d = 0) => (v === null ? '-' : v.toFixed(d));
  const head = [
    'treatment',
    'workload',
    'ok/n',
    'total ms',
    'down rep',
    'down event',
    'down obs',
    'preop',
    'postop',
    'MiB sent',
    'passes',
    'energy J',
  ];
  const rows = [...by.entries()].map(([t, rs]) => {
    const ok = rs.filter((r) => r.status === 'completed');
    return [
      t,
      rs[0].workload.slice(0, 48),
      `${ok.length}/${rs.length}`,
      f(mean(ok.map((r) => r.total_ms))),
      f(mean(ok.map((r) => r.downtime_reported_ms)), 1),
      f(mean(ok.map((r) => r.downtime_event_ms)), 1),
      f(mean(ok.map((r) => r.downtime_observed_ms)), 1),
      f(mean(ok.map((r) => r.preop_ms))),
      f(mean(ok.map((r) => r.postop_ms)), 1),
      f(mean(ok.map((r) => (r.transferred_bytes ?? NaN) / 2 ** 20)), 1),
      f(mean(ok.map((r) => r.passes)), 1),
      f(mean(ok.map((r) => r.energy_j)), 1),
    ];
  });
  const widths = head.map((h, i) => Math.max(h.length, ...rows.map((r) => r[i].length)));
  const line = (cells: string[]) => cells.map((c, i) => (i < 2 ? c.padEnd(widths[i]) : c.padStart(widths[i]))).join('  ');
  const failed = records.filter((r) => r.status !== 'completed');
  return [
    line(head),
    ...rows.map(line),
    '(means over completed migrations; downtime in ms: reported by QEMU, STOP->RESUME events, observed by the probe)',
    ...failed.map((r) => `${r.id}: ${r.status}: ${r.reason}`),
    ...records.flatMap((r) => (r.flags ?? []).map((f) => `${r.id}: FLAGGED ${f.code}: ${f.reason}`)),
  ].join('\n');
}
