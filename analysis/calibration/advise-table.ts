/**
 * The plan advisor as a table (CLI and report) and as JSON. The report's
 * section advises on the run's own spec with the parameters the analysis
 * fitted in-run (a report has no params.json): it says so in its caption.
 */
import type { AnalysisResult } from '../analyze.ts';
import type { RunDir } from '../rundir.ts';
import type { Table } from '../report/tables.ts';
import { parseSpecText } from '../../harness/spec/load.ts';
import { UserError } from '../../harness/util/errors.ts';
import { advise, type Advice } from './advise.ts';
import { adviseInputFromSpec } from './advise-spec.ts';

const f1 = (x: number | null) => (x === null || !Number.isFinite(x) ? '–' : x.toFixed(1));

export const ADVISOR_TITLE = 'Plan advisor: predicted completion, migration time and energy per plan';

export function adviceTable(a: Advice, notes: readonly string[] = [], caption?: string): Table {
  return {
    title: ADVISOR_TITLE,
    caption: [caption, a.why].filter(Boolean).join(' '),
    headers: ['plan', 'completion s', 'mean migration s', 'energy J', 'sent MB', 'at once', 'unconverged', 'bottleneck', ''],
    rows: a.plans.map((p) =>
      p.error
        ? [p.label, '–', '–', '–', '–', '–', '–', '–', `impossible: ${p.error}`]
        : [
            p.label,
            f1(p.completionS),
            f1(p.meanMigrationS),
            f1(p.energyJ),
            f1(p.transferredMB),
            String(p.peakConcurrent),
            String(p.cancelled),
            p.bottleneck ? `${p.bottleneck.resource}${p.bottleneck.sharedBy > 1 ? ` (shared ${p.bottleneck.sharedBy} ways)` : ''}` : '–',
            p.label === a.pick ? 'pick' : '',
          ],
    ),
    note: notes.length ? notes.join('; ') : undefined,
  };
}

/** The advice as JSON (seconds, joules, MB; per-migration forecasts included). */
export function adviceJson(a: Advice, notes: readonly string[]) {
  return {
    pick: a.pick,
    why: a.why,
    notes,
    plans: a.plans.map((p) => ({
      label: p.label,
      plan: p.plan,
      error: p.error ?? null,
      completion_s: p.completionS,
      mean_migration_s: p.meanMigrationS,
      energy_j: p.energyJ,
      transferred_mb: p.transferredMB,
      peak_concurrent: p.peakConcurrent,
      unconverged: p.cancelled,
      bottleneck: p.bottleneck && { resource: p.bottleneck.resource, shared_by: p.bottleneck.sharedBy },
      migrations: p.migrations.map((m) => ({
        vm: m.vm,
        from: m.from,
        to: m.to,
        start_s: m.startS,
        end_s: m.endS,
        migration_s: m.migrationS,
        mean_bw_mib_s: m.meanBwMiBps,
        transferred_mib: m.transferredMiB,
        converges: m.converges,
      })),
    })),
  };
}

/** Defaults of `plan advise` for what params and the spec do not say. */
export const ADVISE_DEFAULTS = { unshapedRateBps: 1e9, bootS: 30, shutdownS: 10 } as const;

/**
 * The report's advisor section: the run's spec with the parameters fitted
 * in this run (analysis' display fit). Empty for a run without a spec text
 * or with fewer than two moves (nothing to plan); a table with a note when
 * the spec cannot be predicted from this run's parameters.
 */
export function advisorTables(run: RunDir, a: AnalysisResult): Table[] {
  const text = run.manifest.spec_text;
  if (typeof text !== 'string' || a.counts.total === 0) return [];
  try {
    const { spec } = parseSpecText(text, 'manifest.json spec_text');
    if (!spec.migration || spec.migration.moves.length < 2) return [];
    const { input, notes } = adviseInputFromSpec(spec, a.validation.display, {
      ...ADVISE_DEFAULTS,
      file: 'the run spec',
      paramsFile: 'this run',
    });
    return [
      adviceTable(
        advise(input, spec.migration.plan),
        notes,
        "Parameters fitted on this run's own migrations (in-sample: for planning the next run); " +
          "'migbench plan advise <spec> --params params.json' predicts from parameters calibrated on other runs.",
      ),
    ];
  } catch (e) {
    if (e instanceof UserError) return [{ title: ADVISOR_TITLE, headers: [], rows: [], note: `not predicted: ${e.message}` }];
    throw e;
  }
}
