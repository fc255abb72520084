// The edge's configuration, parsed once per isolate from the Worker env into a typed object.
// Nothing else in the edge reads env vars or secrets; everything takes an EdgeConfig.
import { errorMessage } from '@sd/shared/error-message';
import { DEFAULT_LIMITS, type InputLimits } from '@sd/shared/schemas/limits';
import { z } from 'zod';
import { setLogLevel } from './log.ts';

const LimitsOverrideSchema = z
  .strictObject({
    minSide: z.number().int().positive(),
    maxSide: z.number().int().positive(),
    maxPixels: z.number().int().positive(),
    maxSteps: z.number().int().positive(),
    maxOutputs: z.number().int().positive(),
    maxGuidance: z.number().positive(),
    maxImageBytes: z.number().int().positive(),
    maxPromptChars: z.number().int().positive(),
    /** The model's native width/height (its U-Net's sample_size x 8): the pixel budget of an input without them. */
    nativeSide: z.number().int().positive().multipleOf(8),
    /** What width and height must be multiples of: its U-Net's 8 x 2 per upsampler (16 for the embedded model). */
    sideMultiple: z.number().int().positive().multipleOf(8),
  })
  .partial();

const ModelEntrySchema = z.strictObject({
  /** "owner/name", as Replicate names models. */
  id: z.string().regex(/^[a-z0-9_.-]+\/[a-z0-9_.-]+$/i, 'model id must look like owner/name'),
  version: z.string().min(1).max(200),
  backend: z.enum(['cog', 'replicate']).default('cog'),
  /**
   * Push targets (backend "cog"): base URLs of Cog hosts we do not run, fed from the same line. Empty: a pull-only pool
   * (runners lease work from the edge).
   */
  runners: z.array(z.url({ protocol: /^https?$/ })).default([]),
  /** Predictions each push target (or the replicate backend) runs at once. */
  pushSlots: z.number().int().min(1).max(1000).optional(),
  /** Most predictions waiting in this model's line; past it, create answers 503 with Retry-After. */
  maxBacklog: z.number().int().min(1).max(1_000_000).optional(),
  /** This model's maximum queue time (default MAX_QUEUE_SECONDS). */
  maxQueueSeconds: z
    .number()
    .int()
    .min(1)
    .max(7 * 24 * 3600)
    .optional(),
  /** Name of the tokenizer files in the TOKENIZERS KV namespace; absent = the runner tokenizes (no embedding cache). */
  tokenizer: z.string().min(1).optional(),
  clipSkip: z.number().int().min(1).max(12).default(1),
  limits: LimitsOverrideSchema.default({}),
  /** Backend "replicate": the Replicate-compatible API and the model or version to run there. */
  replicate: z
    .strictObject({
      baseUrl: z.url({ protocol: /^https?$/ }).default('https://api.replicate.com/v1'),
      model: z.string().optional(),
      version: z.string().optional(),
    })
    .optional(),
});

export interface ModelConfig {
  id: string;
  owner: string;
  name: string;
  version: string;
  backend: 'cog' | 'replicate';
  runners: string[];
  pushSlots: number;
  maxBacklog: number;
  maxQueueSeconds?: number;
  tokenizer?: string;
  clipSkip: number;
  limits: InputLimits;
  replicate?: { baseUrl: string; model?: string; version?: string };
}

export interface EdgeConfig {
  models: ModelConfig[];
  publicBaseUrl: string;
  logLevel: 'debug' | 'info' | 'warn' | 'error';
  secrets: {
    runnerWebhookSecret: string;
    runnerToken: string;
    /** What Cog push targets are sent as their bearer (their API_TOKEN); absent: no Authorization header. */
    pushTargetToken?: string;
    webhookSigningSecret: string;
    streamSigningSecret: string;
    replicateApiToken?: string;
    replicateWebhookSecret?: string;
  };
  dispatch: {
    /** A pull runner's lease not heartbeated for this long goes back to the head of the line. */
    leaseTtlSeconds: number;
    /** A push target's lease with no webhook for this long goes back to the head of the line. */
    runnerSilenceSeconds: number;
    /** How many times a prediction whose runner went silent is requeued before it fails. */
    maxRequeues: number;
    /** Timeout of one PUT to a push target. */
    requestTimeoutMs: number;
    /** A prediction still waiting for a GPU after this long fails. */
    maxQueueSeconds: number;
  };
  /** Bearer credential for GET /metrics; absent: the route answers 404. */
  operatorToken?: string;
  cloudwatch?: { region: string; namespace: string; accessKeyId: string; secretAccessKey: string; endpoint?: string };
  embeddingTtlSeconds: number;
  /** How long urls.stream works after a prediction is created (the retention of its event stream). */
  streamTokenTtlSeconds: number;
  /** Where client webhooks may go (webhooks/webhook-destination.ts). */
  webhooks: { allowPrivate: boolean; dnsResolver?: string };
  /**
   * Whether image and mask URLs may name internal hosts (IMAGE_URLS_ALLOW_PRIVATE): off, they are refused at create,
   * since the hosts that fetch them (Cog hosts we do not run, Replicate) may have no guard of their own. The local
   * stack turns it on: its runner reads its own outputs from its bucket on loopback.
   */
  imageUrls: { allowPrivate: boolean };
}

