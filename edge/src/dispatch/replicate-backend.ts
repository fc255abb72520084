// Dispatch to any Replicate-compatible API with the official `replicate` client: the public input only (a remote
// model does its own text encoding), our webhook URL carrying our prediction id, remote id kept for cancel.
import Replicate from 'replicate';
import type { DispatchOutcome, DispatchRequest } from './backend.ts';

export interface ReplicateOptions {
  token: string;
  fetch: typeof fetch;
}

function client(baseUrl: string, options: ReplicateOptions): Replicate {
  // The client calls fetch unbound; workerd throws "Illegal invocation" on an unbound global fetch (replicate-javascript#134).
  const boundFetch: typeof fetch = (input, init) => options.fetch(input, init);
  return new Replicate({ auth: options.token, baseUrl, fetch: boundFetch });
}

function statusOf(err: unknown): number | null {
  const res = (err as { response?: { status?: unknown } }).response;
  return typeof res?.status === 'number' ? res.status : null;
}

export async function dispatchToReplicate(request: DispatchRequest, options: ReplicateOptions): Promise<DispatchOutcome> {
  const target = request.model.replicate;
  const baseUrl = target?.baseUrl ?? 'https://api.replicate.com/v1';
  const api = client(baseUrl, options);
  try {
    const common = {
      input: request.input,
      webhook: request.webhookUrl,
      webhook_events_filter: ['start', 'output', 'completed'] as ('start' | 'output' | 'completed')[],
    };
    const prediction = target?.version
      ? await api.predictions.create({ ...common, version: target.version })
      : await api.predictions.create({ ...common, model: target?.model ?? request.model.id });
    return { kind: 'accepted', remoteId: prediction.id };
  } catch (err) {
    const status = statusOf(err);
    const message = (err instanceof Error ? err.message : String(err)).slice(0, 300);
    const reason = `${baseUrl} refused the prediction${status ? ` (${status})` : ''}: ${message}`;
    if (status !== null && status >= 400 && status < 500 && status !== 408 && status !== 409 && status !== 429) {
      return { kind: 'rejected', reason, detail: `the remote model answered ${status}` };
    }
    return { kind: 'busy', reason };
  }
}

export async function cancelOnReplicate(baseUrl: string, remoteId: string, options: ReplicateOptions): Promise<void> {
  try {
    await client(baseUrl, options).predictions.cancel(remoteId);
  } catch {
    // Best effort.
  }
}
