/**
 * Parsers for the quantities a spec writes as strings: rates, durations,
 * sizes and percentages. Each returns null on anything it does not
 * recognise so the schema can say what was expected. Only the schema
 * (harness/spec/schema.ts) calls them: it resolves every quantity once into
 * the classes below, and the rest of the code reads those numbers.
 */

const RATE_UNITS: Record<string, number> = {
  bit: 1,
  kbit: 1e3,
  mbit: 1e6,
  gbit: 1e9,
  tbit: 1e12,
  bps: 8,
  kbps: 8e3,
  mbps: 8e6,
  gbps: 8e9, // tc's bytes-per-second units
};

/** '100mbit', '1Gbit', '20 Mbit/s', '500kbit' -> bits per second. */
export function parseRate(s: string): number | null {
  const m = /^\s*(\d+(?:\.\d+)?)\s*([a-zA-Z]+)(\/s)?\s*$/.exec(s);
  if (!m) return null;
  const unit = m[2].toLowerCase();
  const mul = RATE_UNITS[unit];
  if (mul === undefined) return null;
  if (m[3] && !unit.endsWith('bit')) return null;
  const v = Number(m[1]) * mul;
  return v > 0 ? v : null;
}

const DURATION_UNITS: Record<string, number> = { us: 1e-3, ms: 1, s: 1000, m: 60_000, min: 60_000, h: 3_600_000 };

/** '10ms', '1.5s', '250us', '2m' -> milliseconds. Zero is allowed. */
export function parseDuration(s: string): number | null {
  const m = /^\s*(\d+(?:\.\d+)?)\s*(us|ms|s|m|min|h)\s*$/.exec(s);
  if (!m) return null;
  return Number(m[1]) * DURATION_UNITS[m[2]];
}

const SIZE_UNITS: Record<string, number> = {
  b: 1,
  k: 1024,
  kib: 1024,
  kb: 1000,
  m: 1024 ** 2,
  mib: 1024 ** 2,
  mb: 1e6,
  g: 1024 ** 3,
  gib: 1024 ** 3,
  gb: 1e9,
};

/** '128MiB', '64M', '16KiB', '1GB' -> bytes (K/M/G without B are binary, as in stress/dd). */
export function parseSize(s: string): number | null {
  const m = /^\s*(\d+(?:\.\d+)?)\s*([a-zA-Z]*)\s*$/.exec(s);
  if (!m) return null;
  const mul = SIZE_UNITS[(m[2] || 'b').toLowerCase()];
  if (mul === undefined) return null;
  return Math.round(Number(m[1]) * mul);
}

/** '5%' or '0.5 %' -> 5 / 0.5 (percent, 0..100). */
export function parsePercent(s: string): number | null {
  const m = /^\s*(\d+(?:\.\d+)?)\s*%\s*$/.exec(s);
  if (!m) return null;
  const v = Number(m[1]);
  return v <= 100 ? v : null;
}

/**
 * A quantity as the spec resolves it: the value in a base unit, and the text
 * the user wrote. It prints and serialises as that text, so messages and the
 * manifest keep the user's words; code reads the number (`.ms`, `.bytes`,
 * `.bps`, `.pct`) and never parses a quantity again.
 */
abstract class Quantity {
  constructor(readonly text: string) {}
  toString(): string {
    return this.text;
  }
  toJSON(): string {
    return this.text;
  }
}

/** A duration; `ms` in milliseconds. */
export class Duration extends Quantity {
  constructor(
    text: string,
    readonly ms: number,
  ) {
    super(text);
  }
}
/** A size; `bytes`. */
export class Size extends Quantity {
  constructor(
    text: string,
    readonly bytes: number,
  ) {
    super(text);
  }
}
/** A rate; `bps` in bits per second. */
export class Rate extends Quantity {
  constructor(
    text: string,
    readonly bps: number,
  ) {
    super(text);
  }
}
/** A percentage; `pct` in 0..100. */
export class Percent extends Quantity {
  constructor(
    text: string,
    readonly pct: number,
  ) {
    super(text);
  }
}

/** Formats bits/s the way tc accepts it ('50000kbit'), avoiding float rounding in tc. */
export function tcRate(bitsPerSecond: number): string {
  return `${Math.max(1, Math.round(bitsPerSecond / 1000))}kbit`;
}

export function formatRate(bps: number): string {
  if (bps >= 1e9) return `${+(bps / 1e9).toFixed(3)} Gbit/s`;
  if (bps >= 1e6) return `${+(bps / 1e6).toFixed(3)} Mbit/s`;
  return `${+(bps / 1e3).toFixed(1)} kbit/s`;
}