export class ConfigError extends Error {
  override name = 'ConfigError';
}

function positiveInt(name: string, raw: string | undefined, fallback: number): number {
  if (raw === undefined || raw === '') return fallback;
  const n = Number(raw);
  if (!Number.isInteger(n) || n <= 0) throw new ConfigError(`${name} must be a positive integer, got ${JSON.stringify(raw)}`);
  return n;
}

function required(name: string, value: string | undefined): string {
  if (!value) throw new ConfigError(`${name} is not set (wrangler secret put ${name}, or .dev.vars locally)`);
  return value;
}

/** The subset of the Worker env the config reads (vars are strings; secrets may be absent). */
export interface ConfigSource {
  MODELS?: string;
  PUBLIC_BASE_URL?: string;
  LOG_LEVEL?: string;
  LEASE_TTL_SECONDS?: string;
  MAX_QUEUE_SECONDS?: string;
  MAX_BACKLOG?: string;
  OPERATOR_TOKEN?: string;
  CLOUDWATCH_REGION?: string;
  CLOUDWATCH_NAMESPACE?: string;
  /** Tests and VPC endpoints: another PutMetricData URL than https://monitoring.<region>.amazonaws.com/. */
  CLOUDWATCH_ENDPOINT?: string;
  CLOUDWATCH_ACCESS_KEY_ID?: string;
  CLOUDWATCH_SECRET_ACCESS_KEY?: string;
  RUNNER_SILENCE_SECONDS?: string;
  MAX_REQUEUES?: string;
  RUNNER_REQUEST_TIMEOUT_MS?: string;
  EMBEDDING_TTL_SECONDS?: string;
  STREAM_TOKEN_TTL_SECONDS?: string;
  WEBHOOK_ALLOW_PRIVATE?: string;
  IMAGE_URLS_ALLOW_PRIVATE?: string;
  WEBHOOK_DNS_RESOLVER?: string;
  RUNNER_WEBHOOK_SECRET?: string;
  RUNNER_TOKEN?: string;
  PUSH_TARGET_TOKEN?: string;
  TOKEN_SIGNING_SECRET?: string;
  WEBHOOK_SIGNING_SECRET?: string;
  STREAM_SIGNING_SECRET?: string;
  REPLICATE_API_TOKEN?: string;
  REPLICATE_WEBHOOK_SECRET?: string;
}

