/** Parsing of ipmitool's text answers into watts; pure, so it is unit-tested. */

export type ReadingResult = { ok: true; watts: number } | { ok: false; reason: string };

/** `sensor reading "<name>"` prints `Name | 187` (or `| na` when unreadable). */
export function parseSensorReading(text: string): ReadingResult {
  if (/not found/i.test(text)) return { ok: false, reason: 'sensor-not-found' };
  const m = /\|\s*([-+]?\d+(?:\.\d+)?)\s*$/m.exec(text);
  if (m) return { ok: true, watts: Number(m[1]) };
  if (/\|\s*na\s*$/im.test(text)) return { ok: false, reason: 'no-reading' };
  return { ok: false, reason: `unparsed: ${firstLine(text)}` };
}

/** `sdr get "<name>"` prints ` Sensor Reading : 187 (+/- 0) Watts`. */
export function parseSdrGet(text: string): ReadingResult {
  if (/not found/i.test(text)) return { ok: false, reason: 'sensor-not-found' };
  const m = /Sensor Reading\s*:\s*([-+]?\d+(?:\.\d+)?)/i.exec(text);
  if (m) return { ok: true, watts: Number(m[1]) };
  if (/Sensor Reading\s*:\s*(Disabled|No Reading|Not Available)/i.test(text)) return { ok: false, reason: 'no-reading' };
  return { ok: false, reason: `unparsed: ${firstLine(text)}` };
}

/** `dcmi power reading` prints `Instantaneous power reading:   150 Watts`. */
export function parseDcmiPowerReading(text: string): ReadingResult {
  const m = /Instantaneous power reading:\s*([-+]?\d+(?:\.\d+)?)\s*Watts/i.exec(text);
  if (m) return { ok: true, watts: Number(m[1]) };
  if (/Invalid command|not supported|failed/i.test(text)) return { ok: false, reason: 'dcmi-unsupported' };
  return { ok: false, reason: `unparsed: ${firstLine(text)}` };
}

/** Classifies why ipmitool could not open a session, from `ipmitool -v` output. */
export type SessionFailure = 'wrong-password' | 'unknown-user' | 'unreachable' | 'other';

export function classifySessionFailure(text: string): SessionFailure {
  if (/HMAC is invalid|integrity check|password/i.test(text)) return 'wrong-password';
  if (/unauthorized name|invalid user/i.test(text)) return 'unknown-user';
  if (
    /Get Auth Capabilities error|Get Channel Authentication Capabilities|No response|Timeout|connection refused|unable to.*connect|no route|Address lookup/i.test(
      text,
    )
  )
    return 'unreachable';
  return 'other';
}

function firstLine(text: string): string {
  return text.trim().split('\n')[0]?.slice(0, 120) ?? '';
}
