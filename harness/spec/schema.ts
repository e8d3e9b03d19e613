import { z } from 'zod';
import { parseDuration, parsePercent, parseRate, parseSize } from './units.ts';
import { PlanSpec } from '../plan/schema.ts';

/**
 * The experiment spec schema. Quantities stay strings here (what the user
 * wrote, recorded verbatim in the manifest); they are checked with the same
 * parsers that later convert them. Every object is strict: an unknown key is
 * an error, because a typo silently ignored is a wrong experiment.
 */

function quantity(parse: (s: string) => number | null, expected: string) {
  return z
    .string({ error: `expected ${expected}` })
    .refine((s) => parse(s) !== null, { message: `expected ${expected}` });
}

export const Rate = quantity(parseRate, 'a positive rate like 100mbit, 1gbit or 20mbit/s');
export const Duration = quantity(parseDuration, 'a duration like 10ms, 1.5s or 2m');
export const Size = quantity(parseSize, 'a size like 128MiB, 64M or 1GiB');
export const Percent = quantity(parsePercent, 'a percentage like 5% (0% to 100%)');

const NAME = /^[a-z0-9][a-z0-9-]{0,11}$/;
const name = (what: string) =>
  z.string({ error: `expected a ${what} name` }).regex(NAME, {
    message: `expected a ${what} name of 1-12 characters from a-z, 0-9 and '-', starting with a letter or digit`,
  });

/** Shaping applied to a link, in each direction: one-way delay, so RTT grows by 2 x delay. */
export const LinkConstraint = z.strictObject({
  rate: Rate.optional(),
  delay: Duration.optional(),
  jitter: Duration.optional(),
  loss: Percent.optional(),
});

export const Rack = z.strictObject({
  name: name('rack'),
  /** A count (hosts named <rack>-h1..hN) or explicit host names. */
  hosts: z.union([z.number().int().min(1).max(99), z.array(name('host')).min(1)], {
    error: 'expected a host count (1-99) or a list of host names',
  }),
  host_nic: LinkConstraint.optional(),
});

export const ShapingRule = LinkConstraint.extend({
  /** A link name: '<host>' (data NIC), '<host>/mig', '<rack>/up', '<rack>/up/mig', 'client'. */
  link: z.string({ error: 'expected a link name' }),
});

export const TestbedSpec = z.strictObject({
  driver: z.enum(['local', 'ssh'], { error: "expected 'local' or 'ssh'" }).default('local'),
  /** Short id used in namespace names; defaults to the experiment name. */
  id: name('testbed id').optional(),
  inventory: z.string().optional(),
  racks: z.array(Rack).min(1, { message: 'expected at least one rack' }),
  aggregation: LinkConstraint.optional(),
  migration_network: z.enum(['dedicated', 'shared'], { error: "expected 'dedicated' or 'shared'" }).default('dedicated'),
  shaping: z.array(ShapingRule).default([]),
  client: z.boolean().default(true),
});

/** In-guest dirty-page tracing of the workload's processes (mb-trace, soft-dirty bits): the D(t) curve. */
const TraceSpec = z.strictObject({
  windows: z.array(Duration).min(1).default(['10ms', '20ms', '50ms', '100ms', '200ms', '500ms', '1s', '2s', '5s', '10s']),
  reps: z.number().int().min(1).max(100).default(1),
  /** Wait this long after the workload runs before tracing (default: the workload's warmup). */
  delay: Duration.optional(),
});
/** Fields every running workload has: how long to let it settle, and optional tracing. */
const workloadCommon = {
  /** Time between MB-WORKLOAD-RUNNING and the first measurement. */
  warmup: Duration.default('0s'),
  trace: TraceSpec.optional(),
};
const DirtyWorkload = z.strictObject({
  kind: z.literal('dirty'),
  wset: Size,
  period: Duration.default('10ms'),
  bpc: z.number().int().min(0),
  fill: Percent.default('100%'),
  hot: Size.optional(),
  /** Time to rewrite the whole hot set once. */
  hot_period: Duration.optional(),
  mlock: z.boolean().default(false),
  ...workloadCommon,
});
/** Salfner's CPU LOAD (burnP6 under cpulimit): busy threads at a duty cycle. */
const CpuWorkload = z.strictObject({
  kind: z.literal('cpu'),
  util: Percent.default('100%'),
  /** Busy threads; default: one per vCPU. */
  threads: z.number().int().min(1).max(64).optional(),
  slice: Duration.default('10ms'),
  ...workloadCommon,
});
/** mVM's `stress --vm N --vm-bytes K` (e.g. 1000 x 10KiB, 1000 x 70KiB). */
const StressWorkload = z.strictObject({
  kind: z.literal('stress'),
  vm: z.number().int().min(1).max(4096),
  vm_bytes: Size,
  vm_stride: z.number().int().min(1).default(4096),
  vm_hang: Duration.optional(),
  vm_keep: z.boolean().default(false),
  ...workloadCommon,
});
/** Truong's memory pressure: hold a share of guest RAM with swapping active (zram swap in the guest). */
const MemPressureWorkload = z.strictObject({
  kind: z.literal('mempressure'),
  percent: Percent,
  /** Pages rewritten per second, sweeping the held memory. */
  rate: z.number().int().min(0).default(2000),
  /** zram swap device size. */
  swap: Size.default('64MiB'),
  ...workloadCommon,
});
const IdleWorkload = z.strictObject({ kind: z.literal('idle') });
export const Workload = z.discriminatedUnion('kind', [DirtyWorkload, CpuWorkload, StressWorkload, MemPressureWorkload, IdleWorkload], {
  error: "expected a workload with kind 'dirty', 'cpu', 'stress', 'mempressure' or 'idle'",
});

