// The configured models, described for both clients that ask: Replicate's models API (GET /v1/models/{owner}/{name},
// its versions with the Cog OpenAPI input schema) and OpenAI's models.list / models.retrieve (GET /v1/models). One
// object carries both shapes' fields, since both clients read the same paths.

import { notFound } from '@sd/shared/domain-error';
import { createPredictionInputSchema } from '@sd/shared/schemas/prediction-input';
import type { Hono } from 'hono';
import { z } from 'zod';
import { requireScope } from '../auth/authenticate/index.ts';
import { type ModelConfig, resolveModel } from '../config.ts';
import { backendFor } from '../dispatch/model-backend.ts';
import { type AppContext, type AppEnv, configOf } from './app-env.ts';

/** Fields that take an image (Cog marks them format uri; Replicate's UI shows a file picker). */
const IMAGE_FIELDS = new Set(['image', 'mask']);

const schemas = new Map<string, unknown>();

/** The Cog-style OpenAPI document of a model version: Input from the model's own limits, Output a list of URIs. */
export function versionOpenApiSchema(model: ModelConfig): unknown {
  const key = `${model.id}:${model.version}`;
  const cached = schemas.get(key);
  if (cached) return cached;
  const input = z.toJSONSchema(createPredictionInputSchema(model.limits), { io: 'input', unrepresentable: 'any' }) as {
    properties?: Record<string, Record<string, unknown>>;
    [k: string]: unknown;
  };
  const properties: Record<string, Record<string, unknown>> = {};
  Object.entries(input.properties ?? {}).forEach(([name, prop], i) => {
    properties[name] = { title: name, ...prop, ...(IMAGE_FIELDS.has(name) ? { format: 'uri' } : {}), 'x-order': i };
  });
  const doc = {
    openapi: '3.0.2',
    info: { title: model.id, version: model.version },
    paths: {},
    components: {
      schemas: {
        Input: { ...input, title: 'Input', properties },
        Output: { title: 'Output', type: 'array', items: { type: 'string', format: 'uri' } },
      },
    },
  };
  schemas.set(key, doc);
  return doc;
}

function versionObject(model: ModelConfig) {
  return {
    id: model.version,
    // The deployment does not record when a version was configured; the epoch says "unknown" without inventing a date.
    created_at: new Date(0).toISOString(),
    cog_version: null,
    openapi_schema: versionOpenApiSchema(model),
  };
}

function modelObject(c: AppContext, model: ModelConfig) {
  return {
    // Replicate's Model
    url: `${configOf(c).publicBaseUrl}/v1/models/${model.id}`,
    owner: model.owner,
    name: model.name,
    description: `Stable Diffusion (${backendFor(configOf(c), model).description}), version ${model.version}`,
    visibility: 'private',
    is_official: false,
    github_url: null,
    paper_url: null,
    license_url: null,
    run_count: 0,
    cover_image_url: null,
    default_example: null,
    latest_version: versionObject(model),
    // OpenAI's Model
    id: model.id,
    object: 'model',
    created: 0,
    owned_by: model.owner,
  };
}

function findModel(c: AppContext): ModelConfig {
  const id = `${c.req.param('owner')}/${c.req.param('name')}`;
  const model = resolveModel(configOf(c), id);
  if (!model) throw notFound(`model ${id}`);
  return model;
}

export function registerModelRoutes(app: Hono<AppEnv>): void {
  const read = requireScope('predictions:read');
  app.get('/v1/models', read, (c) => {
    const models = configOf(c).models.map((m) => modelObject(c, m));
    return c.json({ object: 'list', data: models, previous: null, next: null, results: models });
  });
  // OpenAI's models.retrieve(id) sends the id as one path segment: "owner/name" arrives as owner%2Fname.
  app.get('/v1/models/:id', read, (c) => {
    const id = c.req.param('id');
    const model = resolveModel(configOf(c), id);
    if (!model) throw notFound(`model ${id}`);
    return c.json(modelObject(c, model));
  });
  app.get('/v1/models/:owner/:name', read, (c) => c.json(modelObject(c, findModel(c))));
  app.get('/v1/models/:owner/:name/versions', read, (c) =>
    c.json({ previous: null, next: null, results: [versionObject(findModel(c))] }),
  );
  app.get('/v1/models/:owner/:name/versions/:version', read, (c) => {
    const model = findModel(c);
    if (c.req.param('version') !== model.version) throw notFound(`version ${c.req.param('version')} of model ${model.id}`);
    return c.json(versionObject(model));
  });
}
