import { describe, expect, it } from 'vitest';
import { parseDuration, parsePercent, parseRate, parseSize, tcRate } from './units.ts';

describe('units', () => {
  it('parses rates in tc and human forms', () => {
    expect(parseRate('100mbit')).toBe(100e6);
    expect(parseRate('1Gbit')).toBe(1e9);
    expect(parseRate('20 Mbit/s')).toBe(20e6);
    expect(parseRate('2mbps')).toBe(16e6);
    expect(parseRate('fast')).toBeNull();
    expect(parseRate('-5mbit')).toBeNull();
    expect(parseRate('0mbit')).toBeNull();
    expect(parseRate('100')).toBeNull();
  });
  it('parses durations', () => {
    expect(parseDuration('10ms')).toBe(10);
    expect(parseDuration('1.5s')).toBe(1500);
    expect(parseDuration('250us')).toBe(0.25);
    expect(parseDuration('0ms')).toBe(0);
    expect(parseDuration('2m')).toBe(120_000);
    expect(parseDuration('soon')).toBeNull();
  });
  it('parses sizes with binary K/M/G', () => {
    expect(parseSize('128MiB')).toBe(128 * 2 ** 20);
    expect(parseSize('64M')).toBe(64 * 2 ** 20);
    expect(parseSize('1GB')).toBe(1e9);
    expect(parseSize('4096')).toBe(4096);
    expect(parseSize('lots')).toBeNull();
  });
  it('parses percentages within 0..100', () => {
    expect(parsePercent('5%')).toBe(5);
    expect(parsePercent('0.5 %')).toBe(0.5);
    expect(parsePercent('101%')).toBeNull();
    expect(parsePercent('5')).toBeNull();
  });
  it('formats tc rates as integer kbit', () => {
    expect(tcRate(50e6)).toBe('50000kbit');
    expect(tcRate(1.5e3)).toBe('2kbit');
  });
});
