import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { execa } from 'execa';
import { existsSync, readFileSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { loadInventory, type Inventory } from '../../harness/inventory/load.ts';
import { statePath, type TestbedState } from '../../harness/testbed/state.ts';
import { isProcessAlive, ownProcess, type OwnedProcess } from '../../harness/util/procs.ts';
import { stateDir } from '../../harness/util/paths.ts';
import { linksNamedMb, migbench, netnsList, ROOT } from '../support/cli.ts';
import { fileScratchDir } from '../support/scratch.ts';

/**
 * The emulated cluster: `testbed up --servers` on 2 hosts, then only plain OpenSSH from the
 * root namespace (BatchMode, the generated key and known_hosts) to reach each server's own
 * sshd and libvirtd; a TCG domain started on one server is invisible to the other; `down`
 * leaves nothing behind.
 */
const SPEC = `${ROOT}test/e2e/specs/servers.yaml`;
const SECOND = `${ROOT}test/e2e/specs/servers-second.yaml`;

let state: TestbedState;
let inv: Inventory;

function sshOpts(): string[] {
  const s = state.servers!;
  return [
    '-F',
    '/dev/null',
    '-i',
    s.clientKey,
    '-o',
    'BatchMode=yes',
    '-o',
    `UserKnownHostsFile=${s.knownHosts}`,
    '-o',
    'GlobalKnownHostsFile=/dev/null',
    '-o',
    'StrictHostKeyChecking=yes',
    '-o',
    'ConnectTimeout=10',
  ];
}

async function ssh(host: string, cmd: string, input?: string) {
  const h = inv.hosts.find((x) => x.name === host)!;
  const r = await execa('ssh', [...sshOpts(), '-p', String(h.ssh.port), `${h.ssh.user}@${h.ssh.host}`, cmd], { reject: false, input });
  return { code: r.exitCode, out: String(r.stdout).trim(), err: String(r.stderr).trim() };
}

async function guestImage(): Promise<{ kernel: string; initrd: string }> {
  const { buildGuestImage } = await import('../../harness/image/build.ts');
  const img = await buildGuestImage();
  return { kernel: img.kernel, initrd: img.initrd };
}

describe('emulated cluster (testbed up --servers)', () => {
  let recorded: OwnedProcess[] = [];
  let qemu: OwnedProcess | null = null;
  const invDir = fileScratchDir('mb-h7-');

  beforeAll(async () => {
    await migbench(['testbed', 'down', 'mbh7']);
    const t0 = Date.now();
    const r = await migbench(['testbed', 'up', SPEC, '--servers']);
    expect(r.exitCode, String(r.stderr) + String(r.stdout)).toBe(0);
    console.log(`up --servers (2 hosts): ${((Date.now() - t0) / 1000).toFixed(1)} s`);
    state = JSON.parse(readFileSync(statePath('mbh7'), 'utf8')) as TestbedState;
    const out = await migbench(['testbed', 'inventory', 'mbh7']);
    expect(out.exitCode, String(out.stderr)).toBe(0);
    const file = join(invDir, 'inventory.yaml');
    writeFileSync(file, String(out.stdout));
    // the inventory loader of the ssh driver accepts exactly what we print
    inv = loadInventory(file, { env: {} });
  });

  afterAll(async () => {
    await migbench(['testbed', 'down', 'mbh7']);
  });

  it('prints an inventory the inventory loader accepts, with keys and known_hosts of this testbed', () => {
    expect(inv.hosts.map((h) => [h.name, h.ssh.host, h.ssh.user, h.ssh.port, h.rack])).toEqual([
      ['r1-h1', '10.233.1.1', 'root', 22, 'r1'],
      ['r1-h2', '10.233.1.2', 'root', 22, 'r1'],
    ]);
    expect(inv.hosts[0]).toMatchObject({
      data: { iface: 'mb-data', address: '10.231.1.1/16' },
      migration: { iface: 'mb-mig', address: '10.232.1.1/16' },
      bridge: 'mb-br',
      hypervisor: 'libvirt',
    });
    expect(inv.hosts[0].ssh.keyFile).toBe(state.servers!.clientKey);
    expect(inv.client).toMatchObject({ name: 'client', host: '10.233.0.250', user: 'root', keyFile: state.servers!.clientKey });
    expect(inv.hostKeys).toMatchObject({ mode: 'strict', ownKnownHosts: state.servers!.knownHosts });
  });

  it('refuses a second emulated cluster while this one is up, creating nothing', async () => {
    const before = await netnsList();
    const r = await migbench(['testbed', 'up', SECOND, '--servers']);
    expect(r.exitCode).toBe(2);
    expect(String(r.stderr)).toMatch(/testbed 'mbh7' already runs an emulated cluster .* run 'migbench testbed down mbh7' first/);
    expect(await netnsList()).toEqual(before);
    expect(existsSync(statePath('mbh7b'))).toBe(false);
  });

  it('each server answers over plain ssh with its own libvirt (>= 11), hostname and /run', async () => {
    const t0 = Date.now();
    const res = await Promise.all(
      inv.hosts.map(async (h) => ({
        name: h.name,
        version: await ssh(h.name, 'virsh -c qemu:///system version'),
        view: await ssh(h.name, 'hostname; cat /run/mb-server; ls /run; test -e /run/migbench && echo LEAK || echo private'),
      })),
    );
    console.log(`first virsh version on 2 servers in parallel: ${((Date.now() - t0) / 1000).toFixed(1)} s`);
    for (const r of res) {
      expect(r.version.code, r.version.err).toBe(0);
      const m = /Using library: libvirt (\d+)\.(\d+)/.exec(r.version.out);
      expect(Number(m?.[1])).toBeGreaterThanOrEqual(11);
      expect(r.version.out).toMatch(/Running hypervisor: QEMU \d+/);
      const lines = r.view.out.split('\n');
      expect(lines[0]).toBe(r.name);
      expect(lines[1]).toBe(r.name);
      expect(lines).toContain('libvirt');
      expect(lines).not.toContain('netns');
      expect(lines.at(-1)).toBe('private');
    }
    const t1 = Date.now();
    expect((await ssh('r1-h1', 'virsh -c qemu:///system version')).code).toBe(0);
    console.log(`later ssh + virsh version: ${((Date.now() - t1) / 1000).toFixed(1)} s`);
  });

  it('a TCG domain started on one server runs as root there and is invisible to the other', async () => {
    const img = await guestImage();
    const scp = await execa('scp', [...sshOpts(), '-q', img.kernel, img.initrd, 'root@10.233.1.1:/var/lib/libvirt/images/'], {
      reject: false,
    });
    expect(scp.exitCode, String(scp.stderr)).toBe(0);
    const xml = `<domain type='qemu'><name>h7vm</name><memory unit='MiB'>64</memory><vcpu>1</vcpu>
  <os><type arch='x86_64' machine='pc'>hvm</type><kernel>/var/lib/libvirt/images/vmlinuz</kernel>
  <initrd>/var/lib/libvirt/images/initrd.img</initrd><cmdline>console=ttyS0</cmdline></os>
  <devices><serial type='pty'/><console type='pty'/>
  <interface type='bridge'><source bridge='mb-br'/><model type='virtio'/></interface></devices></domain>`;
    const start = await ssh('r1-h1', 'cat > /tmp/h7vm.xml && virsh define /tmp/h7vm.xml && virsh start h7vm && virsh domstate h7vm', xml);
    expect(start.code, start.err).toBe(0);
    expect(start.out).toMatch(/running$/);
    const pid = Number((await ssh('r1-h1', 'cat /run/libvirt/qemu/h7vm.pid')).out);
    expect(pid).toBeGreaterThan(0);
    // the QEMU process lives in r1-h1's network namespace and runs as root
    const inNs = await execa('ip', ['netns', 'pids', 'mb-mbh7-r1-h1']);
    expect(String(inNs.stdout).split('\n').map(Number)).toContain(pid);
    expect(readFileSync(`/proc/${pid}/status`, 'utf8')).toMatch(/^Uid:\s+0\s/m);
    qemu = ownProcess(pid, 'qemu h7vm');
    const other = await ssh('r1-h2', 'virsh list --all --name; ls /run/libvirt/qemu /var/lib/libvirt/images /etc/libvirt/qemu; ls /tmp');
    expect(other.code, other.err).toBe(0);
    expect(other.out).not.toMatch(/h7vm|vmlinuz|initrd/);
    const own = await ssh('r1-h1', 'ls /run/libvirt/qemu /etc/libvirt/qemu');
    expect(own.out).toMatch(/h7vm\.pid/);
    expect(own.out).toMatch(/h7vm\.xml/);
  });

  it('servers reach each other as root over ssh, and libvirt live-migrates the domain peer-to-peer on the migration network', async () => {
    const hop = await ssh('r1-h1', 'ssh -o BatchMode=yes -o StrictHostKeyChecking=yes r1-h2 hostname');
    expect(hop.code, hop.err).toBe(0);
    expect(hop.out).toBe('r1-h2');
    // direct kernel boot: the destination QEMU opens the same kernel and initrd paths
    const img = await guestImage();
    const scp = await execa('scp', [...sshOpts(), '-q', img.kernel, img.initrd, 'root@10.233.1.2:/var/lib/libvirt/images/'], {
      reject: false,
    });
    expect(scp.exitCode, String(scp.stderr)).toBe(0);
    const t0 = Date.now();
    const mig = await ssh(
      'r1-h1',
      'virsh migrate --live --p2p --persistent --undefinesource h7vm qemu+ssh://r1-h2/system tcp://10.232.1.2',
    );
    expect(mig.code, mig.err + mig.out).toBe(0);
    console.log(`virsh migrate --live --p2p (64 MiB TCG guest): ${((Date.now() - t0) / 1000).toFixed(1)} s`);
    expect((await ssh('r1-h2', 'virsh domstate h7vm')).out).toBe('running');
    expect((await ssh('r1-h1', 'virsh list --all --name')).out).not.toContain('h7vm');
    const pid = Number((await ssh('r1-h2', 'cat /run/libvirt/qemu/h7vm.pid')).out);
    const inNs = await execa('ip', ['netns', 'pids', 'mb-mbh7-r1-h2']);
    expect(String(inNs.stdout).split('\n').map(Number)).toContain(pid);
    qemu = ownProcess(pid, 'qemu h7vm on r1-h2');
    // left running on purpose: `down` must end it
  });

  it('down leaves no namespace, process, interface, key or file behind', async () => {
    state = JSON.parse(readFileSync(statePath('mbh7'), 'utf8')) as TestbedState;
    recorded = state.processes;
    // every server's BMC simulator, and the process that feeds them the power model
    expect(recorded.map((p) => p.tag).sort()).toEqual([
      'bmcs',
      'ipmi_sim-r1-h1',
      'ipmi_sim-r1-h2',
      'libvirtd-r1-h1',
      'libvirtd-r1-h2',
      'server-client',
      'server-r1-h1',
      'server-r1-h2',
    ]);
    expect(recorded.every(isProcessAlive)).toBe(true);
    const r = await migbench(['testbed', 'down', 'mbh7']);
    expect(r.exitCode, String(r.stderr)).toBe(0);
    expect((await netnsList()).filter((n) => n.startsWith('mb-mbh7-'))).toEqual([]);
    expect(recorded.filter(isProcessAlive)).toEqual([]);
    expect(qemu && isProcessAlive(qemu)).toBe(false);
    expect(await linksNamedMb()).not.toContain('mb-ctl');
    expect(existsSync(state.servers!.dir)).toBe(false);
    expect(existsSync(statePath('mbh7'))).toBe(false);
    expect(state.servers!.dir.startsWith(stateDir())).toBe(true);
    const route = await execa('ip', ['-4', 'route', 'show', '10.233.0.0/16']);
    expect(String(route.stdout).trim()).toBe('');
  });
});

describe('emulated cluster after kill -9 of the harness during up', () => {
  it('down removes the servers started so far, their libvirtd, the controller port and the private dir', async () => {
    await migbench(['testbed', 'down', 'mbh7']);
    const child = execa('node', [`${ROOT}bin/migbench.js`, 'testbed', 'up', SPEC, '--servers'], { reject: false, cwd: ROOT });
    // killed as soon as a server launcher is recorded: sshd may not listen yet, libvirtd may not be recorded
    let s: TestbedState | null = null;
    const deadline = Date.now() + 60_000;
    while (Date.now() < deadline) {
      try {
        s = JSON.parse(readFileSync(statePath('mbh7'), 'utf8')) as TestbedState;
      } catch {
        s = null;
      }
      if (s?.processes.some((p) => p.tag.startsWith('server-'))) break;
      await new Promise((r) => setTimeout(r, 10));
    }
    child.kill('SIGKILL');
    await child;
    expect(s?.servers?.controllerIf).toBe('mb-ctl');
    await new Promise((r) => setTimeout(r, 1000)); // let the boot script start libvirtd
    const inNs = async () =>
      (await Promise.all(s!.servers!.servers.map((v) => execa('ip', ['netns', 'pids', v.ns], { reject: false })))).flatMap((r) =>
        String(r.stdout)
          .split('\n')
          .map(Number)
          .filter((n) => n > 0),
      );
    const before = (await inNs()).map((pid) => ownProcess(pid, 'in server ns'));
    expect(before.length).toBeGreaterThan(0);
    const r = await migbench(['testbed', 'down', 'mbh7']);
    expect(r.exitCode, String(r.stderr)).toBe(0);
    expect(before.filter(isProcessAlive)).toEqual([]);
    expect((await netnsList()).filter((n) => n.startsWith('mb-mbh7-'))).toEqual([]);
    expect(await linksNamedMb()).not.toContain('mb-ctl');
    expect(existsSync(s!.servers!.dir)).toBe(false);
    expect(existsSync(statePath('mbh7'))).toBe(false);
  });
});
