/**
 * Loads an inventory (YAML `hosts:` list or OAR node file + template) into
 * resolved hosts with their SSH targets. Errors name file, path and what is
 * expected, like spec errors (UserError, exit 2).
 */
import { accessSync, constants, existsSync, readFileSync } from 'node:fs';
import { homedir, userInfo } from 'node:os';
import { dirname, join, resolve } from 'node:path';
import { parseDocument } from 'yaml';
import type { z } from 'zod';
import { formatPath, specError, type SpecIssue } from '../spec/load.ts';
import { UserError } from '../util/errors.ts';
import type { HostKeyPolicy, SshTarget } from '../ssh/types.ts';
import { checkNodefile, expandPath, isHostname, parseNodefile } from './nodefile.ts';
import { HostsInventory, NodefileInventory, type GatewayEntryT, type HostEntryT, type TemplateT } from './schema.ts';

export type Hypervisor = 'qemu' | 'libvirt';

export interface InventoryNic {
  iface?: string;
  address?: string;
}

export interface InventoryHost {
  name: string;
  /** Where the host was defined, for messages: `inv.yaml: hosts[2]` or `nodes.txt:7`. */
  where: string;
  rack?: string;
  specHost?: string;
  data: InventoryNic;
  migration: InventoryNic;
  bridge?: string;
  bmc?: { address: string; user?: string; port?: number; sensor?: string };
  hypervisor: Hypervisor;
  ssh: SshTarget;
}

export interface Inventory {
  file: string;
  kind: 'hosts' | 'oar_nodefile';
  /** The expanded node file path (oar_nodefile only). */
  nodefile?: string;
  hosts: InventoryHost[];
  /** Where probes and workload clients run; absent: on the controller itself. */
  client?: SshTarget;
  hostKeys: HostKeyPolicy;
  bmcSecrets?: string;
}

export interface LoadOptions {
  env?: NodeJS.ProcessEnv;
}

export const DEFAULT_OWN_KNOWN_HOSTS = '~/.config/migbench/known_hosts';
const SYSTEM_KNOWN_HOSTS = ['~/.ssh/known_hosts', '/etc/ssh/ssh_known_hosts'];
const DEFAULT_KEYS = ['~/.ssh/id_ed25519', '~/.ssh/id_ecdsa', '~/.ssh/id_rsa'];

function zodIssues(err: z.ZodError): SpecIssue[] {
  return err.issues.map((i) => {
    if (i.code === 'unrecognized_keys') {
      const keys = (i as { keys: string[] }).keys;
      return { path: formatPath([...i.path, keys[0]]), message: `unknown key '${keys.join("', '")}'` };
    }
    if (i.code === 'invalid_type' && /received undefined/.test(i.message)) {
      return {
        path: formatPath(i.path),
        message: `missing; ${i.message.replace(/^Invalid input: /, '').replace(/, received undefined$/, '')}`,
      };
    }
    return { path: formatPath(i.path), message: i.message.replace(/^Invalid input: /, '') };
  });
}

/** Reads and loads an inventory file. */
export function loadInventory(file: string, opts: LoadOptions = {}): Inventory {
  let text: string;
  try {
    text = readFileSync(file, 'utf8');
  } catch (e) {
    throw new UserError(`cannot read inventory ${file}: ${(e as NodeJS.ErrnoException).code ?? String(e)}`);
  }
  const doc = parseDocument(text, { prettyErrors: true, uniqueKeys: true });
  if (doc.errors.length) {
    const e = doc.errors[0];
    const pos = e.linePos?.[0];
    throw new UserError(`${file}${pos ? `:${pos.line}:${pos.col}` : ''}: not valid YAML: ${e.message.split('\n')[0]}`);
  }
  return inventoryFromObject(doc.toJS(), file, dirname(resolve(file)), opts);
}

/**
 * Loads an inventory given as an object (a parsed file, or the spec's
 * `{oar_nodefile: ...}` form); `file` names it in errors, `baseDir` anchors relative paths.
 */
