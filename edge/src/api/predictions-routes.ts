// The Replicate-shaped prediction routes: create (by version or by model), get, list (the caller's own), cancel, and
// the SSE stream (authorised by the capability token in urls.stream, so it is mounted before the auth middleware).

import { DomainError, invalidFromZod, invalidInput, notFound } from '@sd/shared/domain-error';
import { parsePrefer } from '@sd/shared/prefer';
import { CreatePredictionRequestSchema, isTerminal } from '@sd/shared/schemas/prediction';
import type { Hono } from 'hono';
import { requireScope } from '../auth/authenticate/index.ts';
import { canAccess, fileScopeOf, subjectOf } from '../auth/ownership.ts';
import { type ModelConfig, resolveModel } from '../config.ts';
import { defaultCache } from '../embeddings/embedding-cache.ts';
import { inlineFileInputs } from '../files/file-inputs.ts';
import { withImageSize } from '../images/image-data.ts';
import { createPrediction, effectiveLimits, idempotencyOf } from '../predictions/create-prediction.ts';
import { placeInLine } from '../predictions/place-in-line.ts';
import type { IndexPage } from '../predictions/prediction-index.ts';
import { decodeCursor } from '../predictions/prediction-index.ts';
import { ownerOfRecord, type PredictionRecord, toPublicPrediction } from '../predictions/prediction-record.ts';
import { verifyStreamToken } from '../predictions/stream-token.ts';
import { indexStub, predictionStub } from '../predictions/stubs.ts';
import { checkWebhookDestination, type WebhookPolicy } from '../webhooks/webhook-destination.ts';
import { type AppContext, type AppEnv, configOf, requestLog } from './app-env.ts';
import { callerOf } from './caller.ts';
import { readJsonBody } from './json-body.ts';

const PAGE_SIZE = 50;
const ID_PATTERN = /^[a-z0-9]{1,64}$/;

/** The caller's prediction, or 404 (see auth/ownership.ts for who owns what). */
export async function ownedPrediction(c: AppContext, id: string): Promise<PredictionRecord> {
  if (!ID_PATTERN.test(id)) throw notFound(`prediction ${JSON.stringify(id)}`);
  const record = await predictionStub(c.env, id).get();
  // Another key's or another end user's prediction is indistinguishable from a missing one.
  if (!record || !canAccess(callerOf(c), ownerOfRecord(record))) throw notFound(`prediction ${id}`);
  return record;
}

/**
 * The caller's prediction listing, scoped to what it may see (GET /v1/predictions, AUTOMATIC1111's /progress and
 * /interrupt read it): all of the key's for its secret holder, one end user's for a token or visitor.
 */
export function callerIndex(c: AppContext): { list(cursor: string | null, limit: number): Promise<IndexPage> } {
  const principal = callerOf(c);
  const index = indexStub(c.env, principal.keyId);
  return { list: (cursor, limit) => index.list(cursor, limit, subjectOf(principal)) };
}

/** 422 naming `webhook` for a destination inside the network (a resolver failure is let through: delivery re-checks). */
async function refuseInternalWebhook(url: string, policy: WebhookPolicy): Promise<void> {
  const verdict = await checkWebhookDestination(url, policy);
  if (!verdict.ok && !verdict.transient) throw invalidInput('webhook', verdict.message);
}

