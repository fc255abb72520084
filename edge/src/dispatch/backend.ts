// How a model's predictions reach a GPU: whether our runners pull them (and so whether the edge tokenizes and serves
// cached embeddings), which push targets the line feeds, how a push is sent and how its holder is stopped. One
// Backend per model (model-backend.ts builds it); nothing else asks which kind of backend a model has.

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

/** A host the line pushes to, and how many predictions it runs at once. */
export interface PushTarget {
  id: string;
  slots: number;
}

export interface PushRequest {
  predictionId: string;
  attempt: number;
  /** A push target's id (see pushTargets). */
  target: string;
  /** RunnerInput (cog) or the public input (replicate), as runnerInput built it. */
  input: Record<string, unknown>;
}

/** Who holds a prediction's lease, as the record keeps it. */
export interface Holder {
  predictionId: string;
  attempt: number;
  runner: string | null;
  remoteId: string | null;
}

export interface Backend {
  /** For people (GET /v1/models): where the model runs. */
  readonly description: string;
  /** Our GPU runners may lease this model's predictions (POST /runner/v1/leases). */
  readonly pullable: boolean;
  /**
   * Its hosts take RunnerInput (our runner's schema: the public input plus the edge's extras, e.g. max_pixels); false:
   * the public input only (Replicate).
   */
  readonly takesRunnerInput: boolean;
  /** The edge tokenizes prompts and serves cached embeddings, so our runners may skip their text encoder. */
  readonly tokenizesAtEdge: boolean;
  /** Hosts the line feeds; empty for a pull-only pool. */
  readonly pushTargets: readonly PushTarget[];
  isPushTarget(holder: string): boolean;
  /** Sends a leased prediction to a push target. */
  push(request: PushRequest): Promise<DispatchOutcome>;
  /** Best effort: tells a push target holding the prediction to stop; a pull runner learns it from its lease instead. */
  stop(holder: Holder): Promise<void>;
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
