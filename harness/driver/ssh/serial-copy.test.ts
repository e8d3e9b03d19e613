import { readFileSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import { SerialCopy } from './serial-copy.ts';
import { testScratchDir } from '../../../test/support/scratch.ts';

describe('SerialCopy (the controller copy of a remote serial console)', () => {
  it('has each chunk in the file as soon as write returns', () => {
    const f = join(testScratchDir('mb-serial-copy-'), 'vm.serial.log');
    const c = new SerialCopy(f);
    c.write('MB-READY vm=a\n');
    expect(readFileSync(f, 'utf8')).toBe('MB-READY vm=a\n');
    c.write('MB-DIRTY up=4.0 é\n');
    expect(readFileSync(f, 'utf8')).toBe('MB-READY vm=a\nMB-DIRTY up=4.0 é\n');
    c.end();
    c.write('after the end\n');
    expect(readFileSync(f, 'utf8')).not.toContain('after the end');
  });

  it('appends with "a" (a guest that moved back keeps one log)', () => {
    const f = join(testScratchDir('mb-serial-copy-'), 'vm.serial.log');
    writeFileSync(f, 'before\n');
    const c = new SerialCopy(f, 'a');
    c.write('after\n');
    c.end();
    expect(readFileSync(f, 'utf8')).toBe('before\nafter\n');
  });

  it('never throws: a full disk (/dev/full) or a missing directory only stops the copy', () => {
    const full = new SerialCopy('/dev/full', 'a');
    expect(() => full.write('x'.repeat(10_000))).not.toThrow();
    expect(() => full.write('y')).not.toThrow();
    full.end();
    const missing = new SerialCopy('/nonexistent-mb-dir/vm.serial.log');
    expect(() => missing.write('z')).not.toThrow();
    missing.end();
  });
});
