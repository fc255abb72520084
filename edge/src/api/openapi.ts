// GET /openapi.json: the public API described from the same zod schemas that validate it (z.toJSONSchema).
import { ErrorBodySchema } from '@sd/shared/schemas/errors';
import { OpenAIImageRequestSchema, OpenAIImageResponseSchema } from '@sd/shared/schemas/openai';
import { CreatePredictionRequestSchema, PredictionSchema } from '@sd/shared/schemas/prediction';
import { PredictionInputSchema } from '@sd/shared/schemas/prediction-input';
import { z } from 'zod';

const ref = (name: string) => ({ $ref: `#/components/schemas/${name}` });
const json = (name: string) => ({ 'application/json': { schema: ref(name) } });
const errors = {
  '401': { description: 'missing or invalid credentials', content: json('Error') },
  '404': { description: 'not found', content: json('Error') },
  '422': { description: 'invalid input; error.issues names each field', content: json('Error') },
  '429': { description: 'rate limited (Retry-After)', content: json('Error') },
};

let cached: unknown;

export function openApiDocument(serverUrl: string): unknown {
  if (cached) return cached;
  // Input schemas describe what clients send (defaults optional); transforms (scheduler aliases) become plain strings.
  const input = (schema: z.ZodType) => z.toJSONSchema(schema, { io: 'input', unrepresentable: 'any' });
  const output = (schema: z.ZodType) => z.toJSONSchema(schema, { io: 'output', unrepresentable: 'any' });
  const createBody = { content: json('CreatePredictionRequest'), required: true };
  const prefer = {
    name: 'Prefer',
    in: 'header',
    schema: { type: 'string', example: 'wait=60' },
    description: 'wait or wait=N (N <= 60): hold the answer until done',
  };
  const idem = {
    name: 'Idempotency-Key',
    in: 'header',
    schema: { type: 'string' },
    description: 'a retried create with the same key returns the same prediction',
  };
  const idParam = { name: 'id', in: 'path', required: true, schema: { type: 'string' } };
  cached = {
    openapi: '3.1.0',
    info: {
      title: 'Stable Diffusion edge API',
      version: '1.0.0',
      description: 'Replicate-compatible predictions and OpenAI-compatible image generation.',
    },
    servers: [{ url: serverUrl }],
    components: {
      securitySchemes: { bearer: { type: 'http', scheme: 'bearer' } },
      schemas: {
        PredictionInput: input(PredictionInputSchema),
        CreatePredictionRequest: input(CreatePredictionRequestSchema),
        Prediction: output(PredictionSchema),
        Error: output(ErrorBodySchema),
        ImageGenerationRequest: input(OpenAIImageRequestSchema),
        ImageGenerationResponse: output(OpenAIImageResponseSchema),
      },
    },
    security: [{ bearer: [] }],
    paths: {
      '/v1/predictions': {
        post: {
          summary: 'Create a prediction (version: "owner/name:version" or a version id)',
          parameters: [prefer, idem],
          requestBody: createBody,
          responses: { '201': { description: 'created', content: json('Prediction') }, ...errors },
        },
        get: {
          summary: "List the caller's predictions, newest first",
          parameters: [{ name: 'cursor', in: 'query', schema: { type: 'string' } }],
          responses: {
            '200': {
              description: 'a page',
              content: {
                'application/json': {
                  schema: {
                    type: 'object',
                    properties: {
                      previous: { type: ['string', 'null'] },
                      next: { type: ['string', 'null'] },
                      results: { type: 'array', items: ref('Prediction') },
                    },
                  },
                },
              },
            },
          },
        },
      },
      '/v1/models/{owner}/{name}/predictions': {
        post: {
          summary: "Create a prediction of a model's configured version",
          parameters: [
            { name: 'owner', in: 'path', required: true, schema: { type: 'string' } },
            { name: 'name', in: 'path', required: true, schema: { type: 'string' } },
            prefer,
            idem,
          ],
          requestBody: createBody,
          responses: { '201': { description: 'created', content: json('Prediction') }, ...errors },
        },
      },
      '/v1/predictions/{id}': {
        get: {
          summary: 'Get a prediction',
          parameters: [idParam],
          responses: { '200': { description: 'the prediction', content: json('Prediction') }, ...errors },
        },
      },
      '/v1/predictions/{id}/cancel': {
        post: {
          summary: 'Cancel a prediction',
          parameters: [idParam],
          responses: { '200': { description: 'the prediction', content: json('Prediction') }, ...errors },
        },
      },
      '/v1/predictions/{id}/stream': {
        get: {
          summary: 'Server-Sent Events: status, progress, logs, output, error, done (urls.stream carries its token)',
          security: [],
          parameters: [idParam, { name: 'token', in: 'query', required: true, schema: { type: 'string' } }],
          responses: { '200': { description: 'text/event-stream' } },
        },
      },
      '/v1/images/generations': {
        post: {
          summary: 'OpenAI-compatible image generation (waits for completion)',
          requestBody: { content: json('ImageGenerationRequest'), required: true },
          responses: { '200': { description: 'images', content: json('ImageGenerationResponse') }, ...errors },
        },
      },
      '/health': { get: { summary: 'Liveness', security: [], responses: { '200': { description: 'ok' } } } },
    },
  };
  return cached;
}
