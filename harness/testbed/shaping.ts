import { tcRate } from '../spec/units.ts';
import type { Constraint, Link } from './topology.ts';

/**
 * Pure generation of the shaping commands for one link, EnOSlib-style:
 * constraints are data, tc/nft/forwarder invocations are derived here and
 * unit-tested without root. Each direction is shaped where it leaves a
 * device (rate), and dropped where it arrives one hop later (loss), because
 * drops at the sender's own qdisc are seen by TCP as local congestion.
 */

/** What the running kernel offers, detected once at `testbed up`. */
export interface KernelCaps {
  netem: boolean;
  htb: boolean;
  nftNetdev: boolean;
}

export type RateMechanism = 'htb' | 'none';
export type DelayMechanism = 'netem' | 'delayfwd' | 'none';
export type LossMechanism = 'netem' | 'nft-numgen' | 'none';

export interface Mechanisms {
  rate: RateMechanism;
  delay: DelayMechanism;
  loss: LossMechanism;
}

/** A command to run, optionally inside a namespace, optionally as a long-lived process. */
export interface Step {
  ns: string | null;
  argv: string[];
  /** Long-running process the testbed owns (recorded by PID for teardown). */
  daemon?: { tag: string };
  /** Namespace this step creates (recorded in the state file before running). */
  createsNs?: string;
  /** Standard input (nft rulesets). */
  input?: string;
}

export function mechanismsFor(c: Constraint, caps: KernelCaps): Mechanisms {
  const wantsDelay = !!(c.delayMs || c.jitterMs);
  return {
    rate: c.rateBps ? 'htb' : 'none',
    delay: !wantsDelay ? 'none' : caps.netem ? 'netem' : 'delayfwd',
    loss: !c.lossPct ? 'none' : caps.netem ? 'netem' : 'nft-numgen',
  };
}

/** The bridge-side device of a link: the forwarder's far veth when one is inserted. */
export function bridgePort(link: Link, m: Mechanisms): string {
  return m.delay === 'delayfwd' ? `${link.b.ifname}b` : link.b.ifname;
}

/** Byte limit of the FIFO behind the rate limiter: ~100 ms of traffic, room for GSO frames. */
export function queueLimitBytes(rateBps: number): number {
  return Math.max(Math.round((rateBps / 8) * 0.1), 3 * 65536);
}

function htbSteps(ns: string, dev: string, c: Constraint, netemArgs: string[] | null): Step[] {
  const rate = tcRate(c.rateBps!);
  const quantum = String(Math.min(200_000, Math.max(1514, Math.round(c.rateBps! / 8 / 10))));
  const tc = (...a: string[]): Step => ({ ns, argv: ['tc', ...a] });
  const leaf = netemArgs ? ['netem', ...netemArgs, 'limit', '10000'] : ['bfifo', 'limit', String(queueLimitBytes(c.rateBps!))];
  return [
    tc('qdisc', 'replace', 'dev', dev, 'root', 'handle', '1:', 'htb', 'default', '10'),
    tc('class', 'add', 'dev', dev, 'parent', '1:', 'classid', '1:10', 'htb', 'rate', rate, 'ceil', rate, 'quantum', quantum),
    tc('qdisc', 'add', 'dev', dev, 'parent', '1:10', 'handle', '10:', ...leaf),
  ];
}

function netemArgsFor(c: Constraint): string[] | null {
  const a: string[] = [];
  if (c.delayMs || c.jitterMs) {
    a.push('delay', `${c.delayMs ?? 0}ms`);
    if (c.jitterMs) a.push(`${c.jitterMs}ms`);
  }
  if (c.lossPct) a.push('loss', `${c.lossPct}%`);
  return a.length ? a : null;
}

/** Egress shaping of one direction on one device (rate and, with netem, delay/loss). */
function egressSteps(ns: string, dev: string, c: Constraint, m: Mechanisms): Step[] {
  const netem = m.delay === 'netem' || m.loss === 'netem' ? netemArgsFor(c) : null;
  if (c.rateBps) return htbSteps(ns, dev, c, netem);
  if (netem) return [{ ns, argv: ['tc', 'qdisc', 'replace', 'dev', dev, 'root', 'netem', ...netem] }];
  return [];
}

/** nftables ruleset dropping a random share of frames arriving on `dev`. */
export function nftLossRuleset(table: string, devs: string[], lossPct: number): string {
  // numgen over 10000 buckets gives 0.01 % resolution
  const threshold = Math.round(lossPct * 100);
  const chains = devs
    .map(
      (d) =>
        `  chain in_${d.replace(/-/g, '_')} {\n    type filter hook ingress device "${d}" priority 0; policy accept;\n    numgen random mod 10000 < ${threshold} drop\n  }`,
    )
    .join('\n');
  return `table netdev ${table} {\n${chains}\n}\n`;
}

/**
 * All steps shaping a link whose veth pair already exists, with the
 * forwarder veth (when needed) already created and bridged.
 */
export function shapingSteps(link: Link, caps: KernelCaps, delayfwd: string): Step[] {
  const c = link.constraint;
  const m = mechanismsFor(c, caps);
  const port = bridgePort(link, m);
  const steps: Step[] = [];
  // a -> b leaves through a.ifname; b -> a leaves the bridge through `port`
  steps.push(...egressSteps(link.a.ns, link.a.ifname, c, m));
  steps.push(...egressSteps(link.b.ns, port, c, m));
  if (m.delay === 'delayfwd') {
    // --rt: without SCHED_FIFO the added delay grows by 2-7 ms on a loaded 2-core box
    const d = `${c.delayMs ?? 0}ms`;
    const j = `${c.jitterMs ?? 0}ms`;
    steps.push({
      ns: link.b.ns,
      argv: [
        delayfwd,
        '--a',
        link.b.ifname,
        '--b',
        `${link.b.ifname}f`,
        '--delay-ab',
        d,
        '--delay-ba',
        d,
        '--jitter-ab',
        j,
        '--jitter-ba',
        j,
        '--rt',
      ],
      daemon: { tag: `delayfwd:${link.name}` },
    });
  }
  if (m.loss === 'nft-numgen') {
    // a -> b dropped on arrival at the bridge port; b -> a on arrival at a
    const table = `mb_loss_${link.a.ifname.replace(/-/g, '_')}_${link.b.ifname.replace(/-/g, '_')}`;
    steps.push({ ns: link.b.ns, argv: ['nft', '-f', '-'], input: nftLossRuleset(table, [port], c.lossPct!) });
    steps.push({ ns: link.a.ns, argv: ['nft', '-f', '-'], input: nftLossRuleset(table, [link.a.ifname], c.lossPct!) });
  }
  return steps;
}
