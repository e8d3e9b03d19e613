/**
 * Field builders shared by the run-directory schemas. Readers must accept
 * records written by older migbench versions, so a field added later gets a
 * default: absent numbers and times read as null, absent flags as false.
 */
import { z } from 'zod';

export const nullableNumber = () => z.number().nullable().default(null);
export const nullableString = () => z.string().nullable().default(null);
export const nullableBoolean = () => z.boolean().nullable().default(null);

/** One zod issue as "path: message", naming the field for a located problem. */
export function issueText(e: z.ZodError): string {
  return e.issues
    .slice(0, 3)
    .map((i) => `${i.path.length ? i.path.map(String).join('.') : '(record)'}: ${i.message}`)
    .join('; ');
}
