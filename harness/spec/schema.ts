import { z } from 'zod';
import { MAX_HOSTS_PER_RACK, MAX_RACKS, MAX_VMS, RESERVED_HOST_NAMES } from './names.ts';
import { Duration as Dur, parseDuration, parsePercent, parseRate, parseSize, Percent as Pct, Rate as Rt, Size as Sz } from './units.ts';
import { PlanSpec } from '../plan/schema.ts';

/**
 * The experiment spec schema. Quantities are written as strings ('100mbit',
 * '300ms', '128MiB') and resolved here, once, into numbers with units
 * (harness/spec/units.ts: Duration.ms, Size.bytes, Rate.bps, Percent.pct)
 * that still print as what the user wrote. Every bound that can be checked
 * without the testbed is checked here. Every object is strict: an unknown
 * key is an error, because a typo silently ignored is a wrong experiment.
 */

interface Bounds {
  /** Smallest value allowed (inclusive), in the base unit. */
  min: number;
  max: number;
  /** How a bound is shown in a message, e.g. '16MiB'. */
  show: (v: number) => string;
}

function quantity<Q>(parse: (s: string) => number | null, make: (text: string, v: number) => Q, expected: string, b: Bounds) {
  return z.string({ error: `expected ${expected}` }).transform((s, ctx): Q => {
    const v = parse(s);
    if (v === null || !Number.isFinite(v)) {
      ctx.addIssue({ code: 'custom', message: `expected ${expected}` });
      return z.NEVER;
    }
    if (v < b.min || v > b.max) {
      ctx.addIssue({ code: 'custom', message: `expected ${b.show(b.min)} to ${b.show(b.max)}, got '${s}'` });
      return z.NEVER;
    }
    return make(s, v);
  });
}

const MiB = 2 ** 20;
const showMs = (ms: number) => (ms >= 3_600_000 ? `${ms / 3_600_000}h` : ms >= 1000 ? `${ms / 1000}s` : `${ms}ms`);
const showBytes = (n: number) =>
  n >= 2 ** 40
    ? `${n / 2 ** 40}TiB`
    : n >= 2 ** 30
      ? `${n / 2 ** 30}GiB`
      : n >= MiB
        ? `${n / MiB}MiB`
        : n >= 1024
          ? `${n / 1024}KiB`
          : `${n}B`;
const showBps = (n: number) => (n >= 1e9 ? `${n / 1e9}gbit` : n >= 1e6 ? `${n / 1e6}mbit` : `${n / 1e3}kbit`);

const HOUR = 3_600_000;
/** Durations above a day are typos (a unit off), not experiments. */
const DAY = 24 * HOUR;
const duration = (min: number, max: number) =>
  quantity(parseDuration, (t, v) => new Dur(t, v), 'a duration like 10ms, 1.5s or 2m', { min, max, show: showMs });
const size = (min: number, max: number) =>
  quantity(parseSize, (t, v) => new Sz(t, v), 'a size like 128MiB, 64M or 1GiB', { min, max, show: showBytes });

/** Link and migration rates: 1 kbit/s (tc's granularity) to 100 Gbit/s. */
export const Rate = quantity(parseRate, (t, v) => new Rt(t, v), 'a positive rate like 100mbit, 1gbit or 20mbit/s', {
  min: 1e3,
  max: 100e9,
  show: showBps,
});
/** A time span that may be zero (warm-up, pause, delay): 0 to a day. */
export const Duration = duration(0, DAY);
/** Intervals, periods, timeouts, limits: something that repeats or must elapse, so at least 1 ms. */
export const Interval = duration(1, DAY);
/** One-way link delay or jitter: netem holds every packet that long, so at most a minute. */
export const LinkDelay = duration(0, 60_000);
/** A size of data in a guest: 1 byte to 1 TiB. */
export const Size = size(1, 2 ** 40);
/** VM memory: a guest kernel needs 16 MiB; more than 1 TiB is no VM of this testbed. */
export const Memory = size(16 * MiB, 2 ** 40);
const percent = (min: number, max: number) =>
  quantity(parsePercent, (t, v) => new Pct(t, v), 'a percentage like 5% (0% to 100%)', { min, max, show: (v) => `${v}%` });
