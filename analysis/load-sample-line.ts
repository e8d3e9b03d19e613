/**
 * A fast reader for sample lines in the form the harness writes them:
 * {"t":"…","measurement":"…","tags":{…},"fields":{…}} without spaces or
 * escapes. JSON.parse of such a line costs ~1.5 µs here and a campaign holds
 * millions; this cuts the line with indexOf, parses each tags text once
 * (consecutive lines repeat the same few tag sets: the hosts of one
 * treatment take turns) and reads fields that are plain numbers, booleans,
 * null or escape-free strings directly. Any other line returns undefined and
 * goes to JSON.parse and the schema, so a sample (values, key order) is
 * always the one JSON.parse would give.
 */
import type { Sample } from '../harness/store/schema/index.ts';

const HEAD = '{"t":"';
const MEAS = '","measurement":"';
const TAGS = '","tags":{';
const FIELDS = ',"fields":{';
/** A JSON number exactly (Number() accepts more: hex, Infinity, spaces). */
const JSON_NUMBER = /^-?(?:0|[1-9]\d*)(?:\.\d+)?(?:[eE][+-]?\d+)?$/;
/** Tag sets kept parsed; a run with a tag per sample clears the cache rather than grow it without bound. */
const MAX_TAG_SETS = 100_000;

type Tags = Record<string, string>;

/** Per-stream state: parsed tag sets by their text and the last two seen (compared first). */
export class SampleLineCache {
  private map = new Map<string, Tags | null>();
  private a = '';
  private aTags: Tags | null = null;
  private b = '';
  private bTags: Tags | null = null;
  private measurement = '';

  /** The tags of this text, null when it is not an object of strings. */
  tags(text: string): Tags | null {
    if (text === this.a) return this.aTags;
    let v: Tags | null | undefined;
    if (text === this.b) v = this.bTags;
    else {
      v = this.map.get(text);
      if (v === undefined) {
        v = parseTags(text);
        if (this.map.size >= MAX_TAG_SETS) this.map.clear();
        this.map.set(ownString(text), v);
      }
    }
    this.b = this.a;
    this.bTags = this.aTags;
    this.a = text;
    this.aTags = v;
    return v;
  }

  private keys = new Map<string, string>();
  private lastKeyText = '';
  private lastKey = '';
  /**
   * A field name as an internalized string (a key cut from the line would be
   * looked up in V8's string table at each store); the last one is compared first.
   */
  key(text: string): string {
    if (text === this.lastKeyText) return this.lastKey;
    let k = this.keys.get(text);
    if (k === undefined) {
      k = Object.keys({ [text]: 0 })[0];
      if (this.keys.size >= MAX_TAG_SETS) this.keys.clear();
      this.keys.set(k, k);
    }
    this.lastKeyText = text;
    return (this.lastKey = k);
  }

  /** The same string as the last time its text was seen (one string per measurement, not one per line). */
  name(text: string): string {
    if (text !== this.measurement) this.measurement = text;
    return this.measurement;
  }

  /** The shapes of the last two plain lines that differed in shape, which of them the last line had, and whether it alternated. */
  private shapes: [Shape | null, Shape | null] = [null, null];
  private last = 0;
  private alternating = false;
  /**
   * The measurement and tags of the line when the text from its t's closing
   * quote to the fields' '{' is that of one of the last two plain lines'
   * shapes, else null. The shape tried first is the one the pattern so far
   * predicts (the hosts of one treatment take turns: A B A B).
   */
  shapeAt(line: string, tEnd: number): Shape | null {
    const first = this.alternating ? 1 - this.last : this.last;
    return this.hit(line, tEnd, first) ?? this.hit(line, tEnd, 1 - first);
  }

  private hit(line: string, tEnd: number, i: number): Shape | null {
    const x = this.shapes[i];
    if (x === null || line.slice(tEnd, tEnd + x.text.length) !== x.text) return null;
    this.alternating = i !== this.last;
    this.last = i;
    return x;
  }

  /** Remembers the shape of a plain line (its text checked by the general fast path) in place of the older one. */
  addShape(text: string, measurement: string, tags: Tags): void {
    const i = 1 - this.last;
    this.shapes[i] = { text, measurement, tags };
    this.alternating = true;
    this.last = i;
  }

  private numberKey = '';
  private numberPrefix = '';
  private numberTemplate: Sample['fields'] = {};
  /**
   * Fields that are one number under the key of the last such line, e.g.
   * {"watts":133.5} (the power poller's lines), read from `from` (just after
   * the fields' '{'); undefined for anything else.
   */
  oneNumber(line: string, from: number): Sample['fields'] | undefined {
    const v = this.numberAt(line, from);
    if (v === undefined) return undefined;
    // a copy of a one-key object, then a store to that key: adding a property by a computed key measured ~1 µs
    const fields: Sample['fields'] = { ...this.numberTemplate };
    fields[this.numberKey] = v;
    return fields;
  }

