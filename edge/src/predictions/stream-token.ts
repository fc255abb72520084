// The capability in urls.stream: an HMAC of the prediction id and an expiry, because EventSource and the replicate
// client's stream reader send no Authorization header. Knowing the URL grants reading that one prediction's events
// until the token expires (STREAM_TOKEN_TTL_SECONDS after creation), as on Replicate.
import { bytesToBase64 } from '@sd/shared/base64';
import { timingSafeEqual } from '@sd/shared/webhook-signature';

async function mac(secret: string, predictionId: string, expiresSeconds: number): Promise<string> {
  const key = await crypto.subtle.importKey('raw', new TextEncoder().encode(secret), { name: 'HMAC', hash: 'SHA-256' }, false, [
    'sign',
  ]);
  const sig = await crypto.subtle.sign('HMAC', key, new TextEncoder().encode(`stream:v2:${predictionId}:${expiresSeconds}`));
  return bytesToBase64(new Uint8Array(sig)).replace(/\+/g, '-').replace(/\//g, '_').replace(/=+$/, '').slice(0, 32);
}

/** `<expiry, base36 seconds>.<mac>`: the expiry travels in the token, so checking it needs no storage read. */
export async function streamToken(secret: string, predictionId: string, expiresAtMs: number): Promise<string> {
  const expires = Math.floor(expiresAtMs / 1000);
  return `${expires.toString(36)}.${await mac(secret, predictionId, expires)}`;
}

export async function verifyStreamToken(
  secret: string,
  predictionId: string,
  token: string,
  nowMs = Date.now(),
): Promise<boolean> {
  const dot = token.indexOf('.');
  if (dot < 1 || dot > 12) return false;
  const expires = Number.parseInt(token.slice(0, dot), 36);
  if (!Number.isSafeInteger(expires) || expires.toString(36) !== token.slice(0, dot)) return false;
  // The MAC is compared even for an expired token, so timing tells nothing about which check failed.
  const valid = timingSafeEqual(await mac(secret, predictionId, expires), token.slice(dot + 1));
  return valid && expires * 1000 > nowMs;
}
