// GET /openapi.json: the public API described from the same zod schemas that validate it (z.toJSONSchema).
import { ErrorBodySchema } from '@sd/shared/schemas/errors';
import { OpenAIImageEditRequestSchema, OpenAIImageRequestSchema, OpenAIImageResponseSchema } from '@sd/shared/schemas/openai';
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
      description:
        'Replicate-compatible predictions, files and models; OpenAI-compatible image generation, edits and models; an AUTOMATIC1111-compatible /sdapi/v1.',
    },
    servers: [{ url: serverUrl }],
    components: {
      securitySchemes: {
        bearer: { type: 'http', scheme: 'bearer' },
        basic: { type: 'http', scheme: 'basic', description: 'the API key as the password (AUTOMATIC1111 clients)' },
      },
      schemas: {
        PredictionInput: input(PredictionInputSchema),
        CreatePredictionRequest: input(CreatePredictionRequestSchema),
        Prediction: output(PredictionSchema),
        Error: output(ErrorBodySchema),
        ImageGenerationRequest: input(OpenAIImageRequestSchema),
        ImageGenerationResponse: output(OpenAIImageResponseSchema),
        ImageEditFields: input(OpenAIImageEditRequestSchema),
        File: {
          type: 'object',
          properties: {
            id: { type: 'string' },
            name: { type: 'string' },
            content_type: { type: 'string' },
            size: { type: 'integer' },
            etag: { type: 'string' },
            checksums: { type: 'object', properties: { sha256: { type: 'string' } } },
            metadata: { type: 'object' },
            created_at: { type: 'string' },
            expires_at: { type: 'string' },
            urls: { type: 'object', properties: { get: { type: 'string' } } },
          },
        },
        A1111Response: {
          type: 'object',
          properties: {
            images: { type: 'array', items: { type: 'string', description: 'base64 PNG' } },
            parameters: { type: 'object', description: 'the request with AUTOMATIC1111 defaults filled in' },
            info: { type: 'string', description: 'JSON: seed, all_seeds, sampler_name, steps, infotexts, prediction_ids, ...' },
          },
        },
      },
    },
    security: [{ bearer: [] }, { basic: [] }],
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
      '/v1/images/edits': {
        post: {
          summary:
            'OpenAI-compatible image edit: multipart image, optional mask (transparent = repaint), and the fields below (waits)',
          requestBody: {
            required: true,
            content: {
              'multipart/form-data': {
                schema: {
                  allOf: [
                    ref('ImageEditFields'),
                    {
                      type: 'object',
                      required: ['image'],
                      properties: { image: { type: 'string', format: 'binary' }, mask: { type: 'string', format: 'binary' } },
                    },
                  ],
                },
              },
            },
          },
          responses: { '200': { description: 'images', content: json('ImageGenerationResponse') }, ...errors },
        },
      },
      '/v1/files': {
        post: {
          summary: 'Upload an image input (multipart `content`, optional JSON `metadata`); kept 24 h',
          requestBody: {
            required: true,
            content: {
              'multipart/form-data': {
                schema: {
                  type: 'object',
                  required: ['content'],
                  properties: { content: { type: 'string', format: 'binary' }, metadata: { type: 'string' } },
                },
              },
            },
          },
          responses: { '201': { description: 'the file; urls.get works as an image input', content: json('File') }, ...errors },
        },
        get: { summary: "List the caller's files", responses: { '200': { description: 'a page of files' } } },
      },
      '/v1/files/{id}': {
        get: {
          summary: 'Get a file object',
          parameters: [idParam],
          responses: { '200': { description: 'the file', content: json('File') }, ...errors },
        },
        delete: { summary: 'Delete a file', parameters: [idParam], responses: { '204': { description: 'deleted' }, ...errors } },
      },
      '/v1/files/{id}/download': {
        get: { summary: "A file's bytes", parameters: [idParam], responses: { '200': { description: 'the image' }, ...errors } },
      },
      '/v1/models': {
        get: {
          summary: 'The configured models (OpenAI `data` and Replicate `results`)',
          responses: { '200': { description: 'models' } },
        },
      },
      '/v1/models/{owner}/{name}': {
        get: {
          summary: 'A model, with latest_version.openapi_schema (Cog Input/Output)',
          parameters: [
            { name: 'owner', in: 'path', required: true, schema: { type: 'string' } },
            { name: 'name', in: 'path', required: true, schema: { type: 'string' } },
          ],
          responses: { '200': { description: 'the model' }, ...errors },
        },
      },
      '/v1/models/{owner}/{name}/versions': {
        get: {
          summary: "A model's versions",
          parameters: [
            { name: 'owner', in: 'path', required: true, schema: { type: 'string' } },
            { name: 'name', in: 'path', required: true, schema: { type: 'string' } },
          ],
          responses: { '200': { description: 'a page of versions' }, ...errors },
        },
      },
      '/sdapi/v1/txt2img': {
        post: {
          summary: 'AUTOMATIC1111 txt2img (its field names and defaults; unsupported features refused by name)',
          requestBody: { required: true, content: { 'application/json': { schema: { type: 'object' } } } },
          responses: { '200': { description: 'images', content: json('A1111Response') }, ...errors },
        },
      },
      '/sdapi/v1/img2img': {
        post: {
          summary: 'AUTOMATIC1111 img2img: init_images (one), optional mask (white = repaint), denoising_strength',
          requestBody: { required: true, content: { 'application/json': { schema: { type: 'object' } } } },
          responses: { '200': { description: 'images', content: json('A1111Response') }, ...errors },
        },
      },
      '/sdapi/v1/samplers': {
        get: { summary: 'AUTOMATIC1111 samplers that run here', responses: { '200': { description: 'list' } } },
      },
      '/sdapi/v1/schedulers': {
        get: { summary: 'Schedule types: Automatic, Uniform, Karras', responses: { '200': { description: 'list' } } },
      },
      '/sdapi/v1/sd-models': {
        get: { summary: 'The configured models as checkpoints', responses: { '200': { description: 'list' } } },
      },
      '/sdapi/v1/options': {
        get: { summary: 'Read-only settings (default model, clip skip)', responses: { '200': { description: 'options' } } },
        post: { summary: 'Accepted only when it changes nothing', responses: { '200': { description: 'null' }, ...errors } },
      },
      '/sdapi/v1/progress': {
        get: { summary: "The caller's running prediction", responses: { '200': { description: 'progress' } } },
      },
      '/sdapi/v1/interrupt': {
        post: { summary: "Cancel the caller's running predictions", responses: { '200': { description: '{}' } } },
      },
      '/health': { get: { summary: 'Liveness', security: [], responses: { '200': { description: 'ok' } } } },
    },
  };
  return cached;
}
