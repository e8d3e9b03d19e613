/** How a guest came up for a treatment: restored from a saved booted guest, or cold-booted (and why). */
import { z } from 'zod';
import { nullableNumber, nullableString } from './fields.ts';

export const GUEST_START_MODES = ['restored', 'cold'] as const;

export const GuestStartSchema = z.looseObject({
  mode: z.enum(GUEST_START_MODES),
  /** Saved guest the guest was restored from (its content-addressed id); null for a cold boot. */
  from: nullableString(),
  /** Why the guest was cold-booted (spec, driver, a disk, a failed restore); null when restored. */
  reason: nullableString(),
  /** Harness clock: asking the driver to start the guest -> its MB-READY line. */
  ready_ms: nullableNumber(),
  /** Making the saved guest first (boot + save), inside ready_ms; null when it was in the cache (or a cold boot). */
  made_ms: nullableNumber(),
});

export type GuestStartRecord = z.output<typeof GuestStartSchema>;
/** What the driver knows of a guest start (the harness adds ready_ms). */
export type GuestBoot = Pick<GuestStartRecord, 'mode' | 'from' | 'reason' | 'made_ms'>;
