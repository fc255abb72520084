// OpenAI-compatible POST /v1/images/generations over the same prediction machinery: it maps the request onto a
// prediction input, waits for the prediction to end, and answers with URLs or base64 images.
import type { ErrorIssue } from '@sd/shared/schemas/errors';
import { OpenAIImageRequestSchema, type OpenAIImageResponse } from '@sd/shared/schemas/openai';
import type { Hono } from 'hono';
import { requireScope } from '../auth/authenticate/index.ts';
import { resolveModel } from '../config.ts';
import { DomainError, invalidFromZod, invalidInput } from '../errors.ts';
import { outputToBase64 } from '../images/output-images.ts';
import { createPrediction, idempotencyOf } from '../predictions/create-prediction.ts';
import type { PredictionRecord } from '../predictions/prediction-record.ts';
import { predictionStub } from '../predictions/stubs.ts';
import { type AppEnv, configOf, defaultCache, requestLog } from './app-env.ts';
import { callerOf } from './caller.ts';
import { readJsonBody } from './json-body.ts';

/** OpenAI calls are synchronous; the official client waits up to 10 minutes by default. */
const OPENAI_WAIT_MS = 300_000;

// Prediction-input fields as the OpenAI request names them, so an error points at what the caller sent.
const FIELD_NAMES: Record<string, string> = {
  'input.num_outputs': 'n',
  'input.width': 'size',
  'input.height': 'size',
  'input.prompt': 'prompt',
};

function renameIssues(err: DomainError): DomainError {
  if (!err.issues) return err;
  const issues: ErrorIssue[] = err.issues.map((i) => {
    const field = FIELD_NAMES[i.field] ?? i.field.replace(/^input\./, '');
    const renamed = i.field === 'input.num_outputs' ? i.message.replace(/^num_outputs/, 'n') : i.message;
    // "width must be ..." alone would not say which request field to fix when the caller sent `size`.
    const message = renamed.includes(field) ? renamed : `${field}: ${renamed}`;
    return { field, message };
  });
  return new DomainError(err.code, issues.map((i) => i.message).join('; '), issues, err.headers);
}

export function registerOpenAIRoutes(app: Hono<AppEnv>): void {
  app.post('/v1/images/generations', requireScope('predictions:write'), async (c) => {
    const config = configOf(c);
    const { text, json } = await readJsonBody(c.req.raw);
    const parsed = OpenAIImageRequestSchema.safeParse(json);
    if (!parsed.success) throw invalidFromZod(parsed.error);
    const req = parsed.data;
    const model = req.model ? resolveModel(config, req.model) : config.models[0];
    if (!model) {
      throw invalidInput(
        'model',
        `model must be one of ${config.models.map((m) => m.id).join(', ')}, got ${JSON.stringify(req.model)}`,
      );
    }
    const [width, height] = req.size.split('x').map(Number);
    const input: Record<string, unknown> = { prompt: req.prompt, num_outputs: req.n, width, height };
    for (const key of ['negative_prompt', 'seed', 'num_inference_steps', 'guidance_scale', 'output_format'] as const) {
      if (req[key] !== undefined) input[key] = req[key];
    }
    const principal = callerOf(c);
    let record: PredictionRecord;
    try {
      ({ record } = await createPrediction(
        { env: c.env, config, principal, log: requestLog(c, { keyId: principal.keyId }), cache: defaultCache() },
        {
          model,
          body: { input },
          idempotency: await idempotencyOf(c.req.header('idempotency-key'), text),
          source: principal.kind === 'secret' ? 'api' : 'web',
        },
      ));
    } catch (err) {
      throw err instanceof DomainError ? renameIssues(err) : err;
    }
    const done = (await predictionStub(c.env, record.id).waitForCompletion(OPENAI_WAIT_MS)) ?? record;
    if (done.status === 'failed')
      throw new DomainError('upstream_failed', `image generation failed: ${done.error ?? 'unknown error'}`);
    if (done.status === 'canceled') throw new DomainError('upstream_failed', `image generation ${done.id} was canceled`);
    if (done.status !== 'succeeded') {
      throw new DomainError(
        'timeout',
        `image generation ${done.id} did not finish in ${OPENAI_WAIT_MS / 1000}s; poll GET /v1/predictions/${done.id}`,
      );
    }
    const urls = done.output ?? [];
    const data =
      req.response_format === 'b64_json'
        ? await Promise.all(urls.map(async (url) => ({ b64_json: await outputToBase64(url), revised_prompt: req.prompt })))
        : urls.map((url) => ({ url, revised_prompt: req.prompt }));
    const body: OpenAIImageResponse = { created: Math.floor(Date.parse(done.created_at) / 1000), data };
    return c.json(body, 200, { 'x-prediction-id': done.id });
  });
}
