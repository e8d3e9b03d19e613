import { describe, expect, it } from 'vitest';
import { join } from 'node:path';
import { migbench, ROOT } from '../../test/support/cli.ts';
import { writeParams } from './params.ts';
import { buildPlanGraph, type PlanMove } from '../../harness/plan/graph.ts';
import { PlanSpec } from '../../harness/plan/schema.ts';
import { parseSpecText } from '../../harness/spec/load.ts';
import { UserError } from '../../harness/util/errors.ts';
import { advise, candidatePlans, forecastPlan, maxMinShares, pickPlan, type AdviseInput, type AdviseVm } from './advise.ts';
import { adviseInputFromSpec } from './advise-spec.ts';
import { adviceTable } from './advise-table.ts';
import type { ParamsT } from './params.ts';
import { testScratchDir } from '../../test/support/scratch.ts';

const IDLE = { HPs: 0, HPd: 0, CPr: 0 };
const plan = (raw: object) => PlanSpec.parse(raw);

/**
 * Synthetic testbed: two sources (a1, a2) and two destinations (b1, b2),
 * host NICs 1 MiB/s, an interlink of 2 MiB/s. vm1, vm2 on a1; vm3, vm4 on
 * a2; per-server k=1 pairs (vm1 + vm3, then vm2 + vm4) go to different
 * destinations.
 */
const MOVES: PlanMove[] = [
  { vm: 'vm1', from: 'a1', to: 'b1' },
  { vm: 'vm2', from: 'a1', to: 'b2' },
  { vm: 'vm3', from: 'a2', to: 'b2' },
  { vm: 'vm4', from: 'a2', to: 'b1' },
];
const CAP: Record<string, number> = { 'a1 up': 1, 'a2 up': 1, 'inter up': 2, 'b1 down': 1, 'b2 down': 1 };

function input(over: Partial<AdviseInput> = {}, vm: Partial<AdviseVm> = {}): AdviseInput {
  return {
    moves: MOVES,
    vms: new Map(MOVES.map((m) => [m.vm, { workload: 'w', hc: IDLE, muMiB: 10, muSource: 'measured' as const, ...vm }])),
    resources: (from, to) => [`${from} up`, 'inter up', `${to} down`],
    capacityMiBps: (r) => CAP[r],
    downtimeLimitS: 0.3,
    maxTimeS: 120,
    maxBandwidthMiBps: null,
    syncS: 0,
    setupS: 0,
    overheadS: 0,
    energy: { alpha: 1, beta: 10 },
    bootS: 30,
    shutdownS: 10,
    ...over,
  };
}

const forecast = (kind: object, inp = input()) => forecastPlan(buildPlanGraph(inp.moves, plan(kind)), inp);

describe('max-min fair shares', () => {
  it('splits a shared link equally and gives what a flow cannot use to the others', () => {
    const cap = (r: string) => ({ l: 10, slow: 2, other: 100 })[r]!;
    expect(maxMinShares([['l'], ['l']], cap)).toEqual([5, 5]);
    // the second flow is held to 2 by its own link: the first gets the rest of l
    expect(maxMinShares([['l'], ['l', 'slow'], ['other']], cap)).toEqual([8, 2, 100]);
  });
});

