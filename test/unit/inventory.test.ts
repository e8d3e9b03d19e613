import { execFileSync } from 'node:child_process';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join, resolve } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { bmcLogin } from '../../harness/inventory/bmc.ts';
import { loadInventory, inventoryFromObject } from '../../harness/inventory/load.ts';
import { mapSpecHosts } from '../../harness/inventory/mapping.ts';
import { expandPath, parseNodefile } from '../../harness/inventory/nodefile.ts';
import { UserError } from '../../harness/util/errors.ts';

const FIX = resolve('test/fixtures/inventory');
let dir: string;
let env: NodeJS.ProcessEnv;

beforeAll(() => {
  dir = mkdtempSync(join(tmpdir(), 'mb-p-inv-'));
  const key = join(dir, 'id_test');
  execFileSync('ssh-keygen', ['-q', '-t', 'ed25519', '-N', '', '-f', key]);
  env = { MB_TEST_KEY: key, HOME: dir, OAR_NODEFILE: join(FIX, 'nodes.txt') };
});

afterAll(() => rmSync(dir, { recursive: true, force: true }));

/** Writes an inventory file and returns the UserError message loading it gives. */
function errorOf(yaml: string, e: NodeJS.ProcessEnv = env): string {
  const f = join(dir, `inv-${Math.random().toString(36).slice(2)}.yaml`);
  writeFileSync(f, yaml);
  try {
    loadInventory(f, { env: e });
  } catch (err) {
    expect(err).toBeInstanceOf(UserError);
    return (err as Error).message.replace(f, 'INV');
  }
  throw new Error('expected an inventory error');
}

const head = () => `defaults: { user: root, key_file: ${env.MB_TEST_KEY} }\n`;

describe('OAR node file', () => {
  it('collapses per-core duplicates in first-seen order, skips blank lines, counts cores', () => {
    const nf = parseNodefile('a.example\na.example\n\n  b.example  \r\nA.example\nc\n# comment\n');
    expect(nf.issues).toEqual([]);
    expect(nf.hosts).toEqual([
      { name: 'a.example', line: 1, cores: 3 },
      { name: 'b.example', line: 4, cores: 1 },
      { name: 'c', line: 6, cores: 1 },
    ]);
  });

  it('reports every bad line with file:line', () => {
    const nf = parseNodefile('ok-1\ngros 2.x\n\ngros_3.x\n-bad.example\nok-2\n');
    expect(nf.issues.map((i) => i.line)).toEqual([2, 4, 5]);
    const f = join(FIX, 'bad-nodes.txt');
    const msg = errorOf(`${head()}oar_nodefile: ${f}\n`);
    expect(msg).toContain(`${f}:2: "gros 2.nancy.grid5000.fr" has spaces inside`);
    expect(msg).toContain(`${f}:4: "gros_3.nancy.grid5000.fr" is not a host name`);
    expect(msg).toContain(`${f}:5: "-bad.example" is not a host name`);
    expect(msg).toMatch(/3 bad lines/);
  });

  it('expands $OAR_NODEFILE and applies the template and host_settings', () => {
    const inv = loadInventory(join(FIX, 'oar.yaml'), { env });
    expect(inv.kind).toBe('oar_nodefile');
    expect(inv.nodefile).toBe(join(FIX, 'nodes.txt'));
    expect(inv.hosts.map((h) => h.name)).toEqual(['gros-1.nancy.grid5000.fr', 'gros-7.nancy.grid5000.fr', 'gros-3.nancy.grid5000.fr']);
    expect(inv.hosts.map((h) => h.where)).toEqual([1, 5, 7].map((l) => `${join(FIX, 'nodes.txt')}:${l}`));
    const h = inv.hosts[1];
    expect(h).toMatchObject({ hypervisor: 'libvirt', specHost: 'r1-h1', data: { iface: 'eno1' } });
    expect(h.ssh).toEqual({ name: h.name, host: h.name, port: 22, user: 'root', keyFile: env.MB_TEST_KEY });
  });

  it('says what to do when $OAR_NODEFILE is unset or the file is empty', () => {
    expect(errorOf(`${head()}oar_nodefile: $OAR_NODEFILE\n`, { ...env, OAR_NODEFILE: undefined })).toBe(
      'INV: oar_nodefile: $OAR_NODEFILE is not set (run inside an OAR job, or give the node file path)',
    );
    const empty = join(dir, 'empty-nodes');
    writeFileSync(empty, '\n\n');
    expect(errorOf(`${head()}oar_nodefile: ${empty}\n`)).toMatch(/lists no host/);
    expect(errorOf(`${head()}oar_nodefile: ${FIX}/nodes.txt\nhost_settings: { gros-9: { rack: r1 } }\n`)).toMatch(
      /^INV: host_settings\.gros-9: 'gros-9' is not in the node file/,
    );
  });

  it('accepts the spec form {oar_nodefile} with paths relative to the spec', () => {
    const inv = inventoryFromObject(
      { oar_nodefile: 'nodes.txt', defaults: { key_file: env.MB_TEST_KEY } },
      'spec.yaml: testbed.inventory',
      FIX,
      { env },
    );
    expect(inv.hosts).toHaveLength(3);
  });
});

