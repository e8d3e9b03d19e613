/**
 * Names and sizes a spec may use, as far as the testbed's namespace and
 * address plan limits them. The spec layer owns these (validation needs
 * them before anything is built); harness/testbed/topology.ts builds the
 * testbed from the same constants.
 *
 * Address plan: data 10.231.0.0/16, migration 10.232.0.0/16, management
 * 10.233.0.0/16; host h of rack r is <net>.r.h, the client is <net>.0.250,
 * guests are 10.231.100+.x (250 per /24).
 */

export const DATA_NET = '10.231';
export const MIG_NET = '10.232';
/** Management network (BMCs), flat and never shaped, like a cluster's out-of-band network. */
export const MGMT_NET = '10.233';
/** Third octet of the first guest subnet: racks must stay below it. */
export const GUEST_NET_BASE = 100;
/** Guests per guest subnet (x.y.z.1 .. x.y.z.250). */
export const GUESTS_PER_SUBNET = 250;
/** Third octet of the client's address (rack 0 is no rack). */
export const CLIENT_HOST_OCTET = 250;

/** Rack r (1-based) numbers its hosts in <net>.r.0/24, below the guests' subnets. */
export const MAX_RACKS = GUEST_NET_BASE - 1;
/** Hosts per rack: <net>.r.1 .. <net>.r.99 (a count and an explicit list alike). */
export const MAX_HOSTS_PER_RACK = 99;
/** Guests get 10.231.100.1 .. 10.231.255.250; far fewer fit on one machine anyway. */
export const MAX_VMS = 1000;

/** Namespace suffixes of the testbed itself (mb-<id>-sw, mb-<id>-client): no host may take them. */
export const RESERVED_HOST_NAMES: readonly string[] = ['sw', 'client'];

/** Namespace of one testbed part: mb-<id>-<host|sw|client>. */
export function nsName(id: string, what: string): string {
  return `mb-${id}-${what}`;
}

export interface RackNames {
  name: string;
  hosts: number | string[];
}

/** A rack's host names: a count gives <rack>-h1..hN. */
export function hostNames(rack: RackNames): string[] {
  return typeof rack.hosts === 'number' ? Array.from({ length: rack.hosts }, (_, i) => `${rack.name}-h${i + 1}`) : rack.hosts;
}

export interface TestbedNames {
  racks: readonly RackNames[];
  migration_network: 'dedicated' | 'shared';
  client: boolean;
}

/** Names the user can shape: '<host>', '<host>/mig', '<rack>/up', '<rack>/up/mig', 'client'. */
export function linkNames(tb: TestbedNames): string[] {
  const nets = tb.migration_network === 'dedicated' ? ['data', 'mig'] : ['data'];
  const names: string[] = [];
  for (const rack of tb.racks) {
    for (const h of hostNames(rack)) for (const n of nets) names.push(n === 'data' ? h : `${h}/mig`);
    if (tb.racks.length > 1) for (const n of nets) names.push(n === 'data' ? `${rack.name}/up` : `${rack.name}/up/mig`);
  }
  if (tb.client) names.push('client');
  return names;
}
