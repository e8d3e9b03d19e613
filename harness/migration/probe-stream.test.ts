import { describe, expect, it } from 'vitest';
import type { Sample } from '../store/sample.ts';
import { ProbeStream } from './probe-stream.ts';

const sample = (seq: number): Sample => ({ t: new Date(seq).toISOString(), measurement: 'probe', tags: {}, fields: { seq } });

describe('ProbeStream flush when the run directory cannot take samples', () => {
  it('keeps the batch (in order) and hands it over once writing works again', () => {
    const written: Sample[] = [];
    let full = true;
    const p = new ProbeStream('ns', '10.0.0.1', 10, {}, (s) => {
      if (full) throw Object.assign(new Error('ENOSPC: no space left on device, write'), { code: 'ENOSPC' });
      written.push(...s);
    });
    const pending = (p as unknown as { pending: Sample[] }).pending;
    pending.push(sample(1), sample(2));
    expect(() => p.flush()).toThrow(/ENOSPC/);
    (p as unknown as { pending: Sample[] }).pending.push(sample(3));
    full = false;
    p.flush();
    expect(written.map((s) => s.fields.seq)).toEqual([1, 2, 3]);
  });
});
