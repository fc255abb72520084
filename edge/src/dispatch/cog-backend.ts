// The Cog backend: our GPU runners lease the model's predictions from its line, and Cog hosts we do not run (the
// model's `runners`) are fed from the same line by PUT /predictions/{id} (idempotent, so a retried push never runs
// twice on one host) with Prefer: respond-async and a webhook back to the edge; a push target is canceled by POST.
import { errorMessage } from '@sd/shared/error-message';
import type { EdgeConfig, ModelConfig } from '../config.ts';
import { type Backend, type DispatchOutcome, describeBody, type Holder, type PushRequest } from './backend.ts';
import { pushWebhookUrl } from './push-webhook-url.ts';
import { runnerPredictionId } from './runner-job.ts';

// Statuses after which another attempt can succeed: busy, rate limited, not ready, gateway trouble, and auth
// (a misconfigured host should not fail predictions that another host would take).
const RETRYABLE = new Set([401, 403, 408, 409, 425, 429, 500, 502, 503, 504]);

export function cogBackend(config: EdgeConfig, model: ModelConfig, outbound: typeof fetch): Backend {
  const targets = model.runners.map((url) => ({ id: url, slots: model.pushSlots }));
  // A push target's own credential: RUNNER_TOKEN would let a host we do not run lease every model's work.
  const token = config.secrets.pushTargetToken;
  const auth: Record<string, string> = token ? { authorization: `Bearer ${token}` } : {};
  const timeout = () => AbortSignal.timeout(config.dispatch.requestTimeoutMs);
  return {
    description: 'ONNX runners',
    pullable: true,
    takesRunnerInput: true,
    tokenizesAtEdge: model.tokenizer !== undefined,
    pushTargets: targets,
    isPushTarget: (holder) => model.runners.includes(holder),

    async push(request: PushRequest): Promise<DispatchOutcome> {
      const remoteId = runnerPredictionId(request.predictionId, request.attempt);
      const webhook = await pushWebhookUrl(
        config.publicBaseUrl,
        config.secrets.runnerWebhookSecret,
        request.predictionId,
        request.attempt,
      );
      let res: Response;
      try {
        res = await outbound(`${request.target}/predictions/${encodeURIComponent(remoteId)}`, {
          method: 'PUT',
          headers: { 'content-type': 'application/json', prefer: 'respond-async', ...auth },
          body: JSON.stringify({
            id: remoteId,
            input: request.input,
            webhook,
            webhook_events_filter: ['start', 'output', 'logs', 'completed'],
          }),
          signal: timeout(),
        });
      } catch (err) {
        return { kind: 'busy', reason: `runner ${request.target} is unreachable: ${errorMessage(err)}` };
      }
      if (res.status >= 200 && res.status < 300) {
        await res.body?.cancel();
        return { kind: 'accepted', remoteId: remoteId === request.predictionId ? null : remoteId };
      }
      const detail = await describeBody(res);
      const reason = `runner ${request.target} answered ${res.status}${detail ? `: ${detail}` : ''}`;
      return RETRYABLE.has(res.status) ? { kind: 'busy', reason } : { kind: 'rejected', reason, detail };
    },

    async stop(holder: Holder): Promise<void> {
      // A pull runner (not one of the model's push targets) learns of the cancel at its next heartbeat.
      if (!holder.runner || !model.runners.includes(holder.runner)) return;
      const remoteId = holder.remoteId ?? runnerPredictionId(holder.predictionId, holder.attempt);
      try {
        const res = await outbound(`${holder.runner}/predictions/${encodeURIComponent(remoteId)}/cancel`, {
          method: 'POST',
          headers: auth,
          signal: timeout(),
        });
        await res.body?.cancel();
      } catch {
        // Best effort: a runner that is gone has nothing left to cancel.
      }
    },
  };
}
