import type { InventoryHost } from '../../inventory/load.ts';
import type { TestbedSpecT } from '../../spec/schema.ts';
import { buildTopology, type Topology } from '../../testbed/topology.ts';
import { UserError } from '../../util/errors.ts';

/**
 * The spec's topology on the servers of an inventory. Pure. Links and their
 * constraints stay the spec's (the physical bounds of every record come from
 * them, and the ssh driver shapes the servers' NICs to them); the hosts get
 * the inventory's data and migration addresses; there is no namespace and
 * no client namespace (probes run from the inventory's client host or the
 * controller).
 */
export function sshTopology(tb: TestbedSpecT, id: string, mapping: ReadonlyMap<string, InventoryHost>): Topology {
  const topo = buildTopology(tb, id);
  const hosts = topo.hosts.map((h) => {
    const inv = mapping.get(h.name);
    if (!inv) throw new UserError(`spec host ${h.name} has no server in the inventory`);
    const dataIp = addressOf(inv.data.address) ?? inv.ssh.host;
    let migIp: string | null = null;
    if (topo.networks.includes('mig')) {
      migIp = addressOf(inv.migration.address);
      if (!migIp) {
        throw new UserError(
          `${inv.where}: the spec uses a dedicated migration network (testbed.migration_network: dedicated) but server ${inv.name} ` +
            `has no migration.address; give its migration NIC (migration: {iface, address}) or set testbed.migration_network: shared`,
        );
      }
    }
    return { ...h, ns: '', dataIp, migIp, mgmtIp: null };
  });
  return { ...topo, switchNs: '', clientNs: null, clientIp: null, clientMgmtIp: null, hosts };
}

/** `10.0.0.1/24` -> `10.0.0.1`. */
function addressOf(a: string | undefined): string | null {
  return a ? a.replace(/\/\d+$/, '') : null;
}
