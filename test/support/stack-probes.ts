// What the end-to-end tests ask of a running local stack: the edge's public API, a prediction's progress to a state,
// the images it made, how often a runner started it, and what the bucket holds for it.
import { ListObjectsV2Command, S3Client } from '@aws-sdk/client-s3';
import sharp from 'sharp';
import { expect } from 'vitest';
import type { LocalStack } from '../../scripts/local-stack.ts';
import type { RunnerHandle } from '../../scripts/stack/runner-process.ts';

/** The fields of the edge's public prediction the tests read. */
export interface PublicPrediction {
  id: string;
  status: string;
  input: Record<string, unknown>;
  output: string[] | null;
  error: string | null;
  logs: string;
  metrics: Record<string, unknown>;
  progress: { step: number; total: number } | null;
  started_at?: string | null;
  completed_at?: string | null;
  /** While waiting for a GPU: its place in the model's line. */
  queue?: { position: number; waiting: number; estimated_start_at: string | null };
  urls: { get: string; cancel: string; stream?: string };
}

/** A JSON call to the edge at `baseUrl` with `key` (none when null); POST when there is a body unless `method` says. */
export function callEdge(
  baseUrl: string,
  key: string | null,
  path: string,
  init: { method?: string; body?: unknown; headers?: Record<string, string> } = {},
): Promise<Response> {
  return fetch(`${baseUrl}${path}`, {
    method: init.method ?? (init.body === undefined ? 'GET' : 'POST'),
    headers: { 'content-type': 'application/json', ...(key ? { authorization: `Bearer ${key}` } : {}), ...init.headers },
    body: init.body === undefined ? undefined : JSON.stringify(init.body),
  });
}

/** Polls GET /v1/predictions/{id} every 100 ms until `done` holds; throws naming the status after `timeoutMs`. */
export async function waitForPrediction(
  baseUrl: string,
  key: string,
  id: string,
  done: (p: PublicPrediction) => boolean,
  timeoutMs = 60_000,
): Promise<PublicPrediction> {
  const deadline = Date.now() + timeoutMs;
  for (;;) {
    const p = (await (await callEdge(baseUrl, key, `/v1/predictions/${id}`)).json()) as PublicPrediction;
    if (done(p)) return p;
    if (Date.now() > deadline)
      throw new Error(`prediction ${id} still ${p.status} (progress ${JSON.stringify(p.progress)}) after ${timeoutMs} ms`);
    await new Promise((r) => setTimeout(r, 100));
  }
}

/** Fetches an image URL (expecting 200) and reads its size and format. */
export async function imageMetadata(url: string): Promise<{ width?: number; height?: number; format?: string }> {
  const res = await fetch(url);
  expect(res.status, `GET ${url}`).toBe(200);
  return sharp(new Uint8Array(await res.arrayBuffer())).metadata();
}

/** How many times `runner` started the prediction (its pino log: one "prediction started" per run). */
export function runnerStarts(runner: RunnerHandle, id: string): number {
  return runner.logRecords().filter((r) => r.msg === 'prediction started' && r.prediction_id === id).length;
}

/** The object keys the bucket holds under predictions/{id}/, relative to that prefix. */
export async function storedObjects(bucket: LocalStack['s3'], id: string): Promise<string[]> {
  const s3 = new S3Client({
    endpoint: bucket.endpoint,
    region: 'us-east-1',
    forcePathStyle: true,
    credentials: { accessKeyId: bucket.accessKeyId, secretAccessKey: bucket.secretAccessKey },
  });
  const prefix = `predictions/${id}/`;
  const listed = await s3.send(new ListObjectsV2Command({ Bucket: bucket.bucket, Prefix: prefix }));
  s3.destroy();
  return (listed.Contents ?? []).map((o) => (o.Key ?? '').slice(prefix.length));
}
