import { createHash } from 'node:crypto';
import { stringify } from 'yaml';
import { MGMT_NET } from '../spec/names.ts';
import type { HostNode, Topology } from './topology.ts';

/**
 * The emulated cluster (`testbed up --servers`) as data. Pure: the topology and
 * the private directory give every command, file and path, so the plan is
 * unit-tested as text and applied by servers.ts.
 *
 * Each host namespace becomes a server reached only over SSH on the management
 * network (10.233/16, a cluster's admin network: shaping the data and migration
 * networks never slows the harness's own control traffic). Its sshd and
 * libvirtd run in a private mount and UTS namespace where /run, /tmp, /root,
 * /etc/libvirt, /etc/hosts and /var/{lib,log,cache}/libvirt are bind mounts of
 * the server's own directory under <stateDir>/<id>-servers/<host>: sshd
 * sessions inherit that view, so two servers never see each other's files.
 * The root namespace reaches the servers through one controller veth into the
 * management bridge. The client namespace (probes, workload clients) gets the
 * same treatment without libvirtd: an sshd on its management address in a
 * private mount namespace, printed as the inventory's `client:`.
 */

/** Controller port in the root namespace (fixed name: only one --servers testbed may be up). */
export const CONTROLLER_IF = 'mb-ctl';
/** Its peer, a port of the management bridge in the switch namespace. */
export const CONTROLLER_PEER = 'mb-ctlp';
export const CONTROLLER_IP = `${MGMT_NET}.0.254`;
export const SSH_PORT = 22;

/** A namespace reached over SSH: a server, or the client. */
export interface SshNode {
  name: string;
  ns: string;
  /** SSH (management) address. */
  address: string;
  dataIp: string;
  /** Private directory, seen from the root namespace. */
  dir: string;
  /** Host public key file (for known_hosts). */
  hostKey: string;
  bootScript: string;
  /** Where the boot script writes `<tag> <pid>` lines of the daemons it starts. */
  pidsFile: string;
  log: string;
}

export interface ServerNode extends SshNode {
  rack: string;
  migIp: string | null;
}

/** The client namespace as an SSH host (no libvirtd: it runs probes and load, never guests). */
export type ClientNode = SshNode;

/** The client's name in the inventory and its process tags. */
export const CLIENT_NAME = 'client';

/** What state.ts records for an emulated cluster (each item before it is created). */
export interface ServersState {
  /** <stateDir>/<id>-servers, mode 0700: keys, known_hosts, every server's private files. */
  dir: string;
  /** The controller veth in the root namespace, once its creation has begun. */
  controllerIf: string | null;
  controllerAddr: string;
  clientKey: string;
  knownHosts: string;
  servers: ServerNode[];
  /** The client namespace's sshd; absent in states written before it existed, null without a client. */
  client?: ClientNode | null;
  /** BMC secrets file of the servers' BMCs (server-bmcs.ts); absent before they are started. */
  bmcSecrets?: string;
}

export type ServerStep =
  | { kind: 'mkdir'; path: string; mode: number }
  | { kind: 'write'; path: string; content: string; mode: number }
  | { kind: 'keygen'; path: string; comment: string }
  | { kind: 'copy'; from: string; to: string; mode: number }
  /** known_hosts lines `<names> <public key>` built from generated host key files. */
  | { kind: 'known-hosts'; path: string; entries: { names: string[]; pubFile: string }[] }
  /** A command; `rootIf` marks the one that creates the controller interface in the root namespace. */
  | { kind: 'run'; argv: string[]; rootIf?: string }
  /**
   * A long-running server launcher, recorded by PID as it starts. It runs through mb-reaper (harness/native/reaper.c),
   * so the sshd it ends as reaps the QEMUs daemonized in its sessions at once, as a real server's init does.
   */
  | { kind: 'server'; tag: string; argv: string[]; log: string };

export interface ServersPlan {
  state: ServersState;
  steps: ServerStep[];
}

/** Private bind mounts of a server: its directory's sub-dir -> mount point. /run comes last: it hides the state dir. */
export const PRIVATE_MOUNTS: readonly [string, string][] = [
  ['etc-libvirt', '/etc/libvirt'],
  ['root', '/root'],
  ['var-lib-libvirt', '/var/lib/libvirt'],
  ['var-log-libvirt', '/var/log/libvirt'],
  ['var-cache-libvirt', '/var/cache/libvirt'],
  ['tmp', '/tmp'],
  ['run', '/run'],
];

/** The client's private mounts: no libvirt there. */
export const CLIENT_MOUNTS: readonly [string, string][] = PRIVATE_MOUNTS.filter(([sub]) => ['root', 'tmp', 'run'].includes(sub));

