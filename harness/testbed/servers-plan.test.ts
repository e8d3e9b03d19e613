import { readFileSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import { loadInventory } from '../inventory/load.ts';
import { parseSpecText } from '../spec/load.ts';
import {
  bootScript,
  CLIENT_MOUNTS,
  formatServerStep,
  hostUuid,
  planServers,
  QEMU_CONF,
  serversInventory,
  sshdConfig,
} from './servers-plan.ts';
import { buildTopology } from './topology.ts';
import { testScratchDir } from '../../test/support/scratch.ts';

const SPEC = `
name: t
testbed:
  racks:
    - {name: r1, hosts: 2}
    - {name: r2, hosts: 1}
`;

function plan(dir = '/run/migbench/tb-servers', yaml = SPEC, mgmt = true) {
  const { spec } = parseSpecText(yaml, 't.yaml');
  return planServers(buildTopology(spec.testbed, 'tb', { mgmt }), dir);
}

describe('emulated cluster plan', () => {
  it('refuses a topology without the management network', () => {
    expect(() => plan(undefined, SPEC, false)).toThrow(/management network/);
  });

  it('gives each host a server on its management address with private files under the testbed dir', () => {
    const { state } = plan();
    expect(state.servers.map((s) => [s.name, s.rack, s.ns, s.address, s.dataIp, s.migIp])).toEqual([
      ['r1-h1', 'r1', 'mb-tb-r1-h1', '10.233.1.1', '10.231.1.1', '10.232.1.1'],
      ['r1-h2', 'r1', 'mb-tb-r1-h2', '10.233.1.2', '10.231.1.2', '10.232.1.2'],
      ['r2-h1', 'r2', 'mb-tb-r2-h1', '10.233.2.1', '10.231.2.1', '10.232.2.1'],
    ]);
    expect(state).toMatchObject({
      dir: '/run/migbench/tb-servers',
      controllerIf: null,
      controllerAddr: '10.233.0.254',
      clientKey: '/run/migbench/tb-servers/id_ed25519',
      knownHosts: '/run/migbench/tb-servers/known_hosts',
    });
    for (const s of state.servers) expect(s.dir).toBe(`/run/migbench/tb-servers/${s.name}`);
  });

  it('creates the private dir (0700) and keys first, the controller port before the servers, and starts them last', () => {
    const lines = plan().steps.map(formatServerStep);
    expect(lines[0]).toBe('mkdir -m 700 /run/migbench/tb-servers');
    expect(lines[1]).toBe("ssh-keygen -q -t ed25519 -N '' -C migbench-tb-controller -f /run/migbench/tb-servers/id_ed25519");
    const ctl = lines.indexOf('ip link add mb-ctl type veth peer name mb-ctlp netns mb-tb-sw');
    expect(lines.slice(ctl, ctl + 5)).toEqual([
      'ip link add mb-ctl type veth peer name mb-ctlp netns mb-tb-sw',
      'ip -n mb-tb-sw link set mb-ctlp master mb-mgmt',
      'ip -n mb-tb-sw link set mb-ctlp up',
      'ip addr add 10.233.0.254/16 dev mb-ctl',
      'ip link set mb-ctl up',
    ]);
    expect(lines.slice(-4)).toEqual(
      ['r1-h1', 'r1-h2', 'r2-h1', 'client'].map(
        (h) =>
          `mb-reaper ip netns exec mb-tb-${h} unshare --mount --uts --propagation private sh /run/migbench/tb-servers/${h}/boot.sh ` +
          `> /run/migbench/tb-servers/${h}/server.log  [server-${h}]`,
      ),
    );
    expect(lines).toContain(
      'known_hosts /run/migbench/tb-servers/known_hosts: r1-h1,10.233.1.1 r1-h2,10.233.1.2 r2-h1,10.233.2.1 client,10.233.0.250',
    );
    expect(lines).toContain(
      'cp /run/migbench/tb-servers/id_ed25519.pub /run/migbench/tb-servers/r2-h1/root/.ssh/authorized_keys (mode 600)',
    );
    expect(lines).toContain(
      "ssh-keygen -q -t ed25519 -N '' -C r1-h2@migbench-tb -f /run/migbench/tb-servers/r1-h2/run/mb-sshd/ssh_host_ed25519_key",
    );
    // the root-namespace interface is the only step marked for recording before it runs
    expect(plan().steps.filter((s) => s.kind === 'run' && s.rootIf).length).toBe(1);
  });

  it('boot script: private mounts with /run last, then libvirtd, then exec sshd', () => {
    const s = plan().state.servers[1];
    const text = bootScript(s);
    const order = [
      "exec 3>>'/run/migbench/tb-servers/r1-h2/pids'",
      "hostname 'r1-h2'",
      "mount --bind '/run/migbench/tb-servers/r1-h2/hosts' /etc/hosts",
      "mount --bind '/run/migbench/tb-servers/r1-h2/etc-libvirt' /etc/libvirt",
      "mount --bind '/run/migbench/tb-servers/r1-h2/var-lib-libvirt' /var/lib/libvirt",
      "mount --bind '/run/migbench/tb-servers/r1-h2/tmp' /tmp",
      "mount --bind '/run/migbench/tb-servers/r1-h2/run' /run",
      'libvirtd &',
      'echo "libvirtd $!" >&3',
      'exec /usr/sbin/sshd -D -e -f /run/mb-sshd/sshd_config',
    ];
    const at = order.map((l) => text.split('\n').indexOf(l));
    expect(
      at.every((i) => i >= 0),
      text,
    ).toBe(true);
    expect([...at].sort((a, b) => a - b)).toEqual(at);
    expect(
      text
        .split('\n')
        .filter((l) => l.startsWith('mount'))
        .at(-1),
    ).toContain(' /run');
  });

  it('quotes hostile directory names in the boot script', () => {
    const s = { ...plan().state.servers[0], dir: "/x/it's $(rm -rf /)", pidsFile: "/x/it's/pids" };
    const text = bootScript(s);
    expect(text).toContain(`mount --bind '/x/it'\\''s $(rm -rf /)/run' /run`);
    expect(text).toContain(`exec 3>>'/x/it'\\''s/pids'`);
  });

  it('sshd: key-only root login on the management address; QEMU as root without virtlogd', () => {
    const cfg = sshdConfig({ address: '10.233.1.2' });
    for (const l of [
      'ListenAddress 10.233.1.2',
      'PasswordAuthentication no',
      'PermitRootLogin prohibit-password',
      'UsePAM no',
      'HostKey /run/mb-sshd/ssh_host_ed25519_key',
      'Subsystem sftp internal-sftp',
    ])
      expect(cfg.split('\n')).toContain(l);
    for (const l of ['user = "root"', 'group = "root"', 'stdio_handler = "file"', 'cgroup_controllers = [ ]'])
      expect(QEMU_CONF.split('\n')).toContain(l);
  });

  it('gives every server its own stable host UUID (libvirt refuses migration between equal UUIDs)', () => {
    const a = hostUuid('tb', 'r1-h1');
    expect(a).toMatch(/^[0-9a-f]{8}-[0-9a-f]{4}-4[0-9a-f]{3}-a[0-9a-f]{3}-[0-9a-f]{12}$/);
    expect(hostUuid('tb', 'r1-h1')).toBe(a);
    expect(hostUuid('tb', 'r1-h2')).not.toBe(a);
    expect(hostUuid('tc', 'r1-h1')).not.toBe(a);
  });

  it('prints an inventory the inventory loader accepts', () => {
    const dir = testScratchDir('mb-servers-');
    const { state } = plan(dir);
    writeFileSync(state.clientKey, 'not a real key\n');
    const file = join(dir, 'inv.yaml');
    writeFileSync(file, serversInventory('tb', state, { hypervisor: 'qemu' }));
    const inv = loadInventory(file, { env: {} });
    expect(
      inv.hosts.map((h) => ({
        name: h.name,
        rack: h.rack,
        ssh: h.ssh,
        data: h.data,
        migration: h.migration,
        bridge: h.bridge,
        hv: h.hypervisor,
      }))[2],
    ).toEqual({
      name: 'r2-h1',
      rack: 'r2',
      ssh: { name: 'r2-h1', host: '10.233.2.1', port: 22, user: 'root', keyFile: state.clientKey },
      data: { iface: 'mb-data', address: '10.231.2.1/16' },
      migration: { iface: 'mb-mig', address: '10.232.2.1/16' },
      bridge: 'mb-br',
      hv: 'qemu',
    });
    expect(inv.hostKeys).toMatchObject({ mode: 'strict', ownKnownHosts: state.knownHosts });
    expect(inv.hosts.map((h) => h.specHost)).toEqual(['r1-h1', 'r1-h2', 'r2-h1']);
    expect(inv.hosts[0].bmc).toBeUndefined();
    // once the BMCs run: each host's BMC on its management address, a named sensor, the password only in the secrets file
    writeFileSync(file, serversInventory('tb', { ...state, bmcSecrets: join(dir, 'bmc-secrets.yaml') }, { hypervisor: 'qemu' }));
    const withBmc = loadInventory(file, { env: {} });
    expect(withBmc.hosts[2].bmc).toEqual({ address: '10.233.2.1', user: 'mbadmin', port: undefined, sensor: 'Power' });
    expect(withBmc.bmcSecrets).toBe(join(dir, 'bmc-secrets.yaml'));
    expect(readFileSync(file, 'utf8')).not.toMatch(/password/);
  });

  it('gives the client namespace its own sshd on the management network, without libvirt', () => {
    const { state, steps } = plan();
    expect(state.client).toMatchObject({
      name: 'client',
      ns: 'mb-tb-client',
      address: '10.233.0.250',
      dataIp: '10.231.0.250',
      dir: '/run/migbench/tb-servers/client',
      pidsFile: '/run/migbench/tb-servers/client/pids',
    });
    const lines = steps.map(formatServerStep);
    const mine = lines.filter((l) => l.includes('/tb-servers/client'));
    expect(mine).toEqual([
      'mkdir -m 700 /run/migbench/tb-servers/client',
      'mkdir -m 755 /run/migbench/tb-servers/client/root',
      'mkdir -m 1777 /run/migbench/tb-servers/client/tmp',
      'mkdir -m 755 /run/migbench/tb-servers/client/run',
      'mkdir -m 700 /run/migbench/tb-servers/client/root/.ssh',
      'mkdir -m 700 /run/migbench/tb-servers/client/run/mb-sshd',
      expect.stringMatching(/^write \/run\/migbench\/tb-servers\/client\/hosts /),
      expect.stringMatching(/^write \/run\/migbench\/tb-servers\/client\/run\/mb-sshd\/sshd_config \(mode 600/),
      expect.stringMatching(/^write \/run\/migbench\/tb-servers\/client\/run\/mb-server /),
      "ssh-keygen -q -t ed25519 -N '' -C client@migbench-tb -f /run/migbench/tb-servers/client/run/mb-sshd/ssh_host_ed25519_key",
      'cp /run/migbench/tb-servers/id_ed25519.pub /run/migbench/tb-servers/client/root/.ssh/authorized_keys (mode 600)',
      expect.stringMatching(/^write \/run\/migbench\/tb-servers\/client\/boot\.sh \(mode 700/),
      expect.stringMatching(/^write \/run\/migbench\/tb-servers\/client\/pids /),
      'mb-reaper ip netns exec mb-tb-client unshare --mount --uts --propagation private sh /run/migbench/tb-servers/client/boot.sh ' +
        '> /run/migbench/tb-servers/client/server.log  [server-client]',
    ]);
    // the controller's key never lands on the client (it logs into no server)
    expect(lines.some((l) => l.includes('client/root/.ssh/id_ed25519'))).toBe(false);
    // started after the controller port exists, like the servers
    expect(lines.indexOf('ip link set mb-ctl up')).toBeLessThan(lines.length - 1);
    const text = bootScript(state.client!, { libvirt: false });
    expect(text).not.toMatch(/libvirt/);
    expect(text.split('\n').filter((l) => l.startsWith('mount'))).toEqual([
      "mount --bind '/run/migbench/tb-servers/client/hosts' /etc/hosts",
      ...CLIENT_MOUNTS.map(([sub, at]) => `mount --bind '/run/migbench/tb-servers/client/${sub}' ${at}`),
    ]);
    expect(text.trim().split('\n').at(-1)).toBe('exec /usr/sbin/sshd -D -e -f /run/mb-sshd/sshd_config');
    expect(sshdConfig(state.client!)).toContain('ListenAddress 10.233.0.250');
  });

  it('has no client node when the spec has no client', () => {
    const { state, steps } = plan(undefined, SPEC.replace('testbed:\n', 'testbed:\n  client: false\n'));
    expect(state.client).toBeNull();
    expect(steps.map(formatServerStep).some((l) => l.includes('client'))).toBe(false);
  });

  it('prints the client in the inventory; the loader resolves it', () => {
    const dir = testScratchDir('mb-servers-');
    const { state } = plan(dir);
    writeFileSync(state.clientKey, 'not a real key\n');
    const file = join(dir, 'inv.yaml');
    writeFileSync(file, serversInventory('tb', state));
    const inv = loadInventory(file, { env: {} });
    expect(inv.client).toEqual({ name: 'client', host: '10.233.0.250', port: 22, user: 'root', keyFile: state.clientKey });
    expect(inv.hosts.map((h) => h.name)).not.toContain('client');
  });

  it('omits the migration interface on a shared migration network', () => {
    const dir = testScratchDir('mb-servers-');
    const { state } = plan(dir, SPEC.replace('testbed:\n', 'testbed:\n  migration_network: shared\n'));
    expect(serversInventory('tb', state)).not.toContain('mb-mig');
  });
});
