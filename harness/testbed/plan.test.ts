import { describe, expect, it } from 'vitest';
import { parseSpecText, testbedId } from '../spec/load.ts';
import { GUEST_NET_BASE } from '../spec/names.ts';
import { spawnSync } from 'node:child_process';
import { failedStepIndex, formatStep, planUp, stepBatches, stepScript } from './plan.ts';
import { nftLossRuleset, queueLimitBytes, type KernelCaps } from './shaping.ts';
import { buildTopology, expectedPath, pathBetween } from './topology.ts';

const NO_NETEM: KernelCaps = { netem: false, htb: true, nftNetdev: true };
const NETEM: KernelCaps = { netem: true, htb: true, nftNetdev: true };

function topo(yaml: string) {
  const { spec } = parseSpecText(yaml, 't.yaml');
  return buildTopology(spec.testbed, 'tb');
}

const TWO_RACKS = `
name: t
testbed:
  racks:
    - {name: r1, hosts: 2, host_nic: {rate: 100mbit}}
    - {name: r2, hosts: 2}
  aggregation: {rate: 20mbit}
  shaping:
    - {link: r1-h1, rate: 50mbit}
    - {link: r1-h2, delay: 25ms, jitter: 2ms}
    - {link: r2-h2/mig, loss: 5%}
`;

describe('topology', () => {
  it('builds namespaces, bridges and links for 2 racks x 2 hosts with a dedicated migration network', () => {
    const t = topo(TWO_RACKS);
    expect(t.hosts.map((h) => h.ns)).toEqual(['mb-tb-r1-h1', 'mb-tb-r1-h2', 'mb-tb-r2-h1', 'mb-tb-r2-h2']);
    expect(t.hosts.map((h) => h.dataIp)).toEqual(['10.231.1.1', '10.231.1.2', '10.231.2.1', '10.231.2.2']);
    expect(t.hosts[3].migIp).toBe('10.232.2.2');
    // 4 hosts x 2 networks + 2 racks x 2 uplinks + client
    expect(t.links).toHaveLength(8 + 4 + 1);
    for (const l of t.links) {
      expect(l.a.ifname.length).toBeLessThanOrEqual(15 - 1); // forwarder suffix still fits
      expect(l.b.ifname.startsWith('mb-')).toBe(true);
      expect(`${l.b.ifname}b`.length).toBeLessThanOrEqual(15);
    }
  });

  it('applies rack defaults, aggregation rate and per-link overrides', () => {
    const t = topo(TWO_RACKS);
    const c = (n: string) => t.links.find((l) => l.name === n)!.constraint;
    expect(c('r1-h1')).toEqual({ rateBps: 50e6 });
    expect(c('r1-h2')).toEqual({ rateBps: 100e6, delayMs: 25, jitterMs: 2 });
    expect(c('r1-h1/mig')).toEqual({ rateBps: 100e6 });
    expect(c('r2-h1')).toEqual({});
    expect(c('r1/up')).toEqual({ rateBps: 20e6 });
    expect(c('r2-h2/mig')).toEqual({ lossPct: 5 });
  });

  it('finds the path across racks and what it should measure', () => {
    const t = topo(TWO_RACKS);
    const p = pathBetween(t, 'r1-h2', 'r2-h1', 'data');
    expect(p.map((l) => l.name)).toEqual(['r1-h2', 'r1/up', 'r2/up', 'r2-h1']);
    expect(expectedPath(p)).toEqual({ rateBps: 20e6, addedRttMs: 50, lossPct: 0 });
    const same = pathBetween(t, 'r2-h1', 'r2-h2', 'mig');
    expect(same.map((l) => l.name)).toEqual(['r2-h1/mig', 'r2-h2/mig']);
    expect(expectedPath(same).lossPct).toBeCloseTo(5);
  });
});

