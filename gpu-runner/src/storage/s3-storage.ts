// Output images in S3-compatible storage: the only module that imports the AWS SDK. A prediction's images upload in
// parallel; each PUT is confirmed (its ETag against the Content-MD5 sent, else a HEAD) before any URL is handed out,
// retried with backoff, and bounded in total time. A prediction whose upload fails leaves no object behind.
import { createHash } from 'node:crypto';
import {
  DeleteObjectCommand,
  GetObjectCommand,
  type GetObjectCommandOutput,
  HeadObjectCommand,
  PutObjectCommand,
  S3Client,
} from '@aws-sdk/client-s3';
import { getSignedUrl } from '@aws-sdk/s3-request-presigner';
import { timingSafeEqual } from '@sd/shared/webhook-signature';
import { sleep, withBackoff } from '../retry/backoff.ts';
import { isOutputKey, type OutputStorage, outputKey, type StoredObject } from './output-storage.ts';
import type { S3Config } from './s3-config.ts';

/** Outputs never change once written (one key per prediction and index). */
const CACHE_CONTROL = 'public, max-age=31536000, immutable';
/** Time allowed to delete what a failed upload left, after S3_TIMEOUT_MS has run out. */
const CLEANUP_BUDGET_MS = 10_000;
/** Pauses after each delete round before checking that nothing came back (a late PUT landing). */
const CLEANUP_RECHECK_MS = [300, 1000, 3000];

/** A storage failure whose message is fit for the prediction's caller (no endpoint, no internal address). */
export class StorageError extends Error {
  override name = 'StorageError';
}

export class S3Storage implements OutputStorage {
  readonly description: string;
  private readonly client: S3Client;

  constructor(
    private readonly config: S3Config,
    private readonly log: (message: string) => void = () => {},
  ) {
    // Shown to callers (prediction logs, the health check's setup logs): the bucket, never the endpoint's address.
    this.description = `s3://${config.bucket}`;
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
    // One controller for the whole prediction: the deadline, the caller's cancel, or one image failing for good
    // stops every upload still in flight (a socket destroyed mid-body stores nothing).
    const stop = new AbortController();
    const deadlineTimer = setTimeout(
      () => stop.abort(Object.assign(new Error(`S3_TIMEOUT_MS=${this.config.timeoutMs} ran out`), { safe: 'timed out' })),
      this.config.timeoutMs,
    );
    const onCancel = () => stop.abort(signal?.reason);
    signal?.addEventListener('abort', onCancel, { once: true });
    const keys = objects.map((object, index) => outputKey(predictionId, index, object.extension));
    try {
      // In parallel: the GPU waits through this, and the images do not depend on each other.
      await Promise.all(
        objects.map((object, index) =>
          this.storeOne(keys[index], object, deadline, stop.signal, started).catch((err: unknown) => {
            stop.abort(err);
            throw err;
          }),
        ),
      );
      return await Promise.all(keys.map((key) => this.urlFor(key)));
    } catch (err) {
      stop.abort(err);
      // No URL is reported, so no object may stay: an upload aborted after its body reached the server may still
      // land, and images that did store belong to a prediction that failed.
      await this.removeLeftovers(keys);
      if (signal?.aborted) throw signal.reason ?? err;
      throw err;
    } finally {
      clearTimeout(deadlineTimer);
      signal?.removeEventListener('abort', onCancel);
    }
  }

  private async storeOne(key: string, object: StoredObject, deadline: number, signal: AbortSignal, started: number) {
    let attempts = 0;
    const md5 = createHash('md5').update(object.bytes).digest();
    try {
      await withBackoff(
        async (n) => {
          attempts = n;
          signal.throwIfAborted();
          await this.putAndConfirm(key, object, md5, signal);
        },
        {
          maxAttempts: 8,
          initialDelayMs: 200,
          maxDelayMs: 3000,
          deadline,
          signal,
          retryable: isRetryable,
          onRetry: (n, err, delay) =>
            this.log(`upload of ${key} to ${this.description} failed (attempt ${n}): ${describe(err)}; retrying in ${delay} ms`),
        },
      );
    } catch (err) {
      const cause = signal.aborted && signal.reason instanceof Error && !(err instanceof StorageError) ? signal.reason : err;
      if (cause instanceof StorageError) throw cause;
      const where = `storing output ${key} in s3://${this.config.bucket}`;
      const budget = `failed after ${attempts} attempt(s) in ${Date.now() - started} ms (limit S3_TIMEOUT_MS=${this.config.timeoutMs})`;
      // The runner's own log gets every detail; the prediction's error (which its caller sees) gets no endpoint or
      // host: an SDK message like "connect ECONNREFUSED 10.0.3.7:9000" names the storage's internal address.
      this.log(`${where} at ${this.config.endpoint ?? 'AWS'} ${budget}: ${describe(cause)}`);
      throw new StorageError(`${where} ${budget}: ${describeSafely(cause)}`);
    }
  }

