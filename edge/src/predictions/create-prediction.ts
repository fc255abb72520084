// Accepting a prediction: resolve the model, validate the input against the model's and the caller's limits, honour the
// idempotency key, tokenize and look up the embedding cache, take an in-flight slot, record it, enqueue it.

import { DomainError, invalidFromZod, invalidInput } from '@sd/shared/domain-error';
import { urlHostProblem } from '@sd/shared/net/address-policy';
import type { InputLimits } from '@sd/shared/schemas/limits';
import { MAX_SEED } from '@sd/shared/schemas/limits';
import type { CreatePredictionRequest } from '@sd/shared/schemas/prediction';
import { createPredictionInputSchema } from '@sd/shared/schemas/prediction-input';
import { MAX_PROMPT_WINDOWS as MAX_WINDOWS } from '@sd/shared/schemas/runner';
import { sha256Hex } from '@sd/shared/sha256';
import type { ClipTokenizer } from '@sd/shared/tokenizer/index';
import { admission } from '../admission.ts';
import { ownerOf } from '../auth/ownership.ts';
import type { Principal } from '../auth/principal.ts';
import type { EdgeConfig, ModelConfig } from '../config.ts';
import { backendFor } from '../dispatch/model-backend.ts';
import { poolOf, type QueueStub, queueStub } from '../dispatch/queue-stub.ts';
import { type CacheKeys, cacheKeysFor, EmbeddingCache } from '../embeddings/embedding-cache.ts';
import { type PromptPair, promptWeightProblem, tokenizePromptPair } from '../embeddings/prompt-tokens.ts';
import { loadTokenizer, TokenizerMissingError } from '../embeddings/tokenizer-store.ts';
import { errorFields, type Logger } from '../log.ts';
import type { PredictionRecord } from './prediction-record.ts';
import { createRecord } from './prediction-transitions.ts';
import { streamToken } from './stream-token.ts';
import { type IndexStub, indexStub, newPredictionId, predictionStub } from './stubs.ts';

export interface CreateContext {
  env: Env;
  config: EdgeConfig;
  principal: Principal;
  log: Logger;
  /** caches.default, when the runtime has it. */
  cache?: Cache;
}

export interface CreateRequest {
  model: ModelConfig;
  body: CreatePredictionRequest;
  /** Idempotency-Key and the hash of the raw body (a key reused with another body is refused); null without the header. */
  idempotency: { key: string; bodyHash: string } | null;
  source: 'api' | 'web';
}

const schemas = new Map<string, ReturnType<typeof createPredictionInputSchema>>();

function inputSchemaFor(limits: InputLimits) {
  const key = JSON.stringify(limits);
  let schema = schemas.get(key);
  if (!schema) {
    schema = createPredictionInputSchema(limits);
    schemas.set(key, schema);
  }
  return schema;
}

/** The model's limits, tightened by the caller's key or token. */
export function effectiveLimits(model: ModelConfig, principal: Principal): InputLimits {
  const own = principal.limits;
  return {
    ...model.limits,
    maxSteps: Math.min(model.limits.maxSteps, own.maxSteps ?? Number.POSITIVE_INFINITY),
    maxOutputs: Math.min(model.limits.maxOutputs, own.maxOutputs ?? Number.POSITIVE_INFINITY),
    maxPixels: Math.min(model.limits.maxPixels, own.maxPixels ?? Number.POSITIVE_INFINITY),
  };
}

export function checkModelAllowed(model: ModelConfig, principal: Principal): void {
  const allowed = principal.limits.models;
  if (allowed && !allowed.includes(model.id) && !allowed.includes(`${model.id}:${model.version}`)) {
    throw new DomainError('forbidden', `this key may not run model ${model.id}; it may run ${allowed.join(', ') || 'no models'}`);
  }
}

/**
 * 422 for an image or mask URL naming an internal host (as written: loopback, private, metadata, internal names). Our
 * runners guard their own fetches, but a Cog host we do not run or Replicate may fetch whatever it is handed.
 */
function refuseInternalImageUrls(input: { image?: string; mask?: string }): void {
  for (const field of ['image', 'mask'] as const) {
    const ref = input[field];
    const problem = ref === undefined || ref.startsWith('data:') ? null : urlHostProblem(field, ref);
    if (problem) throw invalidInput(`input.${field}`, `${problem}; IMAGE_URLS_ALLOW_PRIVATE is off`);
  }
}

/**
 * 422 when a host that takes no budget from us (Replicate) would size the output from an image given by URL, and the
 * caller's pixel budget is tighter than the model's: only width and height the edge can check keep the key within it.
 * (Our runners get the budget with the job; data URIs the edge sizes itself.)
 */