describe('YAML inventory', () => {
  it('merges the template into every host and resolves gateways', () => {
    const inv = loadInventory(join(FIX, 'cluster.yaml'), { env });
    expect(inv.hosts.map((h) => [h.name, h.rack, h.hypervisor])).toEqual([
      ['s1', 'ra', 'qemu'],
      ['s2', 'ra', 'qemu'],
      ['s3', 'rb', 'libvirt'],
      ['s4', 'rb', 'qemu'],
    ]);
    const [s1, s2, , s4] = inv.hosts;
    expect(s1.data).toEqual({ iface: 'eno1', address: '10.0.1.1/24' });
    expect(s2.data).toEqual({ iface: 'eno1' });
    expect(s1.migration).toEqual({ iface: 'eno2', address: '10.1.1.1/24' });
    expect(s1.bridge).toBe('br0');
    expect(s1.bmc).toEqual({ address: '10.9.1.1', user: 'ADMIN', port: undefined });
    expect(s2.bmc?.user).toBe('root');
    expect(s1.ssh).toMatchObject({ host: '10.0.1.1', port: 22, user: 'root', keyFile: env.MB_TEST_KEY });
    expect(s1.ssh.jump).toMatchObject({ name: 'gw', host: 'access.example.org', user: 'jdoe', port: 22, keyFile: env.MB_TEST_KEY });
    expect(s1.ssh.jump).toBe(s2.ssh.jump); // one gateway object: one shared connection
    expect(s4.ssh).toMatchObject({ port: 2222, jump: { host: 'other-gw.example.org', port: 2200, user: 'me' } });
    expect(inv.hostKeys.mode).toBe('accept-new');
    expect(inv.hostKeys.ownKnownHosts).toBe(join(FIX, 'known_hosts.migbench'));
    expect(inv.hostKeys.knownHostsFiles).toContain(join(dir, '.ssh/known_hosts'));
  });

  it('locates schema errors as file: path: expected', () => {
    expect(errorOf(`${head()}hosts:\n  - { name: a, address: 10.0.0.1 }\n  - { name: b, prot: 22 }\n`)).toBe(
      "INV: hosts[1].prot: unknown key 'prot'",
    );
    expect(errorOf(`${head()}hosts:\n  - { name: a, port: 70000 }\n`)).toMatch(/^INV: hosts\[0\]\.port: /);
    expect(errorOf(`${head()}hosts:\n  - { name: a, address: 'bad host!' }\n`)).toBe(
      'INV: hosts[0].address: expected a host name or IP address',
    );
    expect(errorOf(`${head()}hosts:\n  - { name: a, hypervisor: xen }\n`)).toBe("INV: hosts[0].hypervisor: expected 'qemu' or 'libvirt'");
    expect(errorOf(`${head()}hosts: []\n`)).toBe('INV: hosts: expected at least one host');
    expect(errorOf(`${head()}hosts:\n  - { address: x }\n`)).toMatch(/^INV: hosts\[0\]\.name: missing/);
    expect(errorOf(`${head()}hosts:\n  - { name: a, data: { iface: thisnameiswaytoolong0 } }\n`)).toMatch(
      /^INV: hosts\[0\]\.data\.iface: expected a network interface name/,
    );
  });

  it('refuses a BMC password in the file, pointing to the environment', () => {
    const msg = errorOf(`${head()}hosts:\n  - { name: a, bmc: { address: 10.0.0.9, password: hunter2 } }\n`);
    expect(msg).toMatch(/^INV: hosts\[0\]\.bmc\.password: a BMC password never goes into the inventory: set MIGBENCH_BMC_PASSWORD/);
    expect(msg).not.toContain('hunter2');
    expect(errorOf(`${head()}hosts:\n  - { name: a, bmc: { user: x } }\n`)).toBe(
      'INV: hosts[0].bmc.address: missing; expected the BMC address',
    );
  });

  it('reports structural and semantic problems', () => {
    expect(errorOf(`${head()}hosts: [{ name: a }]\noar_nodefile: x\n`)).toMatch(/either 'hosts' or 'oar_nodefile'/);
    expect(errorOf(`${head()}`)).toMatch(/missing 'hosts'/);
    expect(errorOf('- a\n- b\n')).toMatch(/^INV: expected a mapping/);
    expect(errorOf(`${head()}hosts:\n  - { name: a }\n  - { name: a }\n`)).toMatch(
      /^INV: hosts\[1\]: host name 'a' is already used by hosts\[0\]$/,
    );
    expect(errorOf(`${head()}hosts:\n  - { name: a, spec_host: r1-h1 }\n  - { name: b, spec_host: r1-h1 }\n`)).toMatch(
      /spec host 'r1-h1' is already mapped to a/,
    );
    expect(errorOf(`${head()}hosts:\n  - { name: a, proxy_jump: b }\n  - { name: b, proxy_jump: a }\n`)).toMatch(
      /proxy_jump loop: a -> b -> a/,
    );
    expect(errorOf(`${head()}hosts:\n  - { name: a, proxy_jump: 'x y' }\n`)).toMatch(
      /neither a host or gateway of this inventory nor \[user@\]host\[:port\]/,
    );
    expect(errorOf(`hosts:\n  - { name: a, key_file: /nonexistent/key }\n`)).toBe(
      'INV: hosts[0]: key_file /nonexistent/key cannot be read; check the path (and that migbench runs as the user owning it)',
    );
    expect(errorOf(`hosts:\n  - { name: a }\n`, { HOME: join(dir, 'nohome') })).toMatch(
      /no key_file, no agent \(SSH_AUTH_SOCK\) and no ~\/\.ssh\/id_ed25519/,
    );
    expect(errorOf(`${head()}hosts:\n  - { name: a\n`)).toMatch(/^INV:\d+:\d+: not valid YAML/);
  });

  it('expands $VAR, ${VAR} and ~ in paths', () => {
    expect(expandPath('${X}/a/$Y', 'w', '/base', { X: '/x', Y: 'y' })).toBe('/x/a/y');
    expect(expandPath('rel/p', 'w', '/base', {})).toBe('/base/rel/p');
    expect(() => expandPath('$NOPE/x', 'f: key_file', '/b', {})).toThrow('f: key_file: $NOPE is not set; set it or write the path');
  });
});