export function inventoryFromObject(raw: unknown, file: string, baseDir: string, opts: LoadOptions = {}): Inventory {
  const env = opts.env ?? process.env;
  if (raw === null || typeof raw !== 'object' || Array.isArray(raw)) {
    throw new UserError(`${file}: expected a mapping with 'hosts' (a list) or 'oar_nodefile' (a path)`);
  }
  const obj = raw as Record<string, unknown>;
  if ('oar_nodefile' in obj && 'hosts' in obj) {
    throw specError(file, [
      { path: 'hosts', message: "give either 'hosts' or 'oar_nodefile', not both (per-node settings go under host_settings)" },
    ]);
  }
  if (!('oar_nodefile' in obj) && !('hosts' in obj)) {
    throw specError(file, [{ path: '(top level)', message: "missing 'hosts' (a list of servers) or 'oar_nodefile' (e.g. $OAR_NODEFILE)" }]);
  }
  const path = (v: string, where: string) => expandPath(v, `${file}: ${where}`, baseDir, env);

  let entries: { entry: HostEntryT; where: string }[];
  let kind: Inventory['kind'];
  let nodefile: string | undefined;
  let common: {
    defaults?: TemplateT;
    gateways?: GatewayEntryT[];
    client?: GatewayEntryT;
    known_hosts?: string;
    host_key_check?: 'strict' | 'accept-new';
    bmc_secrets?: string;
  };
  if ('oar_nodefile' in obj) {
    const parsed = NodefileInventory.safeParse(obj);
    if (!parsed.success) throw specError(file, zodIssues(parsed.error));
    common = parsed.data;
    kind = 'oar_nodefile';
    nodefile = path(parsed.data.oar_nodefile, 'oar_nodefile');
    let text: string;
    try {
      text = readFileSync(nodefile, 'utf8');
    } catch (e) {
      throw new UserError(`${file}: oar_nodefile: cannot read ${nodefile}: ${(e as NodeJS.ErrnoException).code ?? String(e)}`);
    }
    const nf = parseNodefile(text);
    checkNodefile(nf, nodefile);
    const settings = parsed.data.host_settings ?? {};
    const names = new Set(nf.hosts.map((h) => h.name));
    const stray = Object.keys(settings).filter((k) => !names.has(k));
    if (stray.length) {
      throw specError(file, [
        {
          path: formatPath(['host_settings', stray[0]]),
          message: `'${stray[0]}' is not in the node file ${nodefile} (hosts: ${[...names].join(', ')})`,
        },
      ]);
    }
    entries = nf.hosts.map((h) => ({ entry: { name: h.name, ...settings[h.name] }, where: `${nodefile}:${h.line}` }));
  } else {
    const parsed = HostsInventory.safeParse(obj);
    if (!parsed.success) throw specError(file, zodIssues(parsed.error));
    common = parsed.data;
    kind = 'hosts';
    entries = parsed.data.hosts.map((entry, i) => ({ entry, where: `${file}: hosts[${i}]` }));
  }

  const issues: SpecIssue[] = [];
  const seen = new Map<string, string>();
  for (const { entry, where } of entries) {
    const prev = seen.get(entry.name);
    if (prev)
      issues.push({
        path: where.replace(`${file}: `, ''),
        message: `host name '${entry.name}' is already used by ${prev.replace(`${file}: `, '')}`,
      });
    seen.set(entry.name, where);
  }
  for (const g of common.gateways ?? []) {
    if (seen.has(g.name)) issues.push({ path: 'gateways', message: `gateway name '${g.name}' is also a host name` });
  }
  const specHosts = new Map<string, string>();
  for (const { entry, where } of entries) {
    if (!entry.spec_host) continue;
    const prev = specHosts.get(entry.spec_host);
    if (prev)
      issues.push({
        path: `${where.replace(`${file}: `, '')}.spec_host`,
        message: `spec host '${entry.spec_host}' is already mapped to ${prev}`,
      });
    specHosts.set(entry.spec_host, entry.name);
  }
  const client = common.client;
  if (client && (seen.has(client.name) || (common.gateways ?? []).some((g) => g.name === client.name))) {
    const extra = Object.keys(client).filter((k) => k !== 'name');
    if (extra.length) {
      issues.push({
        path: `client.${extra[0]}`,
        message: `'${client.name}' is a host or gateway of this inventory: give only 'client: {name: ${client.name}}' to run the clients there`,
      });
    }
  }
  if (issues.length) throw specError(file, issues);

  const tpl: TemplateT = common.defaults ?? {};
  // Hosts take the template; gateways (e.g. a site's access machine) only its key.
  const localUser = userInfo().username;
  const byName = new Map<string, GatewayEntryT & { where: string }>();
  for (const [i, g] of (common.gateways ?? []).entries()) byName.set(g.name, { user: localUser, ...g, where: `${file}: gateways[${i}]` });
  for (const { entry, where } of entries) byName.set(entry.name, { user: tpl.user ?? localUser, ...tpl, ...entry, where });
  // the client is reached like a gateway (a name of the inventory reuses that entry's target)
  if (client && !byName.has(client.name)) byName.set(client.name, { user: localUser, ...client, where: `${file}: client` });

  // Auth of one entry: explicit key/agent, else the agent if running and the usual default keys.
  const auth = (e: { key_file?: string; agent?: boolean | string }, where: string): { keyFile?: string; agent?: string } => {
    const out: { keyFile?: string; agent?: string } = {};
    const keyFile = e.key_file ?? tpl.key_file;
    const agent = e.agent ?? tpl.agent;
    if (keyFile !== undefined) {
      out.keyFile = path(keyFile, `${where.replace(`${file}: `, '')}.key_file`);
      try {
        accessSync(out.keyFile, constants.R_OK);
      } catch {
        throw new UserError(
          `${where}: key_file ${out.keyFile} cannot be read; check the path (and that migbench runs as the user owning it)`,
        );
      }
    }
    if (agent === true || (agent === undefined && keyFile === undefined)) {
      if (env.SSH_AUTH_SOCK) out.agent = env.SSH_AUTH_SOCK;
      else if (agent === true) throw new UserError(`${where}: agent: true but SSH_AUTH_SOCK is not set; start ssh-agent or give key_file`);
    } else if (typeof agent === 'string') {
      out.agent = path(agent, `${where.replace(`${file}: `, '')}.agent`);
    }
    if (!out.keyFile && !out.agent) {
      const dflt = DEFAULT_KEYS.map((k) => join(env.HOME || homedir(), k.slice(2))).find((k) => existsSync(k));
      if (!dflt)
        throw new UserError(
          `${where}: no key_file, no agent (SSH_AUTH_SOCK) and no ~/.ssh/id_ed25519|id_ecdsa|id_rsa: set key_file or agent`,
        );
      out.keyFile = dflt;
    }
    return out;
  };

  // Gateways: an inventory name, or [user@]host[:port].
  const targets = new Map<string, SshTarget>();
  const targetOf = (name: string, stack: string[]): SshTarget => {
    const known = targets.get(name);
    if (known) return known;
    if (stack.includes(name)) throw new UserError(`${file}: proxy_jump loop: ${[...stack, name].join(' -> ')}`);
    const e = byName.get(name);
    if (!e) throw new Error(`no inventory entry ${name}`);
    const jumpRef = e.proxy_jump;
    const t: SshTarget = {
      name,
      host: e.address ?? name,
      port: e.port ?? 22,
      user: e.user ?? localUser,
      ...auth(e, e.where),
    };
    if (jumpRef) t.jump = jumpTarget(jumpRef, `${e.where}.proxy_jump`, [...stack, name]);
    targets.set(name, t);
    return t;
  };
  const jumpTarget = (ref: string, where: string, stack: string[]): SshTarget => {
    if (byName.has(ref)) return targetOf(ref, stack);
    const m = /^(?:([^@\s]+)@)?(\[[0-9A-Fa-f:.]+\]|[^:@\s]+)(?::(\d{1,5}))?$/.exec(ref);
    const host = m?.[2]?.replace(/^\[|\]$/g, '');
    const port = m?.[3] ? Number(m[3]) : 22;
    if (!m || !host || !isHostname(host) || port < 1 || port > 65535) {
      throw new UserError(`${where}: '${ref}' is neither a host or gateway of this inventory nor [user@]host[:port]`);
    }
    return { name: ref, host, port, user: m[1] ?? localUser, ...auth({}, where) };
  };

  const hosts: InventoryHost[] = entries.map(({ entry, where }) => {
    const e = { ...tpl, ...entry };
    const bmc = e.bmc || tpl.bmc ? { ...tpl.bmc, ...entry.bmc } : undefined;
    if (bmc && !bmc.address)
      throw specError(file, [{ path: `${where.replace(`${file}: `, '')}.bmc.address`, message: 'missing; expected the BMC address' }]);
    return {
      name: entry.name,
      where,
      rack: e.rack,
      specHost: entry.spec_host,
      data: { ...tpl.data, ...entry.data },
      migration: { ...tpl.migration, ...entry.migration },
      bridge: e.bridge,
      bmc: bmc
        ? {
            address: bmc.address as string,
            user: bmc.user as string | undefined,
            port: bmc.port as number | undefined,
            sensor: bmc.sensor as string | undefined,
          }
        : undefined,
      hypervisor: e.hypervisor ?? 'qemu',
      ssh: targetOf(entry.name, []),
    };
  });

  return {
    file,
    kind,
    nodefile,
    hosts,
    client: client ? targetOf(client.name, []) : undefined,
    hostKeys: {
      mode: common.host_key_check ?? 'strict',
      knownHostsFiles: SYSTEM_KNOWN_HOSTS.map((p) => expandPath(p, `${file}: known_hosts`, baseDir, env)),
      ownKnownHosts: path(common.known_hosts ?? DEFAULT_OWN_KNOWN_HOSTS, 'known_hosts'),
    },
    bmcSecrets: common.bmc_secrets ? path(common.bmc_secrets, 'bmc_secrets') : undefined,
  };
}
