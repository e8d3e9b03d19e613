/**
 * OAR node files (one host name per line, a host repeated once per reserved
 * core) and the `$VAR` / `~` expansion of paths written in inventories.
 */
import { homedir } from 'node:os';
import { isAbsolute, resolve } from 'node:path';
import { UserError } from '../util/errors.ts';

/** A DNS name (RFC 1123 labels) or an IPv4 address; nodefiles hold names only, but an address does no harm. */
const LABEL = '[A-Za-z0-9](?:[A-Za-z0-9-]{0,61}[A-Za-z0-9])?';
export const HOSTNAME_RE = new RegExp(`^${LABEL}(?:\\.${LABEL})*\\.?$`);
const IPV6_RE = /^[0-9A-Fa-f:.]+$/;

export function isHostname(s: string): boolean {
  return s.length <= 253 && (HOSTNAME_RE.test(s) || (s.includes(':') && IPV6_RE.test(s)));
}

export interface NodefileIssue {
  line: number;
  message: string;
}

/** Hosts in first-seen order (duplicates collapsed), with the line each first appeared on. */
export interface Nodefile {
  hosts: { name: string; line: number; cores: number }[];
  issues: NodefileIssue[];
}

export function parseNodefile(text: string): Nodefile {
  const byName = new Map<string, { name: string; line: number; cores: number }>();
  const issues: NodefileIssue[] = [];
  text.split('\n').forEach((raw, i) => {
    const line = raw.replace(/\r$/, '').trim();
    if (!line || line.startsWith('#')) return;
    if (/\s/.test(line)) {
      issues.push({ line: i + 1, message: `${JSON.stringify(line)} has spaces inside; expected one host name per line` });
    } else if (!isHostname(line)) {
      issues.push({ line: i + 1, message: `${JSON.stringify(line)} is not a host name (letters, digits, '-' and '.' only)` });
    } else {
      const key = line.toLowerCase().replace(/\.$/, '');
      const seen = byName.get(key);
      if (seen) seen.cores++;
      else byName.set(key, { name: line.replace(/\.$/, ''), line: i + 1, cores: 1 });
    }
  });
  return { hosts: [...byName.values()], issues };
}

/** Throws one UserError listing every bad line as file:line, or when no host is left. */
export function checkNodefile(nf: Nodefile, file: string): void {
  if (nf.issues.length) {
    const lines = nf.issues.map((i) => `${file}:${i.line}: ${i.message}`);
    throw new UserError(
      lines.length === 1 ? `OAR node file ${lines[0]}` : `OAR node file ${file}: ${lines.length} bad lines\n  ${lines.join('\n  ')}`,
    );
  }
  if (!nf.hosts.length) throw new UserError(`OAR node file ${file} lists no host (is the reservation still running?)`);
}

/**
 * Expands `$VAR`, `${VAR}` and a leading `~/` in a path; a relative result is
 * taken relative to `baseDir`. `where` locates the value for errors
 * (e.g. `inv.yaml: oar_nodefile`).
 */
export function expandPath(value: string, where: string, baseDir: string, env: NodeJS.ProcessEnv = process.env): string {
  const expanded = value.replace(
    /\$(?:\{([A-Za-z_][A-Za-z0-9_]*)\}|([A-Za-z_][A-Za-z0-9_]*))/g,
    (_m, a: string | undefined, b: string | undefined) => {
      const name = (a ?? b) as string;
      const v = env[name];
      if (v === undefined || v === '') {
        throw new UserError(
          `${where}: $${name} is not set` +
            (name === 'OAR_NODEFILE' ? ' (run inside an OAR job, or give the node file path)' : '; set it or write the path'),
        );
      }
      return v;
    },
  );
  const home = expanded === '~' || expanded.startsWith('~/') ? (env.HOME || homedir()) + expanded.slice(1) : expanded;
  return isAbsolute(home) ? home : resolve(baseDir, home);
}