describe('plan (spec -> commands)', () => {
  it('creates every namespace before using it and never touches the root namespace', () => {
    const t = topo(TWO_RACKS);
    const plan = planUp(t, NO_NETEM, '/x/mb-delayfwd');
    const created = new Set<string>();
    for (const s of plan.steps) {
      if (s.createsNs) created.add(s.createsNs);
      const ns = s.ns ?? (s.argv[1] === '-n' ? s.argv[2] : null);
      if (s.argv[1] === 'netns' && s.argv[2] === 'add') continue;
      expect(ns, formatStep(s)).not.toBeNull();
      expect(created.has(ns!), `${formatStep(s)} before its namespace`).toBe(true);
    }
    expect([...created].sort()).toEqual(plan.namespaces.slice().sort());
  });

  it('shapes rate with htb on both ends and a bounded FIFO', () => {
    const plan = planUp(topo(TWO_RACKS), NO_NETEM, '/x/mb-delayfwd');
    const lines = plan.steps.map(formatStep);
    expect(lines).toContain(
      'ip netns exec mb-tb-r1-h1 tc class add dev mb-data parent 1: classid 1:10 htb rate 50000kbit ceil 50000kbit quantum 200000',
    );
    expect(lines).toContain(
      'ip netns exec mb-tb-sw tc class add dev mb-d1 parent 1: classid 1:10 htb rate 50000kbit ceil 50000kbit quantum 200000',
    );
    expect(lines).toContain(`ip netns exec mb-tb-sw tc qdisc add dev mb-ud1 parent 1:10 handle 10: bfifo limit ${queueLimitBytes(20e6)}`);
    expect(plan.mechanisms['r1-h1']).toEqual({ rate: 'htb', delay: 'none', loss: 'none' });
  });

  it('inserts the frame forwarder for delay when the kernel has no netem', () => {
    const plan = planUp(topo(TWO_RACKS), NO_NETEM, '/x/mb-delayfwd');
    const lines = plan.steps.map(formatStep);
    expect(plan.mechanisms['r1-h2'].delay).toBe('delayfwd');
    expect(lines).toContain('ip -n mb-tb-sw link add mb-d2f type veth peer name mb-d2b');
    expect(lines).toContain('ip -n mb-tb-sw link set mb-d2b master mb-r1d');
    expect(lines).not.toContain('ip -n mb-tb-sw link set mb-d2 master mb-r1d');
    const fwd = plan.steps.find((s) => s.daemon)!;
    expect(fwd.argv).toEqual([
      '/x/mb-delayfwd',
      '--a',
      'mb-d2',
      '--b',
      'mb-d2f',
      '--delay-ab',
      '25ms',
      '--delay-ba',
      '25ms',
      '--jitter-ab',
      '2ms',
      '--jitter-ba',
      '2ms',
      '--rt',
    ]);
    // rate of the same link goes on the bridge-side port, before the delay line
    expect(lines).toContain('ip netns exec mb-tb-sw tc qdisc replace dev mb-d2b root handle 1: htb default 10');
  });

  it('drops for loss with nftables on arrival, one hop from each sender', () => {
    const plan = planUp(topo(TWO_RACKS), NO_NETEM, '/x/mb-delayfwd');
    const nft = plan.steps.filter((s) => s.argv[0] === 'nft');
    expect(nft.map((s) => s.ns)).toEqual(['mb-tb-sw', 'mb-tb-r2-h2']);
    expect(nft[0].input).toContain('device "mb-m4"');
    expect(nft[0].input).toContain('numgen random mod 10000 < 500 drop');
    expect(nft[1].input).toContain('device "mb-mig"');
    expect(plan.mechanisms['r2-h2/mig'].loss).toBe('nft-numgen');
  });

  it('uses netem for delay and loss where the kernel has it', () => {
    const plan = planUp(topo(TWO_RACKS), NETEM, '/x/mb-delayfwd');
    const lines = plan.steps.map(formatStep);
    expect(plan.steps.some((s) => s.daemon)).toBe(false);
    expect(lines).toContain('ip netns exec mb-tb-r1-h2 tc qdisc add dev mb-data parent 1:10 handle 10: netem delay 25ms 2ms limit 10000');
    expect(lines).toContain('ip netns exec mb-tb-sw tc qdisc replace dev mb-m4 root netem loss 5%');
    expect(plan.mechanisms['r1-h2'].delay).toBe('netem');
  });

  it('renders nft rulesets with 0.01 % resolution', () => {
    expect(nftLossRuleset('t', ['mb-x1'], 0.25)).toContain('< 25 drop');
  });
});

