/**
 * Maps the host names of a spec (e.g. r1-h1, r1-h2 of a spec written for the
 * local testbed) onto inventory hosts: explicit `spec_host` first, then in
 * order per rack.
 */
import { UserError } from '../util/errors.ts';
import type { Inventory, InventoryHost } from './load.ts';

/** A spec rack with its host names in order (topology.ts hostNames()). */
export interface SpecRack {
  name: string;
  hosts: string[];
}

/**
 * Rules, in order:
 * 1. an inventory host with `spec_host: X` is X;
 * 2. the remaining hosts of spec rack R take, in inventory order, the unused
 *    hosts whose `rack` is R;
 * 3. spec racks with no inventory rack of that name take whole inventory racks
 *    (in order of first appearance) that no spec rack named; hosts without a
 *    rack form one pool that fills whatever is still missing, in order.
 */
export function mapSpecHosts(racks: readonly SpecRack[], inv: Inventory): Map<string, InventoryHost> {
  const out = new Map<string, InventoryHost>();
  const used = new Set<string>();
  const specNames = new Set(racks.flatMap((r) => r.hosts));
  for (const h of inv.hosts) {
    if (!h.specHost) continue;
    if (!specNames.has(h.specHost)) {
      throw new UserError(`${h.where}: spec_host '${h.specHost}' is not a host of the spec (spec hosts: ${[...specNames].join(', ')})`);
    }
    out.set(h.specHost, h);
    used.add(h.name);
  }
  const free = (pred: (h: InventoryHost) => boolean) => inv.hosts.filter((h) => !used.has(h.name) && pred(h));
  const take = (specHost: string, h: InventoryHost) => {
    out.set(specHost, h);
    used.add(h.name);
  };

  const specRackNames = new Set(racks.map((r) => r.name));
  const invRacks = [...new Set(inv.hosts.map((h) => h.rack).filter((r): r is string => r !== undefined))];
  const spareRacks = invRacks.filter((r) => !specRackNames.has(r));
  for (const rack of racks) {
    const invRack = invRacks.includes(rack.name) ? rack.name : spareRacks.shift();
    for (const sh of rack.hosts) {
      if (out.has(sh)) continue;
      const h = (invRack !== undefined ? free((x) => x.rack === invRack)[0] : undefined) ?? free((x) => x.rack === undefined)[0];
      if (!h) {
        const need = racks.reduce((n, r) => n + r.hosts.length, 0);
        throw new UserError(
          `inventory ${inv.file} has too few hosts for the spec: no host left for '${sh}' of rack '${rack.name}'` +
            (invRack !== undefined ? ` (inventory rack '${invRack}' is used up)` : '') +
            `; the spec needs ${need} hosts, the inventory has ${inv.hosts.length}` +
            (inv.kind === 'oar_nodefile' ? ' (reserve more nodes, e.g. oarsub -l nodes=N)' : ''),
        );
      }
      take(sh, h);
    }
  }
  return out;
}
