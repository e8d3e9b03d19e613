import type { LinkConstraintSpec, TestbedSpecT } from '../spec/schema.ts';
import { CLIENT_HOST_OCTET, DATA_NET, GUEST_NET_BASE, GUESTS_PER_SUBNET, hostNames, MGMT_NET, MIG_NET, nsName } from '../spec/names.ts';

export { DATA_NET, GUEST_NET_BASE, hostNames, linkNames, MGMT_NET, MIG_NET, nsName } from '../spec/names.ts';

/**
 * The local testbed as data: which namespaces, bridges, links and addresses
 * exist. Pure: built from the spec alone, so it can be unit-tested without
 * root and printed before anything is created.
 *
 * Layout (one L2 segment per network, so a guest keeps its IP on any host):
 *
 *   host ns  mb-<id>-<host>:  mb-data (veth) + guest taps in bridge mb-br (host IP on mb-br)
 *                             mb-mig  (veth, migration network address)
 *   switch ns mb-<id>-sw:     per rack a bridge on each network, joined to an
 *                             aggregation bridge by an uplink veth pair
 *   client ns mb-<id>-client: mb-data on the aggregation bridge (probes, load)
 */

export type Network = 'data' | 'mig' | 'mgmt';

/** Shaping of one link, applied in each direction; numbers in SI base units. */
export interface Constraint {
  rateBps?: number;
  delayMs?: number;
  jitterMs?: number;
  lossPct?: number;
}

/** One end of a veth pair. */
export interface LinkEnd {
  ns: string;
  ifname: string;
  /** Bridge this end is a port of (in the same namespace), if any. */
  bridge?: string;
  /** Address with prefix, when the end carries one. */
  addr?: string;
}

/**
 * A point-to-point link: a veth pair whose `b` end always sits on a switch
 * bridge (so a delay forwarder can be inserted there). Direction a->b is
 * "up" (host to switch), b->a is "down".
 */
export interface Link {
  name: string;
  network: Network;
  kind: 'host' | 'uplink' | 'client' | 'mgmt';
  a: LinkEnd;
  b: LinkEnd;
  constraint: Constraint;
}

export interface HostNode {
  name: string;
  rack: string;
  /** 1-based position of the rack and of the host inside it. */
  rackIndex: number;
  index: number;
  /** Global 1-based host number, used in switch-side interface names. */
  number: number;
  ns: string;
  dataIp: string;
  migIp: string | null;
  /** Management address (BMC), when the testbed has a management network. */
  mgmtIp: string | null;
}

export interface RackNode {
  name: string;
  index: number;
  bridges: Partial<Record<Network, string>>;
}

export interface Topology {
  id: string;
  switchNs: string;
  clientNs: string | null;
  clientIp: string | null;
  /** The client's management address: where BMC pollers run from. */
  clientMgmtIp: string | null;
  hosts: HostNode[];
  racks: RackNode[];
  networks: Network[];
  /** Aggregation bridge per network, in the switch namespace (the flat management network's only bridge too). */
  aggBridge: Partial<Record<Network, string>>;
  links: Link[];
  /** Subnet prefix length shared by all addresses of a network. */
  prefixLen: number;
}

export function guestIp(vmIndex: number): string {
  return `${DATA_NET}.${GUEST_NET_BASE + Math.floor(vmIndex / GUESTS_PER_SUBNET)}.${(vmIndex % GUESTS_PER_SUBNET) + 1}`;
}

/** The spec's resolved constraint in base units. */
export function toConstraint(c: LinkConstraintSpec | undefined): Constraint {
  const out: Constraint = {};
  if (!c) return out;
  if (c.rate !== undefined) out.rateBps = c.rate.bps;
  if (c.delay !== undefined) out.delayMs = c.delay.ms;
  if (c.jitter !== undefined) out.jitterMs = c.jitter.ms;
  if (c.loss !== undefined) out.lossPct = c.loss.pct;
  return out;
}