  /** The number of fields as oneNumber reads them (under numberKey), undefined where oneNumber gives undefined. */
  numberAt(line: string, from: number): number | undefined {
    const p = this.numberPrefix;
    if (p === '' || line.slice(from, from + p.length) !== p || !line.endsWith('}}')) return undefined;
    const text = line.slice(from + p.length, line.length - 2);
    return JSON_NUMBER.test(text) ? Number(text) : undefined;
  }

  /** The field key of the lines numberAt reads. */
  get numberField(): string {
    return this.numberKey;
  }

  private lastT = '';
  /**
   * line[from, to) as a string when it holds no control character or
   * backslash, else null; the same string as the last time when the text is
   * the same (the hosts' readings of one poll share their time), so a
   * consumer comparing times compares one pointer, and the text is checked
   * once per time rather than per line.
   */
  time(line: string, from: number, to: number): string | null {
    const t = line.slice(from, to);
    if (t === this.lastT) return this.lastT;
    if (hasControlOrEscape(t, 0, t.length)) return null;
    return (this.lastT = t);
  }

  /** What fastNumber read from the last line it took (overwritten by the next one): see NumberLine. */
  readonly read: NumberLine = { t: '', measurement: '', tags: {}, key: '', value: 0 };

  /** Notes a one-number fields object read by the general path, for oneNumber. */
  noteFields(fields: Sample['fields']): void {
    let key: string | undefined;
    for (const k in fields) {
      if (key !== undefined) return;
      key = k;
    }
    if (key === undefined || typeof fields[key] !== 'number' || key.includes('"') || key === '__proto__') return;
    this.numberKey = key;
    this.numberPrefix = `"${key}":`;
    this.numberTemplate = { [key]: 0 };
  }
}

/**
 * The text as a string of its own: a slice of a line is a view of the whole
 * text the line was cut from (tens of KiB), which a cache key would keep
 * alive, and a run holds tens of thousands of tag sets. Slicing a
 * concatenation copies it into a flat string first: the result is a view of
 * that copy. (A property name made from it would be a copy too, but each new
 * name measured ~3 µs.)
 */
function ownString(text: string): string {
  return (text + ' ').slice(0, -1);
}

/** The text of a line between its t and its fields, with what it says. */
interface Shape {
  text: string;
  measurement: string;
  tags: Tags;
}

/**
 * A line whose fields are one number, as fastNumber reads it without making
 * a sample: `tags` is shared by every line with the same tag text and must
 * not be changed; `t` is one string for consecutive lines with the same time.
 * numberSample(read) is the sample JSON.parse makes of the line.
 */
export interface NumberLine {
  t: string;
  measurement: string;
  tags: Readonly<Tags>;
  key: string;
  value: number;
}

/** The sample of a line fastNumber read: what fastSample (and JSON.parse) make of it, with a tags object of its own. */
export function numberSample(r: Readonly<NumberLine>): Sample {
  const fields: Sample['fields'] = {};
  fields[r.key] = r.value;
  return { t: r.t, measurement: r.measurement, tags: { ...r.tags }, fields };
}

/**
 * Reads a line of the power poller's kind without making objects: when its
 * measurement and tags are those of one of the last two plain lines (see
 * shapeAt) and its fields are one plain number under the key of the last such
 * line (see oneNumber), fills `cache.read` and returns true; else returns
 * false (and fastSample or JSON.parse decide). It takes exactly the lines
 * fastSample reads by its shape path with one-number fields, and
 * numberSample(cache.read) is fastSample's sample: the shape's text, the
 * field key and the number were checked to hold no backslash (a shape and a
 * key are only remembered from lines without one), so only t is checked here.
 */
export function fastNumber(line: string, cache: SampleLineCache): boolean {
  if (line.slice(0, HEAD.length) !== HEAD) return false;
  const tEnd = line.indexOf('"', HEAD.length);
  if (tEnd <= HEAD.length) return false;
  const t = cache.time(line, HEAD.length, tEnd);
  if (t === null) return false;
  const shape = cache.shapeAt(line, tEnd);
  if (shape === null) return false;
  const value = cache.numberAt(line, tEnd + shape.text.length);
  if (value === undefined) return false;
  const r = cache.read;
  r.t = t;
  r.measurement = shape.measurement;
  r.tags = shape.tags;
  r.key = cache.numberField;
  r.value = value;
  return true;
}

/** Whether s[from, to) holds a character below U+0020 or a backslash. */
function hasControlOrEscape(s: string, from: number, to: number): boolean {
  for (let i = from; i < to; i++) {
    const c = s.charCodeAt(i);
    if (c < 0x20 || c === 0x5c) return true;
  }
  return false;
}

/** Whether s[from, to) holds a character below U+0020 (invalid unescaped in a JSON string). */
function hasControl(s: string, from: number, to: number): boolean {
  for (let i = from; i < to; i++) if (s.charCodeAt(i) < 0x20) return true;
  return false;
}

function parseTags(text: string): Tags | null {
  let v: unknown;
  try {
    v = JSON.parse(text);
  } catch {
    return null; // e.g. the first '}' was inside a tag value: the whole line decides
  }
  if (typeof v !== 'object' || v === null || Array.isArray(v)) return null;
  for (const k in v) if (typeof (v as Record<string, unknown>)[k] !== 'string') return null;
  return v as Tags;
}

