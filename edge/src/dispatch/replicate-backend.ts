// The Replicate backend: any Replicate-compatible API through the official `replicate` client. It gets the public input
// only (a remote model does its own text encoding) and our webhook URL carrying our prediction id; its remote id is
// kept for cancel. Our runners never pull these predictions.
import { errorMessage } from '@sd/shared/error-message';
import Replicate from 'replicate';
import type { EdgeConfig, ModelConfig } from '../config.ts';
import type { Backend, DispatchOutcome, Holder, PushRequest } from './backend.ts';
import { pushWebhookUrl } from './push-webhook-url.ts';

/** The one push target of a Replicate model: the API itself. */
const TARGET = 'replicate';

function client(baseUrl: string, token: string, outbound: typeof fetch): Replicate {
  // The client calls fetch unbound; workerd throws "Illegal invocation" on an unbound global fetch (replicate-javascript#134).
  const boundFetch: typeof fetch = (input, init) => outbound(input, init);
  return new Replicate({ auth: token, baseUrl, fetch: boundFetch });
}

function statusOf(err: unknown): number | null {
  const res = (err as { response?: { status?: unknown } }).response;
  return typeof res?.status === 'number' ? res.status : null;
}

export function replicateBackend(config: EdgeConfig, model: ModelConfig, outbound: typeof fetch): Backend {
  const target = model.replicate;
  const baseUrl = target?.baseUrl ?? 'https://api.replicate.com/v1';
  const token = config.secrets.replicateApiToken;
  return {
    description: 'Replicate backend',
    pullable: false,
    takesRunnerInput: false,
    tokenizesAtEdge: false,
    pushTargets: [{ id: TARGET, slots: model.pushSlots }],
    isPushTarget: (holder) => holder === TARGET,

    async push(request: PushRequest): Promise<DispatchOutcome> {
      if (!token) return { kind: 'rejected', reason: 'REPLICATE_API_TOKEN is not set for a model with backend "replicate"' };
      const api = client(baseUrl, token, outbound);
      try {
        const common = {
          input: request.input,
          webhook: await pushWebhookUrl(
            config.publicBaseUrl,
            config.secrets.runnerWebhookSecret,
            request.predictionId,
            request.attempt,
          ),
          webhook_events_filter: ['start', 'output', 'completed'] as ('start' | 'output' | 'completed')[],
        };
        const prediction = target?.version
          ? await api.predictions.create({ ...common, version: target.version })
          : await api.predictions.create({ ...common, model: target?.model ?? model.id });
        return { kind: 'accepted', remoteId: prediction.id };
      } catch (err) {
        const status = statusOf(err);
        const reason = `${baseUrl} refused the prediction${status ? ` (${status})` : ''}: ${errorMessage(err).slice(0, 300)}`;
        if (status !== null && status >= 400 && status < 500 && status !== 408 && status !== 409 && status !== 429) {
          return { kind: 'rejected', reason, detail: `the remote model answered ${status}` };
        }
        return { kind: 'busy', reason };
      }
    },

    async stop(holder: Holder): Promise<void> {
      if (!token || !holder.remoteId) return;
      try {
        await client(baseUrl, token, outbound).predictions.cancel(holder.remoteId);
      } catch {
        // Best effort.
      }
    },
  };
}