export function refuseUnsizedImageUrlPastBudget(
  input: { image?: string; width?: number; height?: number },
  model: ModelConfig,
  limits: InputLimits,
): void {
  if (input.image === undefined || input.image.startsWith('data:')) return;
  if (limits.maxPixels >= model.limits.maxPixels) return;
  const field = input.width === undefined ? 'width' : input.height === undefined ? 'height' : null;
  if (!field) return;
  throw invalidInput(
    `input.${field}`,
    `${field} must be given with an image URL for this model (its host sizes the output itself) when the key's budget is ${limits.maxPixels} pixels`,
  );
}

/** The idempotency claim of a request: only hashed when the client sent a key (large img2img bodies cost ms to hash). */
export async function idempotencyOf(key: string | undefined, bodyText: string): Promise<CreateRequest['idempotency']> {
  return key ? { key, bodyHash: await sha256Hex(bodyText) } : null;
}

interface Conditioning {
  tokens: PromptPair | null;
  cacheKeys: CacheKeys | null;
  cache: 'hit' | 'miss' | null;
}

async function prepareConditioning(
  ctx: CreateContext,
  model: ModelConfig,
  input: Record<string, unknown>,
): Promise<Conditioning> {
  if (!backendFor(ctx.config, model).tokenizesAtEdge || !model.tokenizer) return { tokens: null, cacheKeys: null, cache: null };
  let tokenizer: ClipTokenizer;
  try {
    tokenizer = await loadTokenizer(ctx.env.TOKENIZERS, model.tokenizer);
  } catch (err) {
    // Without the files the runner tokenizes itself: slower (no cache), not wrong.
    if (err instanceof TokenizerMissingError) ctx.log.warn('tokenizer missing; sending the plain prompt', errorFields(err));
    else ctx.log.error('tokenizer unusable; sending the plain prompt', errorFields(err));
    return { tokens: null, cacheKeys: null, cache: null };
  }
  const tokens = tokenizePromptPair(tokenizer, String(input.prompt), String(input.negative_prompt ?? ''), {
    mode: input.prompt_mode === 'truncate' ? 'truncate' : 'chunk',
    weighting: input.prompt_weighting !== false,
  });
  if (tokens.prompt.ids.length > MAX_WINDOWS) {
    const field = tokens.prompt.ids.length >= tokens.negative.ids.length ? 'prompt' : 'negative_prompt';
    throw invalidInput(
      `input.${field}`,
      `${field} must fit in ${MAX_WINDOWS} windows of ${tokenizer.modelMaxLength - 2} tokens, got ${tokens.prompt.ids.length} windows`,
    );
  }
  const weightProblem = promptWeightProblem(tokens);
  if (weightProblem) throw invalidInput(`input.${weightProblem.field}`, weightProblem.message);
  // clip_skip (samplers branch): the request's clip_skip, when given, decides which text-encoder layer is cached.
  const clipSkip = typeof input.clip_skip === 'number' ? input.clip_skip : model.clipSkip;
  const cacheKeys = await cacheKeysFor(`${model.id}:${model.version}`, clipSkip, tokens);
  const cache = new EmbeddingCache({ kv: ctx.env.EMBEDDINGS, cache: ctx.cache, ttlSeconds: ctx.config.embeddingTtlSeconds });
  // Also warms the front cache for the consumer, which reads the same keys moments later.
  const hit = await cache.hasPair(cacheKeys);
  return { tokens, cacheKeys, cache: hit ? 'hit' : 'miss' };
}

