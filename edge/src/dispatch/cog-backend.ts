// Dispatch to a Cog runner: PUT /predictions/{id} (idempotent, so a redelivered message never runs twice on one
// runner) with Prefer: respond-async and a webhook back to the edge; and best-effort cancel.

import { type DispatchOutcome, type DispatchRequest, describeBody } from './backend.ts';
import { pickRunner } from './runner-pool.ts';

export interface CogOptions {
  token: string;
  timeoutMs: number;
  fetch: typeof fetch;
}

// Statuses after which another attempt can succeed: busy, rate limited, not ready, gateway trouble, and auth
// (a misconfigured runner should not fail predictions that another runner would take).
const RETRYABLE = new Set([401, 403, 408, 409, 425, 429, 500, 502, 503, 504]);

/**
 * The id a runner knows a prediction by. Generation 0 uses the prediction's own id; a requeue (the runner went silent)
 * gets a new one, because the runner's PUT is idempotent by id: the same id would hand back the attempt that was given
 * up on (or canceled) instead of running it again, which matters most when the pool has a single runner.
 */
export function runnerPredictionId(predictionId: string, generation: number): string {
  return generation === 0 ? predictionId : `${predictionId}-g${generation}`;
}

export async function dispatchToCog(request: DispatchRequest, options: CogOptions): Promise<DispatchOutcome> {
  const runner = pickRunner(request.model.runners, request.predictionId, request.attempt, request.avoid);
  const remoteId = runnerPredictionId(request.predictionId, request.generation);
  let res: Response;
  try {
    res = await options.fetch(`${runner}/predictions/${encodeURIComponent(remoteId)}`, {
      method: 'PUT',
      headers: {
        'content-type': 'application/json',
        prefer: 'respond-async',
        authorization: `Bearer ${options.token}`,
      },
      body: JSON.stringify({
        id: remoteId,
        input: request.input,
        webhook: request.webhookUrl,
        webhook_events_filter: ['start', 'output', 'completed'],
      }),
      signal: AbortSignal.timeout(options.timeoutMs),
    });
  } catch (err) {
    return { kind: 'busy', runner, reason: `runner ${runner} is unreachable: ${(err as Error).message}` };
  }
  if (res.status >= 200 && res.status < 300) {
    await res.body?.cancel();
    return { kind: 'accepted', runner, remoteId: remoteId === request.predictionId ? null : remoteId };
  }
  const detail = await describeBody(res);
  const reason = `runner ${runner} answered ${res.status}${detail ? `: ${detail}` : ''}`;
  return RETRYABLE.has(res.status) ? { kind: 'busy', runner, reason } : { kind: 'rejected', runner, reason };
}

export async function cancelOnCog(runner: string, predictionId: string, options: CogOptions): Promise<void> {
  try {
    const res = await options.fetch(`${runner}/predictions/${encodeURIComponent(predictionId)}/cancel`, {
      method: 'POST',
      headers: { authorization: `Bearer ${options.token}` },
      signal: AbortSignal.timeout(options.timeoutMs),
    });
    await res.body?.cancel();
  } catch {
    // Best effort: a runner that is gone has nothing left to cancel.
  }
}
