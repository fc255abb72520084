// Standard Webhooks signatures (webhook-id, webhook-timestamp, webhook-signature), with Web Crypto so both sides share it.
// Runner -> edge callbacks and edge -> client webhooks use the same scheme; the secrets differ.
import { base64ToBytes, bytesToBase64 } from './base64.ts';

export interface WebhookHeaders {
  'webhook-id': string;
  'webhook-timestamp': string;
  'webhook-signature': string;
}

/** Secrets are `whsec_<base64>` as Standard Webhooks defines; a bare string is used as raw UTF-8 key bytes. */
function secretBytes(secret: string): Uint8Array<ArrayBuffer> {
  if (secret.startsWith('whsec_')) return base64ToBytes(secret.slice('whsec_'.length));
  return new Uint8Array(new TextEncoder().encode(secret));
}

const keyCache = new Map<string, Promise<CryptoKey>>();

function hmacKey(secret: string): Promise<CryptoKey> {
  let key = keyCache.get(secret);
  if (!key) {
    key = crypto.subtle.importKey('raw', secretBytes(secret), { name: 'HMAC', hash: 'SHA-256' }, false, ['sign']);
    if (keyCache.size > 32) keyCache.clear();
    keyCache.set(secret, key);
  }
  return key;
}

async function sign(secret: string, id: string, timestamp: number, body: string): Promise<string> {
  const mac = await crypto.subtle.sign('HMAC', await hmacKey(secret), new TextEncoder().encode(`${id}.${timestamp}.${body}`));
  return bytesToBase64(new Uint8Array(mac));
}

/** Headers for one delivery. `timestamp` is seconds since the epoch. */
export async function signWebhook(
  secret: string,
  id: string,
  body: string,
  timestamp = Math.floor(Date.now() / 1000),
): Promise<WebhookHeaders> {
  return {
    'webhook-id': id,
    'webhook-timestamp': String(timestamp),
    'webhook-signature': `v1,${await sign(secret, id, timestamp, body)}`,
  };
}

/** Constant-time comparison of two strings of possibly different lengths. */
export function timingSafeEqual(a: string, b: string): boolean {
  const ea = new TextEncoder().encode(a);
  const eb = new TextEncoder().encode(b);
  let diff = ea.length ^ eb.length;
  const n = Math.max(ea.length, eb.length);
  for (let i = 0; i < n; i++) diff |= (ea[i % (ea.length || 1)] ?? 0) ^ (eb[i % (eb.length || 1)] ?? 0);
  return diff === 0;
}

export type WebhookVerification = { ok: true } | { ok: false; reason: string };

/**
 * Verifies a delivery: a signature over exactly this body, and a timestamp within `toleranceSeconds` of now
 * (replay protection). Accepts any of several space-separated `v1,` signatures (secret rotation).
 */
export async function verifyWebhook(
  secret: string,
  headers: { get(name: string): string | null },
  body: string,
  { toleranceSeconds = 300, now = Math.floor(Date.now() / 1000) } = {},
): Promise<WebhookVerification> {
  const id = headers.get('webhook-id');
  const ts = headers.get('webhook-timestamp');
  const sigs = headers.get('webhook-signature');
  if (!id || !ts || !sigs) return { ok: false, reason: 'missing webhook-id, webhook-timestamp or webhook-signature' };
  const timestamp = Number(ts);
  if (!Number.isInteger(timestamp)) return { ok: false, reason: 'webhook-timestamp is not an integer' };
  if (Math.abs(now - timestamp) > toleranceSeconds) return { ok: false, reason: 'webhook-timestamp outside the tolerance' };
  const expected = await sign(secret, id, timestamp, body);
  let match = false;
  for (const part of sigs.split(' ')) {
    const [version, value] = part.split(',', 2);
    if (version === 'v1' && value !== undefined && timingSafeEqual(value, expected)) match = true;
  }
  return match ? { ok: true } : { ok: false, reason: 'signature does not match' };
}
