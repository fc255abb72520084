import type { WebhookEvent } from '@sd/shared/schemas/prediction';
import type { RunnerPrediction } from '@sd/shared/schemas/runner';
import pino from 'pino';
import { describe, expect, it } from 'vitest';
import { PredictionRecord } from './prediction-record.ts';
import { DEFAULT_WEBHOOK_SETTINGS, PredictionWebhooks } from './webhook-sender.ts';

const silent = pino({ level: 'silent' });

/** A fetch that records webhook bodies in arrival order and answers with the given statuses in turn. */
function recordingFetch(statuses: number[] = []) {
  const bodies: RunnerPrediction[] = [];
  const impl: typeof fetch = async (_url, init) => {
    bodies.push(JSON.parse(String(init?.body)));
    return new Response('', { status: statuses.shift() ?? 200 });
  };
  return { bodies, impl };
}

function record(
  fetchImpl: typeof fetch,
  throttleMs = 0,
  events: readonly WebhookEvent[] = ['start', 'output', 'logs', 'completed'],
) {
  const settings = { ...DEFAULT_WEBHOOK_SETTINGS, throttleMs, completedInitialDelayMs: 5, completedMaxDelayMs: 10 };
  const hooks = new PredictionWebhooks('p1', 'http://127.0.0.1:1/hook', new Set(events), settings, silent, fetchImpl);
  return new PredictionRecord('p1', { prompt: 'x' }, hooks, silent);
}

describe('PredictionRecord', () => {
  it('finishes once: later terminal setters are no-ops and the completed webhook goes out once', async () => {
    const { bodies, impl } = recordingFetch();
    const r = record(impl);
    r.markProcessing();
    expect(r.succeed(['u'], { seeds: [3], metrics: { predict_time: 1, text_encoder_time: 0, unet_time: 1, vae_time: 0 } })).toBe(
      true,
    );
    expect(r.fail('late')).toBe(false);
    expect(r.cancel()).toBe(false);
    r.progress({ step: 9, total: 9 });
    await r.delivered;
    expect((await r.finished).status).toBe('succeeded');
    expect(r.snapshot()).toMatchObject({ status: 'succeeded', error: null, output: ['u'], seeds: [3], metrics: { seed: 3 } });
    expect(bodies.map((b) => b.status)).toEqual(['processing', 'succeeded']);
  });

  it('throttles progress to the newest state and keeps start -> output -> completed order', async () => {
    const { bodies, impl } = recordingFetch();
    const r = record(impl, 10_000, ['start', 'output', 'completed']);
    r.markProcessing();
    for (let step = 1; step <= 5; step++) r.progress({ step, total: 5 });
    r.appendLog('filtered out: logs not in the filter');
    r.cancel();
    await r.delivered;
    expect(bodies.map((b) => [b.status, b.progress?.step ?? null])).toEqual([
      ['processing', null],
      ['processing', 1],
      ['canceled', 5],
    ]);
  });

  it('retries the completed webhook on 5xx but not on 4xx', async () => {
    const retried = recordingFetch([500, 502, 200]);
    const a = record(retried.impl, 0, ['completed']);
    a.fail('boom');
    await a.delivered;
    expect(retried.bodies).toHaveLength(3);
    const refused = recordingFetch([400]);
    const b = record(refused.impl, 0, ['completed']);
    b.fail('boom');
    await b.delivered;
    expect(refused.bodies).toHaveLength(1);
  });
});