export const Percent = percent(0, 100);

const NAME = /^[a-z0-9][a-z0-9-]{0,11}$/;
const name = (what: string) =>
  z.string({ error: `expected a ${what} name` }).regex(NAME, {
    message: `expected a ${what} name of 1-12 characters from a-z, 0-9 and '-', starting with a letter or digit`,
  });
/** Host names become namespace names mb-<id>-<host>, next to the testbed's own -sw and -client. */
const hostName = name('host').refine((h) => !RESERVED_HOST_NAMES.includes(h), {
  message: `expected a host name other than ${RESERVED_HOST_NAMES.map((n) => `'${n}'`).join(' and ')} (the testbed's own namespaces)`,
});

/** Shaping applied to a link, in each direction: one-way delay, so RTT grows by 2 x delay. */
export const LinkConstraint = z.strictObject({
  rate: Rate.optional(),
  delay: LinkDelay.optional(),
  jitter: LinkDelay.optional(),
  loss: Percent.optional(),
});

export const Rack = z.strictObject({
  name: name('rack'),
  /** A count (hosts named <rack>-h1..hN) or explicit host names; at most 99 either way (addresses <net>.<rack>.1-99). */
  hosts: z.union([z.number().int().min(1).max(MAX_HOSTS_PER_RACK), z.array(hostName).min(1).max(MAX_HOSTS_PER_RACK)], {
    error: `expected a host count (1-${MAX_HOSTS_PER_RACK}) or a list of 1-${MAX_HOSTS_PER_RACK} host names`,
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
  /** driver ssh: a YAML inventory file (relative to the spec), or an OAR node file with per-host settings from a template. */
  inventory: z
    .union([z.string().min(1), z.looseObject({ oar_nodefile: z.string().min(1) })], {
      error: 'expected an inventory file path or {oar_nodefile: $OAR_NODEFILE, ...}',
    })
    .optional(),
  /** Rack r's hosts are <net>.r.x: racks stop below the guests' subnets (10.231.100.x). */
  racks: z
    .array(Rack)
    .min(1, { message: 'expected at least one rack' })
    .max(MAX_RACKS, { message: `expected at most ${MAX_RACKS} racks (rack addresses end below the guests' 10.231.100.0/24)` }),
  aggregation: LinkConstraint.optional(),
  migration_network: z.enum(['dedicated', 'shared'], { error: "expected 'dedicated' or 'shared'" }).default('dedicated'),
  shaping: z.array(ShapingRule).default([]),
  client: z.boolean().default(true),
});

/** In-guest dirty-page tracing of the workload's processes (mb-trace, soft-dirty bits): the D(t) curve. */
const TraceSpec = z.strictObject({
  windows: z.array(Interval).min(1).max(100).prefault(['10ms', '20ms', '50ms', '100ms', '200ms', '500ms', '1s', '2s', '5s', '10s']),
  reps: z.number().int().min(1).max(100).default(1),
  /** Wait this long after the workload runs before tracing (default: the workload's warmup). */
  delay: Duration.optional(),
});
/** Fields every running workload has: how long to let it settle, and optional tracing. */
const workloadCommon = {
  /** Time between MB-WORKLOAD-RUNNING and the first measurement. */
  warmup: Duration.prefault('0s'),
  trace: TraceSpec.optional(),
};
const DirtyWorkload = z.strictObject({
  kind: z.literal('dirty'),
  wset: Size,
  period: Interval.prefault('10ms'),
  bpc: z.number().int().min(0).max(1_000_000),
  fill: Percent.prefault('100%'),
  hot: Size.optional(),
  /** Time to rewrite the whole hot set once. */
  hot_period: Interval.optional(),
  mlock: z.boolean().default(false),
  ...workloadCommon,
});
/** Salfner's CPU LOAD (burnP6 under cpulimit): busy threads at a duty cycle. */
const CpuWorkload = z.strictObject({
  kind: z.literal('cpu'),
  /** The guest program takes whole percent, at least 1. */
  util: percent(1, 100).prefault('100%'),
  /** Busy threads; default: one per vCPU. */
  threads: z.number().int().min(1).max(64).optional(),
  slice: Interval.prefault('10ms'),
  ...workloadCommon,
});
/** mVM's `stress --vm N --vm-bytes K` (e.g. 1000 x 10KiB, 1000 x 70KiB). */
const StressWorkload = z.strictObject({
  kind: z.literal('stress'),
  vm: z.number().int().min(1).max(4096),
  vm_bytes: Size,
  vm_stride: z
    .number()
    .int()
    .min(1)
    .max(2 ** 30)
    .default(4096),
  vm_hang: Duration.optional(),
  vm_keep: z.boolean().default(false),
  ...workloadCommon,
});
/** Truong's memory pressure: hold a share of guest RAM with swapping active (zram swap in the guest). */
const MemPressureWorkload = z.strictObject({
  kind: z.literal('mempressure'),
  /** Whole percent 1..99 in the guest program: 100 % would leave the guest nothing. */
  percent: percent(1, 99),
  /** Pages rewritten per second, sweeping the held memory. */
  rate: z.number().int().min(0).max(10_000_000).default(2000),
  /** zram swap device size. */
  swap: Size.prefault('64MiB'),
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
  rate: z.number().positive().max(1_000_000),
  /** httperf runs in consecutive windows of this length: one sample per window. */
  window: Interval.prefault('1s'),
  uri: z
    .string()
    .regex(/^\/[A-Za-z0-9/._?=&-]*$/, { message: 'expected a URI path like /index.html' })
    .default('/index.html'),
  timeout: Interval.prefault('2s'),
});
/** Periodic requests for one service operation (Truong et al.), one response-time sample each. */
const OpProbeClient = z.strictObject({
  kind: z.literal('probe'),
  op: z.enum(['page', 'search', 'write', 'write20m', 'cpu', 'echo'], {
    error: "expected op 'page', 'search', 'write', 'write20m', 'cpu' or 'echo'",
  }),
  interval: Interval.prefault('1s'),
  timeout: Interval.prefault('10s'),
});
/** Requests at a fixed rate from a Node client, one response-time sample per request. */
const RateClient = z.strictObject({
  kind: z.literal('rate'),
  rate: z.number().positive().max(2000),
  uri: z
    .string()
    .regex(/^\/[A-Za-z0-9/._?=&-]*$/, { message: 'expected a URI path like /index.html' })
    .default('/index.html'),
  timeout: Interval.prefault('2s'),
});
export const ClientSpec = z.discriminatedUnion('kind', [HttperfClient, OpProbeClient, RateClient], {
  error: "expected a client with kind 'httperf', 'probe' or 'rate'",
});

/**
 * A virtio disk (the guest sees /dev/vda). `storage: local`: an image per host side, copied by
 * `migration.mode: block`; `shared`: one image both hosts open (live migration moves RAM only).
 */
export const DiskSpec = z.strictObject({
  size: size(MiB, 2 ** 40),
  format: z.enum(['raw', 'qcow2'], { error: "expected format 'raw' or 'qcow2'" }).default('qcow2'),
  storage: z.enum(['local', 'shared'], { error: "expected storage 'local' or 'shared'" }).default('local'),
});

export const VmSpec = z.strictObject({
  name: name('vm'),
  host: z.string({ error: 'expected a host name' }),
  memory: Memory.prefault('128MiB'),
  vcpus: z.number().int().min(1).max(8).default(1),
  workload: Workload.default({ kind: 'idle' }),
  httpd: z.boolean().default(true),
  /** Clients against this VM's httpd, run from the client namespace for the whole treatment. */
  clients: z.array(ClientSpec).default([]),
  disk: DiskSpec.optional(),
  /** auto: the local driver restores a saved booted guest of this image and size (ready in ~1 s); cold: always boot. */
  boot: z.enum(['auto', 'cold'], { error: "expected boot 'auto' or 'cold'" }).optional(),
});

export const Move = z.strictObject({ vm: z.string(), to: z.string() });

export const MigrationSpec = z.strictObject({
  /** block: pre-copy of RAM after the disks (`vms[].disk`, storage local) were mirrored to the destination over NBD. */
  mode: z.enum(['live', 'postcopy', 'block'], { error: "expected mode 'live', 'postcopy' or 'block'" }).default('live'),
  /** QEMU takes 0..2000 s; 0 would never converge. */
  downtime_limit: duration(1, 2_000_000).prefault('300ms'),
  max_bandwidth: Rate.optional(),
  max_time: Interval.prefault('120s'),
  postcopy_after: z.strictObject({ passes: z.number().int().min(1).optional(), time: Duration.optional() }).optional(),
  capabilities: z
    .strictObject({
      auto_converge: z.boolean().default(false),
      multifd: z.boolean().default(false),
      xbzrle: z.boolean().default(false),
    })
    .default({ auto_converge: false, multifd: false, xbzrle: false }),
  /** QEMU's multifd-channels (its default 2); used with capabilities.multifd. */
  multifd_channels: z.number().int().min(1).max(64).optional(),
  /** QEMU's xbzrle-cache-size (its default 64MiB); used with capabilities.xbzrle. */
  xbzrle_cache: size(4096, 2 ** 40).optional(),
  /** QEMU's cpu-throttle-initial / -increment (its defaults 20% / 10%); used with capabilities.auto_converge. */
  throttle: z.strictObject({ initial: percent(1, 99).optional(), increment: percent(1, 99).optional() }).optional(),
  plan: PlanSpec.default({ kind: 'sequential', after: [], sync: [], boot: false, shutdown: false }),
  moves: z.array(Move).min(1, { message: 'expected at least one move' }).max(MAX_VMS),
  /** ping-pong: the guest is kept and migrated back and forth, one migration per repetition. */
  repeat: z.enum(['ping-pong']).default('ping-pong'),
  /** Quiet time before each repetition, so clients see the guest before and after every migration. */
  pause: Duration.prefault('2s'),
});

export const MeasureSpec = z.strictObject({
  /**
   * Period of the downtime probe, 1 ms (1000 Hz, ± 1 ms downtime) at the finest. Each probed VM's probe costs
   * ~2 % of a core at 10 ms and ~11 % at 1 ms on the local testbed (kernel path of every echo): hence 10 ms by default.
   */
  probe_interval: Interval.prefault('10ms'),
  progress_interval: Interval.prefault('100ms'),
  /** Power via IPMI at `interval`; on the local testbed each host gets an ipmi_sim BMC fed by this model. */
  power: z
    .strictObject({
      interval: Interval.prefault('1s'),
      idle_w: z.number().min(0).max(100_000).optional(),
      cpu_w_per_core: z.number().min(0).max(10_000).optional(),
      nic_w_per_mbit: z.number().min(0).max(1000).optional(),
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
  vms: z.array(VmSpec).max(MAX_VMS).default([]),
  migration: MigrationSpec.optional(),
  measure: MeasureSpec.prefault({}),
  factors: z.record(z.string(), z.array(z.unknown()).min(1)).default({}),
  repetitions: z.number().int().min(1).max(10_000).default(1),
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
export type DiskSpecT = z.infer<typeof DiskSpec>;
export type WorkloadSpec = z.infer<typeof Workload>;
export type ClientSpecT = z.infer<typeof ClientSpec>;
export type MigrationSpecT = z.infer<typeof MigrationSpec>;
export type Spec = z.infer<typeof ExperimentSpec>;
