import { afterEach, describe, expect, it, vi } from 'vitest';
import { Interrupted } from '../util/signals.ts';
import { scheduleViolations } from './check.ts';
import { executePlan, type ActionResult, type PlanEvent, type PlanRun, type RunAction } from './execute.ts';
import { buildPlanGraph, type PlanAction, type PlanGraph, type PlanMove } from './graph.ts';
import { PlanSpec, type PlanSpecInput } from './schema.ts';
import { fixedDurations, simulate } from './simulate.ts';

const moves: PlanMove[] = [];
for (let s = 1; s <= 3; s++) for (let v = 1; v <= 3; v++) moves.push({ vm: `v${s}${v}`, from: `s${s}`, to: `d${((s + v) % 3) + 1}` });
const duration = (a: PlanAction) => (a.kind === 'migrate' ? 1000 + 137 * (Number(a.vm.slice(1)) % 7) : a.kind === 'power-on' ? 700 : 300);
const graphOf = (plan: PlanSpecInput, m: PlanMove[] = moves) => buildPlanGraph(m, PlanSpec.parse(plan));
const timed = (r: PlanRun) => r.records.map((x) => ({ id: x.action.id, start: x.start, end: x.end }));

/** An action that takes `duration` on the (fake) clock, then returns `result`. */
const timedAction =
  (result: (a: PlanAction) => ActionResult = () => ({ ok: true })): RunAction =>
  (a) =>
    new Promise((resolve) => setTimeout(() => resolve(result(a)), duration(a)));

async function runFake(graph: PlanGraph, action: RunAction, onEvent?: (e: PlanEvent) => void): Promise<PlanRun> {
  const p = executePlan(graph, action, { onEvent });
  await vi.runAllTimersAsync();
  return p;
}