/** Merges constraints field by field; later ones win. */
export function mergeConstraints(...cs: Constraint[]): Constraint {
  const out: Constraint = {};
  for (const c of cs) {
    for (const [k, v] of Object.entries(c)) if (v !== undefined) (out as Record<string, number>)[k] = v;
  }
  return out;
}

export function isShaped(c: Constraint): boolean {
  return !!(c.rateBps || c.delayMs || c.jitterMs || c.lossPct);
}

export interface TopologyOptions {
  /** Add the management network (needed for BMCs, i.e. power measurement). */
  mgmt?: boolean;
}

export function buildTopology(tb: TestbedSpecT, id: string, opts: TopologyOptions = {}): Topology {
  const networks: Network[] = tb.migration_network === 'dedicated' ? ['data', 'mig'] : ['data'];
  const mgmtBridge = 'mb-mgmt';
  const switchNs = nsName(id, 'sw');
  const prefixLen = 16;
  const multiRack = tb.racks.length > 1;
  const aggBridge: Partial<Record<Network, string>> = {};
  if (multiRack) for (const n of networks) aggBridge[n] = `mb-agg-${n[0]}`;

  const overrides = new Map(tb.shaping.map((s) => [s.link, toConstraint(s)]));
  const shapeFor = (linkName: string, ...defaults: Constraint[]) => mergeConstraints(...defaults, overrides.get(linkName) ?? {});

  const racks: RackNode[] = [];
  const hosts: HostNode[] = [];
  const links: Link[] = [];
  let number = 0;
  tb.racks.forEach((rack, ri) => {
    const rackIndex = ri + 1;
    const bridges: Partial<Record<Network, string>> = {};
    for (const n of networks) bridges[n] = `mb-r${rackIndex}${n[0]}`;
    racks.push({ name: rack.name, index: rackIndex, bridges });
    const nic = toConstraint(rack.host_nic);
    hostNames(rack).forEach((h, hi) => {
      number += 1;
      const host: HostNode = {
        name: h,
        rack: rack.name,
        rackIndex,
        index: hi + 1,
        number,
        ns: nsName(id, h),
        dataIp: `${DATA_NET}.${rackIndex}.${hi + 1}`,
        migIp: networks.includes('mig') ? `${MIG_NET}.${rackIndex}.${hi + 1}` : null,
        mgmtIp: opts.mgmt ? `${MGMT_NET}.${rackIndex}.${hi + 1}` : null,
      };
      hosts.push(host);
      if (opts.mgmt) {
        links.push({
          name: `${h}/mgmt`,
          network: 'mgmt',
          kind: 'mgmt',
          a: { ns: host.ns, ifname: 'mb-mgmt', addr: `${host.mgmtIp}/${prefixLen}` },
          b: { ns: switchNs, ifname: `mb-g${number}`, bridge: mgmtBridge },
          constraint: {},
        });
      }
      for (const n of networks) {
        const linkName = n === 'data' ? h : `${h}/mig`;
        links.push({
          name: linkName,
          network: n,
          kind: 'host',
          // data NIC is a port of the host bridge so guest taps share its segment
          a:
            n === 'data'
              ? { ns: host.ns, ifname: 'mb-data', bridge: 'mb-br' }
              : { ns: host.ns, ifname: 'mb-mig', addr: `${host.migIp}/${prefixLen}` },
          b: { ns: switchNs, ifname: `mb-${n[0]}${number}`, bridge: bridges[n] },
          constraint: shapeFor(linkName, nic),
        });
      }
    });
    if (multiRack) {
      const agg = toConstraint(tb.aggregation);
      for (const n of networks) {
        const linkName = n === 'data' ? `${rack.name}/up` : `${rack.name}/up/mig`;
        links.push({
          name: linkName,
          network: n,
          kind: 'uplink',
          a: { ns: switchNs, ifname: `mb-u${n[0]}${rackIndex}`, bridge: bridges[n] },
          b: { ns: switchNs, ifname: `mb-x${n[0]}${rackIndex}`, bridge: aggBridge[n] },
          constraint: shapeFor(linkName, agg),
        });
      }
    }
  });

  let clientNs: string | null = null;
  let clientIp: string | null = null;
  let clientMgmtIp: string | null = null;
  if (tb.client) {
    clientNs = nsName(id, 'client');
    clientIp = `${DATA_NET}.0.${CLIENT_HOST_OCTET}`;
    links.push({
      name: 'client',
      network: 'data',
      kind: 'client',
      a: { ns: clientNs, ifname: 'mb-data', addr: `${clientIp}/${prefixLen}` },
      // the client stands outside the racks: on the aggregation switch, or on the only rack
      b: { ns: switchNs, ifname: 'mb-cli', bridge: multiRack ? aggBridge.data : racks[0].bridges.data },
      constraint: shapeFor('client'),
    });
    if (opts.mgmt) {
      clientMgmtIp = `${MGMT_NET}.0.${CLIENT_HOST_OCTET}`;
      links.push({
        name: 'client/mgmt',
        network: 'mgmt',
        kind: 'mgmt',
        a: { ns: clientNs, ifname: 'mb-mgmt', addr: `${clientMgmtIp}/${prefixLen}` },
        b: { ns: switchNs, ifname: 'mb-gcli', bridge: mgmtBridge },
        constraint: {},
      });
    }
  }
  const mgmtBridges = opts.mgmt ? { mgmt: mgmtBridge } : {};
  return {
    id,
    switchNs,
    clientNs,
    clientIp,
    clientMgmtIp,
    hosts,
    racks,
    networks,
    aggBridge: { ...aggBridge, ...mgmtBridges },
    links,
    prefixLen,
  };
}

