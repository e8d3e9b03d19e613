/**
 * The advisor's inputs from a spec and calibrated parameters: each moved
 * VM's workload parameters and memory in use, each migration's path
 * (harness/testbed/topology.ts) and the goodput of every link direction.
 */
import { movesFromSpec, transferResources } from '../../harness/plan/estimate.ts';
import { testbedId } from '../../harness/spec/load.ts';
import type { Spec } from '../../harness/spec/schema.ts';
import { buildTopology } from '../../harness/testbed/topology.ts';
import { UserError } from '../../harness/util/errors.ts';
import { guestWorkloadLabel } from '../../harness/workloads/guest-spec.ts';
import { DEFAULT_SYNC_S } from '../models/precopy.ts';
import type { AdviseInput, AdviseVm } from './advise.ts';
import type { ParamsT } from './params.ts';

export interface SpecAdviseOptions {
  /** Rate assumed for links the spec leaves unshaped, bit/s. */
  unshapedRateBps: number;
  bootS: number;
  shutdownS: number;
  /** Names the spec and the params in messages. */
  file?: string;
  paramsFile?: string;
}

const MiB = 2 ** 20;

export function adviseInputFromSpec(spec: Spec, params: ParamsT, o: SpecAdviseOptions): { input: AdviseInput; notes: string[] } {
  const where = o.file ? `${o.file}: ` : '';
  const mig = spec.migration;
  if (!mig) throw new UserError(`${where}migration: missing; the advisor needs migration.moves`);
  if (mig.mode !== 'live')
    throw new UserError(`${where}migration.mode: the advisor models pre-copy ('live') migrations only, got '${mig.mode}'`);
  const notes: string[] = [];
  const moves = movesFromSpec(spec, o.file);
  const byWorkload = new Map(params.hotcold.map((h) => [h.workload, h]));
  const vms = new Map<string, AdviseVm>();
  for (const m of moves) {
    const i = spec.vms.findIndex((v) => v.name === m.vm);
    const vm = spec.vms[i];
    const label = guestWorkloadLabel(vm.workload);
    const hc = byWorkload.get(label);
    if (!hc) {
      const have = params.hotcold.map((h) => `'${h.workload}'`).join(', ') || 'none';
      throw new UserError(
        `${where}vms[${i}].workload: no calibrated parameters for workload '${label}' in ${o.paramsFile ?? 'the params'} (it has: ${have}); ` +
          `calibrate it with 'migbench fit <runDir...> --out params.json' on runs of that workload`,
      );
    }
    const configured = vm.memory.bytes / MiB;
    if (hc.mu_mib === null) notes.push(`${m.vm}: no measured memory in use for its workload; the configured ${configured} MiB is used`);
    vms.set(m.vm, {
      workload: label,
      hc,
      muMiB: hc.mu_mib === null ? configured : Math.min(hc.mu_mib, configured),
      muSource: hc.mu_mib === null ? 'configured' : 'measured',
    });
  }
  const topo = buildTopology(spec.testbed, testbedId(spec));
  const rateOf = new Map(topo.links.map((l) => [l.name, l.constraint.rateBps ?? o.unshapedRateBps]));
  const resources = (from: string, to: string) => transferResources(topo, from, to);
  const unshaped = [...new Set(moves.flatMap((m) => resources(m.from, m.to).map((r) => r.replace(/ (up|down)$/, ''))))].filter(
    (l) => topo.links.find((x) => x.name === l)?.constraint.rateBps === undefined,
  );
  if (unshaped.length)
    notes.push(`unshaped links on the migration paths (${unshaped.join(', ')}) are taken at ${o.unshapedRateBps / 1e6} Mbit/s`);
  // plan factors are what the advisor compares anyway; other factors would change its inputs
  const factors = Object.keys(spec.factors).filter((k) => !/(^|\.)plan(\.|$|\[)/.test(k));
  if (factors.length) notes.push(`factors (${factors.join(', ')}) are not expanded: the advice is for the spec as written`);
  if (mig.capabilities.auto_converge || mig.capabilities.multifd || mig.capabilities.xbzrle)
    notes.push('migration capabilities (auto-converge, multifd, xbzrle) are not modelled');
  const energy = params.energy[0] ?? null;
  if (!energy) notes.push('no energy calibration in the params: energy not predicted');
  return {
    input: {
      moves,
      vms,
      resources,
      capacityMiBps: (r) => (rateOf.get(r.replace(/ (up|down)$/, ''))! * params.goodput) / 8 / MiB,
      downtimeLimitS: mig.downtime_limit.ms / 1000,
      maxTimeS: mig.max_time.ms / 1000,
      maxBandwidthMiBps: mig.max_bandwidth ? mig.max_bandwidth.bps / 8 / MiB : null,
      syncS: params.sync_s ?? DEFAULT_SYNC_S,
      setupS: params.setup_s ?? 0,
      overheadS: params.action_overhead_s ?? 0,
      energy: energy ? { alpha: energy.alpha, beta: energy.beta } : null,
      bootS: o.bootS,
      shutdownS: o.shutdownS,
    },
    notes,
  };
}
