import { chmodSync, mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { afterAll, describe, expect, it } from 'vitest';
import { resolveCredentials } from './credentials.ts';

const dir = mkdtempSync('/tmp/mb-p-cred-');
afterAll(() => rmSync(dir, { recursive: true, force: true }));

describe('resolveCredentials', () => {
  it('prefers per-host env, then file per host, then global env, then file default', () => {
    const f = join(dir, 's.yaml');
    writeFileSync(f, 'default: {user: du, password: dp}\nbmcs:\n  r1-h2: {user: fu, password: fp}\n');
    chmodSync(f, 0o600);
    const env = { MIGBENCH_BMC_R1_H1_USER: 'eu', MIGBENCH_BMC_R1_H1_PASSWORD: 'ep', MIGBENCH_BMC_PASSWORD: 'gp' };
    const warns: string[] = [];
    const opts = { env, secretsFile: f, warn: (m: string) => warns.push(m) };
    expect(resolveCredentials('r1-h1', opts)).toEqual({ user: 'eu', password: 'ep' });
    expect(resolveCredentials('r1-h2', opts)).toEqual({ user: 'fu', password: 'fp' });
    expect(resolveCredentials('r1-h3', opts)).toEqual({ user: 'du', password: 'gp' });
    expect(warns).toEqual([]);
  });
  it('warns about a world-readable secrets file and names what is missing', () => {
    const f = join(dir, 's.json');
    writeFileSync(f, JSON.stringify({ default: { user: 'u' } }));
    chmodSync(f, 0o644);
    const warns: string[] = [];
    expect(() => resolveCredentials('h', { env: {}, secretsFile: f, warn: (m) => warns.push(m) })).toThrow(/no BMC password for host 'h'/);
    expect(warns[0]).toMatch(/chmod 600/);
  });
});
