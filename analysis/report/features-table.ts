/**
 * The report's table of migration features (post-copy, multifd, xbzrle, auto-converge) and block
 * migration: per migration, whether each requested feature engaged and QEMU's evidence for it
 * (harness/migration/features.ts). Absent from reports of runs that requested none.
 */
import type { RunDir } from '../rundir.ts';
import { num, type Table } from './tables.ts';

const MiB = (b: number | null | undefined) => (b === null || b === undefined ? '–' : `${num(b / 2 ** 20, 1)} MiB`);
const ms = (x: number | null | undefined) => (x === null || x === undefined ? '–' : `${Math.round(x)} ms`);
const engagedText = (e: boolean | null | undefined) =>
  e === true ? 'yes' : e === false ? 'NO (flagged: requested, never engaged)' : '– (no evidence)';

export function featuresTable(run: RunDir): Table[] {
  const rows: string[][] = [];
  for (const m of run.migrations) {
    const f = m.features ?? {};
    if (f.postcopy) {
      const p = f.postcopy;
      rows.push([
        m.id,
        'post-copy',
        engagedText(p.engaged),
        `switched ${ms(p.switch_after_ms)} after migrate; blackout (STOP→RESUME) ${ms(p.blackout_ms)}; ` +
          `${p.requests ?? '–'} page requests; ${MiB(p.postcopy_bytes)} sent in post-copy`,
      ]);
    }
    if (f.multifd)
      rows.push([
        m.id,
        'multifd',
        engagedText(f.multifd.engaged),
        `${f.multifd.channels ?? '–'} channels; ${MiB(f.multifd.multifd_bytes)} over multifd`,
      ]);
    if (f.xbzrle) {
      const x = f.xbzrle;
      rows.push([
        m.id,
        'xbzrle',
        engagedText(x.engaged),
        `${x.pages ?? '–'} pages sent encoded (${MiB(x.bytes)}); cache ${MiB(x.cache_size)}, ` +
          `${x.cache_miss ?? '–'} misses (rate ${num(x.cache_miss_rate, 2)}), ${x.overflow ?? '–'} overflows`,
      ]);
    }
    if (f.auto_converge) {
      const a = f.auto_converge;
      const series = a.throttle.map(([t, pct]) => `${pct} % @${num(t / 1000, 1)} s`).join(' → ');
      rows.push([
        m.id,
        'auto-converge',
        engagedText(a.engaged),
        `CPU throttle ${series || 'never set'}; max ${a.max_throttle_pct ?? '–'} %`,
      ]);
    }
    if (m.block) {
      const b = m.block;
      const c = b.content;
      const content = !c
        ? 'content not checked'
        : c.verified === true
          ? 'content verified'
          : c.verified === false
            ? 'CONTENT DIFFERS'
            : 'content not checked';
      rows.push([
        m.id,
        'block migration',
        b.t_mirror_done ? 'yes' : 'incomplete',
        `disk ${MiB(b.disk_bytes)} (${MiB(b.dst_allocated_bytes)} allocated on the destination) mirrored to READY in ${ms(b.mirror_ms)}; RAM ${ms(m.total_ms)}; switchover ${ms(b.switchover_ms)}; ` +
          `whole ${ms(b.total_ms)}; ${content}`,
      ]);
    }
  }
  if (!rows.length) return [];
  return [
    {
      title: 'Migration features and block migration',
      caption: "Each requested feature per migration: whether QEMU showed it engaging, and QEMU's numbers that show it.",
      headers: ['migration', 'feature', 'engaged', 'evidence'],
      rows,
    },
  ];
}
