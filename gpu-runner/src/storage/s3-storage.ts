// Output images in S3-compatible storage: the only module that imports the AWS SDK. Every PUT is confirmed by a
// HEAD (size must match) before its URL is handed out, retried with backoff, and bounded in total time.
import { GetObjectCommand, HeadObjectCommand, PutObjectCommand, S3Client } from '@aws-sdk/client-s3';
import { getSignedUrl } from '@aws-sdk/s3-request-presigner';
import { withBackoff } from '../server/backoff.ts';
import type { S3Config } from '../server/config.ts';
import { type OutputStorage, outputKey, type StoredObject } from './output-storage.ts';

/** Outputs never change once written (one key per prediction and index). */
const CACHE_CONTROL = 'public, max-age=31536000, immutable';

export class S3Storage implements OutputStorage {
  readonly description: string;
  private readonly client: S3Client;

  constructor(
    private readonly config: S3Config,
    private readonly log: (message: string) => void = () => {},
  ) {
    this.description = `s3://${config.bucket}${config.endpoint ? ` at ${config.endpoint}` : ''}`;
    this.client = new S3Client({
      region: config.region,
      endpoint: config.endpoint,
      forcePathStyle: config.forcePathStyle,
      credentials:
        config.accessKeyId && config.secretAccessKey
          ? { accessKeyId: config.accessKeyId, secretAccessKey: config.secretAccessKey, sessionToken: config.sessionToken }
          : undefined,
      // Since SDK 3.729 PutObject sends CRC32 trailers in aws-chunked framing by default; servers that do not
      // speak it (s3rver, older MinIO, some gateways) store the framing as the object. Checksums only when required.
      requestChecksumCalculation: 'WHEN_REQUIRED',
      responseChecksumValidation: 'WHEN_REQUIRED',
      // Retries are ours (below), inside one deadline; the SDK's own would multiply with them.
      maxAttempts: 1,
      requestHandler: { connectionTimeout: Math.min(5000, config.timeoutMs), requestTimeout: config.timeoutMs },
    });
  }

  async storeOutputs(predictionId: string, objects: readonly StoredObject[], signal?: AbortSignal): Promise<string[]> {
    const started = Date.now();
    const deadline = started + this.config.timeoutMs;
    const urls: string[] = [];
    for (const [index, object] of objects.entries()) {
      const key = outputKey(predictionId, index, object.extension);
      let attempts = 0;
      try {
        await withBackoff(
          async (n) => {
            attempts = n;
            const remaining = deadline - Date.now();
            if (remaining <= 0) throw new Error('no time left');
            const attemptSignal = signal
              ? AbortSignal.any([signal, AbortSignal.timeout(remaining)])
              : AbortSignal.timeout(remaining);
            await this.putAndVerify(key, object, attemptSignal);
          },
          {
            maxAttempts: 8,
            initialDelayMs: 200,
            maxDelayMs: 3000,
            deadline,
            signal,
            retryable: isRetryable,
            onRetry: (n, err, delay) =>
              this.log(`upload of ${key} failed (attempt ${n}): ${describe(err)}; retrying in ${delay} ms`),
          },
        );
      } catch (err) {
        if (signal?.aborted) throw err;
        throw new Error(
          `storing output ${key} in ${this.description} failed after ${attempts} attempt(s) in ${Date.now() - started} ms (limit S3_TIMEOUT_MS=${this.config.timeoutMs}): ${describe(err)}`,
        );
      }
      urls.push(await this.urlFor(key));
    }
    return urls;
  }

  private async putAndVerify(key: string, object: StoredObject, abortSignal: AbortSignal): Promise<void> {
    const Bucket = this.config.bucket;
    await this.client.send(
      new PutObjectCommand({
        Bucket,
        Key: key,
        Body: object.bytes,
        ContentType: object.contentType,
        ContentLength: object.bytes.byteLength,
        CacheControl: CACHE_CONTROL,
      }),
      { abortSignal },
    );
    // A 200 from a proxy or a flaky gateway is not proof: the object must be there, with every byte.
    // A missing object after an acknowledged PUT is retried (PUT again) like a network error, not given up on.
    const head = await this.client.send(new HeadObjectCommand({ Bucket, Key: key }), { abortSignal }).catch((err: unknown) => {
      if (abortSignal.aborted) throw err;
      throw new Error(`object ${key} is not readable after an acknowledged upload: ${describe(err)}`);
    });
    if (head.ContentLength !== object.bytes.byteLength) {
      throw new Error(`object ${key} has ${head.ContentLength ?? 'no'} bytes after upload, expected ${object.bytes.byteLength}`);
    }
  }

  private async urlFor(key: string): Promise<string> {
    if (this.config.publicBaseUrl) return `${this.config.publicBaseUrl}/${key}`;
    return getSignedUrl(this.client, new GetObjectCommand({ Bucket: this.config.bucket, Key: key }), {
      expiresIn: this.config.presignExpiresSeconds,
    });
  }
}

/** Client errors (bad credentials, missing bucket) will not heal by retrying; network errors and 5xx may. */
function isRetryable(err: unknown): boolean {
  const status = (err as { $metadata?: { httpStatusCode?: number } }).$metadata?.httpStatusCode;
  if (status === undefined) return true;
  return status >= 500 || status === 408 || status === 429;
}

function describe(err: unknown): string {
  const e = err as { name?: string; message?: string; code?: string; $metadata?: { httpStatusCode?: number } };
  const status = e.$metadata?.httpStatusCode;
  const parts = [e.name && e.name !== 'Error' ? e.name : null, e.code ?? null, status ? `HTTP ${status}` : null].filter(Boolean);
  const msg = e.message || String(err);
  return parts.length > 0 ? `${parts.join(' ')}: ${msg}` : msg;
}
