import { readFileSync } from 'node:fs';

// package.json is one level above dist/ and src/ alike.
const pkg = JSON.parse(readFileSync(new URL('../../package.json', import.meta.url), 'utf8')) as { version: string };

export const VERSION: string = pkg.version;
export const REVISION: string = process.env.FLEETRUNNER_REVISION ?? 'dev';
