// The runner's configuration: parsed once from the environment at start-up into a typed object.
// Nothing else in the runner reads process.env (except the embedded model's cache folder, SD_MODEL_CACHE).
import { hostname } from 'node:os';
import { z } from 'zod';
import type { S3Config } from './storage/s3-config.ts';

const PROVIDERS = ['cpu', 'cuda', 'tensorrt', 'dml'] as const;
type Provider = (typeof PROVIDERS)[number];

export interface RunnerConfig {
  port: number;
  host: string;
  /** Unset: the embedded default model (written on first use). */
  modelDir?: string;
  executionProviders: Provider[];
  intraOpThreads?: number;
  interOpThreads?: number;
  /** onnxruntime's idle worker threads spin (busy-wait) between runs; off by default (see README: it cost 25-30% here). */
  allowSpinning: boolean;
  slots: number;
  apiToken?: string;
  webhookSigningSecret?: string;
  webhookToken?: string;
  progressThrottleMs: number;
  /** Absent: outputs are data URLs. */
  s3?: S3Config;
  shutdownGraceMs: number;
  /** Limit for fetching an input image given as an https URL. */
  inputFetchTimeoutMs: number;
  /**
   * Input image URLs may name loopback, private and link-local addresses (SSRF guard off). Only for tests and
   * private deployments whose image store lives on such an address.
   */
  allowPrivateImageUrls: boolean;
  /** Largest request body accepted (embeddings for 32 windows of a 1024-wide encoder plus two 10 MiB images fit). */
  maxRequestBytes: number;
  logLevel: string;
  /** Pull mode (EDGE_URL, EDGE_RUNNER_TOKEN and EDGE_MODEL set): lease work from the edge instead of waiting for PUTs. */
  pull?: { edgeUrl: string; token: string; model: string; runnerId: string };
}

const optionalString = z
  .string()
  .optional()
  .transform((v) => (v === undefined || v.trim() === '' ? undefined : v.trim()));

function optionalIntVar(name: string, min: number, max: number) {
  return optionalString.transform((v, ctx) => {
    if (v === undefined) return undefined;
    const n = Number(v);
    if (!Number.isInteger(n) || n < min || n > max) {
      ctx.addIssue({ code: 'custom', message: `${name} must be an integer between ${min} and ${max}, got ${JSON.stringify(v)}` });
      return z.NEVER;
    }
    return n;
  });
}

function intVar(name: string, min: number, max: number, fallback: number) {
  return optionalIntVar(name, min, max).transform((n) => n ?? fallback);
}

function boolVar(name: string) {
  return optionalString.transform((v, ctx) => {
    if (v === undefined) return undefined;
    if (/^(1|true|yes)$/i.test(v)) return true;
    if (/^(0|false|no)$/i.test(v)) return false;
    ctx.addIssue({ code: 'custom', message: `${name} must be true or false, got ${JSON.stringify(v)}` });
    return z.NEVER;
  });
}

const EnvSchema = z.object({
  PORT: intVar('PORT', 0, 65535, 5000),
  HOST: optionalString.transform((v) => v ?? '127.0.0.1'),
  MODEL_DIR: optionalString,
  ORT_PROVIDERS: optionalString.transform((v, ctx) => {
    const list = (v ?? 'cpu')
      .split(',')
      .map((p) => p.trim().toLowerCase())
      .filter(Boolean);
    const bad = list.filter((p) => !(PROVIDERS as readonly string[]).includes(p));
    if (bad.length > 0 || list.length === 0) {
      ctx.addIssue({
        code: 'custom',
        message: `ORT_PROVIDERS must be a comma list of ${PROVIDERS.join(', ')}, got ${JSON.stringify(v)}`,
      });
      return z.NEVER;
    }
    return list as Provider[];
  }),
  ORT_INTRA_OP_THREADS: optionalIntVar('ORT_INTRA_OP_THREADS', 1, 1024),
  ORT_INTER_OP_THREADS: optionalIntVar('ORT_INTER_OP_THREADS', 1, 1024),
  ORT_ALLOW_SPINNING: boolVar('ORT_ALLOW_SPINNING'),
  SLOTS: intVar('SLOTS', 1, 64, 1),
  API_TOKEN: optionalString,
  WEBHOOK_SIGNING_SECRET: optionalString,
  WEBHOOK_TOKEN: optionalString,
  PROGRESS_THROTTLE_MS: intVar('PROGRESS_THROTTLE_MS', 0, 60_000, 250),
  S3_ENDPOINT: optionalString,
  S3_REGION: optionalString,
  S3_BUCKET: optionalString,
  S3_FORCE_PATH_STYLE: boolVar('S3_FORCE_PATH_STYLE'),
  AWS_ACCESS_KEY_ID: optionalString,
  AWS_SECRET_ACCESS_KEY: optionalString,
  AWS_SESSION_TOKEN: optionalString,
  S3_PUBLIC_BASE_URL: optionalString,
  S3_PRESIGN_EXPIRES_SECONDS: intVar('S3_PRESIGN_EXPIRES_SECONDS', 1, 604_800, 3600),
  S3_TIMEOUT_MS: intVar('S3_TIMEOUT_MS', 100, 600_000, 30_000),
  SHUTDOWN_GRACE_MS: intVar('SHUTDOWN_GRACE_MS', 0, 3_600_000, 30_000),
  INPUT_FETCH_TIMEOUT_MS: intVar('INPUT_FETCH_TIMEOUT_MS', 100, 600_000, 15_000),
  ALLOW_PRIVATE_IMAGE_URLS: boolVar('ALLOW_PRIVATE_IMAGE_URLS'),
  MAX_REQUEST_BYTES: intVar('MAX_REQUEST_BYTES', 1024, 1024 * 1024 * 1024, 64 * 1024 * 1024),
  LOG_LEVEL: optionalString.transform((v) => v ?? 'info'),
  EDGE_URL: optionalString,
  EDGE_RUNNER_TOKEN: optionalString,
  EDGE_MODEL: optionalString,
  RUNNER_ID: optionalString,
});

