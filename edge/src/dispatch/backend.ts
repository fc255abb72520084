// What a dispatch backend answers, in terms the queue consumer acts on.
import type { ModelConfig } from '../config.ts';

export type DispatchOutcome =
  /** The runner took the prediction; webhooks will follow. */
  | { kind: 'accepted'; runner: string; remoteId: string | null }
  /** Busy, not ready, unreachable or erroring: retry later, preferably elsewhere. */
  | { kind: 'busy'; runner: string; reason: string }
  /** The runner refused this input for good (e.g. 422): retrying cannot help. */
  | { kind: 'rejected'; runner: string; reason: string };

export interface DispatchRequest {
  predictionId: string;
  model: ModelConfig;
  /** RunnerInput (cog) or the public input (replicate). */
  input: Record<string, unknown>;
  webhookUrl: string;
  attempt: number;
  /** Dispatch generation: bumped when a silent runner's prediction is requeued. */
  generation: number;
  /** Runners to ask only when no other is left (they went silent on this prediction before). */
  avoid?: readonly string[];
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
