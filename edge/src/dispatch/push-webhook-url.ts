// The webhook a push target reports to. A Cog runner's signed envelope id names the prediction and attempt; Replicate's
// envelope carries its own id, so for it the edge signs the prediction and attempt into the URL itself.
import { timingSafeEqual } from '@sd/shared/webhook-signature';

async function urlMac(secret: string, text: string): Promise<string> {
  const enc = new TextEncoder();
  const key = await crypto.subtle.importKey('raw', enc.encode(secret), { name: 'HMAC', hash: 'SHA-256' }, false, ['sign']);
  const sig = new Uint8Array(await crypto.subtle.sign('HMAC', key, enc.encode(text)));
  return Array.from(sig.slice(0, 16), (b) => b.toString(16).padStart(2, '0')).join('');
}

/** The edge's webhook URL for a push target: plain for a Cog host, with the prediction and attempt under a MAC for Replicate. */
export async function pushWebhookUrl(
  publicBaseUrl: string,
  secret: string,
  predictionId: string,
  attempt: number,
  signed: boolean,
): Promise<string> {
  const base = `${publicBaseUrl}/internal/runner-webhook`;
  if (!signed) return base;
  const mac = await urlMac(secret, `replicate:${predictionId}:${attempt}`);
  return `${base}?prediction=${predictionId}&attempt=${attempt}&mac=${mac}`;
}

/** Checks the MAC of a Replicate webhook URL's prediction and attempt. */
export async function verifyPushWebhookMac(secret: string, predictionId: string, attempt: number, mac: string): Promise<boolean> {
  const expected = await urlMac(secret, `replicate:${predictionId}:${attempt}`);
  return timingSafeEqual(expected, mac);
}
