/**
 * BMC login for an inventory host: the user may come from the inventory, the
 * password only from the environment or the secrets file (power/credentials.ts).
 */
import { envKey, resolveCredentials, type BmcCredentials } from '../power/credentials.ts';
import { UserError } from '../util/errors.ts';
import type { Inventory, InventoryHost } from './load.ts';

export interface BmcLogin extends BmcCredentials {
  address: string;
  port?: number;
}

/**
 * Precedence for the user: MIGBENCH_BMC_<HOST>_USER, the inventory's bmc.user,
 * then credentials.ts's order (secrets file bmcs.<host>, MIGBENCH_BMC_USER, default).
 */
export function bmcLogin(host: InventoryHost, inv: Inventory, env: NodeJS.ProcessEnv = process.env): BmcLogin {
  if (!host.bmc)
    throw new UserError(`${host.where}: host ${host.name} has no bmc.address in the inventory; power cannot be measured there`);
  const hostUserVar = `MIGBENCH_BMC_${envKey(host.name)}_USER`;
  const effectiveEnv = host.bmc.user && env[hostUserVar] === undefined ? { ...env, [hostUserVar]: host.bmc.user } : env;
  const creds = resolveCredentials(host.name, { env: effectiveEnv, secretsFile: inv.bmcSecrets });
  return { ...creds, address: host.bmc.address, port: host.bmc.port };
}