describe('the largest testbed a spec may describe fits the address and name plan', () => {
  // the spec limits (harness/spec/names.ts) are derived from this plan; check them against what is built
  const yaml = (racks: string) => `name: big-experiment-name-x\ntestbed:\n  racks: [${racks}]\n  aggregation: {delay: 1ms}\n`;
  const cases = {
    '99 racks of 1 host': yaml(Array.from({ length: 99 }, (_, i) => `{name: r${i + 1}, hosts: 1}`).join(', ')),
    '1 rack of 99 named hosts': yaml(
      `{name: r1, hosts: [${Array.from({ length: 99 }, (_, i) => `host-${String(i).padStart(7, '0')}`).join(', ')}]}`,
    ),
    '3 racks of 99 hosts': yaml(Array.from({ length: 3 }, (_, i) => `{name: rack${i + 1}, hosts: 99}`).join(', ')),
  };
  it.each(Object.entries(cases))('%s', (_name, text) => {
    const { spec } = parseSpecText(text, 't.yaml');
    const id = testbedId(spec);
    const t = buildTopology(spec.testbed, id, { mgmt: true });
    const addrs = t.links
      .flatMap((l) => [l.a.addr, l.b.addr])
      .filter((a): a is string => !!a)
      .map((a) => a.split('/')[0]);
    addrs.push(...t.hosts.map((h) => h.dataIp));
    expect(new Set(addrs).size).toBe(addrs.length);
    for (const a of addrs) {
      const [, , third, fourth] = a.split('.').map(Number);
      expect(third, a).toBeLessThan(GUEST_NET_BASE); // below the guests' 10.231.100.x
      expect(fourth, a).toBeGreaterThanOrEqual(1);
      expect(fourth, a).toBeLessThanOrEqual(250);
    }
    const namespaces = [t.switchNs, t.clientNs, ...t.hosts.map((h) => h.ns)];
    expect(new Set(namespaces).size).toBe(namespaces.length);
    // every interface, with the delay forwarder's extra ends, within IFNAMSIZ (15 characters)
    const plan = planUp(t, NO_NETEM, 'mb-delayfwd');
    const isIfname = (argv: string[], i: number) =>
      ['dev', 'name'].includes(argv[i - 1]) || (argv[i - 1] === 'add' && argv[i - 2] === 'link');
    const ifnames = plan.steps.flatMap((s) => s.argv.filter((a, i) => /^mb-/.test(a) && isIfname(s.argv, i)));
    expect(ifnames.length).toBeGreaterThan(0);
    for (const n of ifnames) expect(n.length, n).toBeLessThanOrEqual(15);
  });
});

describe('steps run in batches', () => {
  it('keeps the plan order and runs daemons and steps with input alone', () => {
    const plan = planUp(topo(TWO_RACKS), NO_NETEM, '/x/mb-delayfwd');
    const batches = stepBatches(plan.steps);
    expect(batches.flat()).toEqual(plan.steps);
    for (const b of batches) if (b.some((s) => s.daemon || s.input !== undefined)) expect(b).toHaveLength(1);
    // far fewer processes than steps: the plain steps between daemons and nft rulesets share a shell
    expect(batches.length).toBeLessThan(plan.steps.length / 4);
  });

  it('writes each step as a quoted command line after its index', () => {
    const text = stepScript([
      { ns: null, argv: ['ip', 'netns', 'add', 'mb-x'] },
      { ns: 'mb-x', argv: ['tc', 'qdisc', 'add', 'dev', "it's", 'root'] },
    ]);
    expect(text).toBe(
      `set -e\nexec 3>&1 1>&2\necho 0 >&3\nip netns add mb-x\necho 1 >&3\nip netns exec mb-x tc qdisc add dev 'it'\\''s' root\n`,
    );
    expect(() => stepScript([{ ns: null, argv: ['nft', '-f', '-'], input: 'x' }])).toThrow(/cannot run inside a script/);
  });

  it('stops at the first failing step and names it', () => {
    const steps = [
      { ns: null, argv: ['true'] },
      { ns: null, argv: ['sh', '-c', 'echo out; echo oops >&2; exit 3'] },
      { ns: null, argv: ['touch', '/nonexistent-dir-mb/never'] },
    ];
    const r = spawnSync('sh', ['-c', stepScript(steps)], { encoding: 'utf8' });
    expect(r.status).toBe(3);
    expect(failedStepIndex(r.stdout)).toBe(1);
    expect(r.stderr).toContain('oops');
    expect(r.stderr).toContain('out'); // the commands' own stdout goes with their errors
    const ok = spawnSync('sh', ['-c', stepScript(steps.slice(0, 1))], { encoding: 'utf8' });
    expect(ok.status).toBe(0);
    expect(failedStepIndex('')).toBeNull();
  });
});
