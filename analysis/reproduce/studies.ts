/**
 * The five seed studies `migbench reproduce` knows: their specs under
 * experiments/<study>/, what `--quick` reduces (factor levels, repetitions),
 * whether the evaluator needs client samples, and the evaluator itself.
 */
import { evaluateIffland, IFFLAND_SPECS } from './iffland.ts';
import { evaluateMaintenancePlans, MAINTENANCE_SPECS } from './maintenance-plans.ts';
import { evaluateMvm, MVM_SPECS } from './mvm.ts';
import { evaluateSalfner, SALFNER_SPECS } from './salfner.ts';
import { evaluateTruong, TRUONG_SPECS } from './truong.ts';
import type { Evaluator } from './common.ts';

export interface StudySpec {
  /** File under experiments/<study>/. */
  file: string;
  /** The spec's `name`: how its run directory is found again. */
  name: string;
  /** What --quick replaces: whole factors (path -> levels) and the repetitions. */
  quick: { factors?: Record<string, unknown[]>; repetitions?: number };
}

export interface Study {
  name: string;
  seed: string;
  title: string;
  specs: StudySpec[];
  /** Load the `workload` client samples (op probes) for the evaluator. */
  samples: boolean;
  evaluate: Evaluator;
  /** Wall time here (2 cores, TCG, guests restored from a saved state), min: measured 2026-12-01, one run each (experiments/README.md). */
  minutes: { full: number; quick: number };
}

export const STUDIES: readonly Study[] = [
  {
    name: 'maintenance-plans',
    seed: '000',
    title: 'Kherbache et al., migration plans for server maintenance (sequential / parallel / k-by-k per server)',
    specs: [{ file: 'plans.yaml', name: MAINTENANCE_SPECS.plans, quick: { repetitions: 1 } }],
    samples: false,
    evaluate: evaluateMaintenancePlans,
    minutes: { full: 6.5, quick: 3 },
  },
  {
    name: 'mvm',
    seed: '001',
    title: 'Kherbache et al., mVM: duration vs bandwidth under stress, capped parallelism vs sequential',
    specs: [
      {
        file: 'stress-bandwidth.yaml',
        name: MVM_SPECS.bandwidth,
        // both stress sizes (the 10K vs 70K finding), both ends of the bandwidth range, one repetition; max_time 40 s still
        // exceeds what 1/bandwidth predicts at 25 Mbit/s (~27 s), so a non-converging migration is a bound that decides
        quick: {
          factors: {
            'vms[0].workload.vm_bytes': ['10KiB', '70KiB'],
            'testbed.shaping[0].rate': ['25mbit', '100mbit'],
            'migration.max_time': ['40s'],
          },
          repetitions: 1,
        },
      },
      {
        file: 'scheduler.yaml',
        name: MVM_SPECS.scheduler,
        // as the full spec (128 MiB guests, 50 Mbit/s migration links), one repetition. Tried and dropped: smaller guests
        // (96 MiB is the least that boots, and there the 16 MiB working set is OOM-killed) and doubled rates (4 TCG guests
        // migrating at 100 Mbit/s starved the probes: 4.9 % probe loss outside migrations, a 1.2 s downtime disagreement)
        quick: { factors: { 'migration.plan': [{ kind: 'sequential' }, { kind: 'capped', k: 2 }, { kind: 'parallel' }] }, repetitions: 1 },
      },
    ],
    samples: false,
    evaluate: evaluateMvm,
    minutes: { full: 16.3, quick: 4.6 },
  },
  {
    name: 'salfner',
    seed: '002',
    title: 'Salfner et al., downtime and migration time over WSET x RATE; LOAD and FILL without effect',
    specs: [
      {
        file: 'wset-rate.yaml',
        name: SALFNER_SPECS.grid,
        quick: { factors: { 'vms[0].workload.wset': ['8MiB', '40MiB'], 'vms[0].workload.bpc': [0, 16] }, repetitions: 3 },
      },
      {
        file: 'load-fill.yaml',
        name: SALFNER_SPECS.loadFill,
        quick: {
          // FILL 100 % at this WSET/RATE comes from the grid's cell (the smaller WSET: shorter migrations)
          factors: {
            'vms[0].workload': [
              { kind: 'idle' },
              { kind: 'cpu', util: '100%', warmup: '2s' },
              { kind: 'dirty', wset: '8MiB', period: '10ms', bpc: 16, fill: '10%', warmup: '2s' },
            ],
          },
          repetitions: 4,
        },
      },
    ],
    samples: false,
    evaluate: evaluateSalfner,
    minutes: { full: 10.2, quick: 4.5 },
  },
  {
    name: 'truong',
    seed: '003',
    title: 'Truong et al., service response times before / during / after migration under memory pressure with swap',
    specs: [{ file: 'mempressure.yaml', name: TRUONG_SPECS.mem, quick: { repetitions: 2 } }],
    samples: true,
    evaluate: evaluateTruong,
    minutes: { full: 2.7, quick: 1.9 },
  },
  {
    name: 'iffland',
    seed: '004',
    title: 'Iffländer et al., migration phases over bandwidth, latency and drop rate; live vs block migration',
    specs: [
      {
        file: 'bandwidth.yaml',
        name: IFFLAND_SPECS.bandwidth,
        // the full study's two lower bandwidths, the smaller guest
        quick: { factors: { 'testbed.shaping[0].rate': ['100mbit', '50mbit'], 'vms[0].memory': ['128MiB'] }, repetitions: 2 },
      },
      { file: 'latency.yaml', name: IFFLAND_SPECS.latency, quick: { factors: { 'testbed.shaping[0].delay': ['100ms'] }, repetitions: 2 } },
      {
        file: 'drop.yaml',
        name: IFFLAND_SPECS.drop,
        quick: { factors: { 'testbed.shaping[0].loss': ['1%', '5%'], 'vms[0].memory': ['128MiB'] }, repetitions: 2 },
      },
      {
        // live vs block at the top bandwidth only: 2 cold boots (a VM with a disk) + 4 migrations of ~10 s
        file: 'block.yaml',
        name: IFFLAND_SPECS.block,
        quick: { factors: { 'testbed.shaping[0].rate': ['100mbit'] }, repetitions: 2 },
      },
    ],
    samples: false,
    evaluate: evaluateIffland,
    minutes: { full: 9, quick: 3.7 },
  },
];

export function findStudy(name: string): Study | undefined {
  return STUDIES.find((s) => s.name === name);
}
