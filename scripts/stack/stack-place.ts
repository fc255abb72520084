// Where `npm start` and `npm run demo` put the stack: the state folder (shared with `npm run keys`) and the edge's port,
// from their --state and --port flags, checked before anything starts.
import { resolveStateDir } from '../../edge/scripts/local-state.ts';
import { isPortFree } from './free-port.ts';

/** `npm start`'s edge port when --port is not given and it is free: wrangler dev's own default, as in wrangler.jsonc. */
export const DEFAULT_EDGE_PORT = 8787;

export interface StackPlace {
  stateDir: string;
  edgePort?: number;
  /** Said to the person when the port is not the one they would expect. */
  portNote?: string;
}

/**
 * --state DIR (else $SD_STATE_DIR, else edge/.wrangler/state) and --port N. Without --port: `preferredPort` when free,
 * else a free one; with --port, that port or an error naming it.
 */
export async function resolveStackPlace(flags: { state?: string; port?: string }, preferredPort?: number): Promise<StackPlace> {
  const stateDir = resolveStateDir(flags.state);
  if (flags.port !== undefined) {
    const port = Number(flags.port);
    if (!Number.isInteger(port) || port < 1 || port > 65535) {
      throw new Error(`--port must be an integer between 1 and 65535, got ${JSON.stringify(flags.port)}`);
    }
    if (!(await isPortFree(port))) throw new Error(`--port ${port} is in use on 127.0.0.1; pick another or leave --port out`);
    return { stateDir, edgePort: port };
  }
  if (preferredPort === undefined) return { stateDir };
  if (await isPortFree(preferredPort)) return { stateDir, edgePort: preferredPort };
  return { stateDir, portNote: `port ${preferredPort} is in use, so the edge took a free one; --port N chooses` };
}
