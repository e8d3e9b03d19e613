import { describe, expect, it } from 'vitest';
import { classifySessionFailure, parseDcmiPowerReading, parseSdrGet, parseSensorReading } from './ipmi-parse.ts';
import { cpuTicksFromStat, modelPower, parseChassisState, DEFAULT_POWER_MODEL as P } from './power-model.ts';
import { powerSensorSdr } from './sim-bmc.ts';

describe('ipmitool answers', () => {
  it('parses sensor reading, sdr get and dcmi power reading', () => {
    expect(parseSensorReading('Power            | 187')).toEqual({ ok: true, watts: 187 });
    expect(parseSensorReading('Power            | na')).toEqual({ ok: false, reason: 'no-reading' });
    expect(parseSensorReading('Sensor "Nope" not found!')).toEqual({ ok: false, reason: 'sensor-not-found' });
    expect(parseSdrGet(' Sensor Reading        : 150 (+/- 0) Watts\n Status : ok')).toEqual({ ok: true, watts: 150 });
    expect(
      parseDcmiPowerReading('    Instantaneous power reading:                   231 Watts\n    Minimum during sampling period: 90 Watts'),
    ).toEqual({ ok: true, watts: 231 });
    expect(parseDcmiPowerReading('DCMI request failed because: Invalid command (c1)')).toEqual({ ok: false, reason: 'dcmi-unsupported' });
  });

  it('classifies session failures from ipmitool -v', () => {
    expect(classifySessionFailure('> RAKP 2 HMAC is invalid\nError: Unable to establish IPMI v2 / RMCP+ session')).toBe('wrong-password');
    expect(classifySessionFailure('RAKP 2 message indicates an error : unauthorized name')).toBe('unknown-user');
    expect(classifySessionFailure('Get Auth Capabilities error\nError issuing Get Channel Authentication Capabilities request')).toBe(
      'unreachable',
    );
  });
});

describe('host power model', () => {
  const on = { power: 'on' as const, sinceMs: 0 };
  it('P = idle + a*cores + b*Mbit/s with mVM Table III defaults', () => {
    expect(modelPower(P, { cpuCores: 0, nicMbit: 0 }, on, 1e12).watts).toBe(110);
    expect(modelPower(P, { cpuCores: 1, nicMbit: 100 }, on, 1e12).watts).toBeCloseTo(110 + 17.6 + 6.4, 9);
  });
  it('off: idle during shutdown then standby; on: idle + 20 W during boot', () => {
    expect(modelPower(P, { cpuCores: 1, nicMbit: 0 }, { power: 'off', sinceMs: 1000 }, 2000)).toEqual({
      watts: 110,
      phase: 'shutting-down',
    });
    expect(modelPower(P, { cpuCores: 1, nicMbit: 0 }, { power: 'off', sinceMs: 1000 }, 1000 + P.shutdownMs)).toEqual({
      watts: 0,
      phase: 'off',
    });
    expect(modelPower(P, { cpuCores: 1, nicMbit: 0 }, { power: 'on', sinceMs: 1000 }, 2000)).toEqual({ watts: 130, phase: 'booting' });
    expect(modelPower(P, { cpuCores: 0, nicMbit: 0 }, { power: 'on', sinceMs: 1000 }, 1000 + P.bootMs).phase).toBe('on');
  });
  it('parses the chassis state file and /proc stat', () => {
    expect(parseChassisState('off 1795305806543\n')).toEqual({ power: 'off', sinceMs: 1795305806543 });
    expect(parseChassisState(null)).toEqual({ power: 'on', sinceMs: 0 });
    const stat = '1234 (qemu (x) y) S 1 2 3 4 5 6 7 8 9 10 250 50 0 0 20 0';
    expect(cpuTicksFromStat(stat)).toBe(300);
  });
  it('builds a full sensor record whose length byte matches', () => {
    const sdr = powerSensorSdr(1, 'Power');
    expect(sdr[4]).toBe(sdr.length - 5);
    expect(sdr[3]).toBe(0x01);
    expect(sdr[5 + 16]).toBe(6); // base unit: Watts
  });
});
