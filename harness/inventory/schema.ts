/**
 * YAML inventory of real servers: either a `hosts:` list or an OAR node file
 * (`oar_nodefile:`), with a `defaults:` template applied to every host.
 */
import { z } from 'zod';
import { isHostname } from './nodefile.ts';

const Name = z
  .string({ error: (iss) => (iss.input === undefined ? 'missing; expected a name' : 'expected a name') })
  .regex(/^[A-Za-z0-9][A-Za-z0-9._-]*$/, {
    message: "expected a name of letters, digits, '.', '_' and '-'",
  });
const Host = z.string({ error: 'expected a host name or address' }).refine(isHostname, { message: 'expected a host name or IP address' });
const Port = z.number({ error: 'expected a port number' }).int().min(1).max(65535);
const Iface = z.string({ error: 'expected an interface name' }).regex(/^[A-Za-z0-9_.:@-]{1,15}$/, {
  message: 'expected a network interface name (at most 15 characters)',
});
/** An address with optional prefix length: 10.0.0.1 or 10.0.0.1/24. */
const IfAddress = z
  .string({ error: 'expected an address' })
  .regex(/^[0-9A-Fa-f:.]+(\/\d{1,3})?$/, { message: 'expected an IP address, e.g. 10.0.0.1/24' });

const Nic = z.strictObject({ iface: Iface.optional(), address: IfAddress.optional() });

/** BMC login: user may be here, the password never (environment or secrets file, as for the local BMCs). */
const Bmc = z
  .looseObject({
    address: Host.optional(),
    user: z.string().min(1).optional(),
    port: Port.optional(),
    /** A named power sensor (`ipmitool sensor reading`) instead of DCMI `power reading` (what real BMCs answer). */
    sensor: z
      .string()
      .regex(/^[^"\n\r]{1,16}$/, { message: 'expected a sensor name of at most 16 characters' })
      .optional(),
  })
  .superRefine((v, ctx) => {
    for (const k of Object.keys(v)) {
      if (k === 'password') {
        ctx.addIssue({
          code: 'custom',
          path: [k],
          message:
            'a BMC password never goes into the inventory: set MIGBENCH_BMC_PASSWORD (or MIGBENCH_BMC_<HOST>_PASSWORD) or use a secrets file',
        });
      } else if (!['address', 'user', 'port', 'sensor'].includes(k)) {
        ctx.addIssue({ code: 'custom', path: [k], message: `unknown key '${k}' (expected address, user, port, sensor)` });
      }
    }
  });

/** Settings a host may have; all optional so the same shape serves the template and the per-host entries. */
const settings = {
  address: Host.optional(),
  user: z
    .string({ error: 'expected a user name' })
    .regex(/^[A-Za-z0-9._][A-Za-z0-9._-]*$/, { message: 'expected a user name' })
    .optional(),
  port: Port.optional(),
  /** Private key file; `~` and `$VAR` are expanded, relative paths are relative to the inventory. */
  key_file: z.string().min(1).optional(),
  /** true: the agent at $SSH_AUTH_SOCK; a string: that socket. */
  agent: z.union([z.boolean(), z.string().min(1)], { error: 'expected true/false or an agent socket path' }).optional(),
  /** A host or gateway of this inventory, or `[user@]host[:port]`. */
  proxy_jump: z.string().min(1).optional(),
  rack: Name.optional(),
  data: Nic.optional(),
  migration: Nic.optional(),
  /** Bridge the guests' NICs attach to. */
  bridge: Iface.optional(),
  bmc: Bmc.optional(),
  hypervisor: z.enum(['qemu', 'libvirt'], { error: "expected 'qemu' or 'libvirt'" }).optional(),
};

export const HostSettings = z.strictObject({ ...settings, spec_host: Name.optional() });
export const Template = z.strictObject(settings);
export const HostEntry = z.strictObject({ name: Name, ...settings, spec_host: Name.optional() });
const GatewayEntry = z.strictObject({
  name: Name,
  address: Host.optional(),
  user: settings.user,
  port: Port.optional(),
  key_file: settings.key_file,
  agent: settings.agent,
  proxy_jump: settings.proxy_jump,
});

const common = {
  defaults: Template.optional(),
  /** Jump hosts that are not experiment servers. */
  gateways: z.array(GatewayEntry).optional(),
  /**
   * Where probes and workload clients run (it must reach the guests' data addresses): a machine
   * reached like a gateway, or `{name: <host or gateway>}` to use one of those. Absent: the controller.
   */
  client: GatewayEntry.optional(),
  /** migbench's own known_hosts (accept-new writes here); default ~/.config/migbench/known_hosts. */
  known_hosts: z.string().min(1).optional(),
  host_key_check: z.enum(['strict', 'accept-new'], { error: "expected 'strict' or 'accept-new'" }).optional(),
  /** BMC secrets file (YAML: default/bmcs.<host>), as for the local testbed. */
  bmc_secrets: z.string().min(1).optional(),
};

export const HostsInventory = z.strictObject({
  ...common,
  hosts: z.array(HostEntry, { error: 'expected a list of hosts' }).min(1, 'expected at least one host'),
});
export const NodefileInventory = z.strictObject({
  ...common,
  /** Path of the OAR node file, usually `$OAR_NODEFILE`. */
  oar_nodefile: z.string({ error: 'expected the node file path, e.g. $OAR_NODEFILE' }).min(1),
  /** Per-host settings by node name (rack, spec_host, interface addresses...). */
  host_settings: z.record(z.string(), HostSettings).optional(),
});

export type HostEntryT = z.infer<typeof HostEntry>;
export type TemplateT = z.infer<typeof Template>;
export type GatewayEntryT = z.infer<typeof GatewayEntry>;
export type HostsInventoryT = z.infer<typeof HostsInventory>;
export type NodefileInventoryT = z.infer<typeof NodefileInventory>;
