import { readFileSync, statSync } from 'node:fs';
import { parse as parseYaml } from 'yaml';
import { UserError } from '../util/errors.ts';

/** Login for one BMC. Never logged, never written to manifests or InfluxDB. */
export interface BmcCredentials {
  user: string;
  password: string;
}

/** Secrets file layout (YAML or JSON): a default login and/or one per host. */
interface SecretsFile {
  default?: Partial<BmcCredentials>;
  bmcs?: Record<string, Partial<BmcCredentials>>;
}

/** Environment variable suffix for a host: 'r1-h1' -> 'R1_H1'. */
export function envKey(host: string): string {
  return host.toUpperCase().replace(/[^A-Z0-9]/g, '_');
}

/**
 * Reads a secrets file. Warns (through `warn`) when group or others can read
 * it, because it holds passwords.
 */
export function readSecretsFile(path: string, warn: (msg: string) => void = console.warn): SecretsFile {
  let text: string;
  try {
    text = readFileSync(path, 'utf8');
    if ((statSync(path).mode & 0o077) !== 0) {
      warn(`BMC secrets file ${path} is readable by group/others; run: chmod 600 ${path}`);
    }
  } catch (e) {
    throw new UserError(`cannot read BMC secrets file ${path}: ${(e as NodeJS.ErrnoException).code ?? String(e)}`);
  }
  let data: unknown;
  try {
    data = parseYaml(text); // YAML is a superset of JSON
  } catch (e) {
    throw new UserError(`BMC secrets file ${path} is not valid YAML/JSON: ${(e as Error).message}`);
  }
  if (data === null || typeof data !== 'object')
    throw new UserError(`BMC secrets file ${path}: expected a mapping with 'default' and/or 'bmcs'`);
  return data as SecretsFile;
}

/**
 * Credentials for a host's BMC, most specific first:
 * MIGBENCH_BMC_<HOST>_USER/_PASSWORD, the secrets file's bmcs.<host>,
 * MIGBENCH_BMC_USER/_PASSWORD, the secrets file's default.
 */
export function resolveCredentials(
  host: string,
  opts: { env?: NodeJS.ProcessEnv; secretsFile?: string; warn?: (msg: string) => void } = {},
): BmcCredentials {
  const env = opts.env ?? process.env;
  const file = opts.secretsFile ? readSecretsFile(opts.secretsFile, opts.warn) : {};
  const k = envKey(host);
  const pick = (field: 'user' | 'password', envName: string): string | undefined =>
    env[`MIGBENCH_BMC_${k}_${envName}`] ?? file.bmcs?.[host]?.[field] ?? env[`MIGBENCH_BMC_${envName}`] ?? file.default?.[field];
  const user = pick('user', 'USER');
  const password = pick('password', 'PASSWORD');
  if (user === undefined || password === undefined) {
    throw new UserError(
      `no BMC ${user === undefined ? 'user' : 'password'} for host '${host}': set MIGBENCH_BMC_USER/MIGBENCH_BMC_PASSWORD ` +
        `(or MIGBENCH_BMC_${k}_USER/_PASSWORD), or give a secrets file with default/bmcs.${host}`,
    );
  }
  return { user: String(user), password: String(password) };
}