describe('executePlan', () => {
  afterEach(() => {
    vi.useRealTimers();
  });

  it.each<PlanSpecInput>([
    { kind: 'sequential', boot: true, shutdown: true },
    { kind: 'parallel', boot: true },
    { kind: 'capped', k: 3, after: [{ vm: 'v11', after: 'v33' }] },
    { kind: 'per_server', k: 2, shutdown: true, sync: [['v12', 'v22']] },
    {
      kind: 'groups',
      groups: [
        ['v11', 'v21', 'v31'],
        ['v12', 'v22', 'v32'],
        ['v13', 'v23', 'v33'],
      ],
      boot: true,
      shutdown: true,
    },
  ])('on a fake clock records the times the simulator predicts: %j', async (plan) => {
    vi.useFakeTimers({ now: 1_700_000_000_000 });
    const graph = graphOf(plan);
    const run = await runFake(graph, timedAction());
    expect(run.ok).toBe(true);
    expect(scheduleViolations(graph, timed(run))).toEqual([]);
    const sim = simulate(graph, fixedDurations(duration));
    for (const [i, rec] of run.records.entries()) {
      expect(rec.start! - run.start!, rec.action.id).toBe(sim.items[i].start);
      expect(rec.end! - run.start!, rec.action.id).toBe(sim.items[i].end);
    }
    expect(run.start).toBe(1_700_000_000_000);
    expect(run.completionMs).toBe(sim.completionMs);
  });

  it('a failed migration skips its dependants, with reasons, and the rest continues', async () => {
    vi.useFakeTimers({ now: 0 });
    const graph = graphOf({ kind: 'per_server', k: 1, shutdown: true, after: [{ vm: 'v22', after: 'v11' }], sync: [['v22', 'v32']] });
    const events: PlanEvent[] = [];
    const run = await runFake(
      graph,
      timedAction((a) => (a.id === 'migrate:v11' ? { ok: false, reason: 'migration did not converge' } : { ok: true })),
      (e) => events.push(e),
    );
    const rec = (id: string) => run.records.find((r) => r.action.id === id)!;
    expect(rec('migrate:v11')).toMatchObject({ status: 'failed', reason: 'migration did not converge' });
    expect(rec('migrate:v22')).toMatchObject({ status: 'skipped', start: null, reason: "waits for 'migrate v11 s1 -> d3', which failed" });
    expect(rec('migrate:v32')).toMatchObject({
      status: 'skipped',
      reason: "starts together with 'migrate v22 s2 -> d2', which was skipped",
    });
    expect(rec('power-off:s1')).toMatchObject({ status: 'skipped', reason: "waits for 'migrate v11 s1 -> d3', which failed" });
    expect(rec('power-off:s2').status).toBe('skipped');
    expect(rec('power-off:s3').status).toBe('skipped');
    const okIds = run.records.filter((r) => r.status === 'ok').map((r) => r.action.id);
    expect(okIds).toEqual(['migrate:v12', 'migrate:v13', 'migrate:v21', 'migrate:v23', 'migrate:v31', 'migrate:v33']);
    expect(run.ok).toBe(false);
    expect(scheduleViolations(graph, timed(run))).toEqual([]);
    expect(
      events
        .filter((e) => e.type === 'skip')
        .map((e) => e.action.id)
        .sort(),
    ).toEqual(['migrate:v22', 'migrate:v32', 'power-off:s1', 'power-off:s2', 'power-off:s3']);
    // every start is announced before its end, and skipped actions never start
    const started = events.filter((e) => e.type === 'start').map((e) => e.action.id);
    expect(started).not.toContain('migrate:v22');
    expect(started).toHaveLength(7);
  });

  it('a thrown error fails the action with its message', async () => {
    const graph = graphOf({ kind: 'parallel', shutdown: true }, moves.slice(0, 2));
    const run = await executePlan(graph, async (a) => {
      if (a.id === 'migrate:v12') throw new Error('QMP connection closed');
      return { ok: true };
    });
    expect(run.records.map((r) => [r.action.id, r.status, r.reason])).toEqual([
      ['migrate:v11', 'ok', undefined],
      ['migrate:v12', 'failed', 'QMP connection closed'],
      ['power-off:s1', 'skipped', "waits for 'migrate v12 s1 -> d1', which failed"],
    ]);
  });

  it('abort starts nothing more, awaits what runs and passes the signal on', async () => {
    const graph = graphOf({ kind: 'sequential' });
    const outer = new AbortController();
    let seen: AbortSignal | null = null;
    const run = await executePlan(
      graph,
      (a, signal) => {
        seen = signal;
        if (a.order === 0) {
          // cancellation reaches the running action, which ends as failed
          const ended = new Promise<ActionResult>((resolve) =>
            signal.addEventListener('abort', () => resolve({ ok: false, reason: 'cancelled' })),
          );
          outer.abort();
          return ended;
        }
        return Promise.resolve({ ok: true });
      },
      { signal: outer.signal },
    );
    expect(seen!.aborted).toBe(true);
    expect(run.records[0]).toMatchObject({ status: 'failed', reason: 'cancelled' });
    expect(run.records.slice(1).every((r) => r.status === 'skipped' && r.reason === 'plan aborted' && r.start === null)).toBe(true);
  });

  it('an interrupt ends the plan: nothing more starts, running actions are awaited, Interrupted is rethrown', async () => {
    const graph = graphOf({ kind: 'capped', k: 2 });
    let otherEnded = false;
    const p = executePlan(graph, async (a) => {
      if (a.order === 0) throw new Interrupted('SIGINT');
      await new Promise((r) => setImmediate(r));
      otherEnded = true;
      return { ok: true };
    });
    await expect(p).rejects.toBeInstanceOf(Interrupted);
    expect(otherEnded).toBe(true);
  });

  it('with real async callbacks of random length never breaks a rule', async () => {
    let seed = 7;
    const rnd = () => (seed = (seed * 1103515245 + 12345) % 2 ** 31) / 2 ** 31;
    for (const plan of [
      { kind: 'capped', k: 2, boot: true, shutdown: true, sync: [['v11', 'v23']] },
      { kind: 'per_server', k: 1, dst_k: 2, after: [{ vm: 'v13', after: 'v31' }] },
    ] as PlanSpecInput[]) {
      const graph = graphOf(plan);
      let t = 0;
      let running = 0;
      let maxRunning = 0;
      // a logical clock that ticks at each call: orders events strictly, no sleeping
      const run = await executePlan(
        graph,
        async () => {
          maxRunning = Math.max(maxRunning, ++running);
          for (let i = Math.floor(rnd() * 20); i > 0; i--) await new Promise((r) => setImmediate(r));
          running--;
          return { ok: true };
        },
        { now: () => ++t },
      );
      expect(run.ok).toBe(true);
      expect(scheduleViolations(graph, timed(run))).toEqual([]);
      expect(maxRunning).toBeGreaterThan(1);
    }
  });
});