describe('plan forecasts on synthetic parameters (known answers)', () => {
  it('an idle guest: each migration takes mu / share; sequential, parallel, capped and per-server k', () => {
    const seq = forecast({ kind: 'sequential' });
    expect(seq.completionS).toBeCloseTo(40, 6);
    expect(seq.meanMigrationS).toBeCloseTo(10, 6);
    // four at once: each source NIC shared 2 ways (and the interlink 4 ways): 0.5 MiB/s each
    const par = forecast({ kind: 'parallel' });
    expect(par.completionS).toBeCloseTo(20, 6);
    expect(par.meanMigrationS).toBeCloseTo(20, 6);
    expect(par.peakConcurrent).toBe(4);
    expect(par.bottleneck?.sharedBy).toBe(2);
    // one per source, to different destinations: full NIC rate, two rounds
    const ps = forecast({ kind: 'per_server', k: 1 });
    expect(ps.completionS).toBeCloseTo(20, 6);
    expect(ps.meanMigrationS).toBeCloseTo(10, 6);
    // capped 2 in spec order starts vm1 and vm2, both from a1: they share its NIC
    const c2 = forecast({ kind: 'capped', k: 2 });
    expect(c2.completionS).toBeCloseTo(40, 6);
    expect(c2.meanMigrationS).toBeCloseTo(20, 6);
    // capped 3: vm1, vm2 share a1; vm3 shares b2 with vm2 (0.5 each, max-min); vm4 follows alone at 20 s
    const c3 = forecast({ kind: 'capped', k: 3 });
    expect(c3.migrations.map((m) => [m.vm, m.startS, m.endS])).toEqual([
      ['vm1', 0, 20],
      ['vm2', 0, 20],
      ['vm3', 0, 20],
      ['vm4', 20, 30],
    ]);
    expect(c3.meanMigrationS).toBeCloseTo(17.5, 6);
    // energy: 4 x (alpha * 10 MiB in MB + beta)
    expect(seq.energyJ).toBeCloseTo(4 * (10 * 1.048576 + 10), 6);
    expect(seq.transferredMB).toBeCloseTo(40 * 1.048576, 6);
  });

  it('a migration speeds up when a neighbour ends (progress at 1 / d(current share))', () => {
    const inp = input({ moves: MOVES.slice(0, 2) });
    inp.vms.get('vm2')!.muMiB = 20;
    const par = forecast({ kind: 'parallel' }, inp);
    const [a, b] = par.migrations;
    // both at 0.5 MiB/s until vm1 (10 MiB) ends at 20 s; vm2 has 10 MiB left at 1 MiB/s
    expect(a.endS).toBeCloseTo(20, 6);
    expect(b.endS).toBeCloseTo(30, 6);
    expect(b.transferredMiB).toBeCloseTo(20, 6);
    expect(b.meanBwMiBps).toBeCloseTo(20 / 30, 6);
  });

  it('adds the harness overhead per action and the QEMU setup to each migration', () => {
    const seq = forecast({ kind: 'sequential' }, input({ overheadS: 1, setupS: 0.5 }));
    expect(seq.completionS).toBeCloseTo(4 * 11.5, 6);
    expect(seq.meanMigrationS).toBeCloseTo(10.5, 6);
  });

  it('a hot set that converges alone but not at half the bandwidth: parallel never converges', () => {
    // 8 MiB rewritten every 0.5 s, a 0.2 s sync floor: alone at 40 MiB/s pending falls under bw x D = 12 MiB,
    // shared by two (20 MiB/s) it stays near 6.8 MiB > 6 MiB
    const hot = { HPs: 8, HPd: 0.5, CPr: 0 };
    const moves = [
      { vm: 'vm1', from: 'a1', to: 'b1' },
      { vm: 'vm2', from: 'a1', to: 'b1' },
    ];
    const inp = input({ moves, capacityMiBps: () => 40, maxTimeS: 60, syncS: 0.2 }, { hc: hot, muMiB: 40 });
    const par = forecast({ kind: 'parallel' }, inp);
    expect(par.cancelled).toBe(2);
    expect(par.completionS).toBeCloseTo(60, 6);
    expect(par.migrations.every((m) => !m.converges)).toBe(true);
    const seq = forecast({ kind: 'sequential' }, inp);
    expect(seq.cancelled).toBe(0);
    expect(seq.completionS).toBeLessThan(10);
    const a = advise(inp, plan({ kind: 'sequential' }));
    expect(a.pick).toBe('sequential');
    expect(a.why).toMatch(/parallel would leave migrations unconverged/);
  });
});

