/**
 * OpenSSH known_hosts: parsing (plain patterns, `[host]:port`, hashed `|1|`
 * entries, `@revoked`), lookup, and the verdict for a presented host key.
 */
import { createHmac } from 'node:crypto';
import { appendFileSync, existsSync, mkdirSync, readFileSync } from 'node:fs';
import { dirname } from 'node:path';

export interface KnownHostEntry {
  marker?: 'revoked' | 'cert-authority';
  /** Plain patterns (comma-separated list in the file), or the hashed form. */
  patterns?: string[];
  hashed?: { salt: Buffer; hash: Buffer };
  keyType: string;
  key: Buffer;
  /** file:line, for messages. */
  where: string;
}

export function parseKnownHosts(text: string, file: string): KnownHostEntry[] {
  const out: KnownHostEntry[] = [];
  text.split('\n').forEach((raw, i) => {
    const line = raw.trim();
    if (!line || line.startsWith('#')) return;
    const f = line.split(/\s+/);
    let marker: KnownHostEntry['marker'];
    if (f[0] === '@revoked' || f[0] === '@cert-authority') marker = f.shift()!.slice(1) as KnownHostEntry['marker'];
    if (f.length < 3) return;
    const [hosts, keyType, b64] = f;
    const e: KnownHostEntry = { marker, keyType, key: Buffer.from(b64, 'base64'), where: `${file}:${i + 1}` };
    if (hosts.startsWith('|1|')) {
      const [, , salt, hash] = hosts.split('|');
      if (!salt || !hash) return;
      e.hashed = { salt: Buffer.from(salt, 'base64'), hash: Buffer.from(hash, 'base64') };
    } else {
      e.patterns = hosts.split(',');
    }
    out.push(e);
  });
  return out;
}

/** The name OpenSSH looks up: `host`, or `[host]:port` when the port is not 22. */
export function hostKeyName(host: string, port: number): string {
  return port === 22 ? host : `[${host}]:${port}`;
}

function globMatch(pattern: string, s: string): boolean {
  const re = new RegExp(
    `^${pattern
      .replace(/[.+^${}()|[\]\\]/g, '\\$&')
      .replace(/\*/g, '.*')
      .replace(/\?/g, '.')}$`,
    'i',
  );
  return re.test(s);
}

/** Does the entry's host field name `name` (negated patterns `!x` veto a match)? */
export function entryMatches(e: KnownHostEntry, name: string): boolean {
  if (e.hashed) return createHmac('sha1', e.hashed.salt).update(name).digest().equals(e.hashed.hash);
  let hit = false;
  for (const p of e.patterns ?? []) {
    if (p.startsWith('!')) {
      if (globMatch(p.slice(1), name)) return false;
    } else if (globMatch(p, name)) hit = true;
  }
  return hit;
}

/** Key type of an SSH wire-format public key (its leading string). */
export function wireKeyType(key: Buffer): string {
  if (key.length < 4) return '?';
  const n = key.readUInt32BE(0);
  return key.subarray(4, 4 + n).toString('latin1');
}

export type HostKeyVerdict =
  | { kind: 'known'; where: string }
  | { kind: 'unknown' }
  | { kind: 'changed'; where: string; knownTypes: string[] }
  | { kind: 'revoked'; where: string };

export function verdictFor(entries: readonly KnownHostEntry[], name: string, key: Buffer): HostKeyVerdict {
  const mine = entries.filter((e) => e.marker !== 'cert-authority' && entryMatches(e, name));
  const revoked = entries.find((e) => e.marker === 'revoked' && e.key.equals(key));
  if (revoked) return { kind: 'revoked', where: revoked.where };
  const same = mine.find((e) => !e.marker && e.key.equals(key));
  if (same) return { kind: 'known', where: same.where };
  const others = mine.filter((e) => !e.marker);
  if (others.length) return { kind: 'changed', where: others[0].where, knownTypes: [...new Set(others.map((e) => e.keyType))] };
  return { kind: 'unknown' };
}

/** SSH host-key algorithms that produce keys of a known_hosts key type, to ask the server for those first. */
export function algorithmsForKeyType(t: string): string[] {
  if (t === 'ssh-rsa') return ['rsa-sha2-512', 'rsa-sha2-256', 'ssh-rsa'];
  return [t];
}

/** All entries of a set of files (missing files are skipped), reloadable after accept-new appends. */
export class KnownHosts {
  private entries: KnownHostEntry[] = [];
  constructor(
    private readonly files: readonly string[],
    private readonly own: string,
  ) {
    this.reload();
  }

  reload(): void {
    this.entries = [];
    for (const f of [...this.files, this.own]) {
      if (existsSync(f)) this.entries.push(...parseKnownHosts(readFileSync(f, 'utf8'), f));
    }
  }

  verdict(host: string, port: number, key: Buffer): HostKeyVerdict {
    return verdictFor(this.entries, hostKeyName(host, port), key);
  }

  /** Key types recorded for this host, for the algorithm preference. */
  knownTypes(host: string, port: number): string[] {
    const name = hostKeyName(host, port);
    return [...new Set(this.entries.filter((e) => !e.marker && entryMatches(e, name)).map((e) => e.keyType))];
  }

  /** accept-new: record the key in migbench's own file (plain name, as ssh would with HashKnownHosts no). */
  record(host: string, port: number, key: Buffer): string {
    mkdirSync(dirname(this.own), { recursive: true, mode: 0o700 });
    const line = `${hostKeyName(host, port)} ${wireKeyType(key)} ${key.toString('base64')}\n`;
    appendFileSync(this.own, line, { mode: 0o600 });
    this.entries.push(...parseKnownHosts(line, this.own));
    return this.own;
  }
}
