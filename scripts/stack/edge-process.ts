// Starts the edge worker under workerd with `wrangler dev` (edge/wrangler.jsonc: its real KV, Queues, Durable Objects
// and Cache) on a loopback port, with vars overridden by --var and secrets from a generated env file.
import { chmod, mkdir, mkdtemp, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { type ManagedProcess, type StartOptions, startProcess } from './child-process.ts';
import { freePort } from './free-port.ts';
import { REPO_ROOT } from './runner-process.ts';

export const EDGE_CONFIG = join(REPO_ROOT, 'edge', 'wrangler.jsonc');
const WRANGLER_BIN = join(REPO_ROOT, 'node_modules', 'wrangler', 'bin', 'wrangler.js');

export interface EdgeHandle {
  url: string;
  port: number;
  /** The local persistence root (KV, Durable Objects, Queues, Cache), as `wrangler dev --persist-to`. */
  persistTo: string;
  /** wrangler dev's inspector (Chrome DevTools protocol) for the worker's isolate, e.g. for CPU profiles. */
  inspectorPort: number;
  process: ManagedProcess;
  stop(): Promise<void>;
}

export interface EdgeOptions {
  persistTo: string;
  /** Plain-text vars; each overrides the one in wrangler.jsonc. */
  vars: Record<string, string>;
  /** Secrets, written to a private env file that replaces edge/.dev.vars for this run. */
  secrets: Record<string, string>;
  /** Default: a free port. Pass one when PUBLIC_BASE_URL must name it before the edge starts. */
  port?: number;
  /** A private folder for the secrets file (created; removed by stop()). Default: a new temporary folder. */
  secretsDir?: string;
  timeoutMs?: number;
  processOptions?: Pick<StartOptions, 'onLine'>;
}

function envFileText(secrets: Record<string, string>): string {
  return Object.entries(secrets)
    .map(([k, v]) => {
      if (!/^[A-Z0-9_]+$/.test(k)) throw new Error(`secret name must be A-Z, 0-9 and _, got ${JSON.stringify(k)}`);
      if (/[\r\n'"]/.test(v)) throw new Error(`secret ${k} must not contain quotes or newlines`);
      return `${k}='${v}'`;
    })
    .join('\n');
}

export async function startEdge(options: EdgeOptions): Promise<EdgeHandle> {
  const port = options.port ?? (await freePort());
  let secretsDir: string;
  if (options.secretsDir) {
    secretsDir = options.secretsDir;
    await mkdir(secretsDir, { recursive: true, mode: 0o700 });
  } else secretsDir = await mkdtemp(join(tmpdir(), 'sd-edge-secrets-'));
  const envFile = join(secretsDir, '.env');
  await writeFile(envFile, envFileText(options.secrets), { mode: 0o600 });
  await chmod(envFile, 0o600);
  const inspectorPort = await freePort();
  const config = EDGE_CONFIG;
  const args = [
    WRANGLER_BIN,
    'dev',
    '--config',
    config,
    '--ip',
    '127.0.0.1',
    '--port',
    String(port),
    '--persist-to',
    options.persistTo,
    // With --env-file, wrangler reads neither edge/.dev.vars nor edge/.env: a developer's own secrets stay out.
    '--env-file',
    envFile,
    '--show-interactive-dev-session=false',
    // A free inspector port, not wrangler's fixed default: several stacks (a test and `npm start`) may run at once.
    '--inspector-port',
    String(inspectorPort),
    ...Object.entries(options.vars).flatMap(([k, v]) => ['--var', `${k}:${v}`]),
  ];
  const proc = startProcess(process.execPath, args, {
    env: { ...process.env, WRANGLER_SEND_METRICS: 'false', FORCE_COLOR: '0', CI: '1' },
    cwd: REPO_ROOT,
    name: 'edge (wrangler dev)',
    group: true,
    ...options.processOptions,
  });
  const url = `http://127.0.0.1:${port}`;
  const stop = async () => {
    await proc.stop();
    await rm(secretsDir, { recursive: true, force: true });
  };
  const deadline = Date.now() + (options.timeoutMs ?? 90_000);
  try {
    for (;;) {
      if (!proc.isRunning()) throw new Error(`wrangler dev exited during start-up; output:\n${proc.lines.slice(-30).join('\n')}`);
      if (Date.now() > deadline)
        throw new Error(`the edge did not answer ${url}/health in time; output:\n${proc.lines.slice(-30).join('\n')}`);
      try {
        const res = await fetch(`${url}/health`, { signal: AbortSignal.timeout(2_000) });
        if (res.status === 200) break;
        await res.body?.cancel();
      } catch {
        // not listening yet
      }
      await new Promise((r) => setTimeout(r, 200));
    }
  } catch (err) {
    await stop();
    throw err;
  }
  return { url, port, persistTo: options.persistTo, inspectorPort, process: proc, stop };
}
