import { execFileSync } from 'node:child_process';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { kvmStartVerdict } from '../../harness/driver/ssh/kvm-probe.ts';
import { requirementsOf } from '../../harness/driver/ssh/session.ts';
import { sshTopology } from '../../harness/driver/ssh/topology.ts';
import { inventoryFromObject, type InventoryHost } from '../../harness/inventory/load.ts';
import { mapSpecHosts } from '../../harness/inventory/mapping.ts';
import { parseSpecText } from '../../harness/spec/load.ts';
import { expectedPath, pathBetween } from '../../harness/testbed/topology.ts';
import { UserError } from '../../harness/util/errors.ts';

/** The spec's topology on an inventory's servers (pure parts of the ssh driver). */
let dir: string;
let key: string;

beforeAll(() => {
  dir = mkdtempSync(join(tmpdir(), 'mb-p-sshdrv-'));
  key = join(dir, 'id');
  execFileSync('ssh-keygen', ['-q', '-t', 'ed25519', '-N', '', '-f', key]);
});
afterAll(() => rmSync(dir, { recursive: true, force: true }));

const SPEC = `
name: t
testbed:
  racks: [{name: r1, hosts: 2}]
  migration_network: dedicated
  shaping: [{link: r1-h1/mig, rate: 100mbit}, {link: r1-h2/mig, rate: 50mbit, delay: 5ms}]
vms: [{name: vm1, host: r1-h1, memory: 128MiB}, {name: vm2, host: r1-h2, memory: 64MiB}]
migration: {moves: [{vm: vm1, to: r1-h2}]}
`;

function servers(withMig: boolean): Map<string, InventoryHost> {
  const inv = inventoryFromObject(
    {
      defaults: { user: 'root', key_file: key, bridge: 'br0' },
      hosts: ['a', 'b'].map((n, i) => ({
        name: `node-${n}`,
        address: `192.0.2.${i + 1}`,
        data: { iface: 'eno1', address: `10.1.0.${i + 1}/24` },
        ...(withMig ? { migration: { iface: 'eno2', address: `10.2.0.${i + 1}/24` } } : {}),
      })),
    },
    'inv.yaml',
    dir,
  );
  return mapSpecHosts([{ name: 'r1', hosts: ['r1-h1', 'r1-h2'] }], inv);
}

describe('ssh topology', () => {
  const { spec } = parseSpecText(SPEC, 'spec.yaml');

  it('keeps the spec links and rates and takes the servers addresses', () => {
    const topo = sshTopology(spec.testbed, 't', servers(true));
    expect(topo.hosts.map((h) => [h.name, h.dataIp, h.migIp])).toEqual([
      ['r1-h1', '10.1.0.1', '10.2.0.1'],
      ['r1-h2', '10.1.0.2', '10.2.0.2'],
    ]);
    expect(topo.clientNs).toBeNull();
    expect(topo.hosts.every((h) => h.ns === '')).toBe(true);
    // the physical bound of a migration h1 -> h2 is the slower of the two shaped NICs
    expect(expectedPath(pathBetween(topo, 'r1-h1', 'r1-h2', 'mig')).rateBps).toBe(50e6);
  });

  it('refuses a dedicated migration network without migration addresses, naming the server', () => {
    expect(() => sshTopology(spec.testbed, 't', servers(false))).toThrow(UserError);
    expect(() => sshTopology(spec.testbed, 't', servers(false))).toThrow(/node-a has no migration.address/);
  });

  it('asks preflight for htb, netem and room for every guest', () => {
    const req = requirementsOf(spec, 'r1-h1');
    expect(req.htb).toBe(true);
    expect(req.netem).toBe(true);
    expect(req.minAvailableBytes).toBe((128 + 64 + 256) * 2 ** 20);
  });
});

describe('KVM start probe verdict (outputs recorded from QEMU 10.0.2 here)', () => {
  it('a paused machine that answers its status is a working KVM vCPU', () => {
    const out = [
      '{"QMP": {"version": {"qemu": {"micro": 2, "minor": 0, "major": 10}, "package": ""}, "capabilities": ["oob"]}}',
      '{"return": {}}',
      '{"return": {"status": "prelaunch", "running": false}}',
      '{"timestamp": {"seconds": 1796059277, "microseconds": 2485}, "event": "SHUTDOWN", "data": {"guest": false, "reason": "host-qmp-quit"}}',
      '{"return": {}}',
    ].join('\n');
    expect(kvmStartVerdict(out, 0).ok).toBe(true);
  });

  it('the MSR abort seen on this machine is not, and the reason is kept', () => {
    const out = [
      '{"QMP": {"version": {"qemu": {"micro": 2, "minor": 0, "major": 10}, "package": ""}, "capabilities": ["oob"]}}',
      'qemu-system-x86_64: error: failed to set MSR 0x10a to 0xc000069',
      "qemu-system-x86_64: target/i386/kvm/kvm.c:3849: kvm_buf_set_msrs: Assertion `ret == cpu->kvm_msr_buf->nmsrs' failed.",
    ].join('\n');
    const v = kvmStartVerdict(out, 134);
    expect(v.ok).toBe(false);
    expect(v.detail).toMatch(/failed to set MSR 0x10a/);
  });
});