/**
 * The sample of one line, or undefined when the line is not in the plain
 * form (then the caller parses it with JSON.parse and checks the schema).
 * A returned sample passes isSample: non-empty t and measurement, string
 * tags, at least one field of a JSON scalar type. Its tags object is its own.
 */
export function fastSample(line: string, cache: SampleLineCache): Sample | undefined {
  // no escapes anywhere: every string below ends at the next quote
  if (!line.startsWith(HEAD) || line.includes('\\')) return undefined;
  const tEnd = line.indexOf('"', HEAD.length);
  // a raw control character makes the line invalid JSON (the writer escapes them): JSON.parse reports it
  if (tEnd <= HEAD.length || hasControl(line, HEAD.length, tEnd)) return undefined;
  // most lines repeat the measurement and tags of one of the last two lines: compare that text
  // (a slice and ===: startsWith with a position measured ~4x slower on node 20)
  const shape = cache.shapeAt(line, tEnd);
  if (shape !== null) {
    const fields = cache.oneNumber(line, tEnd + shape.text.length) ?? plainFields(line, tEnd + shape.text.length, cache);
    if (fields === undefined) return undefined;
    return { t: line.slice(HEAD.length, tEnd), measurement: shape.measurement, tags: { ...shape.tags }, fields };
  }
  if (line.slice(tEnd, tEnd + MEAS.length) !== MEAS) return undefined;
  const mFrom = tEnd + MEAS.length;
  const mEnd = line.indexOf('"', mFrom);
  if (mEnd <= mFrom || hasControl(line, mFrom, mEnd) || line.slice(mEnd, mEnd + TAGS.length) !== TAGS) return undefined;
  const tagsFrom = mEnd + TAGS.length - 1;
  const tagsEnd = line.indexOf('}', tagsFrom) + 1;
  if (tagsEnd === 0 || line.slice(tagsEnd, tagsEnd + FIELDS.length) !== FIELDS) return undefined;
  const tags = cache.tags(line.slice(tagsFrom, tagsEnd));
  if (tags === null) return undefined;
  const fieldsFrom = tagsEnd + FIELDS.length;
  const fields = plainFields(line, fieldsFrom, cache);
  if (fields === undefined) return undefined;
  const measurement = cache.name(line.slice(mFrom, mEnd));
  cache.addShape(line.slice(tEnd, fieldsFrom), measurement, tags);
  return { t: line.slice(HEAD.length, tEnd), measurement, tags: { ...tags }, fields };
}

/**
 * The t of a line in the harness's form (it comes first), read without
 * parsing the line; null for any other line. A reader that only wants a time
 * span skips lines by it: such a line, parsed, has exactly this t.
 */
export function lineTime(line: string): string | null {
  if (line.slice(0, HEAD.length) !== HEAD) return null;
  const end = line.indexOf('"', HEAD.length);
  if (end < 0) return null;
  const t = line.slice(HEAD.length, end);
  return t.includes('\\') ? null : t;
}

/** Fields from `from` (just after their '{') to the line's closing "}}", or undefined unless all plain. */
function plainFields(line: string, from: number, cache: SampleLineCache): Sample['fields'] | undefined {
  const fields: Sample['fields'] = {};
  for (let i = from; ;) {
    if (line.charCodeAt(i) !== 0x22 /* " */) return undefined;
    const kEnd = line.indexOf('"', i + 1);
    if (kEnd < 0 || line.charCodeAt(kEnd + 1) !== 0x3a /* : */ || hasControl(line, i + 1, kEnd)) return undefined;
    const key = cache.key(line.slice(i + 1, kEnd));
    // assigning __proto__ would set the prototype, where JSON.parse makes an own property
    if (key === '__proto__') return undefined;
    const v = kEnd + 2;
    let end: number;
    let value: number | string | boolean | null;
    if (line.charCodeAt(v) === 0x22) {
      end = line.indexOf('"', v + 1) + 1;
      if (end === 0 || hasControl(line, v + 1, end - 1)) return undefined;
      value = line.slice(v + 1, end - 1);
    } else {
      const comma = line.indexOf(',', v);
      end = comma < 0 ? line.indexOf('}', v) : comma;
      if (end < 0) return undefined;
      const text = line.slice(v, end);
      if (text === 'true') value = true;
      else if (text === 'false') value = false;
      else if (text === 'null') value = null;
      else if (JSON_NUMBER.test(text)) value = Number(text);
      else return undefined;
    }
    // a repeated key keeps its first position and takes the last value, as with JSON.parse
    fields[key] = value;
    const c = line.charCodeAt(end);
    if (c === 0x2c /* , */) i = end + 1;
    // the fields' '}' and the sample's '}' end the line
    else if (c === 0x7d && end + 2 === line.length && line.charCodeAt(end + 1) === 0x7d) {
      cache.noteFields(fields);
      return fields;
    } else return undefined;
  }
}