/** Inside a server, where its sshd files are (the server dir's run/mb-sshd). */
const IN_SSHD = '/run/mb-sshd';

const sq = (s: string) => `'${s.replace(/'/g, `'\\''`)}'`;

/** A stable UUID per server: libvirt refuses to migrate between hosts with the same host UUID. */
export function hostUuid(id: string, name: string): string {
  const h = createHash('sha256').update(`migbench/${id}/${name}`).digest('hex');
  return `${h.slice(0, 8)}-${h.slice(8, 12)}-4${h.slice(13, 16)}-a${h.slice(17, 20)}-${h.slice(20, 32)}`;
}

/** QEMU as root (no libvirt-qemu user owning files here), no cgroups/namespaces/security driver, no virtlogd. */
export const QEMU_CONF = [
  "# migbench emulated server: QEMU runs as root inside the server's namespaces",
  'user = "root"',
  'group = "root"',
  'dynamic_ownership = 0',
  'remember_owner = 0',
  'security_driver = "none"',
  'cgroup_controllers = [ ]',
  'namespaces = [ ]',
  "# no virtlogd daemon per server: QEMU's console log goes to a file directly",
  'stdio_handler = "file"',
  '',
].join('\n');

export function libvirtdConf(id: string, name: string): string {
  return `# migbench emulated server ${name} (testbed ${id})\nhost_uuid = "${hostUuid(id, name)}"\n`;
}

export function sshdConfig(s: Pick<SshNode, 'address'>): string {
  return [
    `ListenAddress ${s.address}`,
    `Port ${SSH_PORT}`,
    `HostKey ${IN_SSHD}/ssh_host_ed25519_key`,
    `PidFile ${IN_SSHD}/sshd.pid`,
    'AuthorizedKeysFile /root/.ssh/authorized_keys',
    'PermitRootLogin prohibit-password',
    'PasswordAuthentication no',
    'KbdInteractiveAuthentication no',
    'UsePAM no',
    'StrictModes no',
    // the harness opens many sessions at once (parallel preflight, several VMs per host)
    'MaxStartups 200:30:400',
    'MaxSessions 100',
    'Subsystem sftp internal-sftp',
    '',
  ].join('\n');
}

export function hostsFile(servers: Pick<SshNode, 'name' | 'address'>[]): string {
  return ['127.0.0.1 localhost', '::1 localhost', ...servers.map((s) => `${s.address} ${s.name}`), ''].join('\n');
}

/**
 * Runs in the server's fresh mount+UTS namespace (inside its network namespace); ends as sshd.
 * `libvirt: false` (the client): only /root, /tmp and /run are private, no libvirtd.
 */
export function bootScript(s: SshNode, opts: { libvirt?: boolean } = {}): string {
  const d = s.dir;
  const libvirt = opts.libvirt ?? true;
  return [
    '#!/bin/sh',
    `# migbench emulated ${libvirt ? 'server' : 'client'} ${s.name}: private mounts, then ${libvirt ? 'libvirtd, then ' : ''}sshd (whose sessions inherit this view)`,
    'set -eu',
    // opened before /run is replaced: the harness reads the daemons' PIDs from here
    `exec 3>>${sq(s.pidsFile)}`,
    `hostname ${sq(s.name)}`,
    `mount --bind ${sq(`${d}/hosts`)} /etc/hosts`,
    ...(libvirt ? PRIVATE_MOUNTS : CLIENT_MOUNTS).map(([sub, at]) => `mount --bind ${sq(`${d}/${sub}`)} ${at}`),
    ...(libvirt
      ? [
          'mkdir -p /run/sshd /run/libvirt',
          'libvirtd &',
          'echo "libvirtd $!" >&3',
          // sshd only once libvirt answers: its first connection probes QEMU's capabilities (several seconds here)
          'i=0; until virsh -q -c qemu:///system version >/dev/null 2>&1 || [ $i -ge 600 ]; do i=$((i+1)); sleep 0.1; done',
        ]
      : ['mkdir -p /run/sshd']),
    'exec 3>&-',
    `exec /usr/sbin/sshd -D -e -f ${IN_SSHD}/sshd_config`,
    '',
  ].join('\n');
}

function sshNode(name: string, ns: string, address: string, dataIp: string, dir: string): SshNode {
  const sdir = `${dir}/${name}`;
  return {
    name,
    ns,
    address,
    dataIp,
    dir: sdir,
    hostKey: `${sdir}/run/mb-sshd/ssh_host_ed25519_key.pub`,
    bootScript: `${sdir}/boot.sh`,
    pidsFile: `${sdir}/pids`,
    log: `${sdir}/server.log`,
  };
}

