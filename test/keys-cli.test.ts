// The keys CLI end to end: keys it creates in a temp persistence dir are accepted by `wrangler dev --persist-to` that dir.
// The worker under `wrangler dev` is a small probe mounting the real authenticate() (the full app needs runners).
import { type ChildProcess, execFile, spawn } from 'node:child_process';
import { mkdtemp, rm, writeFile } from 'node:fs/promises';
import { createServer } from 'node:net';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { promisify } from 'node:util';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';

const ROOT = path.resolve(import.meta.dirname, '..');
const run = promisify(execFile);

async function keys(...args: string[]): Promise<{ stdout: string; stderr: string }> {
  return run(
    process.execPath,
    [path.join(ROOT, 'node_modules/tsx/dist/cli.mjs'), path.join(ROOT, 'edge/scripts/keys.ts'), ...args],
    {
      cwd: ROOT,
      env: { ...process.env, WRANGLER_SEND_METRICS: 'false' },
    },
  );
}

async function keysJson<T>(...args: string[]): Promise<T> {
  return JSON.parse((await keys(...args, '--json')).stdout) as T;
}

function freePort(): Promise<number> {
  return new Promise((resolve, reject) => {
    const server = createServer();
    server.once('error', reject);
    server.listen(0, '127.0.0.1', () => {
      const { port } = server.address() as { port: number };
      server.close(() => resolve(port));
    });
  });
}

// Imports by absolute path: the probe lives in a temp dir, outside the repo's node_modules resolution.
const PROBE = `
import { Hono } from ${JSON.stringify(path.join(ROOT, 'node_modules/hono/dist/index.js'))};
import { authenticate } from ${JSON.stringify(path.join(ROOT, 'edge/src/auth/authenticate/index.ts'))};
const app = new Hono();
app.use('*', authenticate({ cacheTtl: 0 }));
app.get('/whoami', (c) => c.json(c.var.principal));
export default app;
`;

const SITE = 'https://shop.example';

