import { describe, expect, it } from 'vitest';
import { redactInText, redactUrl } from './redact.ts';

/** Hostile spellings of a login in a URL; none of them may survive redaction. */
const HOSTILE: Array<[string, string]> = [
  ['http://user:password@host:8086/db', 'http://host:8086/db'],
  ['http://:password@host:8086/db', 'http://host:8086/db'],
  ['http://user:pa/ss@host/db', 'http://host/db'], // unencoded '/' in the password
  ['http://user:p#ss@host:8086/db', 'http://host:8086/db'], // '#' would start a fragment
  ['http://user:p?ss@host/db', 'http://host/db'], // '?' would start a query
  ['http://user:p@ss@host/db', 'http://host/db'], // '@' in the password
  ['HTTPS://USER:PASSWORD@HOST/db', 'https://host/db'],
  ['http://user:password@[::1]:8086/db', 'http://[::1]:8086/db'],
  ['http://us%40er:pa%3Ass@host/db', 'http://host/db'],
  ['user:password@host:8086/db', 'host:8086/db'], // no scheme
  ['ftp://user:password@host/db', 'ftp://host/db'],
  ['http://host/db?u=user&p=password', 'http://host/db?u=***&p=***'], // InfluxDB 1.x query-string login
];

describe('redactUrl', () => {
  it.each(HOSTILE)('%s -> %s', (url, want) => {
    const got = redactUrl(url);
    expect(got).toBe(want);
    expect(got).not.toMatch(/password|pa\/ss|p#ss|p\?ss|p@ss|pa%3Ass/i);
  });
  it('leaves URLs without a login unchanged', () => {
    expect(redactUrl('http://127.0.0.1:8086/migbench')).toBe('http://127.0.0.1:8086/migbench');
    expect(redactUrl('https://influx.example.org/db')).toBe('https://influx.example.org/db');
  });
  it('cleans URLs quoted inside free text (library error messages)', () => {
    const msg = redactInText('request to http://admin:s3cret@10.0.0.1:8086/write?db=x&p=s3cret failed, reason: ECONNREFUSED');
    expect(msg).not.toContain('s3cret');
    expect(msg).not.toContain('admin');
    expect(msg).toContain('http://10.0.0.1:8086/write');
  });
});
