// The bytes of a prediction's output images as base64, for the APIs that answer inline (OpenAI b64_json, AUTOMATIC1111).
// Outputs are bucket URLs (fetched here; on the local stack the bucket is on loopback) or data URLs (runner without a bucket).
import { bytesToBase64 } from '@sd/shared/base64';
import { DomainError } from '@sd/shared/domain-error';

export async function outputToBase64(url: string): Promise<string> {
  const data = /^data:[^;,]+;base64,(.*)$/s.exec(url);
  if (data) return data[1];
  const res = await fetch(url);
  if (!res.ok) throw new DomainError('upstream_failed', `fetching output image ${url} failed with ${res.status}`);
  return bytesToBase64(new Uint8Array(await res.arrayBuffer()));
}
