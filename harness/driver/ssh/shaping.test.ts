import { describe, expect, it } from 'vitest';
import type { InventoryHost } from '../../inventory/load.ts';
import { parseSpecText } from '../../spec/load.ts';
import { buildTopology } from '../../testbed/topology.ts';
import { UserError } from '../../util/errors.ts';
import { formatPlan, ifbName, planRemoteShaping, removalSteps, type HostShapingCaps } from './shaping.ts';

function topo(testbed: string) {
  const { spec } = parseSpecText(`name: t\ntestbed:\n${testbed}`, 't.yaml');
  return buildTopology(spec.testbed, 'tb');
}

function inv(name: string, specHost: string, data?: string, mig?: string): InventoryHost {
  return {
    name,
    where: `inv.yaml: hosts[${name}]`,
    specHost,
    data: data ? { iface: data } : {},
    migration: mig ? { iface: mig } : {},
    hypervisor: 'qemu',
    ssh: { name, host: `${name}.example`, port: 22, user: 'root' },
  };
}

const ALL: HostShapingCaps = { htb: true, netem: true };
const map = (...hs: InventoryHost[]) => new Map(hs.map((h) => [h.specHost!, h]));
const caps = (c: HostShapingCaps, ...names: string[]) => new Map(names.map((n) => [n, c]));

