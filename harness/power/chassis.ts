import { UserError } from '../util/errors.ts';
import { ipmitoolOnce, type BmcEndpoint } from './ipmi-shell.ts';

export type ChassisAction = 'on' | 'off' | 'status';

/** `ipmitool chassis power on|off|status` through a host's BMC; returns whether power is on afterwards (status) or was accepted. */
export async function chassisPower(ep: BmcEndpoint, action: ChassisAction): Promise<boolean> {
  const r = await ipmitoolOnce(ep, ['chassis', 'power', action]);
  if (!r.ok) throw new UserError(`chassis power ${action} via BMC ${ep.address}:${ep.port ?? 623} failed: ${r.output.split('\n')[0]}`);
  if (action === 'status') return /Chassis Power is on/i.test(r.output);
  return action === 'on';
}
