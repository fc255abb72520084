// `npm start` as a newcomer runs it: its state folder is the one `npm run keys` writes, so a key made there works at
// once; --port puts the edge where asked; a second start on the same folder is refused; and Ctrl-C leaves no process and
// no temporary file or folder behind (the process's own TMPDIR, the run's files, wrangler's build folders).
import { execFile, spawnSync } from 'node:child_process';
import { existsSync, readdirSync, readFileSync } from 'node:fs';
import { mkdir, mkdtemp, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { promisify } from 'node:util';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { type ManagedProcess, startProcess } from '../scripts/stack/child-process.ts';
import { freePort } from '../scripts/stack/free-port.ts';
import { REPO_ROOT } from '../scripts/stack/runner-process.ts';
import { STACK_KEY_FILE } from '../scripts/stack/stack-key.ts';

const TSX = join(REPO_ROOT, 'node_modules', 'tsx', 'dist', 'cli.mjs');
const WRANGLER_TMP = join(REPO_ROOT, 'edge', '.wrangler', 'tmp');
const listing = (dir: string) => (existsSync(dir) ? readdirSync(dir) : []);
/**
 * What a run left in its TMPDIR. Files tools keep on purpose under one fixed name, whatever the number of runs, may stay:
 * tsx's compile cache, wrangler's update check, onnxruntime's `.ses`; nothing per run does (folders, mat-debug-<pid>).
 */
const leftovers = (tmp: string) => listing(tmp).filter((n) => !['tsx-0', 'update-check', '.ses'].includes(n));
const wranglerBuildDirs = () => listing(WRANGLER_TMP).filter((n) => /^(bundle|dev)-/.test(n));

/** `wrangler dev` processes of this repository's edge running now (other tests' stacks), each with its build folders. */
function liveWranglerDevs(): number {
  let count = 0;
  for (const pid of readdirSync('/proc').filter((n) => /^\d+$/.test(n))) {
    try {
      const cmd = readFileSync(`/proc/${pid}/cmdline`, 'utf8');
      if (cmd.includes('wrangler-dist/cli.js') && cmd.includes(join(REPO_ROOT, 'edge', 'wrangler.jsonc'))) count++;
    } catch {
      // gone meanwhile
    }
  }
  return count;
}

describe('npm start and npm run keys share one local state folder', () => {
  let work: string;
  let stateDir: string;
  let tmp: string;
  let port: number;
  let start: ManagedProcess;
  let env: NodeJS.ProcessEnv;
  let buildDirsBefore: string[];
  let firstKey: string;

  beforeAll(async () => {
    work = await mkdtemp(join(tmpdir(), 'npm-start-test-'));
    stateDir = join(work, 'state');
    tmp = join(work, 'tmp');
    await mkdir(tmp);
    port = await freePort();
    buildDirsBefore = wranglerBuildDirs();
    // SD_STATE_DIR moves the shared folder for both commands, as it would for a person with two terminals.
    env = { ...process.env, SD_STATE_DIR: stateDir, TMPDIR: tmp, WRANGLER_SEND_METRICS: 'false', FORCE_COLOR: '0' };
    start = startProcess(process.execPath, ['--import', 'tsx', 'scripts/start.ts', '--port', String(port)], {
      env,
      cwd: REPO_ROOT,
      name: 'npm start',
      group: true,
    });
    await start.waitForLine(/^Ctrl-C stops everything\./, 170_000);
    firstKey = printedKey(start);
  });

  afterAll(async () => {
    await start?.stop();
    await rm(work, { recursive: true, force: true });
  });

  it('prints the state folder and puts the edge on --port', async () => {
    expect(start.lines).toContain(`State folder: ${stateDir}`);
    expect(start.lines.some((l) => l.includes(`Edge (public API)   http://127.0.0.1:${port}`))).toBe(true);
    expect((await fetch(`http://127.0.0.1:${port}/health`)).status).toBe(200);
  });

  it('accepts a key made with `npm run keys -- create` while it runs', async () => {
    const { stdout } = await promisify(execFile)(process.execPath, [TSX, 'edge/scripts/keys.ts', 'create', '--name', 'mine'], {
      cwd: REPO_ROOT,
      env,
    });
    const key = stdout.split('\n')[0];
    expect(key).toMatch(/^sk_[a-z0-9]+_[A-Za-z0-9]+$/);
    expect(stdout).toContain(`in the local state folder ${stateDir} (the one \`npm start\` uses by default)`);
    const res = await fetch(`http://127.0.0.1:${port}/v1/predictions`, { headers: { Authorization: `Bearer ${key}` } });
    expect(res.status).toBe(200);
    const bogus = await fetch(`http://127.0.0.1:${port}/v1/predictions`, { headers: { Authorization: `Bearer ${key}x` } });
    expect(bogus.status).toBe(401);
  });

  it('refuses a second stack on the same folder, saying which process holds it', async () => {
    const second = startProcess(process.execPath, ['--import', 'tsx', 'scripts/start.ts'], {
      env,
      cwd: REPO_ROOT,
      name: 'second npm start',
    });
    const { code } = await second.exited;
    expect(code).toBe(1);
    expect(second.lines.join('\n')).toContain(
      `the state folder ${stateDir} is in use by another local stack (pid ${start.pid}, edge http://127.0.0.1:${port})`,
    );
  });

  it('on Ctrl-C stops every process and removes the run files, keeping the keys and predictions', async () => {
    // wrangler dev's build folders made while this stack started (others' too, when another stack started meanwhile).
    const made = wranglerBuildDirs().filter((n) => !buildDirsBefore.includes(n));
    expect(made.length).toBeGreaterThanOrEqual(2);
    expect(listing(join(stateDir, 'run')).sort()).toEqual(['edge-secrets', 's3rver', 'stack.json']);
    // What a terminal does on Ctrl-C: SIGINT to the foreground process group (here, the one start leads).
    process.kill(-start.pid, 'SIGINT');
    const { code } = await start.exited;
    expect(code).toBe(0);
    expect(start.lines).toContain('stopping...');
    expect(() => process.kill(-start.pid, 0)).toThrow(); // nothing left in its group
    await expect(fetch(`http://127.0.0.1:${port}/health`)).rejects.toThrow();
    expect(listing(stateDir).sort()).toEqual([STACK_KEY_FILE, 'v3']);
    expect(leftovers(tmp)).toEqual([]);
    // Its own are gone; what remains of them belongs to wrangler devs still running (two folders each), none when alone.
    const left = made.filter((n) => wranglerBuildDirs().includes(n));
    expect(left.length).toBeLessThanOrEqual(2 * liveWranglerDevs());
  });

  it('gives its secret key again at the next start instead of piling up keys; a revoked one is replaced', async () => {
    const keys = async (...args: string[]) =>
      (await promisify(execFile)(process.execPath, [TSX, 'edge/scripts/keys.ts', ...args], { cwd: REPO_ROOT, env })).stdout;
    const stackKeys = async () =>
      (JSON.parse(await keys('list', '--json')) as { id: string; name: string; status: string }[]).filter(
        (k) => k.name === 'local-stack',
      );
    const again = await startStack();
    try {
      expect(printedKey(again.stack)).toBe(firstKey);
      const before = await stackKeys();
      expect(before.map((k) => k.status)).toEqual(['active']);
      await keys('revoke', before[0].id);
    } finally {
      await again.stop();
    }
    const third = await startStack();
    try {
      const renewed = printedKey(third.stack);
      expect(renewed).not.toBe(firstKey);
      const auth = (key: string) => ({ headers: { Authorization: `Bearer ${key}` } });
      expect((await fetch(`http://127.0.0.1:${third.port}/v1/predictions`, auth(renewed))).status).toBe(200);
      expect((await fetch(`http://127.0.0.1:${third.port}/v1/predictions`, auth(firstKey))).status).toBe(401);
      expect((await stackKeys()).map((k) => k.status).sort()).toEqual(['active', 'revoked']);
    } finally {
      await third.stop();
    }
  });

  /** Another `npm start` on the same folder (the first one has stopped), until it is ready. */
  async function startStack(): Promise<{ stack: ManagedProcess; port: number; stop: () => Promise<void> }> {
    const port = await freePort();
    const stack = startProcess(process.execPath, ['--import', 'tsx', 'scripts/start.ts', '--port', String(port)], {
      env,
      cwd: REPO_ROOT,
      name: 'npm start again',
      group: true,
    });
    await stack.waitForLine(/^Ctrl-C stops everything\./, 170_000);
    return {
      stack,
      port,
      stop: async () => {
        process.kill(-stack.pid, 'SIGINT');
        expect((await stack.exited).code).toBe(0);
      },
    };
  }
});

/** The secret key `npm start` printed (the line after "Secret API key"). */
function printedKey(start: ManagedProcess): string {
  const at = start.lines.findIndex((l) => l.startsWith('Secret API key'));
  const key = start.lines[at + 1]?.trim() ?? '';
  expect(key).toMatch(/^sk_[a-z0-9]+_[A-Za-z0-9]+$/);
  return key;
}

describe('npm run demo', () => {
  it('takes over a state folder a killed stack left, makes the image, and leaves only the state behind', async () => {
    const work = await mkdtemp(join(tmpdir(), 'npm-demo-test-'));
    try {
      const stateDir = join(work, 'state');
      const tmp = join(work, 'tmp');
      await mkdir(tmp);
      const out = join(work, 'out.png');
      // What a SIGKILLed stack leaves: its lock (its process is gone) and its run files.
      const dead = spawnSync(process.execPath, ['-e', '']).pid;
      await mkdir(join(stateDir, 'run', 's3rver', 'outputs'), { recursive: true });
      await writeFile(join(stateDir, 'run', 'stack.json'), JSON.stringify({ pid: dead, edgeUrl: 'http://127.0.0.1:1' }));
      const demo = startProcess(process.execPath, ['--import', 'tsx', 'scripts/demo.ts', '--out', out, '--steps', '4'], {
        env: { ...process.env, SD_STATE_DIR: stateDir, TMPDIR: tmp, WRANGLER_SEND_METRICS: 'false', FORCE_COLOR: '0' },
        cwd: REPO_ROOT,
        name: 'npm run demo',
        group: true,
      });
      const { code } = await demo.exited;
      expect(code, demo.lines.slice(-20).join('\n')).toBe(0);
      expect(demo.lines.some((l) => l.includes(`state folder ${stateDir}`))).toBe(true);
      expect(readFileSync(out).subarray(1, 4).toString()).toBe('PNG');
      expect(listing(stateDir).sort()).toEqual([STACK_KEY_FILE, 'v3']);
      expect(leftovers(tmp)).toEqual([]);
    } finally {
      await rm(work, { recursive: true, force: true });
    }
  });
});
