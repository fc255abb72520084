import { createServer } from 'node:net';
import { resolve } from 'node:path';
import { afterEach, describe, expect, it } from 'vitest';
import { DEFAULT_STATE_DIR, resolveStateDir } from '../../edge/scripts/local-state.ts';
import { freePort } from './free-port.ts';
import { resolveStackPlace } from './stack-place.ts';

describe('the shared local state folder', () => {
  it('is edge/.wrangler/state unless moved, the folder a plain `wrangler dev` in edge/ persists to', () => {
    expect(resolveStateDir(undefined, {})).toBe(resolve(import.meta.dirname, '..', '..', 'edge', '.wrangler', 'state'));
    expect(DEFAULT_STATE_DIR).toBe(resolveStateDir(undefined, {}));
  });

  it('follows SD_STATE_DIR, and a flag wins over it (relative to the working directory)', () => {
    expect(resolveStateDir(undefined, { SD_STATE_DIR: '/tmp/sd-a' })).toBe('/tmp/sd-a');
    expect(resolveStateDir('rel/dir', { SD_STATE_DIR: '/tmp/sd-a' })).toBe(resolve('rel/dir'));
    expect(resolveStateDir(undefined, { SD_STATE_DIR: '' })).toBe(DEFAULT_STATE_DIR);
  });
});

describe('resolveStackPlace: the edge port', () => {
  const servers: ReturnType<typeof createServer>[] = [];
  afterEach(() => {
    for (const s of servers.splice(0)) s.close();
  });
  const occupy = async (): Promise<number> => {
    const server = createServer();
    servers.push(server);
    await new Promise<void>((r) => server.listen(0, '127.0.0.1', () => r()));
    return (server.address() as { port: number }).port;
  };

  it('takes --port as given when it is free', async () => {
    const port = await freePort();
    expect(await resolveStackPlace({ port: String(port), state: '/tmp/x' })).toEqual({ stateDir: '/tmp/x', edgePort: port });
  });

  it('refuses a --port that is taken or not a port, naming it', async () => {
    const taken = await occupy();
    await expect(resolveStackPlace({ port: String(taken) })).rejects.toThrow(`--port ${taken} is in use on 127.0.0.1`);
    await expect(resolveStackPlace({ port: '80a' })).rejects.toThrow('--port must be an integer between 1 and 65535, got "80a"');
    await expect(resolveStackPlace({ port: '70000' })).rejects.toThrow(/got "70000"/);
  });

  it('without --port: the preferred port when free, else a free one and a note saying why', async () => {
    const free = await freePort();
    expect((await resolveStackPlace({}, free)).edgePort).toBe(free);
    const taken = await occupy();
    const place = await resolveStackPlace({}, taken);
    expect(place.edgePort).toBeUndefined();
    expect(place.portNote).toBe(`port ${taken} is in use, so the edge took a free one; --port N chooses`);
  });
});
