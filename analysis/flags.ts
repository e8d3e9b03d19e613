/**
 * Flagged migrations of a run: the physics and sanity flags each record
 * carries (harness/migration/flags.ts), or, for records written before the
 * harness checked them (no `flags` field), the same checks computed now from
 * the record, labelled as computed at analysis time.
 */
import { flagRecord } from '../harness/migration/flags.ts';
import type { Migration } from './rundir.ts';

export interface FlagRow {
  id: string;
  treatment: string;
  status: string;
  code: string;
  reason: string;
  source: 'recorded' | 'computed at analysis time';
}

export interface FlagsReport {
  rows: FlagRow[];
  /** Records carrying their own flags (possibly none). */
  recorded: number;
  /** Records without a flags field, checked here. */
  computed: number;
  /** Migrations with at least one flag. */
  flagged: number;
}

export function runFlags(migrations: readonly Migration[]): FlagsReport {
  const rows: FlagRow[] = [];
  let recorded = 0;
  let computed = 0;
  const flagged = new Set<string>();
  for (const m of migrations) {
    const own = m.flags;
    const source = own ? 'recorded' : 'computed at analysis time';
    if (own) recorded++;
    else computed++;
    for (const f of own ?? flagRecord(m)) {
      rows.push({ id: m.id, treatment: m.treatment, status: m.status, code: f.code, reason: f.reason, source });
      flagged.add(m.id);
    }
  }
  return { rows, recorded, computed, flagged: flagged.size };
}
