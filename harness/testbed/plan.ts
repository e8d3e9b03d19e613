import { bridgePort, mechanismsFor, shapingSteps, type KernelCaps, type Mechanisms, type Step } from './shaping.ts';
import { shJoin } from '../ssh/quote.ts';
import type { Link, Topology } from './topology.ts';

/**
 * Topology -> ordered list of steps that builds it. Pure. Namespaces come
 * first (each recorded before creation, so teardown after kill -9 finds
 * them); every interface lives inside one of them, so deleting the
 * namespaces removes interfaces, qdiscs and nft tables in one go.
 */

const ip = (ns: string, ...args: string[]): Step => ({ ns: null, argv: ['ip', '-n', ns, ...args] });

function linkSteps(link: Link, caps: KernelCaps, m: Mechanisms): Step[] {
  const { a, b } = link;
  const steps: Step[] = [
    // both ends are born in their namespaces: nothing ever appears in the root namespace
    ip(a.ns, 'link', 'add', a.ifname, 'type', 'veth', 'peer', 'name', b.ifname, 'netns', b.ns),
  ];
  if (a.bridge) steps.push(ip(a.ns, 'link', 'set', a.ifname, 'master', a.bridge));
  if (a.addr) steps.push(ip(a.ns, 'addr', 'add', a.addr, 'dev', a.ifname));
  steps.push(ip(a.ns, 'link', 'set', a.ifname, 'up'));
  const port = bridgePort(link, m);
  if (m.delay === 'delayfwd') {
    // b.ifname <-> forwarder <-> b.ifname+'f' ~veth~ b.ifname+'b' (bridge port)
    steps.push(ip(b.ns, 'link', 'add', `${b.ifname}f`, 'type', 'veth', 'peer', 'name', port));
    steps.push(ip(b.ns, 'link', 'set', `${b.ifname}f`, 'up'));
    steps.push(ip(b.ns, 'link', 'set', b.ifname, 'promisc', 'on'));
    steps.push(ip(b.ns, 'link', 'set', `${b.ifname}f`, 'promisc', 'on'));
  }
  if (b.bridge) steps.push(ip(b.ns, 'link', 'set', port, 'master', b.bridge));
  steps.push(ip(b.ns, 'link', 'set', b.ifname, 'up'));
  if (port !== b.ifname) steps.push(ip(b.ns, 'link', 'set', port, 'up'));
  return steps;
}

export interface UpPlan {
  namespaces: string[];
  steps: Step[];
  mechanisms: Record<string, Mechanisms>;
}

export function planUp(topo: Topology, caps: KernelCaps, delayfwd: string): UpPlan {
  const namespaces = [topo.switchNs, ...topo.hosts.map((h) => h.ns), ...(topo.clientNs ? [topo.clientNs] : [])];
  const steps: Step[] = [];
  for (const ns of namespaces) {
    steps.push({ ns: null, argv: ['ip', 'netns', 'add', ns], createsNs: ns });
    steps.push(ip(ns, 'link', 'set', 'lo', 'up'));
  }
  const bridges = [...topo.racks.flatMap((r) => Object.values(r.bridges)), ...Object.values(topo.aggBridge)];
  for (const br of bridges) {
    // no STP, no multicast snooping: ports forward at once, as on a plain switch
    steps.push(ip(topo.switchNs, 'link', 'add', br!, 'type', 'bridge', 'stp_state', '0', 'mcast_snooping', '0'));
    steps.push(ip(topo.switchNs, 'link', 'set', br!, 'up'));
  }
  for (const h of topo.hosts) {
    steps.push(ip(h.ns, 'link', 'add', 'mb-br', 'type', 'bridge', 'stp_state', '0', 'mcast_snooping', '0'));
    steps.push(ip(h.ns, 'addr', 'add', `${h.dataIp}/${topo.prefixLen}`, 'dev', 'mb-br'));
    steps.push(ip(h.ns, 'link', 'set', 'mb-br', 'up'));
  }
  const mechanisms: Record<string, Mechanisms> = {};
  for (const link of topo.links) {
    const m = mechanismsFor(link.constraint, caps);
    mechanisms[link.name] = m;
    steps.push(...linkSteps(link, caps, m));
  }
  for (const link of topo.links) steps.push(...shapingSteps(link, caps, delayfwd));
  return { namespaces, steps, mechanisms };
}

/** Human-readable rendering of a step, for `--dry-run` and error messages. */
export function formatStep(s: Step): string {
  const cmd = s.argv.join(' ');
  return s.ns ? `ip netns exec ${s.ns} ${cmd}` : cmd;
}

/**
 * Consecutive plain steps (no daemon, no standard input) run as one `sh -e`
 * script: one process instead of one per step (~13 ms each from node, ~4 ms
 * from sh). Before each step the script writes its index to fd 3, so the
 * step that failed is the last index written.
 */
export function stepScript(steps: readonly Step[]): string {
  const lines = ['set -e', 'exec 3>&1 1>&2'];
  steps.forEach((s, i) => {
    if (s.daemon || s.input !== undefined) throw new Error(`stepScript: step ${formatStep(s)} cannot run inside a script`);
    const argv = s.ns ? ['ip', 'netns', 'exec', s.ns, ...s.argv] : s.argv;
    lines.push(`echo ${i} >&3`, shJoin(argv));
  });
  return `${lines.join('\n')}\n`;
}

/** The step a failed `stepScript` stopped at: the last index it wrote (its stdout). */
export function failedStepIndex(stdout: string): number | null {
  const last = stdout.trim().split('\n').at(-1);
  return last !== undefined && /^\d+$/.test(last) ? Number(last) : null;
}

/** Splits steps into runs that can share one script (plain steps) and steps that run alone. */
export function stepBatches(steps: readonly Step[]): Step[][] {
  const out: Step[][] = [];
  for (const s of steps) {
    const alone = !!s.daemon || s.input !== undefined;
    const last = out.at(-1);
    if (!alone && last && !last[0].daemon && last[0].input === undefined) last.push(s);
    else out.push([s]);
  }
  return out;
}
