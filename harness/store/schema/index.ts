/** The run directory's files, one schema module each; writers use the types, readers the schemas. */
export * from './manifest.ts';
export * from './migration.ts';
export * from './guest-start.ts';
export * from './treatment.ts';
export * from './plan.ts';
export * from './state.ts';
export * from './sample.ts';
export * from './timing.ts';
export { issueText } from './fields.ts';
