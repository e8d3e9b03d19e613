import { describe, expect, it } from 'vitest';
import { seededRng } from '../harness/util/rng.ts';
import { numericOrder } from './order.ts';

describe('numericOrder', () => {
  it('is localeCompare(b, undefined, { numeric: true }) (random ids, names, digits, case, accents)', () => {
    const rng = seededRng(5);
    const chars = 'tT0123456789 -_.aAbé=wsetMi';
    const words = ['t0001', 't10', 't2', 'dirty wset=8M', 'dirty wset=16M', 'idle', 'Idle', 'é', 'e', ''];
    for (let i = 0; i < 20_000; i++) {
      const mk = () =>
        rng.int(3) === 0 ? words[rng.int(words.length)] : Array.from({ length: rng.int(8) }, () => chars[rng.int(chars.length)]).join('');
      const a = mk(),
        b = mk();
      const want = a.localeCompare(b, undefined, { numeric: true });
      if (Math.sign(numericOrder(a, b)) !== Math.sign(want)) expect(numericOrder(a, b), `${a} vs ${b}`).toBe(want);
    }
    const ids = Array.from({ length: 600 }, (_, i) => `t${String(600 - i).padStart(i % 2 ? 4 : 1, '0')}`);
    expect([...ids].sort(numericOrder)).toStrictEqual([...ids].sort((a, b) => a.localeCompare(b, undefined, { numeric: true })));
  });
});