  /**
   * One PUT, with Content-MD5 so the storage refuses bytes that arrived damaged. Its ETag (the MD5 of a single-part,
   * unencrypted object) then proves the object holds exactly these bytes; only when it does not (no ETag, SSE-KMS,
   * a proxy's own) does a HEAD confirm the size. A missing object after an acknowledged PUT is retried like a
   * network error.
   */
  private async putAndConfirm(key: string, object: StoredObject, md5: Buffer, abortSignal: AbortSignal): Promise<void> {
    const Bucket = this.config.bucket;
    const put = await this.client.send(
      new PutObjectCommand({
        Bucket,
        Key: key,
        Body: object.bytes,
        ContentType: object.contentType,
        ContentLength: object.bytes.byteLength,
        ContentMD5: md5.toString('base64'),
        CacheControl: CACHE_CONTROL,
      }),
      { abortSignal },
    );
    if (put.ETag?.replaceAll('"', '').toLowerCase() === md5.toString('hex')) return;
    const head = await this.client.send(new HeadObjectCommand({ Bucket, Key: key }), { abortSignal }).catch((err: unknown) => {
      if (abortSignal.aborted) throw err;
      throw Object.assign(new Error(`object ${key} is not readable after an acknowledged upload: ${describe(err)}`), {
        safe: `object not readable after an acknowledged upload (${describeSafely(err)})`,
      });
    });
    if (head.ContentLength !== object.bytes.byteLength) {
      const message = `object ${key} has ${head.ContentLength ?? 'no'} bytes after upload, expected ${object.bytes.byteLength}`;
      throw Object.assign(new Error(message), { safe: message });
    }
  }

  /**
   * Deletes every key (parallel), then checks after a pause that none came back: a PUT the server had read in full
   * before we gave up can complete after the first DELETE. Bounded by its own budget, not S3_TIMEOUT_MS (which has
   * run out when this runs); failures are logged, never thrown over the error that brought us here.
   */
  private async removeLeftovers(keys: readonly string[]): Promise<void> {
    const budget = AbortSignal.timeout(CLEANUP_BUDGET_MS);
    let pending = [...keys];
    for (const pauseMs of CLEANUP_RECHECK_MS) {
      try {
        await Promise.all(
          pending.map((Key) =>
            this.client.send(new DeleteObjectCommand({ Bucket: this.config.bucket, Key }), { abortSignal: budget }),
          ),
        );
        await sleep(pauseMs, budget);
        const present = await Promise.all(
          pending.map((Key) =>
            this.client
              .send(new HeadObjectCommand({ Bucket: this.config.bucket, Key }), { abortSignal: budget })
              .then(() => true)
              .catch((err: unknown) => {
                if ((err as { $metadata?: { httpStatusCode?: number } }).$metadata?.httpStatusCode === 404) return false;
                throw err;
              }),
          ),
        );
        pending = pending.filter((_, i) => present[i]);
        if (pending.length === 0) return;
      } catch (err) {
        this.log(`removing the outputs of a failed upload (${keys.join(', ')}) failed: ${describe(err)}`);
        return;
      }
    }
    this.log(`outputs of a failed upload keep coming back: ${pending.join(', ')}`);
  }

  ownOutputKey(url: URL): string | null {
    const path = this.pathInBucket(url);
    if (path === null) return null;
    let key: string;
    try {
      key = decodeURIComponent(path);
    } catch {
      return null;
    }
    return isOutputKey(key) ? key : null;
  }

  /** The object path a URL names in this bucket (public base, path-style or virtual-hosted), or null. */
  private pathInBucket(url: URL): string | null {
    const { bucket, endpoint, region, forcePathStyle, publicBaseUrl } = this.config;
    const target = `${url.origin}${url.pathname}`;
    if (publicBaseUrl && target.startsWith(`${publicBaseUrl}/`)) return target.slice(publicBaseUrl.length + 1);
    const base = endpoint ? new URL(endpoint) : new URL(`https://s3.${region}.amazonaws.com`);
    const sameScheme = url.protocol === base.protocol;
    if (sameScheme && url.host === base.host && url.pathname.startsWith(`/${bucket}/`)) {
      return url.pathname.slice(bucket.length + 2);
    }
    const virtualHosts =
      forcePathStyle && endpoint ? [] : [`${bucket}.${base.host}`, ...(endpoint ? [] : [`${bucket}.s3.amazonaws.com`])];
    if (sameScheme && virtualHosts.includes(url.host)) return url.pathname.slice(1);
    return null;
  }

