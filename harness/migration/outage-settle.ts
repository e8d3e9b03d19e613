import type { ProbeRecord } from '../native/programs.ts';

/**
 * When a migration's probe outcome is settled, and what the probes still
 * pending then are. Pure: the control code (migrate.ts via ProbeStream.settle)
 * records the pending seqs in the observation, derive.ts reads them.
 *
 * Why the wait can end at the first reply after RESUME (plus a short grace)
 * instead of at mb-probe's 1 s timeout for the probes lost in the downtime:
 * the probe path is FIFO (client -> bridge -> tap -> guest and back, one
 * socket, one stdout pipe). A probe sent before the first answered one after
 * RESUME was either queued at the destination (answered at resume, so before
 * that reply), answered by the source before it stopped, or sent to the
 * stopped source (never answered). So once that reply is read, every earlier
 * probe without a record is lost; its timeout record only confirms it 1 s
 * later. The grace covers records already in the pipe behind it.
 */

/** How long after the first reply after RESUME the outcome is taken as settled: a few probe intervals, at least 20 ms. */
export function settleGraceMs(intervalMs: number): number {
  return Math.max(20, 2 * intervalMs);
}

/** Seqs below `beforeSeq`, from `fromSeq` on, without a record in `seen` (sorted). */
export function pendingSeqs(fromSeq: number, beforeSeq: number, seen: (seq: number) => boolean): number[] {
  const out: number[] = [];
  for (let s = Math.max(0, fromSeq); s < beforeSeq; s++) if (!seen(s)) out.push(s);
  return out;
}

/**
 * The records with each pending seq (no outcome when the outcome was settled) as a lost probe. A record that
 * arrived for it since wins (a timeout: the same outcome; a reply would contradict the FIFO assumption and is
 * reported by ProbeStream, but taken as it is here). Pending seqs outside the records' seq range are not the
 * records' concern and are left out. The send time of an inferred record is interpolated by seq between its
 * nearest recorded neighbours: the outage's duration depends only on the answered probes around it, so it is the
 * same whether the timeouts arrived before or after the settle point; its ± uses the send times of the first and
 * last lost probe, which equal the recorded ones when the probe sent on schedule.
 */
export function withPendingLost(records: readonly ProbeRecord[], pending: readonly number[] | null | undefined): ProbeRecord[] {
  if (!pending?.length || records.length === 0) return [...records];
  const sorted = [...records].sort((a, b) => a.seq - b.seq);
  const have = new Set(sorted.map((r) => r.seq));
  const [min, max] = [sorted[0].seq, sorted[sorted.length - 1].seq];
  const missing = pending.filter((s) => s > min && s < max && !have.has(s)).sort((a, b) => a - b);
  const out = [...records];
  let j = 0;
  for (const s of missing) {
    while (sorted[j].seq < s) j++;
    const lo = sorted[j - 1];
    const hi = sorted[j];
    out.push({ seq: s, sentUs: Math.round(lo.sentUs + ((hi.sentUs - lo.sentUs) * (s - lo.seq)) / (hi.seq - lo.seq)), recvUs: null });
  }
  return out;
}
