// A child process a test owns: its output kept line by line, a wait for a readiness condition, and a stop
// that always ends it (SIGTERM, then SIGKILL), so afterAll never leaves a process behind.
import { type ChildProcess, spawn } from 'node:child_process';

export interface ManagedProcess {
  readonly pid: number;
  readonly lines: string[];
  /** Resolves with the exit code (null when killed by a signal) and the signal. */
  readonly exited: Promise<{ code: number | null; signal: NodeJS.Signals | null }>;
  isRunning(): boolean;
  signal(sig: NodeJS.Signals): void;
  /** Waits until a line matches (looking at earlier lines too). */
  waitForLine(pattern: RegExp, timeoutMs: number): Promise<string>;
  stop(): Promise<void>;
}

export function startProcess(command: string, args: string[], options: { env: NodeJS.ProcessEnv; cwd?: string; name: string }): ManagedProcess {
  const child: ChildProcess = spawn(command, args, { env: options.env, cwd: options.cwd, stdio: ['ignore', 'pipe', 'pipe'] });
  const lines: string[] = [];
  const waiters = new Set<() => void>();
  let running = true;
  const collect = (stream: NodeJS.ReadableStream | null) => {
    let buffer = '';
    stream?.setEncoding('utf8');
    stream?.on('data', (chunk: string) => {
      buffer += chunk;
      let nl = buffer.indexOf('\n');
      while (nl >= 0) {
        lines.push(buffer.slice(0, nl));
        buffer = buffer.slice(nl + 1);
        nl = buffer.indexOf('\n');
      }
      for (const w of waiters) w();
    });
  };
  collect(child.stdout);
  collect(child.stderr);
  const exited = new Promise<{ code: number | null; signal: NodeJS.Signals | null }>((resolve) => {
    child.on('exit', (code, signal) => {
      running = false;
      for (const w of waiters) w();
      resolve({ code, signal });
    });
  });
  if (child.pid === undefined) throw new Error(`${options.name}: could not start ${command}`);
  const pid = child.pid;

  return {
    pid,
    lines,
    exited,
    isRunning: () => running,
    signal: (sig) => {
      if (running) child.kill(sig);
    },
    waitForLine(pattern, timeoutMs) {
      return new Promise((resolve, reject) => {
        const check = () => {
          const hit = lines.find((l) => pattern.test(l));
          if (hit !== undefined) {
            done();
            resolve(hit);
          } else if (!running) {
            done();
            reject(new Error(`${options.name} exited before printing ${pattern}; output:\n${lines.slice(-30).join('\n')}`));
          }
        };
        const timer = setTimeout(() => {
          done();
          reject(new Error(`${options.name} did not print ${pattern} within ${timeoutMs} ms; output:\n${lines.slice(-30).join('\n')}`));
        }, timeoutMs);
        const done = () => {
          clearTimeout(timer);
          waiters.delete(check);
        };
        waiters.add(check);
        check();
      });
    },
    async stop() {
      if (!running) return;
      child.kill('SIGTERM');
      const killed = await Promise.race([exited.then(() => true), new Promise<boolean>((r) => setTimeout(() => r(false), 5000))]);
      if (!killed && running) {
        child.kill('SIGKILL');
        await exited;
      }
    },
  };
}