export function serverNode(h: HostNode, dir: string): ServerNode {
  if (!h.mgmtIp) throw new Error(`host ${h.name} has no management address; build the topology with mgmt: true`);
  return { ...sshNode(h.name, h.ns, h.mgmtIp, h.dataIp, dir), rack: h.rack, migIp: h.migIp };
}

/** The client namespace as an SSH host; null when the testbed has no client. */
export function clientNode(topo: Topology, dir: string): ClientNode | null {
  if (!topo.clientNs || !topo.clientIp) return null;
  if (!topo.clientMgmtIp) throw new Error('the client has no management address; build the topology with mgmt: true');
  return sshNode(CLIENT_NAME, topo.clientNs, topo.clientMgmtIp, topo.clientIp, dir);
}

/** The private files of one SSH node (server or client). */
function nodeSteps(topoId: string, s: SshNode, all: SshNode[], clientKey: string, libvirt: boolean): ServerStep[] {
  const mounts = libvirt ? PRIVATE_MOUNTS : CLIENT_MOUNTS;
  const steps: ServerStep[] = [{ kind: 'mkdir', path: s.dir, mode: 0o700 }];
  for (const [sub] of mounts) steps.push({ kind: 'mkdir', path: `${s.dir}/${sub}`, mode: sub === 'tmp' ? 0o1777 : 0o755 });
  if (libvirt) {
    steps.push(
      { kind: 'mkdir', path: `${s.dir}/etc-libvirt/qemu`, mode: 0o755 },
      { kind: 'mkdir', path: `${s.dir}/root/.ssh`, mode: 0o700 },
      { kind: 'mkdir', path: `${s.dir}/run/mb-sshd`, mode: 0o700 },
      { kind: 'write', path: `${s.dir}/etc-libvirt/qemu.conf`, content: QEMU_CONF, mode: 0o644 },
      { kind: 'write', path: `${s.dir}/etc-libvirt/libvirtd.conf`, content: libvirtdConf(topoId, s.name), mode: 0o644 },
      { kind: 'write', path: `${s.dir}/etc-libvirt/libvirt.conf`, content: 'uri_default = "qemu:///system"\n', mode: 0o644 },
    );
  } else {
    steps.push({ kind: 'mkdir', path: `${s.dir}/root/.ssh`, mode: 0o700 }, { kind: 'mkdir', path: `${s.dir}/run/mb-sshd`, mode: 0o700 });
  }
  steps.push(
    { kind: 'write', path: `${s.dir}/hosts`, content: hostsFile(all), mode: 0o644 },
    { kind: 'write', path: `${s.dir}/run/mb-sshd/sshd_config`, content: sshdConfig(s), mode: 0o600 },
    // lets a test (or a user) see which server's /run it is looking at
    { kind: 'write', path: `${s.dir}/run/mb-server`, content: `${s.name}\n`, mode: 0o644 },
    { kind: 'keygen', path: `${s.dir}/run/mb-sshd/ssh_host_ed25519_key`, comment: `${s.name}@migbench-${topoId}` },
    { kind: 'copy', from: `${clientKey}.pub`, to: `${s.dir}/root/.ssh/authorized_keys`, mode: 0o600 },
  );
  // servers log into each other as root with the same key (libvirt peer-to-peer migration over qemu+ssh); the client logs in nowhere
  if (libvirt) steps.push({ kind: 'copy', from: clientKey, to: `${s.dir}/root/.ssh/id_ed25519`, mode: 0o600 });
  steps.push(
    { kind: 'write', path: s.bootScript, content: bootScript(s, { libvirt }), mode: 0o700 },
    { kind: 'write', path: s.pidsFile, content: '', mode: 0o600 },
  );
  return steps;
}

