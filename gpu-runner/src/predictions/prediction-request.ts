// A Cog prediction request as the service takes it: the envelope (id, webhook, events filter) and the input, parsed
// and checked once at the entrance (the HTTP routes and the pull agent both hand over raw JSON), the path id
// reconciled with the body's. Every refusal is a 422 naming the field.
import { DomainError, invalidFromZod } from '@sd/shared/domain-error';
import type { WebhookEvent } from '@sd/shared/schemas/prediction';
import { CogPredictionRequestSchema, type RunnerInput, RunnerInputSchema } from '@sd/shared/schemas/runner';

const ALL_EVENTS: readonly WebhookEvent[] = ['start', 'output', 'logs', 'completed'];

export interface PredictionRequest {
  /** The caller's id (path or body); absent: the service makes one. */
  id?: string;
  input: RunnerInput;
  /** The input as the caller sent it: what every envelope and webhook echoes (summarized there). */
  sentInput: Record<string, unknown>;
  webhook?: { url: string; events: ReadonlySet<WebhookEvent> };
}

/** Parses a request body (PUT /predictions/{id} gives `pathId`). Raises invalid_input. */
export function parsePredictionRequest(body: unknown, pathId?: string): PredictionRequest {
  const envelope = CogPredictionRequestSchema.safeParse(body ?? {});
  if (!envelope.success) throw invalidFromZod(envelope.error);
  const bodyId = envelope.data.id;
  if (pathId !== undefined) {
    // The id becomes a storage key prefix: the path id obeys the same rule as the body's.
    if (!CogPredictionRequestSchema.shape.id.safeParse(pathId).success) {
      const shown = JSON.stringify(pathId.length > 40 ? `${pathId.slice(0, 40)}...` : pathId);
      const message = `id in the path must be 1 to 128 letters, digits, _ or -, got ${shown}`;
      throw new DomainError('invalid_input', message, [{ field: 'id', message }]);
    }
    if (bodyId !== undefined && bodyId !== pathId) {
      throw new DomainError('invalid_input', `id in the body (${bodyId}) differs from the id in the path (${pathId})`, [
        { field: 'id', message: `id must equal the path id ${pathId}, got ${bodyId}` },
      ]);
    }
  }
  const input = RunnerInputSchema.safeParse(envelope.data.input);
  if (!input.success) throw invalidFromZod(input.error, 'input');
  const { webhook, webhook_events_filter: events } = envelope.data;
  return {
    id: pathId ?? bodyId,
    input: input.data,
    sentInput: envelope.data.input,
    ...(webhook ? { webhook: { url: webhook, events: new Set(events ?? ALL_EVENTS) } } : {}),
  };
}
