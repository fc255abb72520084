// GET /openapi.json: the public API described from the same zod schemas that validate it (z.toJSONSchema). Every route
// the worker serves is here (openapi.test.ts compares them with createWorkerApp()'s routes), the runner protocol too.
import { SCHEDULER_ALIASES, SCHEDULER_NAMES } from '@sd/shared/scheduler-names';
import { ErrorBodySchema } from '@sd/shared/schemas/errors';
import { OpenAIImageEditRequestSchema, OpenAIImageRequestSchema, OpenAIImageResponseSchema } from '@sd/shared/schemas/openai';
import { CreatePredictionRequestSchema, PredictionSchema } from '@sd/shared/schemas/prediction';
import { PredictionInputSchema } from '@sd/shared/schemas/prediction-input';
import { z } from 'zod';
import {
  CreateTokenRequestSchema,
  CreateTokenResponseSchema,
  CreateVisitorTokenRequestSchema,
  VISITOR_TOKEN_TTL_SECONDS,
} from '../auth/token-routes/index.ts';

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
  const pathParam = (name: string) => ({ name, in: 'path', required: true, schema: { type: 'string' } });
  const modelParams = [pathParam('owner'), pathParam('name')];
  // The scheduler field is a string transformed to its canonical name, which JSON Schema cannot say: list the
  // spellings it accepts (aliases are also matched without regard to case, spaces, '_' and '-').
  const predictionInput = input(PredictionInputSchema) as { properties: Record<string, Record<string, unknown>> };
  predictionInput.properties.scheduler = {
    type: 'string',
    enum: [...SCHEDULER_NAMES, ...SCHEDULER_ALIASES],
    description: `The sampler: ${SCHEDULER_NAMES.join(', ')}; or an alias diffusers, Replicate, Stability or AUTOMATIC1111 users know (matched case-insensitively), resolved to one of those. Absent: the model's own scheduler_config.json.`,
  };
  const runnerAuth = [{ runnerToken: [] }];
  const lease = [pathParam('lease'), { name: 'pool', in: 'query', required: true, schema: { type: 'string' } }];
  const anyJson = { required: true, content: { 'application/json': { schema: { type: 'object' } } } };
  const emptyList = (what: string) => ({
    get: { summary: `${what}: an empty list (AUTOMATIC1111 clients ask for it)`, responses: { '200': { description: '[]' } } },
  });
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
        bearer: { type: 'http', scheme: 'bearer', description: 'an sk_ or pk_ API key, a user token or a visitor token' },
        runnerToken: { type: 'http', scheme: 'bearer', description: "the runners' RUNNER_TOKEN (runner protocol only)" },
        operatorToken: { type: 'http', scheme: 'bearer', description: 'OPERATOR_TOKEN (GET /metrics only)' },
        basic: { type: 'http', scheme: 'basic', description: 'the API key as the password (AUTOMATIC1111 clients)' },
      },
      schemas: {
        PredictionInput: predictionInput,
        CreatePredictionRequest: input(CreatePredictionRequestSchema),
        Prediction: output(PredictionSchema),
        Error: output(ErrorBodySchema),
        ImageGenerationRequest: input(OpenAIImageRequestSchema),
        ImageGenerationResponse: output(OpenAIImageResponseSchema),
        ImageEditFields: input(OpenAIImageEditRequestSchema),
        CreateTokenRequest: input(CreateTokenRequestSchema),
        CreateTokenResponse: output(CreateTokenResponseSchema),
        CreateVisitorTokenRequest: input(CreateVisitorTokenRequestSchema),
        VisitorToken: {
          type: 'object',
          required: ['token', 'visitor_id', 'expires_at'],
          properties: { token: { type: 'string' }, visitor_id: { type: 'string' }, expires_at: { type: 'string' } },
        },
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
      '/v1/models/{owner}/{name}/versions/{version}/predictions': {
        post: {
          summary: 'Create a prediction of this version of a model',
          parameters: [...modelParams, pathParam('version'), prefer, idem],
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
      '/v1/models/{id}': {
        get: {
          summary: "A model by its id as one segment, owner%2Fname (OpenAI's models.retrieve); the same object",
          parameters: [pathParam('id')],
          responses: { '200': { description: 'the model' }, ...errors },
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
      '/v1/models/{owner}/{name}/versions/{version}': {
        get: {
          summary: 'A version, with its openapi_schema (Cog Input/Output)',
          parameters: [...modelParams, pathParam('version')],
          responses: { '200': { description: 'the version' }, ...errors },
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
      '/sdapi/v1/upscalers': emptyList('Upscalers'),
      '/sdapi/v1/sd-vae': emptyList('VAEs'),
      '/sdapi/v1/loras': emptyList('LoRAs'),
      '/sdapi/v1/prompt-styles': emptyList('Prompt styles'),
      '/sdapi/v1/latent-upscale-modes': emptyList('Latent upscale modes'),
      '/v1/tokens': {
        post: {
          summary: 'Mint a user token for one of your users (secret key with scope tokens:write); a page sends it from `origin`',
          requestBody: { required: true, content: json('CreateTokenRequest') },
          responses: { '201': { description: 'the token', content: json('CreateTokenResponse') }, ...errors },
        },
      },
      '/v1/visitor-tokens': {
        post: {
          summary: `A page's visitor token (${VISITOR_TOKEN_TTL_SECONDS / 60} min), minted with a publishable key from one of its origins, or renewed with {visitor_token}; the <sd-image> widget calls it`,
          requestBody: { required: false, content: json('CreateVisitorTokenRequest') },
          responses: { '201': { description: 'the token', content: json('VisitorToken') }, ...errors },
        },
      },
      '/': {
        get: {
          summary: 'The playground: a page where a key holder makes an image and copies the request (curl, JavaScript, Python)',
          security: [],
          responses: { '200': { description: 'text/html' } },
        },
      },
      '/playground.js': {
        get: { summary: "The playground's script", security: [], responses: { '200': { description: 'text/javascript' } } },
      },
      '/playground.css': {
        get: { summary: "The playground's stylesheet", security: [], responses: { '200': { description: 'text/css' } } },
      },
      '/embed.js': {
        get: {
          summary: 'The <sd-image> widget script (strong ETag; 304 on If-None-Match)',
          security: [],
          responses: { '200': { description: 'text/javascript' }, '304': { description: 'not modified' } },
        },
      },
      '/embed/origin-check': {
        get: {
          summary:
            "Whether this edge lists the request's Origin for CORS; readable from any origin (the widget asks it after a failed fetch)",
          security: [],
          responses: {
            '200': {
              description: '{origin, allowed}',
              content: {
                'application/json': {
                  schema: {
                    type: 'object',
                    properties: { origin: { type: ['string', 'null'] }, allowed: { type: 'boolean' } },
                  },
                },
              },
            },
          },
        },
      },
      '/openapi.json': { get: { summary: 'This document', security: [], responses: { '200': { description: 'OpenAPI 3.1' } } } },
      '/metrics': {
        get: {
          summary: "Each model's backlog (waiting, running, runners, slots, oldest wait): Prometheus text, or ?format=json",
          security: [{ operatorToken: [] }],
          parameters: [{ name: 'format', in: 'query', schema: { type: 'string', enum: ['json'] } }],
          responses: { '200': { description: 'the backlog' }, '401': { description: 'no operator token' } },
        },
      },
      '/runner/v1/leases': {
        post: {
          summary:
            'Runner protocol: long-poll for the next prediction of a model ({runner_id, model, slots, wait_ms}); 204 when none came in wait_ms',
          tags: ['runner'],
          security: runnerAuth,
          requestBody: anyJson,
          responses: {
            '200': { description: 'a lease: lease_id, heartbeat_url, release_url, prediction (Cog request)' },
            '204': { description: 'no work' },
            ...errors,
          },
        },
      },
      '/runner/v1/leases/{lease}/heartbeat': {
        post: {
          summary: 'Runner protocol: keep a lease ({runner_id, slots}); 409 {stop: true} when it is gone',
          tags: ['runner'],
          security: runnerAuth,
          parameters: lease,
          requestBody: anyJson,
          responses: { '200': { description: '{ok, stop}' }, '409': { description: 'the lease is gone: stop' }, ...errors },
        },
      },
      '/runner/v1/leases/{lease}/release': {
        post: {
          summary:
            'Runner protocol: give a lease back unstarted (it goes to the head of the line); with {"refused": {"message"}} the runner refuses the input for good and the prediction fails with that message',
          tags: ['runner'],
          security: runnerAuth,
          parameters: lease,
          requestBody: anyJson,
          responses: { '200': { description: '{ok}' }, ...errors },
        },
      },
      '/runner/v1/leases/{lease}/report': {
        post: {
          summary: "Runner protocol: the leased prediction's Cog webhook (status, progress, logs, output, metrics)",
          tags: ['runner'],
          security: runnerAuth,
          parameters: lease,
          requestBody: anyJson,
          responses: { '200': { description: 'applied (or stop)' }, ...errors },
        },
      },
      '/internal/runner-webhook': {
        post: {
          summary: "Push targets' Cog or Replicate webhooks, verified by their Standard Webhooks signature",
          tags: ['runner'],
          security: [],
          requestBody: anyJson,
          responses: { '200': { description: 'accepted' }, ...errors },
        },
      },
      '/health': { get: { summary: 'Liveness', security: [], responses: { '200': { description: 'ok' } } } },
    },
  };
  return cached;
}
