// GET /openapi.json: Cog's OpenAPI document (Input, Output, PredictionRequest, PredictionResponse), generated from
// the shared zod schemas so it cannot drift from what the runner validates.

import { SCHEDULER_NAMES } from '@sd/shared/scheduler-names';
import { ErrorBodySchema } from '@sd/shared/schemas/errors';
import { WebhookEventSchema } from '@sd/shared/schemas/prediction';
import { CogPredictionRequestSchema, RunnerInputSchema, RunnerPredictionSchema } from '@sd/shared/schemas/runner';
import { z } from 'zod';

type JsonObject = Record<string, unknown>;

function jsonSchema(schema: z.ZodType, io: 'input' | 'output'): JsonObject {
  // Transforms (scheduler aliases) have no JSON Schema; their input side is what clients send.
  const { $schema: _drop, ...rest } = z.toJSONSchema(schema, { io, unrepresentable: 'any' }) as JsonObject;
  return rest;
}

function withInputRef(schema: JsonObject): JsonObject {
  const properties = { ...(schema.properties as JsonObject), input: { $ref: '#/components/schemas/Input' } };
  return { ...schema, properties };
}

const json = (ref: string) => ({ 'application/json': { schema: { $ref: `#/components/schemas/${ref}` } } });

export function buildOpenApiDocument(title = 'sd-gpu-runner'): JsonObject {
  const input = jsonSchema(RunnerInputSchema, 'input');
  const props = input.properties as Record<string, JsonObject>;
  props.scheduler = {
    ...props.scheduler,
    description: `One of ${SCHEDULER_NAMES.join(', ')} or a known diffusers / A1111 alias; default: the model's own.`,
  };
  props.seed = { ...props.seed, description: 'Absent or null: random. Image i uses seed + i; the seeds are reported back.' };
  const error = { description: 'Error', content: json('Error') };
  const prediction = { content: json('PredictionResponse') };
  const idParam = [{ name: 'prediction_id', in: 'path', required: true, schema: { type: 'string' } }];
  const requestBody = { required: true, content: json('PredictionRequest') };
  return {
    openapi: '3.1.0',
    info: { title, version: '0.1.0', description: 'A Cog-compatible Stable Diffusion runner on onnxruntime-node.' },
    paths: {
      '/': { get: { summary: 'Root', responses: { '200': { description: 'Links' } } } },
      '/health-check': {
        get: { summary: 'Healthcheck', responses: { '200': { description: 'STARTING, READY, BUSY, SETUP_FAILED or DEFUNCT' } } },
      },
      '/ready': {
        get: {
          summary: 'Readiness',
          responses: {
            '200': { description: 'READY or BUSY' },
            '503': { description: 'STARTING, SETUP_FAILED or DEFUNCT (the status is in the body)' },
          },
        },
      },
      '/predictions': {
        post: {
          summary: 'Predict',
          description:
            'Without Prefer: runs to completion (200). Prefer: respond-async answers at once (202). Prefer: wait=N holds up to N seconds, at most 60 (201).',
          parameters: [{ name: 'prefer', in: 'header', required: false, schema: { type: 'string' } }],
          requestBody,
          responses: {
            '200': { description: 'Completed', ...prediction },
            '201': { description: 'Created', ...prediction },
            '202': { description: 'Accepted', ...prediction },
            '409': error,
            '422': error,
            '503': error,
          },
        },
      },
      '/predictions/{prediction_id}': {
        put: {
          summary: 'Predict Idempotent',
          parameters: idParam,
          requestBody,
          responses: {
            '200': { description: 'Completed', ...prediction },
            '202': { description: 'Accepted', ...prediction },
            '409': error,
            '422': error,
            '503': error,
          },
        },
        get: {
          summary: 'Get Prediction (extension: not in Cog)',
          parameters: idParam,
          responses: { '200': { description: 'Current state', ...prediction }, '404': error },
        },
      },
      '/predictions/{prediction_id}/cancel': {
        post: {
          summary: 'Cancel',
          parameters: idParam,
          responses: { '200': { description: 'Cancel requested', ...prediction }, '404': error },
        },
      },
      '/shutdown': { post: { summary: 'Start Shutdown', responses: { '200': { description: 'Shutting down' } } } },
    },
    components: {
      schemas: {
        Input: { title: 'Input', ...input },
        Output: { title: 'Output', type: 'array', items: { type: 'string', format: 'uri' } },
        PredictionRequest: { title: 'PredictionRequest', ...withInputRef(jsonSchema(CogPredictionRequestSchema, 'input')) },
        PredictionResponse: { title: 'PredictionResponse', ...jsonSchema(RunnerPredictionSchema, 'output') },
        WebhookEvent: { title: 'WebhookEvent', ...jsonSchema(WebhookEventSchema, 'input') },
        Error: { title: 'Error', ...jsonSchema(ErrorBodySchema, 'output') },
      },
    },
  };
}
