import { execFileSync } from 'node:child_process';
import { mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, describe, expect, it } from 'vitest';
import { KnownHosts, entryMatches, hostKeyName, parseKnownHosts, verdictFor, wireKeyType } from '../../harness/ssh/known-hosts.ts';

const dir = mkdtempSync(join(tmpdir(), 'mb-p-kh-'));
function hostKey(name: string): { type: string; b64: string; key: Buffer } {
  const f = join(dir, name);
  execFileSync('ssh-keygen', ['-q', '-t', 'ed25519', '-N', '', '-f', f]);
  const [type, b64] = readFileSync(`${f}.pub`, 'utf8').split(' ');
  return { type, b64, key: Buffer.from(b64, 'base64') };
}
afterAll(() => rmSync(dir, { recursive: true, force: true }));
const k1 = hostKey('k1');
const k2 = hostKey('k2');

describe('known_hosts', () => {
  it('names non-22 ports as [host]:port', () => {
    expect(hostKeyName('10.0.0.1', 22)).toBe('10.0.0.1');
    expect(hostKeyName('10.0.0.1', 2222)).toBe('[10.0.0.1]:2222');
  });

  it('reads the key type from the wire format', () => {
    expect(wireKeyType(k1.key)).toBe('ssh-ed25519');
  });

  it('matches plain patterns, wildcards, negations and [host]:port', () => {
    const e = parseKnownHosts(
      `s1,10.0.0.1 ${k1.type} ${k1.b64}\n*.example.org,!bad.example.org ${k1.type} ${k1.b64}\n[127.0.0.1]:2222 ${k1.type} ${k1.b64}\n`,
      'f',
    );
    expect(entryMatches(e[0], '10.0.0.1')).toBe(true);
    expect(entryMatches(e[0], '10.0.0.11')).toBe(false);
    expect(entryMatches(e[1], 'a.example.org')).toBe(true);
    expect(entryMatches(e[1], 'bad.example.org')).toBe(false);
    expect(entryMatches(e[2], '[127.0.0.1]:2222')).toBe(true);
    expect(entryMatches(e[2], '127.0.0.1')).toBe(false);
  });

  it('matches entries hashed by ssh-keygen -H (|1|salt|hmac)', () => {
    const f = join(dir, 'hashed');
    writeFileSync(f, `gros-1.nancy.grid5000.fr ${k1.type} ${k1.b64}\n[10.0.0.5]:2200 ${k2.type} ${k2.b64}\n`);
    execFileSync('ssh-keygen', ['-q', '-H', '-f', f]);
    const text = readFileSync(f, 'utf8');
    expect(text).not.toContain('gros-1');
    expect(text).toMatch(/^\|1\|/);
    const e = parseKnownHosts(text, f);
    expect(verdictFor(e, 'gros-1.nancy.grid5000.fr', k1.key)).toEqual({ kind: 'known', where: `${f}:1` });
    expect(verdictFor(e, hostKeyName('10.0.0.5', 2200), k2.key).kind).toBe('known');
    expect(verdictFor(e, '10.0.0.5', k2.key).kind).toBe('unknown');
  });

  it('tells known, unknown, changed and revoked apart', () => {
    const e = parseKnownHosts(
      `# comment\n\nh1 ${k1.type} ${k1.b64}\n@revoked * ${k2.type} ${k2.b64}\n@cert-authority *.ca ${k1.type} ${k1.b64}\n`,
      'kh',
    );
    expect(verdictFor(e, 'h1', k1.key)).toEqual({ kind: 'known', where: 'kh:3' });
    expect(verdictFor(e, 'h2', k1.key)).toEqual({ kind: 'unknown' });
    const k3 = hostKey('k3');
    expect(verdictFor(e, 'h1', k3.key)).toEqual({ kind: 'changed', where: 'kh:3', knownTypes: ['ssh-ed25519'] });
    expect(verdictFor(e, 'anything', k2.key)).toEqual({ kind: 'revoked', where: 'kh:4' });
    expect(verdictFor(e, 'x.ca', k3.key)).toEqual({ kind: 'unknown' }); // CA lines are not host keys
  });

  it('records accepted keys in its own file and reads them back', () => {
    const own = join(dir, 'sub', 'own_known_hosts');
    const kh = new KnownHosts([join(dir, 'missing')], own);
    expect(kh.verdict('10.1.1.1', 2222, k1.key).kind).toBe('unknown');
    kh.record('10.1.1.1', 2222, k1.key);
    expect(readFileSync(own, 'utf8')).toBe(`[10.1.1.1]:2222 ssh-ed25519 ${k1.b64}\n`);
    expect(new KnownHosts([], own).verdict('10.1.1.1', 2222, k1.key).kind).toBe('known');
    expect(kh.knownTypes('10.1.1.1', 2222)).toEqual(['ssh-ed25519']);
  });
});
