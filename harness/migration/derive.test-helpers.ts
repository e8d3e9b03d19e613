import type { ProbeRecord } from '../native/programs.ts';
import { emptyControlFacts, probeWindow, type MigrationObservation, type ObservedQuery } from './derive.ts';

/**
 * A completed live migration for derivation tests: the command, STOP, MIGRATION completed and RESUME at the
 * given times (ms after t0), one query-migrate answer at the end, the probe records windowed as migrate.ts does.
 */
export function syntheticMigration(o: {
  t0: number;
  intervalMs: number;
  at: { cmd: number; stop: number; completed: number; resume: number; end: number };
  answer: ObservedQuery['answer'];
  probe: ProbeRecord[];
  probePending?: number[];
}): MigrationObservation {
  const t = (ms: number) => o.t0 + ms;
  return {
    version: 1,
    id: 'synthetic',
    config: { mode: 'live', downtimeLimitMs: 300, maxTimeMs: 60_000, probeIntervalMs: o.intervalMs, linkRateBps: null },
    tCmdMs: t(o.at.cmd),
    tEndMs: t(o.at.end),
    events: [
      { side: 'src', event: 'STOP', timestampMs: t(o.at.stop), receivedAtMs: t(o.at.stop), data: {} },
      { side: 'src', event: 'MIGRATION', timestampMs: t(o.at.completed), receivedAtMs: t(o.at.completed), data: { status: 'completed' } },
      { side: 'dst', event: 'RESUME', timestampMs: t(o.at.resume), receivedAtMs: t(o.at.resume), data: {} },
    ],
    queries: [{ tMs: t(o.at.end), answer: o.answer }],
    probe: probeWindow(o.probe, t(o.at.cmd)),
    ...(o.probePending ? { probePending: o.probePending } : {}),
    control: emptyControlFacts(),
  };
}