describe('candidates and the pick', () => {
  it('compares sequential, parallel, capped 2..n-1 and per-server 1..(busiest source - 1), plus the spec plan', () => {
    const labels = (ps: ReturnType<typeof candidatePlans>) =>
      ps.map((p) => `${p.kind}${p.k ?? ''}${p.dst_k !== undefined ? `/${p.dst_k}` : ''}`);
    expect(labels(candidatePlans(MOVES, plan({ kind: 'sequential' })))).toEqual([
      'sequential',
      'parallel',
      'capped2',
      'capped3',
      'per_server1',
    ]);
    // one source: per-server k is capped k
    const one = MOVES.map((m) => ({ ...m, from: 'a1' }));
    expect(labels(candidatePlans(one, plan({ kind: 'per_server', k: 2, dst_k: 1 })))).toEqual([
      'sequential',
      'parallel',
      'capped2',
      'capped3',
      'per_server2/1',
    ]);
  });

  it('picks the soonest plan, and among plans finishing together the one with the shortest migrations', () => {
    const a = advise(input(), plan({ kind: 'sequential' }));
    expect(a.plans.map((p) => p.label)).toEqual(['sequential', 'parallel', 'capped k=2', 'capped k=3', 'per_server k=1']);
    expect(a.pick).toBe('per_server k=1');
    expect(a.why).toMatch(/^Pick per_server k=1: predicted to finish in 20\.0 s; 50 % sooner than sequential \(40\.0 s\)/);
    expect(a.why).toMatch(/parallel finishes about as soon \(20\.0 s\) but its migrations take 20\.0 s on average instead of 10\.0 s/);
    const t = adviceTable(a);
    expect(t.rows.find((r) => r[0] === 'per_server k=1')!.at(-1)).toBe('pick');
    expect(t.caption).toBe(a.why);
  });

  it('says so when running migrations at once gains nothing', () => {
    // everything crosses one 1 MiB/s link
    const a = advise(input({ capacityMiBps: () => 1, resources: () => ['one'] }), plan({ kind: 'sequential' }));
    expect(a.pick).toBe('sequential');
    expect(a.why).toMatch(
      /parallel finishes about as soon \(40\.0 s\) but its migrations take 40\.0 s on average instead of 10\.0 s \(one shared 4 ways\)/,
    );
    // dirty pages: sharing the link also makes the plan longer
    const dirty = advise(
      input({ capacityMiBps: () => 1, resources: () => ['one'] }, { hc: { HPs: 0, HPd: 0, CPr: 0.05 } }),
      plan({ kind: 'sequential' }),
    );
    expect(dirty.pick).toBe('sequential');
    expect(dirty.why).toMatch(/running them at once gains nothing \(they share one\) and parallel migrations take/);
    expect(pickPlan([]).pick).toBeNull();
  });

  it('a plan the moves cannot satisfy is listed as impossible, not dropped', () => {
    const a = advise(input(), plan({ kind: 'parallel', sync: [['vm1', 'vm2', 'vm3']] }));
    const c2 = a.plans.find((p) => p.label === 'capped k=2')!;
    expect(c2.error).toMatch(/do not fit a 'capped' plan with k = 2/);
    expect(a.pick).not.toBe('capped k=2');
  });
});