  async grantsRead(url: URL, key: string): Promise<boolean> {
    // Public outputs are readable by anyone with the URL anyway.
    if (this.config.publicBaseUrl) return true;
    const query = url.searchParams;
    const signedAt = parseAmzDate(query.get('X-Amz-Date'));
    const expiresIn = Number(query.get('X-Amz-Expires'));
    const signature = query.get('X-Amz-Signature');
    if (signedAt === null || !Number.isInteger(expiresIn) || expiresIn < 1 || !signature) return false;
    if (Date.now() >= signedAt.getTime() + expiresIn * 1000) return false;
    // The URL this storage would have handed out for this key at that time: the same signature, or not ours.
    const ours = await getSignedUrl(this.client, new GetObjectCommand({ Bucket: this.config.bucket, Key: key }), {
      expiresIn,
      signingDate: signedAt,
    });
    return timingSafeEqual(new URL(ours).searchParams.get('X-Amz-Signature') ?? '', signature);
  }

  async readOutput(key: string, maxBytes: number, signal?: AbortSignal): Promise<Uint8Array> {
    if (!isOutputKey(key)) throw new StorageError(`${key} is not an output of this runner`);
    const abortSignal = AbortSignal.any([AbortSignal.timeout(this.config.timeoutMs), ...(signal ? [signal] : [])]);
    let object: GetObjectCommandOutput;
    try {
      object = await this.client.send(new GetObjectCommand({ Bucket: this.config.bucket, Key: key }), { abortSignal });
    } catch (err) {
      this.log(`reading ${key} from s3://${this.config.bucket} failed: ${describe(err)}`);
      throw new StorageError(`output ${key} could not be read from s3://${this.config.bucket}: ${describeSafely(err)}`);
    }
    if ((object.ContentLength ?? 0) > maxBytes) {
      await object.Body?.transformToWebStream().cancel();
      throw new StorageError(`output ${key} must be at most ${maxBytes} bytes, got ${object.ContentLength}`);
    }
    const bytes = await object.Body?.transformToByteArray();
    if (!bytes) throw new StorageError(`output ${key} has no body`);
    return bytes;
  }

  private async urlFor(key: string): Promise<string> {
    if (this.config.publicBaseUrl) return `${this.config.publicBaseUrl}/${key}`;
    return getSignedUrl(this.client, new GetObjectCommand({ Bucket: this.config.bucket, Key: key }), {
      expiresIn: this.config.presignExpiresSeconds,
    });
  }
}

/** X-Amz-Date (20261207T000110Z) as a Date, or null. */
function parseAmzDate(value: string | null): Date | null {
  const m = /^(\d{4})(\d{2})(\d{2})T(\d{2})(\d{2})(\d{2})Z$/.exec(value ?? '');
  if (!m) return null;
  const [, y, mo, d, h, mi, s] = m.map(Number);
  return new Date(Date.UTC(y, mo - 1, d, h, mi, s));
}

/** Client errors (bad credentials, missing bucket) will not heal by retrying; network errors and 5xx may. */
function isRetryable(err: unknown): boolean {
  const status = (err as { $metadata?: { httpStatusCode?: number } }).$metadata?.httpStatusCode;
  if (status === undefined) return true;
  return status >= 500 || status === 408 || status === 429;
}

/** The error's kind only (name, code, HTTP status, or our own safe wording): what a caller may see. */
function describeSafely(err: unknown): string {
  const e = err as { name?: string; code?: string; safe?: string; $metadata?: { httpStatusCode?: number } };
  if (e.safe) return e.safe;
  const status = e.$metadata?.httpStatusCode;
  const parts = [e.name && e.name !== 'Error' ? e.name : null, e.code ?? null, status ? `HTTP ${status}` : null].filter(Boolean);
  return parts.length > 0 ? parts.join(' ') : 'storage error';
}

function describe(err: unknown): string {
  const e = err as { name?: string; message?: string; code?: string; $metadata?: { httpStatusCode?: number } };
  const status = e.$metadata?.httpStatusCode;
  const parts = [e.name && e.name !== 'Error' ? e.name : null, e.code ?? null, status ? `HTTP ${status}` : null].filter(Boolean);
  const msg = e.message || String(err);
  return parts.length > 0 ? `${parts.join(' ')}: ${msg}` : msg;
}