describe('shaping on servers over SSH (generation)', () => {
  it('shapes each server NIC both ways: egress on the NIC, ingress through an IFB, re-runnable', () => {
    const t = topo('  racks: [{name: r1, hosts: 2, host_nic: {rate: 100Mbit}}]\n  shaping: [{link: r1-h1/mig, delay: 5ms}]\n');
    const plan = planRemoteShaping(t, map(inv('s1', 'r1-h1', 'eno1', 'eno2'), inv('s2', 'r1-h2', 'eno1', 'eno2')), caps(ALL, 's1', 's2'));
    expect(plan.skipped).toEqual([]);
    expect(plan.hosts.map((h) => [h.host, h.nics.map((n) => `${n.link}@${n.iface}/${n.ifb}`)])).toEqual([
      ['s1', ['r1-h1@eno1/mbi-eno1', 'r1-h1/mig@eno2/mbi-eno2']],
      ['s2', ['r1-h2@eno1/mbi-eno1', 'r1-h2/mig@eno2/mbi-eno2']],
    ]);
    const lines = formatPlan(plan).filter((l) => l.startsWith('s1: ') && / (eno2|mbi-eno2)( |$)/.test(l));
    expect(lines).toEqual([
      's1: tc qdisc del dev eno2 root',
      's1: tc qdisc replace dev eno2 root handle 1: htb default 10',
      's1: tc class add dev eno2 parent 1: classid 1:10 htb rate 100000kbit ceil 100000kbit quantum 200000',
      's1: tc qdisc add dev eno2 parent 1:10 handle 10: netem delay 5ms limit 10000',
      's1: ip link add mbi-eno2 type ifb',
      's1: ip link set mbi-eno2 up',
      's1: tc qdisc del dev eno2 ingress',
      's1: tc qdisc add dev eno2 handle ffff: ingress',
      's1: tc filter add dev eno2 parent ffff: protocol all prio 1 u32 match u32 0 0 action mirred egress redirect dev mbi-eno2',
      's1: tc qdisc del dev mbi-eno2 root',
      's1: tc qdisc replace dev mbi-eno2 root handle 1: htb default 10',
      's1: tc class add dev mbi-eno2 parent 1: classid 1:10 htb rate 100000kbit ceil 100000kbit quantum 200000',
      's1: tc qdisc add dev mbi-eno2 parent 1:10 handle 10: netem delay 5ms limit 10000',
    ]);
    // re-runnable: every delete tolerates "already gone", the IFB creation "already there"
    const s1 = plan.hosts[0].nics[1].apply;
    expect(s1.filter((s) => s.ok).map((s) => s.argv.slice(0, 3).join(' '))).toEqual([
      'tc qdisc del',
      'ip link add',
      'tc qdisc del',
      'tc qdisc del',
    ]);
    // rate only: a byte FIFO behind htb, as in the local testbed
    expect(formatPlan(plan)).toContain('s2: tc qdisc add dev eno1 parent 1:10 handle 10: bfifo limit 1250000');
  });

  it('removes exactly the root and ingress qdiscs and the IFB it created, tolerating what is already gone', () => {
    const r = removalSteps('eno2', 'mbi-eno2');
    expect(r.map((s) => s.argv.join(' '))).toEqual(['tc qdisc del dev eno2 root', 'tc qdisc del dev eno2 ingress', 'ip link del mbi-eno2']);
    expect(r[0].ok?.test('Error: Cannot delete qdisc with handle of zero.')).toBe(true);
    expect(r[2].ok?.test('Cannot find device "mbi-eno2"')).toBe(true);
    expect(r[0].ok?.test('RTNETLINK answers: Operation not permitted')).toBe(false);
  });

  it('names IFBs within 15 characters', () => {
    expect(ifbName('mb-mig')).toBe('mbi-mb-mig');
    expect(ifbName('enp129s0f1np1')).toMatch(/^mbi-[0-9a-f]{10}$/);
    expect(ifbName('enp129s0f1np1')).not.toBe(ifbName('enp129s0f0np0'));
  });

  it('leaves unshaped NICs alone and returns switch-side links as skipped', () => {
    const t = topo(
      '  racks: [{name: r1, hosts: 1}, {name: r2, hosts: 1}]\n  aggregation: {rate: 1Gbit}\n  shaping: [{link: r2-h1, rate: 10Mbit}, {link: client, delay: 2ms}]\n',
    );
    const plan = planRemoteShaping(t, map(inv('a', 'r1-h1', 'eno1', 'eno2'), inv('b', 'r2-h1', 'eno1', 'eno2')), caps(ALL, 'a', 'b'));
    expect(plan.hosts.map((h) => [h.host, h.nics.map((n) => n.link)])).toEqual([['b', ['r2-h1']]]);
    expect(plan.skipped.map((s) => s.link)).toEqual(['r1/up', 'r1/up/mig', 'r2/up', 'r2/up/mig', 'client']);
    expect(plan.skipped[0].reason).toMatch(/switch-side link \(uplink\)/);
  });

  it('refuses delay/loss where the server has no netem, naming host and what is missing', () => {
    const t = topo('  racks: [{name: r1, hosts: 2}]\n  shaping: [{link: r1-h2/mig, delay: 5ms, loss: 1%}]\n');
    const f = () =>
      planRemoteShaping(
        t,
        map(inv('s1', 'r1-h1', 'e0', 'e1'), inv('s2', 'r1-h2', 'e0', 'e1')),
        caps({ htb: true, netem: false }, 's1', 's2'),
      );
    expect(f).toThrow(UserError);
    expect(f).toThrow(
      /^shaping: host s2: link r1-h2\/mig has delay 5 ms, loss 1 % but the kernel there has no netem qdisc .* mb-delayfwd exists only in the local testbed/,
    );
    const noHtb = () =>
      planRemoteShaping(
        topo('  racks: [{name: r1, hosts: 1, host_nic: {rate: 1Gbit}}]\n'),
        map(inv('s1', 'r1-h1', 'e0', 'e1')),
        caps({ htb: false, netem: true }, 's1'),
      );
    expect(noHtb).toThrow(/shaping is not possible:\n {2}host s1: link r1-h1 has a rate but the kernel there has no htb qdisc/);
  });

  it('needs the interface names of shaped links, and one constraint per NIC', () => {
    const t = topo('  racks: [{name: r1, hosts: 1}]\n  shaping: [{link: r1-h1/mig, rate: 1Gbit}]\n');
    expect(() => planRemoteShaping(t, map(inv('s1', 'r1-h1', 'eno1')), caps(ALL, 's1'))).toThrow(
      'shaping: inv.yaml: hosts[s1]: the spec shapes link r1-h1/mig but server s1 has no migration.iface; give the interface name',
    );
    const both = topo('  racks: [{name: r1, hosts: 1}]\n  shaping: [{link: r1-h1/mig, rate: 1Gbit}, {link: r1-h1, rate: 100Mbit}]\n');
    expect(() => planRemoteShaping(both, map(inv('s1', 'r1-h1', 'eno1', 'eno1')), caps(ALL, 's1'))).toThrow(
      /links r1-h1 and r1-h1\/mig both go through eno1 with different constraints/,
    );
    const same = topo('  racks: [{name: r1, hosts: 1, host_nic: {rate: 1Gbit}}]\n');
    const plan = planRemoteShaping(same, map(inv('s1', 'r1-h1', 'eno1', 'eno1')), caps(ALL, 's1'));
    expect(plan.hosts[0].nics.map((n) => n.link)).toEqual(['r1-h1']);
  });
});
