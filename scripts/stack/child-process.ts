// A child process a test or the local stack owns: its output kept line by line, a wait for a readiness condition,
// and a stop that always ends it (SIGTERM, then SIGKILL), so afterAll or Ctrl-C never leaves a process behind.
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

export interface StartOptions {
  env: NodeJS.ProcessEnv;
  cwd?: string;
  name: string;
  /**
   * Own process group: signals go to the whole group (wrangler dev runs workerd as its own child, which must not
   * outlive it), and a Ctrl-C in the terminal reaches only the parent, which then stops the children in order.
   */
  group?: boolean;
  /** Called with each output line as it arrives (e.g. to echo a child's log). */
  onLine?: (line: string) => void;
}

/** Children still running, with whether each leads its own process group. */
const running = new Map<ChildProcess, boolean>();

/** Last resort when the parent exits without stopping its children (an uncaught error, process.exit): SIGKILL them. */
process.once('exit', () => {
  for (const [child, group] of running) {
    try {
      if (child.pid !== undefined) process.kill(group ? -child.pid : child.pid, 'SIGKILL');
    } catch {
      // already gone
    }
  }
});

export function startProcess(command: string, args: string[], options: StartOptions): ManagedProcess {
  const child: ChildProcess = spawn(command, args, {
    env: options.env,
    cwd: options.cwd,
    stdio: ['ignore', 'pipe', 'pipe'],
    detached: options.group ?? false,
  });
  running.set(child, options.group ?? false);
  const kill = (sig: NodeJS.Signals) => {
    if (child.pid === undefined) return;
    try {
      if (options.group) process.kill(-child.pid, sig);
      else child.kill(sig);
    } catch {
      // already gone
    }
  };
  const lines: string[] = [];
  const waiters = new Set<() => void>();
  let alive = true;
  const collect = (stream: NodeJS.ReadableStream | null) => {
    let buffer = '';
    stream?.setEncoding('utf8');
    stream?.on('data', (chunk: string) => {
      buffer += chunk;
      let nl = buffer.indexOf('\n');
      while (nl >= 0) {
        const line = buffer.slice(0, nl);
        lines.push(line);
        options.onLine?.(line);
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
      alive = false;
      running.delete(child);
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
    isRunning: () => alive,
    signal: (sig) => {
      if (alive) kill(sig);
    },
    waitForLine(pattern, timeoutMs) {
      return new Promise((resolve, reject) => {
        const check = () => {
          const hit = lines.find((l) => pattern.test(l));
          if (hit !== undefined) {
            done();
            resolve(hit);
          } else if (!alive) {
            done();
            reject(new Error(`${options.name} exited before printing ${pattern}; output:\n${lines.slice(-30).join('\n')}`));
          }
        };
        const timer = setTimeout(() => {
          done();
          reject(
            new Error(`${options.name} did not print ${pattern} within ${timeoutMs} ms; output:\n${lines.slice(-30).join('\n')}`),
          );
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
      if (alive) {
        kill('SIGTERM');
        const killed = await Promise.race([
          exited.then(() => true),
          new Promise<boolean>((r) => setTimeout(() => r(false), 5000)),
        ]);
        if (!killed && alive) {
          kill('SIGKILL');
          await exited;
        }
      }
      // The group leader is gone; anything it left in its group (workerd under wrangler) goes too.
      if (options.group) kill('SIGKILL');
    },
  };
}
