// Follows a created prediction to its end, for a page: its Server-Sent Events stream when it has one, else (or when
// the stream fails) polling GET urls.get. Progress is passed on as the runner reported it (step of total).
import { refusal } from './api-errors.ts';
import { readEventStream } from './event-stream.ts';

/** The runner's progress as the edge relays it: the step being run and how many the prediction asked for. */
export interface Progress {
  step: number;
  total: number;
  fraction?: number;
}

export type PredictionStatus = 'starting' | 'processing' | 'succeeded' | 'failed' | 'canceled';

/** The fields of a prediction (shared/src/schemas/prediction.ts) a page reads. */
export interface Prediction {
  id: string;
  status: PredictionStatus;
  output?: string[] | null;
  error?: string | null;
  progress?: Progress | null;
  urls?: { get: string; cancel?: string; stream?: string };
  [field: string]: unknown;
}

/** A waiting prediction's place in its model's line (the stream's `queue` event, GET's `queue` field). */
export interface QueuePlace {
  position: number;
  waiting: number;
  estimated_start_at: string | null;
}

export interface FollowHandlers {
  /** The prediction left the line and a runner is on it. */
  onProcessing?(): void;
  onProgress?(progress: Progress): void;
  onQueue?(place: QueuePlace): void;
}

export const isTerminal = (status: string): boolean => status === 'succeeded' || status === 'failed' || status === 'canceled';

function parseProgress(value: unknown): Progress | null {
  if (!value || typeof value !== 'object') return null;
  const { step, total, fraction } = value as Record<string, unknown>;
  if (typeof step !== 'number' || typeof total !== 'number') return null;
  return { step, total, ...(typeof fraction === 'number' ? { fraction } : {}) };
}

function parseQueue(value: unknown): QueuePlace | null {
  if (!value || typeof value !== 'object') return null;
  const { position, waiting, estimated_start_at } = value as Record<string, unknown>;
  if (typeof position !== 'number' || typeof waiting !== 'number') return null;
  return { position, waiting, estimated_start_at: typeof estimated_start_at === 'string' ? estimated_start_at : null };
}

function sleep(ms: number, signal: AbortSignal): Promise<void> {
  return new Promise((resolve, reject) => {
    const timer = setTimeout(resolve, ms);
    signal.addEventListener('abort', () => {
      clearTimeout(timer);
      reject(new DOMException('aborted', 'AbortError'));
    });
  });
}

/** The prediction's stream to its end; null when the stream cannot be read (the caller polls instead). */
async function viaStream(
  prediction: Prediction,
  url: string,
  signal: AbortSignal,
  on: FollowHandlers,
): Promise<Prediction | null> {
  // The stream URL is a capability URL (its token is in the query): no Authorization header, so no preflight.
  const response = await fetch(url, { headers: { Accept: 'text/event-stream' }, mode: 'cors', credentials: 'omit', signal });
  if (!response.ok || !response.body) return null;
  const outputs: string[] = [];
  let result: Partial<Prediction> | null = null;
  await readEventStream(response, (name, data) => {
    let parsed: Record<string, unknown> | null = null;
    try {
      parsed = data.startsWith('{') ? (JSON.parse(data) as Record<string, unknown>) : null;
    } catch {
      // plain text (logs, an output URL)
    }
    if (name === 'status' && parsed?.status === 'processing') on.onProcessing?.();
    else if (name === 'progress') {
      const progress = parseProgress(parsed);
      if (progress) on.onProgress?.(progress);
    } else if (name === 'queue') {
      const place = parseQueue(parsed);
      if (place) on.onQueue?.(place);
    } else if (name === 'output' && data) outputs.push(data);
    else if (name === 'error') result = { status: 'failed', error: String(parsed?.detail ?? data), output: null };
    else if (name === 'done') {
      result ??= parsed?.reason === 'canceled' ? { status: 'canceled', output: null } : { status: 'succeeded', output: outputs };
      return true;
    }
    return false;
  });
  return result ? { ...prediction, ...(result as Partial<Prediction>) } : null;
}

/** Polls urls.get until the prediction ends; a refusal throws an ApiError with the sentence to show. */
async function viaPolling(url: string, auth: HeadersInit, signal: AbortSignal, on: FollowHandlers): Promise<Prediction> {
  let delay = 500;
  for (;;) {
    const response = await fetch(url, { headers: auth, mode: 'cors', credentials: 'omit', signal });
    if (!response.ok) throw await refusal(response);
    const prediction = (await response.json()) as Prediction;
    if (isTerminal(prediction.status)) return prediction;
    if (prediction.status === 'processing') on.onProcessing?.();
    const place = parseQueue(prediction.queue);
    if (place) on.onQueue?.(place);
    const progress = parseProgress(prediction.progress);
    if (progress) on.onProgress?.(progress);
    await sleep(delay, signal);
    delay = Math.min(2000, Math.round(delay * 1.5));
  }
}

/** Follows `prediction` (as POST /v1/predictions answered it) until it succeeds, fails or is canceled. */
export async function followPrediction(
  prediction: Prediction,
  auth: HeadersInit,
  signal: AbortSignal,
  on: FollowHandlers = {},
): Promise<Prediction> {
  if (!prediction.urls || isTerminal(prediction.status)) return prediction;
  if (prediction.urls.stream) {
    try {
      const streamed = await viaStream(prediction, prediction.urls.stream, signal, on);
      if (streamed) return streamed;
    } catch (err) {
      if (err instanceof DOMException && err.name === 'AbortError') throw err;
      // a broken stream: polling below
    }
  }
  return viaPolling(prediction.urls.get, auth, signal, on);
}
