import { existsSync, readFileSync } from 'node:fs';
import { join } from 'node:path';
import { CampaignStateSchema, issueText, type CampaignState, type UnitState, type UnitStatus } from '../store/schema/index.ts';
import { UserError } from '../util/errors.ts';
import type { Treatment } from './treatments.ts';

/**
 * Campaign progress in state.json. The unit of work is one repetition of one
 * treatment (all its moves, executed by the plan). A unit is marked
 * 'running' before it starts and 'done' after its records are on disk, both
 * written atomically, so after a crash every unit is either done (kept) or
 * not (redone, its partial records marked).
 */
export type { CampaignState, UnitState, UnitStatus } from '../store/schema/state.ts';

export function initialState(treatments: readonly Treatment[], repetitions: number): CampaignState {
  return {
    version: 1,
    units: treatments.flatMap((t) =>
      Array.from({ length: repetitions }, (_, rep) => ({ treatment: t.id, rep, status: 'pending' as const, attempts: 0 })),
    ),
  };
}

export function readState(runDir: string): CampaignState | null {
  const p = join(runDir, 'state.json');
  if (!existsSync(p)) return null;
  let raw: unknown;
  try {
    raw = JSON.parse(readFileSync(p, 'utf8'));
  } catch (e) {
    throw new UserError(`${p}: not valid JSON (${(e as Error).message}); the campaign state is damaged, cannot resume`);
  }
  const r = CampaignStateSchema.safeParse(raw);
  if (!r.success) throw new UserError(`${p}: ${issueText(r.error)}; the campaign state is damaged, cannot resume`);
  return r.data;
}

/** Units whose attempt was cut off (harness killed, machine crashed): redo them. */
export function interruptedUnits(s: CampaignState): UnitState[] {
  return s.units.filter((u) => u.status === 'running');
}

/** Prepares a resumed campaign: interrupted units become pending; failed ones too when asked. */
export function prepareResume(s: CampaignState, retryFailed: boolean): { interrupted: UnitState[]; retried: UnitState[] } {
  const interrupted = interruptedUnits(s);
  for (const u of interrupted) {
    u.status = 'pending';
    u.reason = `attempt ${u.attempts} interrupted`;
  }
  const retried = retryFailed ? s.units.filter((u) => u.status === 'failed') : [];
  for (const u of retried) u.status = 'pending';
  return { interrupted, retried };
}

export function counts(s: CampaignState): Record<UnitStatus, number> {
  const c: Record<UnitStatus, number> = { pending: 0, running: 0, done: 0, failed: 0 };
  for (const u of s.units) c[u.status]++;
  return c;
}