/** Parses the environment; throws one error listing every bad variable. */
export function loadConfig(env: Record<string, string | undefined> = process.env): RunnerConfig {
  const parsed = EnvSchema.safeParse(env);
  if (!parsed.success) {
    throw new Error(`invalid runner configuration: ${parsed.error.issues.map((i) => i.message).join('; ')}`);
  }
  const e = parsed.data;
  if (e.WEBHOOK_SIGNING_SECRET && !e.WEBHOOK_SIGNING_SECRET.startsWith('whsec_')) {
    throw new Error('invalid runner configuration: WEBHOOK_SIGNING_SECRET must be a Standard Webhooks secret whsec_<base64>');
  }
  let s3: S3Config | undefined;
  if (e.S3_BUCKET) {
    s3 = {
      endpoint: e.S3_ENDPOINT,
      region: e.S3_REGION ?? 'us-east-1',
      bucket: e.S3_BUCKET,
      // S3-compatible servers (MinIO, s3rver, R2 by IP) rarely resolve virtual-hosted bucket names.
      forcePathStyle: e.S3_FORCE_PATH_STYLE ?? e.S3_ENDPOINT !== undefined,
      accessKeyId: e.AWS_ACCESS_KEY_ID,
      secretAccessKey: e.AWS_SECRET_ACCESS_KEY,
      sessionToken: e.AWS_SESSION_TOKEN,
      publicBaseUrl: e.S3_PUBLIC_BASE_URL?.replace(/\/+$/, ''),
      presignExpiresSeconds: e.S3_PRESIGN_EXPIRES_SECONDS,
      timeoutMs: e.S3_TIMEOUT_MS,
    };
  } else if (e.S3_ENDPOINT || e.S3_PUBLIC_BASE_URL) {
    throw new Error('invalid runner configuration: S3_ENDPOINT / S3_PUBLIC_BASE_URL are set but S3_BUCKET is not');
  }
  const pullVars = [e.EDGE_URL, e.EDGE_RUNNER_TOKEN, e.EDGE_MODEL];
  let pull: RunnerConfig['pull'];
  if (pullVars.some((v) => v !== undefined)) {
    if (pullVars.some((v) => v === undefined)) {
      throw new Error('invalid runner configuration: pull mode needs all of EDGE_URL, EDGE_RUNNER_TOKEN and EDGE_MODEL');
    }
    if (!/^https?:\/\//.test(e.EDGE_URL as string)) {
      throw new Error(`invalid runner configuration: EDGE_URL must be an http(s) URL, got ${JSON.stringify(e.EDGE_URL)}`);
    }
    pull = {
      edgeUrl: (e.EDGE_URL as string).replace(/\/+$/, ''),
      token: e.EDGE_RUNNER_TOKEN as string,
      model: e.EDGE_MODEL as string,
      runnerId: e.RUNNER_ID ?? `${hostname()}-${process.pid}`,
    };
  }
  return {
    pull,
    port: e.PORT,
    host: e.HOST,
    modelDir: e.MODEL_DIR,
    executionProviders: e.ORT_PROVIDERS,
    intraOpThreads: e.ORT_INTRA_OP_THREADS,
    interOpThreads: e.ORT_INTER_OP_THREADS,
    allowSpinning: e.ORT_ALLOW_SPINNING ?? false,
    slots: e.SLOTS,
    apiToken: e.API_TOKEN,
    webhookSigningSecret: e.WEBHOOK_SIGNING_SECRET,
    // In pull mode the reports go to the edge, which wants the runner credential on them.
    webhookToken: e.WEBHOOK_TOKEN ?? e.EDGE_RUNNER_TOKEN,
    progressThrottleMs: e.PROGRESS_THROTTLE_MS,
    s3,
    shutdownGraceMs: e.SHUTDOWN_GRACE_MS,
    inputFetchTimeoutMs: e.INPUT_FETCH_TIMEOUT_MS,
    allowPrivateImageUrls: e.ALLOW_PRIVATE_IMAGE_URLS ?? false,
    maxRequestBytes: e.MAX_REQUEST_BYTES,
    logLevel: e.LOG_LEVEL,
  };
}