describe('spec host mapping', () => {
  const inv = () => loadInventory(join(FIX, 'cluster.yaml'), { env });
  const names = (m: Map<string, { name: string }>) => Object.fromEntries([...m].map(([k, v]) => [k, v.name]));

  it('maps spec racks onto inventory racks in order', () => {
    const m = mapSpecHosts(
      [
        { name: 'r1', hosts: ['r1-h1', 'r1-h2'] },
        { name: 'r2', hosts: ['r2-h1', 'r2-h2'] },
      ],
      inv(),
    );
    expect(names(m)).toEqual({ 'r1-h1': 's1', 'r1-h2': 's2', 'r2-h1': 's3', 'r2-h2': 's4' });
  });

  it('prefers a rack of the same name, and explicit spec_host', () => {
    const m = mapSpecHosts(
      [
        { name: 'r1', hosts: ['r1-h1'] },
        { name: 'rb', hosts: ['x', 'y'] },
      ],
      inv(),
    );
    expect(names(m)).toEqual({ 'r1-h1': 's1', x: 's3', y: 's4' });
    const oar = loadInventory(join(FIX, 'oar.yaml'), { env });
    const m2 = mapSpecHosts(
      [
        { name: 'r1', hosts: ['r1-h1', 'r1-h2'] },
        { name: 'r2', hosts: ['r2-h1'] },
      ],
      oar,
    );
    expect(names(m2)).toEqual({
      'r1-h1': 'gros-7.nancy.grid5000.fr',
      'r1-h2': 'gros-1.nancy.grid5000.fr',
      'r2-h1': 'gros-3.nancy.grid5000.fr',
    });
  });

  it('says clearly when the inventory has too few hosts', () => {
    const oar = loadInventory(join(FIX, 'oar.yaml'), { env });
    expect(() => mapSpecHosts([{ name: 'r1', hosts: ['r1-h1', 'r1-h2', 'r1-h3', 'r1-h4'] }], oar)).toThrow(
      /too few hosts for the spec: no host left for 'r1-h4' of rack 'r1'; the spec needs 4 hosts, the inventory has 3 \(reserve more nodes/,
    );
    expect(() => mapSpecHosts([{ name: 'r1', hosts: ['r1-h1', 'r1-h2', 'r1-h3'] }], inv())).toThrow(/inventory rack 'ra' is used up/);
    expect(() => mapSpecHosts([{ name: 'r9', hosts: ['a'] }], oar)).toThrow(/spec_host 'r1-h1' is not a host of the spec/);
  });
});

describe('BMC login of inventory hosts', () => {
  it('takes the user from the inventory and the password only from the environment', () => {
    const inv = loadInventory(join(FIX, 'cluster.yaml'), { env });
    const [s1, s2] = inv.hosts;
    expect(bmcLogin(s1, inv, { MIGBENCH_BMC_PASSWORD: 'pw' })).toEqual({
      user: 'ADMIN',
      password: 'pw',
      address: '10.9.1.1',
      port: undefined,
    });
    expect(bmcLogin(s2, inv, { MIGBENCH_BMC_PASSWORD: 'pw' }).user).toBe('root');
    expect(bmcLogin(s1, inv, { MIGBENCH_BMC_PASSWORD: 'pw', MIGBENCH_BMC_S1_USER: 'op' }).user).toBe('op');
    expect(() => bmcLogin(s1, inv, {})).toThrow(/no BMC password for host 's1'/);
  });
});

describe('client host of an inventory', () => {
  /** Writes an inventory file and loads it. */
  function load(yaml: string) {
    const f = join(dir, `inv-${Math.random().toString(36).slice(2)}.yaml`);
    writeFileSync(f, yaml);
    return loadInventory(f, { env });
  }

  it('is absent by default: the controller runs probes and clients', () => {
    expect(load(`${head()}hosts:\n  - { name: a }\n`).client).toBeUndefined();
  });

  it('resolves a separate client like a gateway, through a jump host', () => {
    const inv = load(
      `${head()}gateways:\n  - { name: gw, address: access.example.org, user: jdoe }\n` +
        `client: { name: cli, address: 10.0.0.250, user: root, port: 2222, proxy_jump: gw }\nhosts:\n  - { name: a, proxy_jump: gw }\n`,
    );
    expect(inv.client).toMatchObject({ name: 'cli', host: '10.0.0.250', port: 2222, user: 'root', keyFile: env.MB_TEST_KEY });
    expect(inv.client?.jump).toBe(inv.hosts[0].ssh.jump); // one gateway connection shared with the hosts
  });

  it('reuses a host or gateway of the inventory named alone', () => {
    const inv = load(`${head()}client: { name: b }\nhosts:\n  - { name: a, address: 10.0.0.1 }\n  - { name: b, address: 10.0.0.2 }\n`);
    expect(inv.client).toBe(inv.hosts[1].ssh);
    const gw = load(`${head()}gateways: [{ name: gw, address: 10.9.9.9 }]\nclient: { name: gw }\nhosts: [{ name: a }]\n`);
    expect(gw.client).toMatchObject({ name: 'gw', host: '10.9.9.9' });
  });

  it('locates its errors', () => {
    expect(errorOf(`${head()}client: { name: cli, adress: x }\nhosts: [{ name: a }]\n`)).toBe("INV: client.adress: unknown key 'adress'");
    expect(errorOf(`${head()}client: { address: 10.0.0.3 }\nhosts: [{ name: a }]\n`)).toMatch(/^INV: client\.name: missing/);
    expect(errorOf(`${head()}client: { name: a, address: 10.0.0.3 }\nhosts: [{ name: a }]\n`)).toBe(
      "INV: client.address: 'a' is a host or gateway of this inventory: give only 'client: {name: a}' to run the clients there",
    );
    expect(errorOf(`${head()}client: { name: cli, proxy_jump: 'x y' }\nhosts: [{ name: a }]\n`)).toMatch(
      /client\.proxy_jump: 'x y' is neither a host or gateway/,
    );
  });
});
