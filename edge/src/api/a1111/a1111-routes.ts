// The AUTOMATIC1111-compatible API (/sdapi/v1/*) over the same machinery, auth and limits as /v1/predictions:
// txt2img and img2img run one prediction per n_iter and answer with base64 images, the echoed parameters and `info`;
// the listings describe this deployment; /progress and /interrupt act on the caller's own predictions.

import { invalidInput } from '@sd/shared/domain-error';
import { MAX_SEED } from '@sd/shared/schemas/limits';
import { isTerminal } from '@sd/shared/schemas/prediction';
import type { Hono } from 'hono';
import { requireScope } from '../../auth/authenticate/index.ts';
import { outputToBase64 } from '../../images/output-images.ts';
import type { PredictionRecord } from '../../predictions/prediction-record.ts';
import { predictionStub } from '../../predictions/stubs.ts';
import { type AppContext, type AppEnv, configOf, requestLog } from '../app-env.ts';
import { callerOf } from '../caller.ts';
import { readJsonBody } from '../json-body.ts';
import { callerIndex } from '../predictions-routes.ts';
import { runPredictionToEnd } from '../sync-prediction.ts';
import { sdModels, sdOptions, sdSchedulers, UPSCALERS } from './a1111-catalog.ts';
import { type A1111Mode, a1111Info, planA1111Request, toA1111Issue } from './a1111-request.ts';
import { listedSamplers } from './a1111-samplers.ts';

/** How many of the caller's newest predictions /progress and /interrupt look at. */
const RECENT = 20;

function randomSeed(): number {
  return crypto.getRandomValues(new Uint32Array(1))[0] % (MAX_SEED + 1);
}

/** A1111's job_timestamp: local time as YYYYMMDDhhmmss (UTC here). */
function jobTimestamp(iso: string): string {
  return iso.replace(/[-:T]/g, '').slice(0, 14);
}

async function generate(c: AppContext, mode: A1111Mode) {
  const config = configOf(c);
  const { json } = await readJsonBody(c.req.raw);
  const plan = planA1111Request(mode, json, config, randomSeed);
  const log = requestLog(c, { keyId: callerOf(c).keyId, surface: 'a1111', mode });
  if (plan.ignored.length > 0) log.info('AUTOMATIC1111 fields accepted and not applied', { fields: plan.ignored });
  const ids: string[] = [];
  const images: string[] = [];
  let first: PredictionRecord | null = null;
  // One iteration after the other, as A1111 runs n_iter: each holds one in-flight slot, not n_iter of them.
  for (const input of plan.iterations) {
    const done = await runPredictionToEnd(c, { model: plan.model, input, rename: toA1111Issue });
    first ??= done;
    ids.push(done.id);
    if (plan.sendImages) images.push(...(await Promise.all((done.output ?? []).map(outputToBase64))));
  }
  const info = a1111Info(plan, { jobTimestamp: jobTimestamp(first?.created_at ?? new Date().toISOString()), predictionIds: ids });
  return c.json({ images, parameters: plan.parameters, info }, 200, { 'x-prediction-ids': ids.join(',') });
}

/** The caller's newest predictions that have not ended, newest first. */
async function runningPredictions(c: AppContext): Promise<PredictionRecord[]> {
  const page = await callerIndex(c).list(null, RECENT);
  const records = await Promise.all(page.ids.map((id) => predictionStub(c.env, id).get()));
  return records.filter((r): r is PredictionRecord => r !== null && !isTerminal(r.status));
}

export function registerA1111Routes(app: Hono<AppEnv>): void {
  const write = requireScope('predictions:write');
  const read = requireScope('predictions:read');

  app.post('/sdapi/v1/txt2img', write, (c) => generate(c, 'txt2img'));
  app.post('/sdapi/v1/img2img', write, (c) => generate(c, 'img2img'));

  app.get('/sdapi/v1/samplers', read, (c) => c.json(listedSamplers()));
  app.get('/sdapi/v1/schedulers', read, (c) => c.json(sdSchedulers()));
  app.get('/sdapi/v1/sd-models', read, (c) => c.json(sdModels(configOf(c))));
  app.get('/sdapi/v1/options', read, (c) => c.json(sdOptions(configOf(c))));
  // Options are this deployment's, not the caller's to change: a write that changes nothing is accepted (clients
  // post back what they read), anything else is refused rather than silently dropped.
  app.post('/sdapi/v1/options', write, async (c) => {
    const { json } = await readJsonBody(c.req.raw);
    if (typeof json !== 'object' || json === null || Array.isArray(json))
      throw invalidInput('(body)', 'options must be a JSON object');
    const current = sdOptions(configOf(c));
    for (const [k, v] of Object.entries(json)) {
      if (k in current && JSON.stringify(current[k]) !== JSON.stringify(v)) {
        const how =
          k === 'sd_model_checkpoint'
            ? '; choose the model per request with override_settings.sd_model_checkpoint'
            : k === 'CLIP_stop_at_last_layers'
              ? '; set it per request with override_settings.CLIP_stop_at_last_layers'
              : '';
        throw invalidInput(k, `${k} is fixed on this service (${JSON.stringify(current[k])}), got ${JSON.stringify(v)}${how}`);
      }
    }
    return c.json(null);
  });
  app.get('/sdapi/v1/upscalers', read, (c) => c.json(UPSCALERS));
  app.get('/sdapi/v1/latent-upscale-modes', read, (c) => c.json([]));
  app.get('/sdapi/v1/sd-vae', read, (c) => c.json([]));
  app.get('/sdapi/v1/loras', read, (c) => c.json([]));
  app.get('/sdapi/v1/prompt-styles', read, (c) => c.json([]));

  app.get('/sdapi/v1/progress', read, async (c) => {
    const running = await runningPredictions(c);
    const current = running.find((r) => r.status === 'processing') ?? running[0];
    const idle = {
      skipped: false,
      interrupted: false,
      stopping_generation: false,
      job: '',
      job_count: 0,
      job_timestamp: '0',
      job_no: 0,
      sampling_step: 0,
      sampling_steps: 0,
    };
    if (!current) return c.json({ progress: 0, eta_relative: 0, state: idle, current_image: null, textinfo: null });
    const fraction = current.progress?.fraction ?? 0;
    const started = Date.parse(current.started_at ?? current.created_at);
    const elapsed = Math.max(0, (Date.now() - started) / 1000);
    // A1111's own estimate: time so far scaled by what is left.
    const eta = fraction > 0 ? elapsed / fraction - elapsed : 0;
    return c.json({
      progress: Math.min(1, fraction),
      eta_relative: Math.max(0, eta),
      state: {
        ...idle,
        job: current.id,
        job_count: running.length,
        job_timestamp: jobTimestamp(current.created_at),
        sampling_step: current.progress?.step ?? 0,
        sampling_steps: current.progress?.total ?? Number(current.input.num_inference_steps ?? 0),
      },
      current_image: null,
      textinfo: current.status === 'starting' ? 'queued' : null,
    });
  });

  app.post('/sdapi/v1/interrupt', write, async (c) => {
    const running = await runningPredictions(c);
    await Promise.all(running.map((r) => predictionStub(c.env, r.id).cancel()));
    requestLog(c, { keyId: callerOf(c).keyId, surface: 'a1111' }).info('interrupt', { canceled: running.map((r) => r.id) });
    return c.json({});
  });
}
