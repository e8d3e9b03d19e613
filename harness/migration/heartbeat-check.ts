import type { VmProcess } from '../hypervisor/qemu.ts';
import { WORKLOAD_HEARTBEAT } from '../workloads/guest-reports.ts';

/** How long a moved guest's console has to show a workload report (they come once a second). */
export const HEARTBEAT_TIMEOUT_MS = 10_000;

/**
 * After a move, the check that the guest's workload runs on its new host:
 * one report line on the destination's console. It settles in the
 * background, so the next migration can start from the destination at once
 * (waiting here cost ~0.5 s per migration, half the once-a-second report
 * period). If that next migration ends this console before a report came
 * (a move shorter than the report period), the guest's next console decides:
 * the workload printing after both moves was alive after the first.
 */
export class HeartbeatCheck {
  /** Resolves with the verdict (null: the guest has no workload to check). */
  readonly verdict: Promise<boolean | null>;
  private next: Promise<boolean> | null = null;

  constructor(console: Pick<VmProcess, 'waitForSerial'>, hasWorkload: boolean, timeoutMs = HEARTBEAT_TIMEOUT_MS) {
    if (!hasWorkload) {
      this.verdict = Promise.resolve(null);
      return;
    }
    const own = heartbeatOn(console, timeoutMs);
    this.verdict = own.then((ok) => (ok || !this.next ? ok : this.next));
  }

  /** The guest moved on: the check on its next console, in case this one ends first. Set before ending this console. */
  movedOn(next: HeartbeatCheck): void {
    this.next = next.verdict.then((v) => v === true);
  }
}

/** A workload report on a console, any since it started (false: none within the timeout, or the console ended). */
function heartbeatOn(console: Pick<VmProcess, 'waitForSerial'>, timeoutMs: number): Promise<boolean> {
  return console.waitForSerial(WORKLOAD_HEARTBEAT, timeoutMs, { since: 0 }).then(
    () => true,
    () => false,
  );
}
