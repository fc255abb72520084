// Starts the GPU runner (gpu-runner/src/server/main.ts through tsx) as a child process on a free loopback port
// and waits until its health check reaches the wanted status; its JSON log lines stay available to the test.
import { rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { type ManagedProcess, type StartOptions, startProcess } from './child-process.ts';
import { freePort } from './free-port.ts';

export const REPO_ROOT = fileURLToPath(new URL('../../', import.meta.url));

export interface RunnerHandle {
  url: string;
  port: number;
  process: ManagedProcess;
  /** Every distinct health status seen while waiting, in order (STARTING first when the poll caught it). */
  statusesSeen: string[];
  /** The runner's log lines parsed as JSON (non-JSON lines skipped). */
  logRecords(): Record<string, unknown>[];
  stop(): Promise<void>;
}

/** Passes through only what node needs: no S3, token or secret variables leak in from the caller's shell. */
function baseEnv(): NodeJS.ProcessEnv {
  const keep = ['PATH', 'HOME', 'TMPDIR', 'SD_MODEL_CACHE'];
  return Object.fromEntries(keep.filter((k) => process.env[k] !== undefined).map((k) => [k, process.env[k]]));
}

export async function startRunner(
  env: Record<string, string>,
  {
    waitFor = 'READY',
    timeoutMs = 90_000,
    onStatus,
    processOptions = {},
  }: {
    waitFor?: 'READY' | 'SETUP_FAILED';
    timeoutMs?: number;
    /** Awaited once for each new health status, before polling goes on (e.g. to probe the API while STARTING). */
    onStatus?: (status: string, url: string) => Promise<void> | void;
    /** Process group and output echo (the local stack's). */
    processOptions?: Pick<StartOptions, 'group' | 'onLine'>;
  } = {},
): Promise<RunnerHandle> {
  const port = await freePort();
  const proc = startProcess(process.execPath, ['--import', 'tsx', 'gpu-runner/src/server/main.ts'], {
    env: { ...baseEnv(), LOG_LEVEL: 'info', ORT_INTRA_OP_THREADS: '1', ...env, PORT: String(port), HOST: '127.0.0.1' },
    cwd: REPO_ROOT,
    name: 'gpu-runner',
    ...processOptions,
  });
  const url = `http://127.0.0.1:${port}`;
  // onnxruntime's native library leaves an empty mat-debug-<pid>.log in the runner's TMPDIR; one per start adds up.
  const stop = async () => {
    await proc.stop();
    await rm(join(env.TMPDIR ?? tmpdir(), `mat-debug-${proc.pid}.log`), { force: true });
  };
  const statusesSeen: string[] = [];
  const deadline = Date.now() + timeoutMs;
  try {
    for (;;) {
      if (!proc.isRunning()) throw new Error(`runner exited during start-up; output:\n${proc.lines.slice(-30).join('\n')}`);
      if (Date.now() > deadline)
        throw new Error(`runner not ${waitFor} within ${timeoutMs} ms; statuses ${statusesSeen.join(' -> ')}`);
      try {
        const res = await fetch(`${url}/health-check`);
        const { status } = (await res.json()) as { status: string };
        if (statusesSeen.at(-1) !== status) {
          statusesSeen.push(status);
          await onStatus?.(status, url);
        }
        if (status === waitFor) break;
      } catch (err) {
        if (statusesSeen.length > 0) throw err; // listening, then broken: not a start-up race
      }
      await new Promise((r) => setTimeout(r, 20));
    }
  } catch (err) {
    await stop();
    throw err;
  }
  return {
    url,
    port,
    process: proc,
    statusesSeen,
    logRecords: () =>
      proc.lines.flatMap((l) => {
        try {
          return [JSON.parse(l) as Record<string, unknown>];
        } catch {
          return [];
        }
      }),
    stop,
  };
}
