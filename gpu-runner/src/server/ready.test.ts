// GET /ready through the real app and prediction service, driven through every health state by a predictor whose
// setup and prediction the test releases by hand (the model itself is not what is under test).
import pino from 'pino';
import { describe, expect, it } from 'vitest';
import { PredictionService } from '../predictions/prediction-service.ts';
import { DEFAULT_WEBHOOK_SETTINGS } from '../predictions/webhook-sender.ts';
import type { Predictor } from '../predictor/predictor.ts';
import { DataUrlStorage } from '../storage/output-storage.ts';
import { createApp } from './app.ts';

function gate() {
  let open!: () => void;
  let fail!: (err: Error) => void;
  const promise = new Promise<void>((resolve, reject) => {
    open = resolve;
    fail = reject;
  });
  return { promise, open, fail };
}

function setUp(token?: string) {
  const setup = gate();
  const predicting = gate();
  const predictor: Predictor = {
    setup: () => setup.promise,
    predict: async () => {
      await predicting.promise;
      return {
        images: [{ bytes: new Uint8Array([1]), contentType: 'image/png', extension: 'png' }],
        seeds: [1],
        metrics: { predict_time: 0, text_encoder_time: 0, unet_time: 0, vae_time: 0 },
      };
    },
  };
  const service = new PredictionService(
    predictor,
    new DataUrlStorage(),
    { slots: 1, webhook: { ...DEFAULT_WEBHOOK_SETTINGS, throttleMs: 0 } },
    pino({ level: 'silent' }),
  );
  const app = createApp(service, { apiToken: token, maxRequestBytes: 1 << 20, onShutdown: () => {} }, pino({ level: 'silent' }));
  const ready = async () => {
    const res = await app.request('/ready');
    return { code: res.status, body: (await res.json()) as { status: string; ready: boolean } };
  };
  return { service, app, setup, predicting, ready };
}

describe('GET /ready', () => {
  it('is 503 while STARTING, 200 when READY and BUSY, 503 when DEFUNCT, and needs no token', async () => {
    const t = setUp('secret-token');
    const settled = t.service.setup();
    expect(await t.ready()).toEqual({ code: 503, body: { status: 'STARTING', ready: false } });
    t.setup.open();
    await settled;
    expect(await t.ready()).toEqual({ code: 200, body: { status: 'READY', ready: true } });
    const created = await t.app.request('/predictions', {
      method: 'POST',
      headers: { authorization: 'Bearer secret-token', 'content-type': 'application/json', prefer: 'respond-async' },
      body: JSON.stringify({ input: { prompt: 'x', width: 64, height: 64, num_inference_steps: 1 } }),
    });
    expect(created.status).toBe(202);
    expect(await t.ready()).toEqual({ code: 200, body: { status: 'BUSY', ready: true } });
    const stopping = t.service.shutdown(5_000, 100);
    expect(await t.ready()).toEqual({ code: 503, body: { status: 'DEFUNCT', ready: false } });
    t.predicting.open();
    await stopping;
    // Cog's health check is untouched: 200 in every state.
    expect((await t.app.request('/health-check')).status).toBe(200);
  });

  it('is 503 with SETUP_FAILED when the model did not load', async () => {
    const t = setUp();
    const settled = t.service.setup();
    t.setup.fail(new Error('no model.onnx'));
    await settled;
    expect(await t.ready()).toEqual({ code: 503, body: { status: 'SETUP_FAILED', ready: false } });
    expect((await t.app.request('/health-check')).status).toBe(200);
  });
});
