/**
 * Physics and sanity checks on a migration record. Each check compares
 * independent measurements with each other or with a physical bound; a
 * record that fails one is kept (it is data) but carries a flag with the
 * reason, so a misdeclared link, a broken clock or a probe that lost
 * packets on its own cannot pass silently into a paper.
 */

export type FlagCode =
  | 'faster_than_link'
  | 'downtime_disagrees'
  | 'reported_above_event'
  | 'probe_loss_outside'
  | 'not_engaged'
  | 'clock_offset'
  | 'energy_coverage';

export interface Flag {
  code: FlagCode;
  reason: string;
}

/** What the checks read; every field may be missing (older records, failed migrations). */
export interface FlagInput {
  status: string;
  total_ms?: number | null;
  transferred_bytes?: number | null;
  link_rate_mbit?: number | null;
  downtime_reported_ms?: number | null;
  downtime_event_ms?: number | null;
  downtime_observed_ms?: number | null;
  probe_interval_ms?: number | null;
  /** ± of the observed downtime from the probe's send times; when larger than the interval (a late probe) it is the resolution. */
  downtime_observed_uncertainty_ms?: number | null;
  energy_j?: number | null;
  energy_coverage?: number | null;
  /** Uncertainty of the source/destination clock offset (ssh driver: two hosts' clocks). */
  clock_uncertainty_ms?: number | null;
  /** Features asked for in the spec, and whether the hypervisor showed each engaging (null: no evidence either way). */
  engaged?: Record<string, boolean | null>;
  /** The record's requested features with their evidence (features.ts); each engaged:false is flagged like `engaged`. */
  features?: Record<string, unknown> | null;
  /** When post-copy was switched on (null/absent: it never was). */
  t_postcopy?: string | null;
  /** Probe replies lost while no migration ran (the probe's own loss), over the probes sent then. */
  probe_outside?: { lost: number; sent: number } | null;
}

export interface FlagSettings {
  /**
   * Slack on the link bound: QEMU counts payload bytes, the link carries
   * headers too, so a real migration is always slower than bytes / rate;
   * 2 % covers rounding of rates and timer granularity, not more.
   */
  linkSlack: number;
  /**
   * Agreement of observed and event downtime: this plus the observed downtime's uncertainty (one probe interval on
   * schedule). The observed outage also holds the network's switch to the destination after RESUME (the guest's
   * announce, the bridge relearning), which STOP->RESUME does not: 1 ms probes here, 28 migrations: observed - event
   * -0.26..+3.97 ms. 5 ms keeps that clear of the flag; a real disagreement (a clock, a lost reply) is tens of ms.
   */
  downtimeSlackMs: number;
  /** QEMU's figure may exceed the event figure by timer noise only. */
  reportedSlackMs: number;
  /** Share of probes the probe may lose outside migrations before its downtime is suspect. */
  maxProbeLossOutside: number;
  /** An energy figure needs power readings over this share of the migration. */
  minEnergyCoverage: number;
}

export const DEFAULT_FLAG_SETTINGS: Readonly<FlagSettings> = Object.freeze({
  linkSlack: 0.02,
  downtimeSlackMs: 5,
  reportedSlackMs: 1,
  maxProbeLossOutside: 0.001,
  minEnergyCoverage: 0.8,
});

const num = (v: number | null | undefined): v is number => typeof v === 'number' && Number.isFinite(v);
const f1 = (v: number) => v.toFixed(1);

