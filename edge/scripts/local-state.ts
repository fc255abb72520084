/// <reference types="node" />
// Where the local stack keeps its state: the one folder `npm start`, `npm run demo` and `npm run keys` share by default
// (edge/.wrangler/state, what a plain `wrangler dev` in edge/ uses too), or SD_STATE_DIR, or an explicit flag.
import path from 'node:path';
import { fileURLToPath } from 'node:url';

/** The environment variable that moves the shared state folder. */
export const STATE_DIR_ENV = 'SD_STATE_DIR';

/** edge/.wrangler/state: `wrangler dev`'s own default persistence folder for edge/wrangler.jsonc. */
export const DEFAULT_STATE_DIR = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '..', '.wrangler', 'state');

/**
 * The state folder, absolute: the flag's value (relative to the working directory) when given, else $SD_STATE_DIR,
 * else edge/.wrangler/state. The edge's KV, Durable Objects and cache live in it as `wrangler dev --persist-to` lays
 * them out (`<dir>/v3/...`).
 */
export function resolveStateDir(flag?: string, env: NodeJS.ProcessEnv = process.env): string {
  const chosen = flag ?? (env[STATE_DIR_ENV] || undefined);
  return chosen ? path.resolve(chosen) : DEFAULT_STATE_DIR;
}
