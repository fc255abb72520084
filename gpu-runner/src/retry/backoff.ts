// Retrying an async operation with exponential backoff and jitter, inside a total time budget.

export interface BackoffOptions {
  /** Attempts in all, the first included. */
  maxAttempts: number;
  initialDelayMs: number;
  maxDelayMs: number;
  /** No new attempt starts after this instant (ms since the epoch); the caller bounds the attempt itself. */
  deadline?: number;
  signal?: AbortSignal;
  /** Called before each retry (for logs). */
  onRetry?: (attempt: number, error: unknown, delayMs: number) => void;
  /** Errors that retrying cannot fix; default: every error is retried. */
  retryable?: (error: unknown) => boolean;
}

export function sleep(ms: number, signal?: AbortSignal): Promise<void> {
  return new Promise((resolve, reject) => {
    if (signal?.aborted) return reject(signal.reason);
    const timer = setTimeout(done, ms);
    function done() {
      signal?.removeEventListener('abort', onAbort);
      resolve();
    }
    function onAbort() {
      clearTimeout(timer);
      reject(signal?.reason);
    }
    signal?.addEventListener('abort', onAbort, { once: true });
  });
}

/** Runs `attempt` until it resolves; rethrows the last error when attempts, time or retryability run out. */
export async function withBackoff<T>(attempt: (n: number) => Promise<T>, o: BackoffOptions): Promise<T> {
  for (let n = 1; ; n++) {
    try {
      return await attempt(n);
    } catch (err) {
      if (o.signal?.aborted || n >= o.maxAttempts || (o.retryable && !o.retryable(err))) throw err;
      // Full jitter (AWS architecture blog): spreads retries of many runners hitting the same outage.
      const cap = Math.min(o.maxDelayMs, o.initialDelayMs * 2 ** (n - 1));
      const delay = Math.round(cap / 2 + (Math.random() * cap) / 2);
      if (o.deadline !== undefined && Date.now() + delay >= o.deadline) throw err;
      o.onRetry?.(n, err, delay);
      await sleep(delay, o.signal);
    }
  }
}
