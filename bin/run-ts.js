#!/usr/bin/env node
// Runs a TypeScript entry point without a build step (tsx loader), so the
// checkout is always what runs: `node bin/run-ts.js path/to/file.ts args...`.
import { register } from 'tsx/esm/api';
import { pathToFileURL } from 'node:url';
import { resolve } from 'node:path';

register();
const [entry, ...rest] = process.argv.slice(2);
process.argv = [process.argv[0], entry, ...rest];
await import(pathToFileURL(resolve(entry)).href);