describe('advisor inputs from a spec', () => {
  const SPEC = `
name: adv
testbed:
  racks:
    - {name: r1, hosts: 2, host_nic: {rate: 50mbit}}
    - {name: r2, hosts: 1, host_nic: {rate: 50mbit}}
  shaping: [{link: r1/up/mig, rate: 40mbit}]
vms:
  - {name: vm1, host: r1-h1, memory: 96MiB, workload: {kind: dirty, wset: 8MiB, period: 10ms, bpc: 1}}
  - {name: vm2, host: r1-h2, memory: 96MiB}
migration:
  downtime_limit: 200ms
  max_time: 90s
  moves: [{vm: vm1, to: r2-h1}, {vm: vm2, to: r2-h1}]
`;
  const params = (hotcold: ParamsT['hotcold']): ParamsT => ({
    migbench_params: 1,
    created_at: '2026-11-30T00:00:00Z',
    goodput: 0.95,
    sync_s: 0.02,
    setup_s: 0.01,
    action_overhead_s: 2,
    hotcold,
    energy: [],
    sources: [],
  });
  const hc = (workload: string, mu: number | null) => ({
    ...{ workload, HPs: 0.5, HPd: 1, CPr: 0.2, HPr: 0.5, r2: 1, n: 3 },
    method: 'durations' as const,
    mu_mib: mu,
  });

  it('takes paths, rates with goodput, limits and memory in use from the spec and params', () => {
    const { spec } = parseSpecText(SPEC, 'adv.yaml');
    const p = params([hc('dirty wset=8MiB period=10ms bpc=1 fill=100%', 70), hc('idle', null)]);
    const { input: inp, notes } = adviseInputFromSpec(spec, p, { unshapedRateBps: 1e9, bootS: 30, shutdownS: 10 });
    expect(inp.resources('r1-h1', 'r2-h1')).toEqual(['r1-h1/mig up', 'r1/up/mig up', 'r2/up/mig down', 'r2-h1/mig down']);
    expect(inp.capacityMiBps('r1/up/mig up')).toBeCloseTo((40e6 * 0.95) / 8 / 2 ** 20, 9);
    expect(inp.capacityMiBps('r1-h1/mig up')).toBeCloseTo((50e6 * 0.95) / 8 / 2 ** 20, 9);
    expect([inp.downtimeLimitS, inp.maxTimeS, inp.setupS, inp.overheadS]).toEqual([0.2, 90, 0.01, 2]);
    expect(inp.vms.get('vm1')!.muMiB).toBe(70);
    expect(inp.vms.get('vm2')).toMatchObject({ muMiB: 96, muSource: 'configured' });
    expect(notes.join('\n')).toMatch(/vm2: no measured memory in use/);
    expect(notes.join('\n')).toMatch(/r2\/up\/mig\) are taken at 1000 Mbit\/s/);
    expect(notes.join('\n')).toMatch(/no energy calibration/);
  });

  it('refuses a workload without calibrated parameters, naming the vm and what the params have', () => {
    const { spec } = parseSpecText(SPEC, 'adv.yaml');
    const run = () =>
      adviseInputFromSpec(spec, params([hc('idle', 60)]), { unshapedRateBps: 1e9, bootS: 30, shutdownS: 10, file: 'adv.yaml' });
    expect(run).toThrow(UserError);
    expect(run).toThrow(/adv\.yaml: vms\[0\]\.workload: no calibrated parameters for workload 'dirty wset=8MiB .*' .*it has: 'idle'/);
  });
});

describe('migbench plan advise', () => {
  it(
    'prints the advice for a spec as JSON, and refuses a workload the params do not know (exit 2, one line)',
    { timeout: 60_000 },
    async () => {
      const dir = testScratchDir('mb-advise-');
      const p = join(dir, 'params.json');
      const workload = 'dirty wset=8MiB period=10ms bpc=1 fill=100%';
      writeParams(p, {
        migbench_params: 1,
        created_at: '2026-11-30T00:00:00Z',
        goodput: 0.956,
        sync_s: 0.02,
        setup_s: 0,
        action_overhead_s: 2,
        hotcold: [{ workload, HPs: 0, HPd: 0, CPr: 0, HPr: 0, r2: 1, n: 3, method: 'curve', mu_mib: 60 }],
        energy: [{ group: 'all', alpha: 1, beta: 10, alpha_ci: { low: 0.9, high: 1.1 }, beta_ci: { low: 5, high: 15 }, r2: 1, n: 6 }],
        sources: [],
      });
      const r = await migbench(['plan', 'advise', `${ROOT}test/e2e/specs/advise-plans.yaml`, '--params', p, '--json']);
      expect(r.exitCode, String(r.stderr)).toBe(0);
      const out = JSON.parse(String(r.stdout));
      expect(out.plans.map((x: { label: string }) => x.label)).toEqual(['sequential', 'parallel', 'capped k=2', 'per_server k=1']);
      // idle guests, 60 MiB each at 50 Mbit/s x 0.956 = 5.70 MiB/s, plus 2 s around each migration
      const seq = out.plans[0];
      expect(seq.completion_s).toBeCloseTo(3 * (60 / ((50e6 * 0.956) / 8 / 2 ** 20) + 2), 6);
      expect(out.pick).toBe('parallel');
      const text = await migbench(['plan', 'advise', `${ROOT}test/e2e/specs/advise-plans.yaml`, '--params', p]);
      expect(String(text.stdout)).toMatch(/\| per_server k=1 \| .* \|\s*\|$/m);
      const bad = await migbench(['plan', 'advise', `${ROOT}test/e2e/specs/plans.yaml`, '--params', p]);
      expect(bad.exitCode).toBe(2);
      expect(String(bad.stderr).trim().split('\n')).toHaveLength(1);
      expect(String(bad.stderr)).toMatch(/vms\[0\]\.workload: no calibrated parameters for workload 'idle'/);
    },
  );
});
