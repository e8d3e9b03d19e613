/**
 * state.json: campaign progress. The unit of work is one repetition of one
 * treatment; see harness/experiment/campaign-state.ts for the transitions.
 */
import { z } from 'zod';

export const UNIT_STATUSES = ['pending', 'running', 'done', 'failed'] as const;
export type UnitStatus = (typeof UNIT_STATUSES)[number];

export const UnitStateSchema = z.looseObject({
  treatment: z.string(),
  rep: z.number().int().nonnegative(),
  status: z.enum(UNIT_STATUSES),
  /** Attempts started so far (an interrupted or failed attempt counts). */
  attempts: z.number().int().nonnegative(),
  reason: z.string().optional(),
  started_at: z.string().optional(),
  ended_at: z.string().optional(),
  /** Wall time of the last attempt, for the ETA. */
  duration_ms: z.number().optional(),
});

export const CampaignStateSchema = z.looseObject({
  version: z.literal(1),
  units: z.array(UnitStateSchema),
  /**
   * Attempts cut off by a crash: their samples (tagged treatment, rep,
   * attempt) and migration records (marked partial) are not observations.
   */
  interrupted: z.array(z.object({ treatment: z.string(), rep: z.number(), attempt: z.number(), detected_at: z.string() })).optional(),
});

export type UnitState = z.output<typeof UnitStateSchema>;
export type CampaignState = z.output<typeof CampaignStateSchema>;
