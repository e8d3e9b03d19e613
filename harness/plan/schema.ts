import { z } from 'zod';

/**
 * The migration plan of a spec (`migration.plan`): how the moves are ordered
 * and how many run at once, as in the seeds (Kherbache et al.: sequential,
 * parallel, k-by-k per server, boot/shutdown of hosts; mVM: parallelism
 * capped at 2..4 like Memory Buddies). Meant to replace the minimal
 * `PlanSpec` in harness/spec/schema.ts.
 *
 * kinds:
 *   sequential      one action at a time (power actions included), in spec order
 *   parallel        everything as soon as its predecessors are done
 *   capped {k}      at most k migrations at once overall
 *   per_server {k}  at most k concurrent migrations per source host
 *                   (and at most dst_k per destination host when given)
 *   groups          explicit groups of VMs; a group starts when the previous
 *                   one has finished, its members run in parallel
 * constraints usable with any kind:
 *   after           [{vm: B, after: A}]: B's migration starts after A's ended
 *   sync            [[A, B]]: these migrations start at the same time
 *   boot            power on destination hosts before their first incoming migration
 *   shutdown        power off source hosts after their last outgoing migration
 */

const vmRef = z.string({ error: 'expected a vm name' }).min(1, { message: 'expected a vm name' });
const hostRef = z.string({ error: 'expected a host name' }).min(1, { message: 'expected a host name' });
const count = (what: string) =>
  z
    .number({ error: `expected ${what} (an integer >= 1)` })
    .int({ message: `expected ${what} (an integer >= 1)` })
    .min(1, { message: `expected ${what} (an integer >= 1)` });

/** true: every eligible host of the moves; a list: exactly these hosts. */
const HostSelection = z.union([z.boolean(), z.array(hostRef).min(1)], {
  error: 'expected true, false or a list of host names',
});

export const PlanKind = z.enum(['sequential', 'parallel', 'capped', 'per_server', 'groups'], {
  error: "expected a plan kind: 'sequential', 'parallel', 'capped', 'per_server' or 'groups'",
});

export const PlanSpec = z
  .strictObject({
    kind: PlanKind.default('sequential'),
    /** capped: migrations at once overall; per_server: migrations at once per source host. */
    k: count('a number of concurrent migrations').optional(),
    /** per_server: also at most this many concurrent incoming migrations per destination host. */
    dst_k: count('a number of concurrent incoming migrations').optional(),
    /** groups: lists of VMs; each group starts when the previous one has finished. */
    groups: z
      .array(z.array(vmRef).min(1, { message: 'expected a non-empty group of vms' }))
      .min(1)
      .optional(),
    after: z.array(z.strictObject({ vm: vmRef, after: z.union([vmRef, z.array(vmRef).min(1)]) })).default([]),
    sync: z.array(z.array(vmRef).min(2, { message: 'expected at least two vms that start together' })).default([]),
    boot: HostSelection.default(false),
    shutdown: HostSelection.default(false),
  })
  .superRefine((p, ctx) => {
    const needsK = p.kind === 'capped' || p.kind === 'per_server';
    if (needsK && p.k === undefined)
      ctx.addIssue({ code: 'custom', path: ['k'], message: `missing; a '${p.kind}' plan needs k, the number of concurrent migrations` });
    if (!needsK && p.k !== undefined)
      ctx.addIssue({ code: 'custom', path: ['k'], message: `k applies to 'capped' and 'per_server' plans, not '${p.kind}'` });
    if (p.dst_k !== undefined && p.kind !== 'per_server')
      ctx.addIssue({ code: 'custom', path: ['dst_k'], message: `dst_k applies to 'per_server' plans, not '${p.kind}'` });
    if (p.kind === 'groups' && p.groups === undefined)
      ctx.addIssue({ code: 'custom', path: ['groups'], message: "missing; a 'groups' plan needs groups, a list of lists of vms" });
    if (p.kind !== 'groups' && p.groups !== undefined)
      ctx.addIssue({ code: 'custom', path: ['groups'], message: `groups applies to 'groups' plans, not '${p.kind}'` });
  });

export type PlanSpecT = z.infer<typeof PlanSpec>;
/** What a caller may write (defaults not yet applied). */
export type PlanSpecInput = z.input<typeof PlanSpec>;