/** Everything `up --servers` does after the namespaces and links exist. `dir` is <stateDir>/<id>-servers. */
export function planServers(topo: Topology, dir: string): ServersPlan {
  const mgmtBridge = topo.aggBridge.mgmt;
  if (!mgmtBridge) throw new Error('the emulated cluster needs the management network: build the topology with mgmt: true');
  const servers = topo.hosts.map((h) => serverNode(h, dir));
  const client = clientNode(topo, dir);
  const state: ServersState = {
    dir,
    controllerIf: null,
    controllerAddr: CONTROLLER_IP,
    clientKey: `${dir}/id_ed25519`,
    knownHosts: `${dir}/known_hosts`,
    servers,
    client,
  };
  const steps: ServerStep[] = [
    { kind: 'mkdir', path: dir, mode: 0o700 },
    { kind: 'keygen', path: state.clientKey, comment: `migbench-${topo.id}-controller` },
  ];
  for (const s of servers) steps.push(...nodeSteps(topo.id, s, servers, state.clientKey, true));
  if (client) steps.push(...nodeSteps(topo.id, client, [...servers, client], state.clientKey, false));
  const entries = servers.map((s) => ({ names: [s.name, s.address], pubFile: s.hostKey }));
  const clientEntry = client ? [{ names: [client.name, client.address], pubFile: client.hostKey }] : [];
  steps.push({ kind: 'known-hosts', path: state.knownHosts, entries: [...entries, ...clientEntry] });
  for (const s of servers) steps.push({ kind: 'known-hosts', path: `${s.dir}/root/.ssh/known_hosts`, entries });
  steps.push(
    {
      kind: 'run',
      argv: ['ip', 'link', 'add', CONTROLLER_IF, 'type', 'veth', 'peer', 'name', CONTROLLER_PEER, 'netns', topo.switchNs],
      rootIf: CONTROLLER_IF,
    },
    { kind: 'run', argv: ['ip', '-n', topo.switchNs, 'link', 'set', CONTROLLER_PEER, 'master', mgmtBridge] },
    { kind: 'run', argv: ['ip', '-n', topo.switchNs, 'link', 'set', CONTROLLER_PEER, 'up'] },
    { kind: 'run', argv: ['ip', 'addr', 'add', `${CONTROLLER_IP}/${topo.prefixLen}`, 'dev', CONTROLLER_IF] },
    { kind: 'run', argv: ['ip', 'link', 'set', CONTROLLER_IF, 'up'] },
  );
  for (const s of client ? [...servers, client] : servers) {
    steps.push({
      kind: 'server',
      tag: `server-${s.name}`,
      log: s.log,
      argv: ['ip', 'netns', 'exec', s.ns, 'unshare', '--mount', '--uts', '--propagation', 'private', 'sh', s.bootScript],
    });
  }
  return { state, steps };
}

/** One line per step, for `--dry-run` and the unit test. */
export function formatServerStep(s: ServerStep): string {
  switch (s.kind) {
    case 'mkdir':
      return `mkdir -m ${s.mode.toString(8)} ${s.path}`;
    case 'write':
      return `write ${s.path} (mode ${s.mode.toString(8)}, ${s.content.length} bytes)`;
    case 'keygen':
      return `ssh-keygen -q -t ed25519 -N '' -C ${s.comment} -f ${s.path}`;
    case 'copy':
      return `cp ${s.from} ${s.to} (mode ${s.mode.toString(8)})`;
    case 'known-hosts':
      return `known_hosts ${s.path}: ${s.entries.map((e) => e.names.join(',')).join(' ')}`;
    case 'run':
      return s.argv.join(' ');
    case 'server':
      return `mb-reaper ${s.argv.join(' ')} > ${s.log}  [${s.tag}]`;
  }
}

export interface InventoryOptions {
  hypervisor?: 'libvirt' | 'qemu';
}

/**
 * The inventory of the emulated cluster in harness/inventory's schema. Guests
 * attach to `mb-br`, the bridge over the server's data NIC `mb-data` that
 * carries the data address (like br0 over eno1 on a real server).
 */
export function serversInventory(id: string, s: ServersState, opts: InventoryOptions = {}): string {
  const doc = {
    known_hosts: s.knownHosts,
    host_key_check: 'strict',
    hosts: s.servers.map((v) => ({
      name: v.name,
      address: v.address,
      user: 'root',
      port: SSH_PORT,
      key_file: s.clientKey,
      rack: v.rack,
      spec_host: v.name,
      data: { iface: 'mb-data', address: `${v.dataIp}/16` },
      ...(v.migIp ? { migration: { iface: 'mb-mig', address: `${v.migIp}/16` } } : {}),
      bridge: 'mb-br',
      hypervisor: opts.hypervisor ?? 'libvirt',
      // the server's BMC answers lanplus on its management address; its power is a named sensor, not DCMI
      ...(s.bmcSecrets ? { bmc: { address: v.address, user: 'mbadmin', sensor: 'Power' } } : {}),
    })),
    ...(s.bmcSecrets ? { bmc_secrets: s.bmcSecrets } : {}),
    // probes and workload clients run there: it reaches the guests' data addresses
    ...(s.client
      ? { client: { name: s.client.name, address: s.client.address, user: 'root', port: SSH_PORT, key_file: s.clientKey } }
      : {}),
  };
  return (
    `# emulated cluster of testbed '${id}' (migbench testbed up --servers); keys and known_hosts are removed by 'migbench testbed down ${id}'\n` +
    `# controller address on the management network: ${s.controllerAddr}\n` +
    stringify(doc, { lineWidth: 0 })
  );
}
