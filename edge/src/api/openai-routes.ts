// OpenAI-compatible POST /v1/images/generations and POST /v1/images/edits (multipart: image, optional mask) over the
// same prediction machinery: the request is mapped onto a prediction input (openai-request.ts), the prediction run to
// its end, and the answer given as URLs or base64 with the model that ran. GET /v1/models is in models-routes.ts.

import { DomainError, invalidFromZod, invalidInput } from '@sd/shared/domain-error';
import { fitSize } from '@sd/shared/image-size';
import {
  type OpenAIImageEditRequest,
  OpenAIImageEditRequestSchema,
  OpenAIImageRequestSchema,
  type OpenAIImageResponse,
} from '@sd/shared/schemas/openai';
import type { Context, Hono } from 'hono';
import { requireScope } from '../auth/authenticate/index.ts';
import type { ModelConfig } from '../config.ts';
import { dataUriOf, imageDimensions, sniffImageType } from '../images/image-data.ts';
import { outputToBase64 } from '../images/output-images.ts';
import { PngError, repaintMaskFromAlpha } from '../images/png-alpha-mask.ts';
import { effectiveLimits } from '../predictions/create-prediction.ts';
import type { PredictionRecord } from '../predictions/prediction-record.ts';
import { type AppContext, type AppEnv, configOf, requestLog } from './app-env.ts';
import { callerOf } from './caller.ts';
import { readJsonBody } from './json-body.ts';
import { editInput, generationInput, modelFor, toOpenAIIssue } from './openai-request.ts';
import { runPredictionToEnd } from './sync-prediction.ts';

async function answer(
  c: Context<AppEnv>,
  done: PredictionRecord,
  model: ModelConfig,
  req: { response_format: 'url' | 'b64_json'; prompt: string },
) {
  const urls = done.output ?? [];
  const data =
    req.response_format === 'b64_json'
      ? await Promise.all(urls.map(async (url) => ({ b64_json: await outputToBase64(url), revised_prompt: req.prompt })))
      : urls.map((url) => ({ url, revised_prompt: req.prompt }));
  const ran = `${model.id}:${model.version}`;
  const body: OpenAIImageResponse = {
    created: Math.floor(Date.parse(done.created_at) / 1000),
    data,
    model: ran,
    output_format: (done.input.output_format as OpenAIImageResponse['output_format']) ?? 'png',
    size: `${done.input.width}x${done.input.height}`,
  };
  return c.json(body, 200, { 'x-prediction-id': done.id, 'x-model': ran });
}

function logMapping(
  c: AppContext,
  requested: string | undefined,
  model: ModelConfig,
  mapped: boolean,
  extra: Record<string, unknown>,
) {
  const log = requestLog(c, { keyId: callerOf(c).keyId, surface: 'openai' });
  if (mapped) log.info('OpenAI model name mapped to the default model', { requested, model: model.id });
  if (Object.values(extra).some((v) => v !== undefined)) log.info('OpenAI request options', extra);
}

/** Multipart string fields to the JSON types the edit schema expects. */
const NUMERIC_FIELDS = new Set([
  'n',
  'output_compression',
  'partial_images',
  'seed',
  'num_inference_steps',
  'guidance_scale',
  'strength',
]);

function coerceField(name: string, value: string): unknown {
  if (NUMERIC_FIELDS.has(name)) {
    const n = Number(value);
    return value.trim() !== '' && Number.isFinite(n) ? n : value;
  }
  if (name === 'stream') return value === 'true' ? true : value === 'false' ? false : value;
  return value;
}

async function imagePart(part: File, field: string): Promise<{ bytes: Uint8Array; dataUri: string }> {
  const bytes = new Uint8Array(await part.arrayBuffer());
  const type = sniffImageType(bytes);
  if (!type) {
    const message = `${field} must be a PNG, JPEG or WebP file, got ${JSON.stringify(part.type || 'unknown')} bytes that are none of them`;
    throw new DomainError('unsupported_media_type', message, [{ field, message }]);
  }
  return { bytes, dataUri: dataUriOf(bytes, type) };
}

