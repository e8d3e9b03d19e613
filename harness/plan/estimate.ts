import type { Spec } from '../spec/schema.ts';
import { testbedId } from '../spec/load.ts';
import { UserError } from '../util/errors.ts';
import { buildTopology, pathBetween, type Topology } from '../testbed/topology.ts';
import type { MigrateAction, PlanMove } from './graph.ts';
import { fairShareModel, type ProgressModel, type Transfer } from './simulate.ts';

/**
 * A rough duration model of a spec's plan, for `plan show`: each migration
 * sends the VM's memory once over the links of its path, and concurrent
 * migrations share each link direction equally (fluid fair share). No dirty
 * pages, no protocol overhead beyond TCP goodput: a lower bound that shows
 * how a plan's shape trades migration duration for completion time.
 */

/** The spec's moves with each VM's current host resolved. */
export function movesFromSpec(spec: Spec, file?: string): PlanMove[] {
  const where = file ? `${file}: ` : '';
  if (!spec.migration) throw new UserError(`${where}migration: missing; a plan needs migration.moves`);
  const hostOf = new Map(spec.vms.map((v) => [v.name, v.host]));
  return spec.migration.moves.map((m, i) => {
    const from = hostOf.get(m.vm);
    if (from === undefined) throw new UserError(`${where}migration.moves[${i}].vm: unknown vm '${m.vm}'`);
    return { vm: m.vm, from, to: m.to };
  });
}

export interface EstimateOptions {
  /** Rate assumed for links the spec leaves unshaped, bit/s. */
  unshapedRateBps: number;
  bootMs: number;
  shutdownMs: number;
  /** TCP goodput as a fraction of the shaped rate (htb/tbf measured ~0.956 here). */
  goodput?: number;
}

/** Link directions crossed from `from` to `to`: the source half goes up, the destination half down. */
export function transferResources(topo: Topology, from: string, to: string): string[] {
  const network = topo.networks.includes('mig') ? 'mig' : 'data';
  const path = pathBetween(topo, from, to, network);
  const half = path.length / 2;
  return path.map((l, i) => `${l.name}${i < half ? ' up' : ' down'}`);
}

export function estimateModel(spec: Spec, opts: EstimateOptions): ProgressModel {
  const topo = buildTopology(spec.testbed, testbedId(spec));
  const memory = new Map(spec.vms.map((v) => [v.name, v.memory.bytes]));
  const rateOf = new Map(topo.links.map((l) => [l.name, l.constraint.rateBps ?? opts.unshapedRateBps]));
  const goodput = opts.goodput ?? 0.956;
  return fairShareModel({
    transfer: (a: MigrateAction): Transfer => ({ bytes: memory.get(a.vm) ?? 0, resources: transferResources(topo, a.from, a.to) }),
    capacity: (r) => (rateOf.get(r.replace(/ (up|down)$/, ''))! * goodput) / 8 / 1000,
    powerMs: (a) => (a.kind === 'power-on' ? opts.bootMs : opts.shutdownMs),
  });
}
