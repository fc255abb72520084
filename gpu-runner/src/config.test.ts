import { errorMessage } from '@sd/shared/error-message';
import { describe, expect, it } from 'vitest';
import { loadConfig } from './config.ts';

describe('loadConfig', () => {
  it('fills the documented defaults and keeps data URLs without a bucket', () => {
    const c = loadConfig({});
    expect(c).toMatchObject({
      port: 5000,
      host: '127.0.0.1',
      slots: 1,
      progressThrottleMs: 250,
      executionProviders: ['cpu'],
      logLevel: 'info',
    });
    expect(c.s3).toBeUndefined();
    expect(c.apiToken).toBeUndefined();
    expect(c).toMatchObject({ allowPrivateImageUrls: false, maxRequestBytes: 64 * 1024 * 1024 });
    expect(loadConfig({ ALLOW_PRIVATE_IMAGE_URLS: 'true', MAX_REQUEST_BYTES: '2048' })).toMatchObject({
      allowPrivateImageUrls: true,
      maxRequestBytes: 2048,
    });
  });

  it('derives path-style addressing from a custom endpoint and trims the public base URL', () => {
    const c = loadConfig({
      S3_BUCKET: 'b',
      S3_ENDPOINT: 'http://127.0.0.1:9000',
      S3_PUBLIC_BASE_URL: 'https://cdn.example.com/b/',
    });
    expect(c.s3).toMatchObject({
      bucket: 'b',
      region: 'us-east-1',
      forcePathStyle: true,
      publicBaseUrl: 'https://cdn.example.com/b',
      presignExpiresSeconds: 3600,
      timeoutMs: 30_000,
    });
    expect(loadConfig({ S3_BUCKET: 'b' }).s3?.forcePathStyle).toBe(false);
    expect(loadConfig({ S3_BUCKET: 'b', S3_FORCE_PATH_STYLE: 'false', S3_ENDPOINT: 'http://x' }).s3?.forcePathStyle).toBe(false);
  });

  it('names every bad variable, its value and the limit', () => {
    const error = (() => {
      try {
        loadConfig({ SLOTS: '0', ORT_PROVIDERS: 'cuda,gpu' });
      } catch (err) {
        return errorMessage(err);
      }
      return '';
    })();
    expect(error).toContain('SLOTS must be an integer between 1 and 64, got "0"');
    expect(error).toContain('ORT_PROVIDERS must be a comma list of cpu, cuda, tensorrt, dml, got "cuda,gpu"');
    expect(() => loadConfig({ WEBHOOK_SIGNING_SECRET: 'plain' })).toThrow(/whsec_/);
    expect(() => loadConfig({ S3_ENDPOINT: 'http://x' })).toThrow(/S3_BUCKET is not/);
  });
});