/** Load generators and probes run in the client namespace against a VM's web service. */
const HttperfClient = z.strictObject({
  kind: z.literal('httperf'),
  /** Requests per second (Kherbache et al.: 100 and 200). */
  rate: z.number().positive(),
  /** httperf runs in consecutive windows of this length: one sample per window. */
  window: Duration.default('1s'),
  uri: z.string().regex(/^\/[A-Za-z0-9/._?=&-]*$/, { message: 'expected a URI path like /index.html' }).default('/index.html'),
  timeout: Duration.default('2s'),
});
/** Periodic requests for one service operation (Truong et al.), one response-time sample each. */
const OpProbeClient = z.strictObject({
  kind: z.literal('probe'),
  op: z.enum(['page', 'search', 'write', 'write20m', 'cpu', 'echo'], { error: "expected op 'page', 'search', 'write', 'write20m', 'cpu' or 'echo'" }),
  interval: Duration.default('1s'),
  timeout: Duration.default('10s'),
});
/** Requests at a fixed rate from a Node client, one response-time sample per request. */
const RateClient = z.strictObject({
  kind: z.literal('rate'),
  rate: z.number().positive().max(2000),
  uri: z.string().regex(/^\/[A-Za-z0-9/._?=&-]*$/, { message: 'expected a URI path like /index.html' }).default('/index.html'),
  timeout: Duration.default('2s'),
});
export const ClientSpec = z.discriminatedUnion('kind', [HttperfClient, OpProbeClient, RateClient], {
  error: "expected a client with kind 'httperf', 'probe' or 'rate'",
});

export const VmSpec = z.strictObject({
  name: name('vm'),
  host: z.string({ error: 'expected a host name' }),
  memory: Size.default('128MiB'),
  vcpus: z.number().int().min(1).max(8).default(1),
  workload: Workload.default({ kind: 'idle' }),
  httpd: z.boolean().default(true),
  /** Clients against this VM's httpd, run from the client namespace for the whole treatment. */
  clients: z.array(ClientSpec).default([]),
});

export const Move = z.strictObject({ vm: z.string(), to: z.string() });

export const MigrationSpec = z.strictObject({
  mode: z.enum(['live', 'postcopy']).default('live'),
  downtime_limit: Duration.default('300ms'),
  max_bandwidth: Rate.optional(),
  max_time: Duration.default('120s'),
  postcopy_after: z.strictObject({ passes: z.number().int().min(1).optional(), time: Duration.optional() }).optional(),
  capabilities: z
    .strictObject({
      auto_converge: z.boolean().default(false),
      multifd: z.boolean().default(false),
      xbzrle: z.boolean().default(false),
    })
    .default({ auto_converge: false, multifd: false, xbzrle: false }),
  plan: PlanSpec.default({ kind: 'sequential', after: [], sync: [], boot: false, shutdown: false }),
  moves: z.array(Move).min(1, { message: 'expected at least one move' }),
  /** ping-pong: the guest is kept and migrated back and forth, one migration per repetition. */
  repeat: z.enum(['ping-pong']).default('ping-pong'),
  /** Quiet time before each repetition, so clients see the guest before and after every migration. */
  pause: Duration.default('2s'),
});

export const MeasureSpec = z.strictObject({
  probe_interval: Duration.default('10ms'),
  progress_interval: Duration.default('100ms'),
  /** Power via IPMI at `interval`; on the local testbed each host gets an ipmi_sim BMC fed by this model. */
  power: z
    .strictObject({
      interval: Duration.default('1s'),
      idle_w: z.number().min(0).optional(),
      cpu_w_per_core: z.number().min(0).optional(),
      nic_w_per_mbit: z.number().min(0).optional(),
      boot: Duration.optional(),
      shutdown: Duration.optional(),
    })
    .optional(),
});

export const ExperimentSpec = z.strictObject({
  name: z.string({ error: 'expected an experiment name' }).regex(/^[a-z0-9][a-z0-9-]{0,31}$/, {
    message: "expected a name of 1-32 characters from a-z, 0-9 and '-'",
  }),
  description: z.string().optional(),
  testbed: TestbedSpec,
  vms: z.array(VmSpec).default([]),
  migration: MigrationSpec.optional(),
  measure: MeasureSpec.default({ probe_interval: '10ms', progress_interval: '100ms' }),
  factors: z.record(z.string(), z.array(z.unknown()).min(1)).default({}),
  repetitions: z.number().int().min(1).default(1),
  order: z
    .strictObject({ kind: z.enum(['sequential', 'random']).default('sequential'), seed: z.number().int().optional() })
    .default({ kind: 'sequential' }),
  compare: z
    .strictObject({
      threshold: z.number().min(0).optional(),
      alpha: z.number().gt(0).lt(1).optional(),
      metrics: z.array(z.string()).optional(),
    })
    .optional(),
});

export type LinkConstraintSpec = z.infer<typeof LinkConstraint>;
export type TestbedSpecT = z.infer<typeof TestbedSpec>;
export type VmSpecT = z.infer<typeof VmSpec>;
export type WorkloadSpec = z.infer<typeof Workload>;
export type ClientSpecT = z.infer<typeof ClientSpec>;
export type MigrationSpecT = z.infer<typeof MigrationSpec>;
export type Spec = z.infer<typeof ExperimentSpec>;