export async function createPrediction(
  ctx: CreateContext,
  req: CreateRequest,
): Promise<{ record: PredictionRecord; replayed: boolean }> {
  const { env, principal } = ctx;
  checkModelAllowed(req.model, principal);
  const limits = effectiveLimits(req.model, principal);
  const parsed = inputSchemaFor(limits).safeParse(req.body.input);
  if (!parsed.success) throw invalidFromZod(parsed.error, 'input');
  if (!ctx.config.imageUrls.allowPrivate) refuseInternalImageUrls(parsed.data);
  if (!backendFor(ctx.config, req.model).takesRunnerInput) refuseUnsizedImageUrlPastBudget(parsed.data, req.model, limits);

  const owner = ownerOf(principal);
  const index = indexStub(env, principal.keyId);
  const claim = await claimPredictionId(env, index, req.idempotency, owner.subject);
  if (claim.kind === 'replay') return { record: claim.record, replayed: true };
  const { id } = claim;
  const log = ctx.log.with({ predictionId: id });
  try {
    const input: Record<string, unknown> = parsed.data;
    const conditioning = await prepareConditioning({ ...ctx, log }, req.model, input);
    const now = Date.now();
    // A place in the model's line first: a full line refuses before anything is stored for this prediction.
    const queue = await takePlaceInLine(env, req.model, id, owner.keyId, now);
    try {
      await admission().acquireInFlight(env, principal, id);
    } catch (err) {
      await queue.remove(id).catch(() => undefined);
      throw err;
    }
    const record = createRecord(
      {
        id,
        ownerKeyId: owner.keyId,
        ownerSubject: owner.subject,
        model: req.model.id,
        version: req.model.version,
        input,
        // The edge chooses the seed when the caller did not, so a requeued prediction renders the same image.
        randomSeed: crypto.getRandomValues(new Uint32Array(1))[0] % (MAX_SEED + 1),
        embeddingCache: conditioning.cache,
        source: req.source,
        webhook: req.body.webhook ?? null,
        webhookEventsFilter: req.body.webhook_events_filter ?? [],
        streamToken: await streamToken(ctx.config.secrets.streamSigningSecret, id, now + ctx.config.streamTokenTtlSeconds * 1000),
        // The budget goes with the job: an image given by URL is sized by the runner that fetches it.
        job: { tokens: conditioning.tokens, cacheKeys: conditioning.cacheKeys, maxPixels: limits.maxPixels },
      },
      now,
    );
    const stored = await storeAndRelease(ctx, record, queue, index, owner.subject, now);
    log.info('prediction accepted', { model: req.model.id, cache: conditioning.cache });
    return { record: stored, replayed: false };
  } catch (err) {
    if (req.idempotency) await index.releaseIdempotencyKey(req.idempotency.key, id, owner.subject).catch(() => undefined);
    throw err;
  }
}

/**
 * The new prediction's id, or the prediction an earlier request with the same Idempotency-Key created (a replay).
 * Scoped to the end user: another visitor of the same page must not replay someone else's key into their prediction.
 */
async function claimPredictionId(
  env: Env,
  index: IndexStub,
  idempotency: CreateRequest['idempotency'],
  subject: string | null,
): Promise<{ kind: 'new'; id: string } | { kind: 'replay'; record: PredictionRecord }> {
  const id = newPredictionId();
  if (!idempotency) return { kind: 'new', id };
  const shown = JSON.stringify(idempotency.key);
  const claim = await index.claimIdempotencyKey(idempotency.key, idempotency.bodyHash, id, subject);
  if (claim.kind === 'mismatch') {
    throw new DomainError('conflict', `Idempotency-Key ${shown} was already used with a different request body`);
  }
  if (claim.kind === 'existing') {
    const existing = await waitForRecord(env, claim.predictionId);
    if (existing) return { kind: 'replay', record: existing };
    throw new DomainError('conflict', `a request with Idempotency-Key ${shown} is still being processed; retry shortly`);
  }
  return { kind: 'new', id: claim.predictionId };
}

/** A held place at the back of the model's line, or 503 with Retry-After when the line is full. */
async function takePlaceInLine(env: Env, model: ModelConfig, id: string, ownerKey: string, now: number): Promise<QueueStub> {
  const queue = queueStub(env, poolOf(model));
  const place = await queue.enqueue({ pool: poolOf(model), predictionId: id, ownerKey, createdMs: now }, model.maxBacklog);
  if (!place.ok) {
    throw new DomainError(
      'unavailable',
      `model ${model.id} has ${place.waiting} predictions waiting, its limit; retry after ${place.retryAfterSeconds} s`,
      undefined,
      { 'Retry-After': String(place.retryAfterSeconds) },
    );
  }
  return queue;
}

/** Stores the record, lists it, and lets the line hand it out; on any failure undoes all of it. */
async function storeAndRelease(
  ctx: CreateContext,
  record: PredictionRecord,
  queue: QueueStub,
  index: IndexStub,
  subject: string | null,
  now: number,
): Promise<PredictionRecord> {
  const { env, principal } = ctx;
  const { id } = record;
  try {
    const { record: stored } = await predictionStub(env, id).create(record);
    // Independent: the listing entry and the release of the place in line can be written together.
    await Promise.all([index.add(id, now, subject), queue.activate(id)]);
    return stored;
  } catch (err) {
    // Never leave an accepted-looking prediction that nobody will run.
    await queue.remove(id).catch(() => undefined);
    await predictionStub(env, id)
      .fail('the prediction could not be queued')
      .catch(() => null);
    await admission()
      .releaseInFlight(env, principal.keyId, id)
      .catch(() => undefined);
    throw err;
  }
}

/** A concurrent request with the same idempotency key may still be creating the prediction: give it a moment. */
async function waitForRecord(env: Env, id: string): Promise<PredictionRecord | null> {
  const stub = predictionStub(env, id);
  for (let i = 0; i < 20; i++) {
    const record = await stub.get();
    if (record) return record;
    await new Promise((r) => setTimeout(r, 100));
  }
  return null;
}