/** Links crossed by traffic between two hosts on a network, in order. */
export function pathBetween(topo: Topology, from: string, to: string, network: Network): Link[] {
  const endpoint = (name: string): { link: Link; rack: number | null } => {
    if (name === 'client') {
      const link = topo.links.find((l) => l.kind === 'client');
      if (!link) throw new Error('this testbed has no client namespace');
      return { link, rack: topo.racks.length > 1 ? null : 1 };
    }
    const host = topo.hosts.find((h) => h.name === name);
    if (!host) throw new Error(`unknown host '${name}'`);
    // by name (the ssh driver's hosts have no namespace): '<host>' is the data NIC, '<host>/<net>' the others
    const linkName = network === 'data' ? host.name : `${host.name}/${network}`;
    const link = topo.links.find((l) => l.kind === 'host' && l.network === network && l.name === linkName);
    if (!link) throw new Error(`host '${name}' has no ${network} link`);
    return { link, rack: host.rackIndex };
  };
  const src = endpoint(from);
  const dst = endpoint(to);
  const uplink = (rack: number) =>
    topo.links.find((l) => l.kind === 'uplink' && l.network === network && l.a.ifname === `mb-u${network[0]}${rack}`)!;
  const path: Link[] = [src.link];
  if (src.rack !== dst.rack) {
    if (src.rack !== null) path.push(uplink(src.rack));
    if (dst.rack !== null) path.push(uplink(dst.rack));
  }
  path.push(dst.link);
  return path;
}

/** What a path should show: bottleneck rate, added RTT, end-to-end loss. */
export function expectedPath(path: Link[]): { rateBps: number | null; addedRttMs: number; lossPct: number } {
  const rates = path.map((l) => l.constraint.rateBps).filter((r): r is number => r !== undefined);
  const delay = path.reduce((s, l) => s + (l.constraint.delayMs ?? 0), 0);
  const pass = path.reduce((p, l) => p * (1 - (l.constraint.lossPct ?? 0) / 100), 1);
  return { rateBps: rates.length ? Math.min(...rates) : null, addedRttMs: 2 * delay, lossPct: (1 - pass) * 100 };
}
