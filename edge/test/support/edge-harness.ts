// Test support for the edge inside workerd: real API keys in KV, the embedded model's tokenizer files in KV, signed
// runner webhooks, and a stand-in network (global fetch) for the runner and client webhook receivers.

import { env, exports } from 'cloudflare:workers';
import { buildDefaultVocabulary, tokenizerFiles } from '@sd/gpu-runner/default-model/vocabulary';
import type { Prediction } from '@sd/shared/schemas/prediction';
import type { RunnerPrediction } from '@sd/shared/schemas/runner';
import { signWebhook } from '@sd/shared/webhook-signature';
import { afterEach, beforeAll, vi } from 'vitest';
import { newApiKey } from '../../src/auth/key-format.ts';
import { kvStore, saveKeyRecord } from '../../src/auth/key-store.ts';
import { pushWebhookUrl } from '../../src/dispatch/push-webhook-url.ts';
import { parseRunnerPredictionId } from '../../src/dispatch/runner-job.ts';
import { clearTokenizerCache } from '../../src/embeddings/tokenizer-store.ts';

export const RUNNER_URL = 'http://127.0.0.1:5000';
export const RUNNER_WEBHOOK_SECRET = 'test-runner-webhook-secret';
export const WEBHOOK_SIGNING_SECRET = 'whsec_dGVzdC13ZWJob29rLXNpZ25pbmctc2VjcmV0';
export const MODEL = 'sd/embedded';
export const VERSION = 'embedded-v5';

/** A secret key stored in KEYS; generous limits unless given. */
export async function createKey(limits: Record<string, unknown> = {}): Promise<{ key: string; keyId: string }> {
  const { key, record } = await newApiKey({
    kind: 'secret',
    name: 'test',
    limits: { ratePerMinute: 1000, maxInFlight: 100, ...limits },
  });
  await saveKeyRecord(kvStore(env.KEYS), record);
  return { key, keyId: record.id };
}

export function api(key: string) {
  return (path: string, init: RequestInit & { json?: unknown } = {}) => {
    const headers = new Headers(init.headers);
    headers.set('authorization', `Bearer ${key}`);
    if (init.json !== undefined) headers.set('content-type', 'application/json');
    const body = init.json !== undefined ? JSON.stringify(init.json) : init.body;
    return exports.default.fetch(new Request(new URL(path, 'http://edge.test'), { ...init, headers, body }));
  };
}

let tokenizerUploaded = false;

/** The embedded model's real tokenizer files (gpu-runner's generator) under the configured name. */
export async function uploadEmbeddedTokenizer(): Promise<void> {
  if (tokenizerUploaded) return;
  const files = tokenizerFiles(buildDefaultVocabulary());
  for (const [name, text] of Object.entries(files)) await env.TOKENIZERS.put(`${VERSION}/${name}`, text);
  clearTokenizerCache();
  tokenizerUploaded = true;
}

/** The hooks every edge test file wants: the tokenizer in KV before its tests, the real network back after each. */
export function useEdgeHarness(): void {
  beforeAll(uploadEmbeddedTokenizer);
  afterEach(() => {
    vi.restoreAllMocks();
  });
}

export interface Seen {
  method: string;
  url: string;
  headers: Headers;
  body: string;
}

/**
 * Replaces the network of this isolate (the worker, its queue consumer and its Durable Objects share it) with
 * `handler`; records every request. Restore with vi.restoreAllMocks().
 */
export function fakeNetwork(handler: (req: Seen) => Response | Promise<Response>): Seen[] {
  const seen: Seen[] = [];
  vi.spyOn(globalThis, 'fetch').mockImplementation(async (input: RequestInfo | URL, init?: RequestInit) => {
    const req = new Request(input, init);
    const s: Seen = { method: req.method, url: req.url, headers: req.headers, body: await req.text() };
    seen.push(s);
    return handler(s);
  });
  return seen;
}

/** A runner that accepts every PUT (202) and every cancel. */
export function fakeRunnerThatAccepts(): Seen[] {
  return fakeNetwork((req) =>
    req.url.startsWith(RUNNER_URL) ? new Response('{}', { status: 202 }) : new Response('no route', { status: 404 }),
  );
}

export function runnerPuts(seen: Seen[], predictionId: string): Seen[] {
  return seen.filter((s) => s.method === 'PUT' && s.url === `${RUNNER_URL}/predictions/${predictionId}`);
}

export async function waitFor<T>(
  probe: () => Promise<T | undefined | null | false> | T | undefined | null | false,
  timeoutMs = 15_000,
): Promise<T> {
  const start = Date.now();
  for (;;) {
    const v = await probe();
    if (v) return v;
    if (Date.now() - start > timeoutMs) throw new Error(`condition not met within ${timeoutMs} ms`);
    await new Promise((r) => setTimeout(r, 50));
  }
}

export function runnerEnvelope(id: string, patch: Partial<RunnerPrediction>): RunnerPrediction {
  return {
    id,
    status: 'processing',
    input: {},
    output: null,
    error: null,
    logs: '',
    metrics: {},
    created_at: new Date().toISOString(),
    started_at: new Date().toISOString(),
    completed_at: null,
    ...patch,
  };
}

/**
 * POSTs a push target's webhook signed like the runner signs it (or with `secret` to forge one), to the URL the edge
 * issued for the push its envelope id names ("<id>" or "<id>-a<n>"), or to `url` (another push's, or a forged one).
 */
export async function sendRunnerWebhook(
  update: RunnerPrediction,
  { secret = RUNNER_WEBHOOK_SECRET, bearer = true, url }: { secret?: string; bearer?: boolean; url?: string } = {},
): Promise<Response> {
  const body = JSON.stringify(update);
  const headers = await signWebhook(secret, `msg_${crypto.randomUUID()}`, body);
  const push = parseRunnerPredictionId(update.id);
  const issued = push
    ? await pushWebhookUrl('http://edge.test', RUNNER_WEBHOOK_SECRET, push.predictionId, push.attempt)
    : 'http://edge.test/internal/runner-webhook';
  // Our runners add the bearer token.
  return exports.default.fetch(
    new Request(url ?? issued, {
      method: 'POST',
      headers: {
        'content-type': 'application/json',
        ...headers,
        ...(bearer ? { authorization: 'Bearer test-runner-token' } : {}),
      },
      body,
    }),
  );
}

export async function getPrediction(key: string, id: string): Promise<Prediction> {
  return (await (await api(key)(`/v1/predictions/${id}`)).json()) as Prediction;
}
