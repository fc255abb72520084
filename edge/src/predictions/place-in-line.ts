// A waiting prediction's public place in its model's line (GET shows it as `queue`, the stream as `queue` events):
// one read of the line's Durable Object, computed here for both.

import { poolOf, queueStub } from '../dispatch/queue-stub.ts';
import { errorFields, logger } from '../log.ts';
import { isWaiting, type PredictionRecord, type QueueView, queueViewOf } from './prediction-record.ts';

/** The place, or undefined when the prediction is not waiting (leased, ended) or the line cannot be read now. */
export async function placeInLine(env: Env, record: PredictionRecord): Promise<QueueView | undefined> {
  if (!isWaiting(record)) return undefined;
  try {
    const place = await queueStub(env, poolOf({ id: record.model, version: record.version })).place(record.id);
    return queueViewOf(place);
  } catch (err) {
    logger({ component: 'prediction', predictionId: record.id }).warn('reading the place in line failed', errorFields(err));
    return undefined;
  }
}
