#!/usr/bin/env node
// CLI entry: loads the TypeScript sources through tsx so `npx migbench` works
// right after `npm ci`, with no separate build.
import { register } from 'tsx/esm/api';

register();
await import('../harness/cli/main.ts');
