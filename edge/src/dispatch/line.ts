// The pure rules of a model's line: fair-queue tags (round robin across API keys, FIFO within a key), the estimate of
// when a waiting prediction starts, and the lease timings. The ModelQueue Durable Object stores and applies them.

/**
 * Start-time fair queuing with unit cost: a job's tag is one past the later of the line's clock (the tag of the job
 * last started) and its key's previous tag. Taking jobs in tag order serves the keys with waiting work in turn, each
 * in its own creation order; a key that was idle joins the current round instead of waiting behind a burst.
 */
export function fairTag(lineClock: number, keyLastTag: number | null): number {
  return Math.max(lineClock, keyLastTag ?? Number.NEGATIVE_INFINITY) + 1;
}

export interface StartEstimate {
  /** Jobs that start before this one (0: it is next). */
  position: number;
  /** Milliseconds since the epoch, or null when no runner is connected or no run has been timed yet. */
  estimatedStartMs: number | null;
}

/**
 * When will the job at `position` start? Each of `slots` runners takes the next job as it finishes one, so the job
 * waits for `floor(position / slots) + 1` completions per slot, minus the work already done on the running ones
 * (approximated by half a run).
 */
export function estimateStart(position: number, slots: number, meanRunMs: number | null, now: number): StartEstimate {
  if (slots <= 0 || meanRunMs === null) return { position, estimatedStartMs: null };
  const rounds = Math.floor(position / slots);
  const wait = rounds * meanRunMs + meanRunMs / 2;
  return { position, estimatedStartMs: Math.round(now + wait) };
}

/** Exponentially weighted mean of run durations: recent runs count most (a model's speed changes with its inputs). */
export function updateMeanRunMs(mean: number | null, runMs: number, weight = 0.2): number {
  return mean === null ? runMs : mean + weight * (runMs - mean);
}

export interface LeaseTimings {
  /** A lease not heartbeated within this long is taken back. */
  ttlMs: number;
  /** How often the runner heartbeats (a few beats fit in one TTL, so one lost beat does not cost the lease; and a cancel
   * reaches the runner in its answer). */
  heartbeatMs: number;
  /**
   * The runner stops a prediction whose lease it could not renew for this long (measured from when it sent its last
   * acknowledged heartbeat, which is before the edge received it): strictly before the edge can hand the prediction
   * to another runner, so it never runs on two at once.
   */
  fenceMs: number;
}

export function leaseTimings(ttlSeconds: number): LeaseTimings {
  const ttlMs = ttlSeconds * 1000;
  // At most a second between beats: a heartbeat's answer is also how a cancel reaches a pull runner.
  return { ttlMs, heartbeatMs: Math.max(250, Math.min(1000, Math.floor(ttlMs / 5))), fenceMs: Math.floor(ttlMs * 0.7) };
}

/** A model's line as operators and autoscalers read it (GET /metrics, the CloudWatch publisher). */
export interface QueueStats {
  pool: string;
  waiting: number;
  running: number;
  /** Runners that leased or heartbeated in the last minute, and the slots they said they have. */
  runners: number;
  slots: number;
  oldestWaitSeconds: number;
  meanRunSeconds: number | null;
}
