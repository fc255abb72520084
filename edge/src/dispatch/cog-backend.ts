// Push to a Cog host: PUT /predictions/{id} (idempotent, so a retried push never runs twice on one host) with
// Prefer: respond-async and a webhook back to the edge; and best-effort cancel.
import { type DispatchOutcome, type DispatchRequest, describeBody } from './backend.ts';

export interface CogOptions {
  token: string;
  timeoutMs: number;
  fetch: typeof fetch;
}

// Statuses after which another attempt can succeed: busy, rate limited, not ready, gateway trouble, and auth
// (a misconfigured host should not fail predictions that another host would take).
const RETRYABLE = new Set([401, 403, 408, 409, 425, 429, 500, 502, 503, 504]);

export async function dispatchToCog(request: DispatchRequest, options: CogOptions): Promise<DispatchOutcome> {
  const runner = request.target;
  let res: Response;
  try {
    res = await options.fetch(`${runner}/predictions/${encodeURIComponent(request.remoteId)}`, {
      method: 'PUT',
      headers: {
        'content-type': 'application/json',
        prefer: 'respond-async',
        authorization: `Bearer ${options.token}`,
      },
      body: JSON.stringify({
        id: request.remoteId,
        input: request.input,
        webhook: request.webhookUrl,
        webhook_events_filter: ['start', 'output', 'logs', 'completed'],
      }),
      signal: AbortSignal.timeout(options.timeoutMs),
    });
  } catch (err) {
    return { kind: 'busy', reason: `runner ${runner} is unreachable: ${err instanceof Error ? err.message : String(err)}` };
  }
  if (res.status >= 200 && res.status < 300) {
    await res.body?.cancel();
    return { kind: 'accepted', remoteId: request.remoteId === request.predictionId ? null : request.remoteId };
  }
  const detail = await describeBody(res);
  const reason = `runner ${runner} answered ${res.status}${detail ? `: ${detail}` : ''}`;
  return RETRYABLE.has(res.status) ? { kind: 'busy', reason } : { kind: 'rejected', reason, detail };
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