export function registerOpenAIRoutes(app: Hono<AppEnv>): void {
  const write = requireScope('predictions:write');

  app.post('/v1/images/generations', write, async (c) => {
    const config = configOf(c);
    const { text, json } = await readJsonBody(c.req.raw);
    const parsed = OpenAIImageRequestSchema.safeParse(json);
    if (!parsed.success) throw invalidFromZod(parsed.error);
    const req = parsed.data;
    const { model, mapped } = modelFor(config, req.model);
    logMapping(c, req.model, model, mapped, {
      quality: req.quality,
      style: req.style,
      moderation: req.moderation,
      user: req.user,
    });
    const done = await runPredictionToEnd(c, {
      model,
      input: generationInput(req),
      idempotency: { key: c.req.header('idempotency-key'), bodyText: text },
      rename: toOpenAIIssue,
    });
    return answer(c, done, model, req);
  });

  app.post('/v1/images/edits', write, async (c) => {
    const config = configOf(c);
    const type = c.req.header('content-type') ?? '';
    if (!/^multipart\/form-data/i.test(type)) {
      const message = `Content-Type must be multipart/form-data (image, mask, prompt, ...), got ${JSON.stringify(type.slice(0, 60))}`;
      throw new DomainError('unsupported_media_type', message, [{ field: 'Content-Type', message }]);
    }
    let form: FormData;
    try {
      form = await c.req.raw.formData();
    } catch {
      throw invalidInput('(body)', 'body must be a valid multipart/form-data body');
    }
    const fields: Record<string, unknown> = {};
    const images: File[] = [];
    let mask: File | null = null;
    for (const [name, value] of form.entries()) {
      if (name === 'image' || name === 'image[]') {
        if (typeof value === 'string') throw invalidInput('image', 'image must be a file part, got a text field');
        images.push(value);
      } else if (name === 'mask') {
        if (typeof value === 'string') throw invalidInput('mask', 'mask must be a file part, got a text field');
        mask = value;
      } else if (typeof value === 'string') fields[name] = coerceField(name, value);
      else throw invalidInput(name, `${name} must be a text field, got a file`);
    }
    const parsed = OpenAIImageEditRequestSchema.safeParse(fields);
    if (!parsed.success) throw invalidFromZod(parsed.error);
    const req: OpenAIImageEditRequest = parsed.data;
    if (images.length === 0) throw invalidInput('image', 'image is required: the picture to edit (PNG, JPEG or WebP)');
    if (images.length > 1)
      throw invalidInput('image', `image must be one file (reference images are not supported), got ${images.length}`);

    const { model, mapped } = modelFor(config, req.model);
    logMapping(c, req.model, model, mapped, { quality: req.quality, input_fidelity: req.input_fidelity, user: req.user });
    const image = await imagePart(images[0], 'image');
    let maskUri: string | undefined;
    try {
      if (mask) {
        const m = await imagePart(mask, 'mask');
        // OpenAI: transparent = edit. A mask without alpha is taken as ours already (white = repaint).
        const converted = sniffImageType(m.bytes) === 'image/png' ? await repaintMaskFromAlpha(m.bytes) : null;
        maskUri = converted ? dataUriOf(converted, 'image/png') : m.dataUri;
      } else if (sniffImageType(image.bytes) === 'image/png') {
        // DALL-E 2's rule: without a mask, the image's own transparent pixels are the area to edit.
        const fromImage = await repaintMaskFromAlpha(image.bytes, true);
        if (fromImage) maskUri = dataUriOf(fromImage, 'image/png');
      }
    } catch (err) {
      if (err instanceof PngError) throw invalidInput(mask ? 'mask' : 'image', `${mask ? 'mask' : 'image'}: ${err.message}`);
      throw err;
    }
    // OpenAI's edits default to the input's size (an unreadable header: 512, SD 1.x's native size), within the caller's
    // pixel budget and the sides the model takes.
    const dims = imageDimensions(image.bytes);
    const input = editInput(req, {
      image: image.dataUri,
      mask: maskUri,
      imageSize: dims ? fitSize(dims, effectiveLimits(model, callerOf(c))) : { width: 512, height: 512 },
    });
    const done = await runPredictionToEnd(c, { model, input, rename: toOpenAIIssue });
    return answer(c, done, model, req);
  });
}
