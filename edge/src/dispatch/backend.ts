// What a push backend (a Cog host we do not run, or Replicate) is asked and answers, in terms the line acts on.
import type { ModelConfig } from '../config.ts';

export type DispatchOutcome =
  /** The host took the prediction; webhooks will follow. */
  | { kind: 'accepted'; remoteId: string | null }
  /** Busy, not ready, unreachable or erroring: back to the head of the line, the host rests a little. */
  | { kind: 'busy'; reason: string }
  /**
   * The host refused this input for good (e.g. 422): retrying cannot help. `reason` is for the log (it may name the
   * host's address); `detail` is the host's own message, fit for the client.
   */
  | { kind: 'rejected'; reason: string; detail?: string };

export interface DispatchRequest {
  predictionId: string;
  /** The id the host knows this attempt by (see runner-job.ts runnerPredictionId). */
  remoteId: string;
  /** The push target: a Cog base URL, or "replicate". */
  target: string;
  model: ModelConfig;
  /** RunnerInput (cog) or the public input (replicate). */
  input: Record<string, unknown>;
  webhookUrl: string;
}

/** Shortens a response body for an error message (runners may answer with HTML or a long JSON). */
export async function describeBody(res: Response): Promise<string> {
  const text = await res.text().catch(() => '');
  try {
    const json = JSON.parse(text) as { detail?: unknown; error?: { message?: unknown } };
    const detail =
      typeof json.detail === 'string' ? json.detail : typeof json.error?.message === 'string' ? json.error.message : null;
    if (detail) return detail.slice(0, 300);
  } catch {
    // not JSON
  }
  return text.slice(0, 300);
}