export function parseConfig(source: ConfigSource): EdgeConfig {
  let rawModels: unknown;
  try {
    rawModels = JSON.parse(source.MODELS ?? '[]');
  } catch (err) {
    throw new ConfigError(`MODELS must be JSON, got a parse error: ${errorMessage(err)}`);
  }
  const parsed = z.array(ModelEntrySchema).min(1, 'MODELS must list at least one model').safeParse(rawModels);
  if (!parsed.success) {
    const issue = parsed.error.issues[0];
    throw new ConfigError(`MODELS.${issue.path.join('.')}: ${issue.message}`);
  }
  const defaultBacklog = positiveInt('MAX_BACKLOG', source.MAX_BACKLOG, 10_000);
  const models = parsed.data.map((m): ModelConfig => {
    const [owner, name] = m.id.split('/');
    return {
      ...m,
      owner,
      name,
      pushSlots: m.pushSlots ?? (m.backend === 'replicate' ? 16 : 1),
      maxBacklog: m.maxBacklog ?? defaultBacklog,
      runners: m.runners.map((r) => r.replace(/\/+$/, '')),
      limits: { ...DEFAULT_LIMITS, ...m.limits },
    };
  });
  const ids = new Set<string>();
  for (const m of models) {
    if (ids.has(m.id)) throw new ConfigError(`MODELS lists model ${m.id} twice`);
    ids.add(m.id);
  }

  const publicBaseUrl = (source.PUBLIC_BASE_URL ?? '').replace(/\/+$/, '');
  if (!/^https?:\/\//.test(publicBaseUrl)) {
    throw new ConfigError(`PUBLIC_BASE_URL must be an http(s) URL, got ${JSON.stringify(source.PUBLIC_BASE_URL)}`);
  }
  const logLevel = source.LOG_LEVEL ?? 'info';
  if (logLevel !== 'debug' && logLevel !== 'info' && logLevel !== 'warn' && logLevel !== 'error') {
    throw new ConfigError(`LOG_LEVEL must be debug, info, warn or error, got ${JSON.stringify(logLevel)}`);
  }

  const tokenSecret = source.STREAM_SIGNING_SECRET ?? source.TOKEN_SIGNING_SECRET;
  const cloudwatch =
    source.CLOUDWATCH_REGION && source.CLOUDWATCH_ACCESS_KEY_ID && source.CLOUDWATCH_SECRET_ACCESS_KEY
      ? {
          region: source.CLOUDWATCH_REGION,
          namespace: source.CLOUDWATCH_NAMESPACE || 'SdEdge',
          accessKeyId: source.CLOUDWATCH_ACCESS_KEY_ID,
          secretAccessKey: source.CLOUDWATCH_SECRET_ACCESS_KEY,
          ...(source.CLOUDWATCH_ENDPOINT ? { endpoint: source.CLOUDWATCH_ENDPOINT } : {}),
        }
      : undefined;

  return {
    models,
    publicBaseUrl,
    logLevel,
    secrets: {
      runnerWebhookSecret: required('RUNNER_WEBHOOK_SECRET', source.RUNNER_WEBHOOK_SECRET),
      runnerToken: required('RUNNER_TOKEN', source.RUNNER_TOKEN),
      ...(source.PUSH_TARGET_TOKEN ? { pushTargetToken: source.PUSH_TARGET_TOKEN } : {}),
      webhookSigningSecret: required('WEBHOOK_SIGNING_SECRET', source.WEBHOOK_SIGNING_SECRET),
      streamSigningSecret: required('STREAM_SIGNING_SECRET (or TOKEN_SIGNING_SECRET)', tokenSecret),
      replicateApiToken: source.REPLICATE_API_TOKEN,
      replicateWebhookSecret: source.REPLICATE_WEBHOOK_SECRET,
    },
    dispatch: {
      leaseTtlSeconds: positiveInt('LEASE_TTL_SECONDS', source.LEASE_TTL_SECONDS, 15),
      runnerSilenceSeconds: positiveInt('RUNNER_SILENCE_SECONDS', source.RUNNER_SILENCE_SECONDS, 120),
      maxRequeues: positiveInt('MAX_REQUEUES', source.MAX_REQUEUES, 3),
      requestTimeoutMs: positiveInt('RUNNER_REQUEST_TIMEOUT_MS', source.RUNNER_REQUEST_TIMEOUT_MS, 15_000),
      maxQueueSeconds: positiveInt('MAX_QUEUE_SECONDS', source.MAX_QUEUE_SECONDS, 3600),
    },
    ...(source.OPERATOR_TOKEN ? { operatorToken: source.OPERATOR_TOKEN } : {}),
    ...(cloudwatch ? { cloudwatch } : {}),
    embeddingTtlSeconds: positiveInt('EMBEDDING_TTL_SECONDS', source.EMBEDDING_TTL_SECONDS, 30 * 24 * 3600),
    streamTokenTtlSeconds: positiveInt('STREAM_TOKEN_TTL_SECONDS', source.STREAM_TOKEN_TTL_SECONDS, 24 * 3600),
    webhooks: webhookPolicy(source),
    imageUrls: { allowPrivate: booleanVar('IMAGE_URLS_ALLOW_PRIVATE', source.IMAGE_URLS_ALLOW_PRIVATE) },
  };
}

function booleanVar(name: string, value: string | undefined): boolean {
  const text = (value ?? '').toLowerCase();
  if (!['', 'true', 'false', '1', '0'].includes(text)) {
    throw new ConfigError(`${name} must be true or false, got ${JSON.stringify(value)}`);
  }
  return text === 'true' || text === '1';
}

function webhookPolicy(source: ConfigSource): EdgeConfig['webhooks'] {
  const allowPrivate = booleanVar('WEBHOOK_ALLOW_PRIVATE', source.WEBHOOK_ALLOW_PRIVATE);
  const resolver = source.WEBHOOK_DNS_RESOLVER || undefined;
  if (resolver !== undefined && !/^https:\/\/[^/]/.test(resolver) && !/^http:\/\/(127\.0\.0\.1|localhost)[:/]/.test(resolver)) {
    throw new ConfigError(`WEBHOOK_DNS_RESOLVER must be an https URL (DNS-over-HTTPS, JSON), got ${JSON.stringify(resolver)}`);
  }
  return { allowPrivate, dnsResolver: resolver };
}

// Parsed once per env object (one per isolate in production; tests may pass their own).
const cache = new WeakMap<object, EdgeConfig>();

export function getConfig(env: ConfigSource): EdgeConfig {
  let config = cache.get(env);
  if (!config) {
    config = parseConfig(env);
    cache.set(env, config);
    setLogLevel(config.logLevel);
  }
  return config;
}

/** Finds a model by "owner/name", "owner/name:version" or a bare version id; null when none matches. */
export function resolveModel(config: EdgeConfig, ref: string): ModelConfig | null {
  const colon = ref.indexOf(':');
  if (colon >= 0) {
    const id = ref.slice(0, colon);
    const version = ref.slice(colon + 1);
    return config.models.find((m) => m.id === id && m.version === version) ?? null;
  }
  if (ref.includes('/')) return config.models.find((m) => m.id === ref) ?? null;
  return config.models.find((m) => m.version === ref) ?? null;
}
