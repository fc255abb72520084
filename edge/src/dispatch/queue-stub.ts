// Addressing a model's line: one ModelQueue Durable Object per model pool ("owner/name:version").
import type { ModelQueue } from './model-queue.ts';

export type QueueStub = Pick<
  ModelQueue,
  'enqueue' | 'activate' | 'remove' | 'place' | 'stats' | 'lease' | 'heartbeat' | 'release' | 'refuse'
>;

/** The pool a prediction's model belongs to: one line per configured model version. */
export function poolOf(model: { id: string; version: string }): string {
  return `${model.id}:${model.version}`;
}

export function queueStub(env: Env, pool: string): QueueStub {
  // Cast: see lease-holder.ts; the ModelQueue's own method signatures are the truth.
  return env.MODEL_QUEUE.get(env.MODEL_QUEUE.idFromName(pool)) as unknown as QueueStub;
}