async function create(c: AppContext, modelRef: string | null) {
  const config = configOf(c);
  const { text, json } = await readJsonBody(c.req.raw);
  const parsed = CreatePredictionRequestSchema.safeParse(json);
  if (!parsed.success) throw invalidFromZod(parsed.error);
  const body = parsed.data;
  if (body.webhook) await refuseInternalWebhook(body.webhook, config.webhooks);
  let model: ModelConfig | null;
  if (modelRef) {
    model = resolveModel(config, modelRef);
    if (!model) throw notFound(`model ${modelRef}`);
    if (body.version && body.version !== model.version && body.version !== `${model.id}:${model.version}`) {
      throw invalidInput(
        'version',
        `version must be ${model.version} for model ${model.id}, got ${JSON.stringify(body.version)}`,
      );
    }
  } else {
    if (!body.version)
      throw invalidInput(
        'version',
        'version is required: "owner/name:version", a version id, or use /v1/models/{owner}/{name}/predictions',
      );
    model = resolveModel(config, body.version);
    if (!model) {
      const known = config.models.map((m) => `${m.id}:${m.version}`).join(', ');
      throw invalidInput('version', `version must name a configured model (${known}), got ${JSON.stringify(body.version)}`);
    }
  }
  const idempotencyKey = c.req.header('idempotency-key') ?? null;
  if (idempotencyKey !== null && (idempotencyKey.length === 0 || idempotencyKey.length > 255)) {
    throw invalidInput('Idempotency-Key', `Idempotency-Key must be 1 to 255 characters, got ${idempotencyKey.length}`);
  }
  const principal = callerOf(c);
  const log = requestLog(c, { keyId: principal.keyId });
  if (body.input.disable_safety_checker !== undefined) {
    // Replicate's SD models take it; this pipeline has no safety checker, so outputs are never filtered either way.
    log.info('disable_safety_checker accepted: there is no safety checker, outputs are not filtered', {
      disable_safety_checker: body.input.disable_safety_checker,
    });
  }
  const inlined = await inlineFileInputs(c.env.FILES, fileScopeOf(principal), config.publicBaseUrl, body.input);
  const input = withImageSize(inlined, effectiveLimits(model, principal));
  const { record, replayed } = await createPrediction(
    { env: c.env, config, principal, log, cache: defaultCache() },
    {
      model,
      body: { ...body, input },
      idempotency: await idempotencyOf(idempotencyKey ?? undefined, text),
      source: principal.kind === 'secret' ? 'api' : 'web',
    },
  );
  let current = record;
  const wait = parsePrefer(c.req.header('prefer')).waitSeconds;
  if (wait !== null && !isTerminal(current.status)) {
    current = (await predictionStub(c.env, record.id).waitForCompletion(wait * 1000)) ?? current;
  }
  const headers: Record<string, string> = {};
  if (replayed) headers['Idempotent-Replayed'] = 'true';
  if (wait !== null) headers['Preference-Applied'] = `wait=${wait}`;
  return c.json(toPublicPrediction(current, config.publicBaseUrl), replayed ? 200 : 201, headers);
}

/** GET /v1/predictions/{id}/stream?token=...: mounted before auth. */
export function registerStreamRoute(app: Hono<AppEnv>): void {
  app.get('/v1/predictions/:id/stream', async (c) => {
    const id = c.req.param('id');
    const token = c.req.query('token') ?? '';
    const config = configOf(c);
    if (!ID_PATTERN.test(id) || !(await verifyStreamToken(config.secrets.streamSigningSecret, id, token))) {
      throw notFound(`prediction stream ${JSON.stringify(id)}`);
    }
    return predictionStub(c.env, id).fetch('https://prediction/stream');
  });
}

export function registerPredictionRoutes(app: Hono<AppEnv>): void {
  const write = requireScope('predictions:write');
  const read = requireScope('predictions:read');
  app.post('/v1/predictions', write, (c) => create(c, null));
  app.post('/v1/models/:owner/:name/predictions', write, (c) => create(c, `${c.req.param('owner')}/${c.req.param('name')}`));
  app.post('/v1/models/:owner/:name/versions/:version/predictions', write, (c) =>
    create(c, `${c.req.param('owner')}/${c.req.param('name')}:${c.req.param('version')}`),
  );

  app.get('/v1/predictions', read, async (c) => {
    const config = configOf(c);
    const cursor = c.req.query('cursor') ?? null;
    // A cursor we did not write would silently restart the listing at page one.
    if (cursor !== null && (cursor.length > 200 || decodeCursor(cursor) === null)) {
      throw invalidInput(
        'cursor',
        `cursor must be the value of a previous page's next link, got ${JSON.stringify(cursor.slice(0, 40))}`,
      );
    }
    const principal = callerOf(c);
    const page = await callerIndex(c).list(cursor, PAGE_SIZE);
    const records = await Promise.all(page.ids.map((id) => predictionStub(c.env, id).get()));
    const base = `${config.publicBaseUrl}/v1/predictions`;
    return c.json({
      previous: null,
      next: page.next ? `${base}?cursor=${encodeURIComponent(page.next)}` : null,
      results: records
        // The index is per subject already; the record check keeps a listing from ever showing what GET would refuse.
        .filter((r): r is PredictionRecord => r !== null && canAccess(principal, ownerOfRecord(r)))
        .map((r) => toPublicPrediction(r, config.publicBaseUrl)),
    });
  });

  app.get('/v1/predictions/:id', read, async (c) => {
    const record = await ownedPrediction(c, c.req.param('id'));
    return c.json(toPublicPrediction(record, configOf(c).publicBaseUrl, await placeInLine(c.env, record)));
  });

  app.post('/v1/predictions/:id/cancel', write, async (c) => {
    const record = await ownedPrediction(c, c.req.param('id'));
    const after = (await predictionStub(c.env, record.id).cancel()) ?? record;
    if (!isTerminal(after.status))
      throw new DomainError('conflict', `prediction ${record.id} could not be canceled from ${after.status}`);
    return c.json(toPublicPrediction(after, configOf(c).publicBaseUrl));
  });
}