export function flagRecord(r: FlagInput, s: Readonly<FlagSettings> = DEFAULT_FLAG_SETTINGS): Flag[] {
  const flags: Flag[] = [];
  // only completed migrations: a cut-off one counts bytes still in socket buffers as transferred
  if (
    r.status === 'completed' &&
    num(r.total_ms) &&
    num(r.transferred_bytes) &&
    num(r.link_rate_mbit) &&
    r.link_rate_mbit > 0 &&
    r.transferred_bytes > 0
  ) {
    const boundMs = ((r.transferred_bytes * 8) / (r.link_rate_mbit * 1e6)) * 1000;
    if (r.total_ms < boundMs * (1 - s.linkSlack)) {
      flags.push({
        code: 'faster_than_link',
        reason:
          `${f1(r.transferred_bytes / 2 ** 20)} MiB in ${f1(r.total_ms)} ms is ${f1((r.transferred_bytes * 8) / (r.total_ms * 1e3))} Mbit/s, ` +
          `more than the declared link rate of ${r.link_rate_mbit} Mbit/s (needs >= ${f1(boundMs)} ms): is the link rate in the spec right?`,
      });
    }
  }
  // after a post-copy switch the guest runs on the destination while pages still arrive: clients see
  // a longer outage than STOP->RESUME, which is the post-copy blackout, not a measurement disagreement
  if (r.status === 'completed' && !r.t_postcopy && num(r.downtime_observed_ms) && num(r.downtime_event_ms)) {
    const interval = num(r.probe_interval_ms) ? r.probe_interval_ms : 0;
    const resolution = Math.max(interval, num(r.downtime_observed_uncertainty_ms) ? r.downtime_observed_uncertainty_ms : 0);
    const tol = s.downtimeSlackMs + resolution;
    const d = r.downtime_observed_ms - r.downtime_event_ms;
    if (Math.abs(d) > tol) {
      flags.push({
        code: 'downtime_disagrees',
        reason: `observed downtime ${f1(r.downtime_observed_ms)} ms and STOP->RESUME ${f1(r.downtime_event_ms)} ms differ by ${f1(Math.abs(d))} ms, more than the resolution (${f1(tol)} ms)`,
      });
    }
  }
  if (
    r.status === 'completed' &&
    num(r.downtime_reported_ms) &&
    num(r.downtime_event_ms) &&
    r.downtime_reported_ms > r.downtime_event_ms + s.reportedSlackMs
  ) {
    flags.push({
      code: 'reported_above_event',
      reason: `the hypervisor reports ${f1(r.downtime_reported_ms)} ms of downtime, more than the ${f1(r.downtime_event_ms)} ms between its own STOP and RESUME events`,
    });
  }
  if (r.probe_outside && r.probe_outside.sent > 0 && r.probe_outside.lost / r.probe_outside.sent > s.maxProbeLossOutside) {
    const pct = (100 * r.probe_outside.lost) / r.probe_outside.sent;
    flags.push({
      code: 'probe_loss_outside',
      reason: `the probe lost ${r.probe_outside.lost} of ${r.probe_outside.sent} probes (${pct.toFixed(2)} %) while no migration ran: its outages are not all downtime`,
    });
  }
  const engaged: Record<string, boolean | null> = { ...r.engaged };
  for (const [feature, ev] of Object.entries(r.features ?? {})) {
    const e = ev as { requested?: unknown; engaged?: unknown } | null | undefined;
    if (e && typeof e === 'object' && e.requested !== false) engaged[feature] = typeof e.engaged === 'boolean' ? e.engaged : null;
  }
  for (const [feature, on] of Object.entries(engaged)) {
    if (on === false && r.status === 'completed') {
      flags.push({ code: 'not_engaged', reason: `${feature} was requested but the hypervisor never showed it engaging` });
    }
  }
  if (num(r.clock_uncertainty_ms) && num(r.probe_interval_ms) && r.clock_uncertainty_ms > r.probe_interval_ms) {
    flags.push({
      code: 'clock_offset',
      reason: `source and destination clocks agree only to ±${f1(r.clock_uncertainty_ms)} ms, coarser than the downtime resolution (${f1(r.probe_interval_ms)} ms)`,
    });
  }
  if (num(r.energy_j) && num(r.energy_coverage) && r.energy_coverage < s.minEnergyCoverage) {
    flags.push({
      code: 'energy_coverage',
      reason: `power readings cover ${(100 * r.energy_coverage).toFixed(0)} % of the migration (< ${(100 * s.minEnergyCoverage).toFixed(0)} %): its energy is not trustworthy`,
    });
  }
  return flags;
}
