// The capability in urls.stream: an HMAC of the prediction id, because EventSource and the replicate client's stream
// reader send no Authorization header. Knowing the URL grants reading that one prediction's events, as on Replicate.

import { bytesToBase64 } from '@sd/shared/base64';
import { timingSafeEqual } from '@sd/shared/webhook-signature';

async function mac(secret: string, predictionId: string): Promise<string> {
  const key = await crypto.subtle.importKey('raw', new TextEncoder().encode(secret), { name: 'HMAC', hash: 'SHA-256' }, false, [
    'sign',
  ]);
  const sig = await crypto.subtle.sign('HMAC', key, new TextEncoder().encode(`stream:${predictionId}`));
  return bytesToBase64(new Uint8Array(sig)).replace(/\+/g, '-').replace(/\//g, '_').replace(/=+$/, '').slice(0, 32);
}

export function streamToken(secret: string, predictionId: string): Promise<string> {
  return mac(secret, predictionId);
}

export async function verifyStreamToken(secret: string, predictionId: string, token: string): Promise<boolean> {
  return timingSafeEqual(await mac(secret, predictionId), token);
}