describe('npm run keys against wrangler dev --persist-to', () => {
  let dir: string;
  let persist: string;
  let dev: ChildProcess | undefined;
  let base: string;
  let devLog = '';

  beforeAll(async () => {
    dir = await mkdtemp(path.join(tmpdir(), 'keys-cli-'));
    persist = path.join(dir, 'state');
    await writeFile(path.join(dir, 'probe.ts'), PROBE);
    await writeFile(
      path.join(dir, 'wrangler.jsonc'),
      JSON.stringify({
        name: 'keys-probe',
        main: 'probe.ts',
        compatibility_date: '2026-04-20',
        // The same namespace id as edge/wrangler.jsonc: local KV data is keyed by it.
        kv_namespaces: [{ binding: 'KEYS', id: 'sd-edge-keys-local' }],
      }),
    );
  });

  afterAll(async () => {
    if (dev?.pid) process.kill(-dev.pid, 'SIGTERM');
    if (dir) await rm(dir, { recursive: true, force: true });
  });

  async function startDev() {
    const port = await freePort();
    base = `http://127.0.0.1:${port}`;
    dev = spawn(
      process.execPath,
      [
        path.join(ROOT, 'node_modules/wrangler/bin/wrangler.js'),
        'dev',
        '--config',
        path.join(dir, 'wrangler.jsonc'),
        '--persist-to',
        persist,
        '--ip',
        '127.0.0.1',
        '--port',
        String(port),
      ],
      {
        cwd: ROOT,
        detached: true,
        env: { ...process.env, WRANGLER_SEND_METRICS: 'false', CI: '1' },
        stdio: ['ignore', 'pipe', 'pipe'],
      },
    );
    dev.stdout?.on('data', (d) => (devLog += d));
    dev.stderr?.on('data', (d) => (devLog += d));
    const deadline = Date.now() + 90_000;
    while (Date.now() < deadline) {
      try {
        const res = await fetch(`${base}/whoami`, { signal: AbortSignal.timeout(2_000) });
        if (res.status === 401) return;
      } catch {
        // not listening yet
      }
      if (dev.exitCode !== null || /Build failed/.test(devLog)) throw new Error(`wrangler dev failed:\n${devLog}`);
      await new Promise((r) => setTimeout(r, 250));
    }
    throw new Error(`wrangler dev did not answer within 90 s:\n${devLog}`);
  }

  it('creates, lists and revokes keys that wrangler dev then accepts and refuses', async () => {
    const sk = await keysJson<{ key: string; id: string; status: string }>(
      'create',
      '--name',
      'backend',
      '--rate',
      '5',
      '--persist-to',
      persist,
    );
    expect(sk.key).toMatch(/^sk_[a-z0-9]{12}_[A-Za-z0-9]{32}$/);
    expect(sk.status).toBe('active');
    const pk = await keysJson<{ key: string; id: string }>(
      'create',
      '--publishable',
      '--origin',
      SITE,
      '--name',
      'shop',
      '--persist-to',
      persist,
    );
    const doomed = await keysJson<{ key: string; id: string }>('create', '--name', 'doomed', '--persist-to', persist);
    // The wrangler-kv code path (what --remote uses), here against the same local dir.
    const viaWrangler = await keysJson<{ key: string; id: string }>(
      'create',
      '--name',
      'via wrangler',
      '--wrangler',
      '--persist-to',
      persist,
    );

    const revoked = await keysJson<{ id: string; status: string }>('revoke', doomed.id, '--persist-to', persist);
    expect(revoked).toMatchObject({ id: doomed.id, status: 'revoked' });

    const listText = (await keys('list', '--persist-to', persist)).stdout;
    const list = await keysJson<Array<Record<string, unknown>>>('list', '--persist-to', persist);
    expect(list.map((r) => [r.name, r.status])).toEqual([
      ['backend', 'active'],
      ['shop', 'active'],
      ['doomed', 'revoked'],
      ['via wrangler', 'active'],
    ]);
    // Never a secret, never a hash.
    for (const k of [sk, pk, doomed, viaWrangler]) {
      expect(listText).not.toContain(k.key.split('_')[2]);
      expect(JSON.stringify(list)).not.toContain(k.key.split('_')[2]);
    }
    expect(list.every((r) => !('hash' in r))).toBe(true);
    // A table: every column starts where its header does (names here have spaces, kinds have different widths).
    const [header, ...rows] = listText.trimEnd().split('\n');
    for (const [column, field] of [
      ['status', 'status'],
      ['name', 'name'],
      ['scopes', 'scopes'],
    ] as const) {
      for (const [i, row] of rows.entries()) {
        expect(
          row.slice(header.indexOf(column)).startsWith(String(list[i][field] ?? '').split(',')[0]),
          `${column} of ${row}`,
        ).toBe(true);
      }
    }

    await startDev();
    const who = (key: string, origin?: string) =>
      fetch(`${base}/whoami`, { headers: { Authorization: `Bearer ${key}`, ...(origin ? { Origin: origin } : {}) } });

    const okSk = await who(sk.key);
    expect(okSk.status).toBe(200);
    expect(await okSk.json()).toMatchObject({ keyId: sk.id, kind: 'secret', limits: { ratePerMinute: 5 } });
    expect((await who(viaWrangler.key)).status).toBe(200);
    expect((await who(pk.key, SITE)).status).toBe(200);
    expect((await who(pk.key, 'https://elsewhere.example')).status).toBe(403);
    const gone = await who(doomed.key);
    expect(gone.status).toBe(401);
    expect(await gone.text()).toMatch(/revoked/);
  });

  it('refuses bad options with exit code 2 and a message naming the value', async () => {
    const err = await keys('create', '--rate', 'lots', '--persist-to', persist).catch((e: { code: number; stderr: string }) => e);
    expect(err).toMatchObject({ code: 2 });
    expect((err as { stderr: string }).stderr).toContain('--rate must be a positive integer, got "lots"');
    const noOrigin = await keys('create', '--publishable', '--persist-to', persist).catch(
      (e: { code: number; stderr: string }) => e,
    );
    expect((noOrigin as { stderr: string }).stderr).toContain('a publishable key needs at least one origin');
  });
});
