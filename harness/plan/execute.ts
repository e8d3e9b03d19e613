import { errorMessage } from '../util/errors.ts';
import { Interrupted } from '../util/signals.ts';
import type { PlanAction, PlanGraph } from './graph.ts';
import { PlanProgress, type Skip } from './progress.ts';

/**
 * Carries out a plan: starts each action as soon as its predecessors ended
 * ok and the plan's limits allow, through a callback that does the real
 * work (a migration, a power action). Records actual start/end times. A
 * failed action takes only its dependants with it; the rest continue.
 */

export type ActionResult = { ok: true } | { ok: false; reason: string };

export interface ActionRecord {
  action: PlanAction;
  status: 'ok' | 'failed' | 'skipped';
  /** Epoch ms (from opts.now); null when skipped. */
  start: number | null;
  end: number | null;
  reason?: string;
}

export type PlanEvent =
  | { type: 'start'; action: PlanAction; t: number }
  | { type: 'end'; action: PlanAction; t: number; ok: boolean; reason?: string }
  | { type: 'skip'; action: PlanAction; reason: string };

export interface PlanRun {
  /** In the graph's priority order. */
  records: ActionRecord[];
  /** First action start, last action end (epoch ms); null when nothing ran. */
  start: number | null;
  end: number | null;
  /** Completion time of the plan: first start -> last end. */
  completionMs: number | null;
  /** Every action ended ok. */
  ok: boolean;
}

export interface ExecuteOptions {
  now?: () => number;
  onEvent?: (e: PlanEvent) => void;
  /** Aborting starts nothing more: pending actions are skipped, running ones are awaited. */
  signal?: AbortSignal;
}

export type RunAction = (action: PlanAction, signal: AbortSignal) => Promise<ActionResult>;

export async function executePlan(graph: PlanGraph, runAction: RunAction, opts: ExecuteOptions = {}): Promise<PlanRun> {
  const now = opts.now ?? Date.now;
  const progress = new PlanProgress(graph);
  const abort = new AbortController();
  const times = new Map<string, { start: number; end?: number }>();
  const inflight = new Map<string, Promise<void>>();
  let listenerError: unknown = null;
  let interruptedBy: Interrupted | null = null;

  const emit = (e: PlanEvent) => {
    try {
      opts.onEvent?.(e);
    } catch (err) {
      // a broken listener must not leave migrations unawaited; reported at the end
      listenerError ??= err;
    }
  };
  const emitSkips = (skips: Skip[]) => skips.forEach((s) => emit({ type: 'skip', ...s }));
  const stop = (reason: string) => {
    if (!abort.signal.aborted) abort.abort(new Error(reason));
    emitSkips(progress.skipPending(reason));
  };
  const onOuterAbort = () => stop('plan aborted');
  opts.signal?.addEventListener('abort', onOuterAbort, { once: true });
  if (opts.signal?.aborted) onOuterAbort();

  const launch = (a: PlanAction, t: number) => {
    times.set(a.id, { start: t });
    emit({ type: 'start', action: a, t });
    const done = Promise.resolve()
      .then(() => runAction(a, abort.signal))
      .then(
        (r): ActionResult =>
          r && typeof r.ok === 'boolean' ? r : { ok: false, reason: `the action returned ${JSON.stringify(r)} instead of a result` },
        (e: unknown): ActionResult => {
          if (e instanceof Interrupted) interruptedBy ??= e;
          return { ok: false, reason: errorMessage(e) };
        },
      )
      .then((r) => {
        const t1 = now();
        times.get(a.id)!.end = t1;
        const reason = r.ok ? undefined : r.reason;
        const skips = progress.finish(a.id, r.ok, reason);
        emit({ type: 'end', action: a, t: t1, ok: r.ok, ...(reason !== undefined ? { reason } : {}) });
        emitSkips(skips);
        inflight.delete(a.id);
        if (interruptedBy) stop(interruptedBy.message);
        pump();
      });
    inflight.set(a.id, done);
  };

  const pump = () => {
    if (abort.signal.aborted) return;
    for (const unit of progress.startable()) {
      progress.start(unit);
      const t = now(); // one instant for a sync unit
      for (const a of unit) launch(a, t);
    }
  };

  try {
    pump();
    while (inflight.size) await Promise.race(inflight.values());
  } finally {
    opts.signal?.removeEventListener('abort', onOuterAbort);
  }
  if (!progress.finished()) throw new Error('plan executor stalled with pending actions (a bug: the graph was validated)');

  const records: ActionRecord[] = graph.actions.map((action) => {
    const s = progress.statusOf(action.id) as ActionRecord['status'];
    const tm = times.get(action.id);
    const reason = progress.reasons.get(action.id);
    return { action, status: s, start: tm?.start ?? null, end: tm?.end ?? null, ...(reason !== undefined ? { reason } : {}) };
  });
  const ran = records.filter((r) => r.start !== null);
  const start = ran.length ? Math.min(...ran.map((r) => r.start!)) : null;
  const end = ran.length ? Math.max(...ran.map((r) => r.end!)) : null;
  if (interruptedBy) throw interruptedBy;
  if (listenerError) throw listenerError;
  return {
    records,
    start,
    end,
    completionMs: start !== null && end !== null ? end - start : null,
    ok: records.every((r) => r.status === 'ok'),
  };
}
