// The webhook a push target reports to: the edge signs the prediction and attempt into the URL itself (a MAC under
// RUNNER_WEBHOOK_SECRET), so a report is believed only for the one push it was issued for. Every push target signs
// its bodies with the same secret; without the URL's MAC, one target could report on another target's prediction.
import { timingSafeEqual } from '@sd/shared/webhook-signature';

async function urlMac(secret: string, text: string): Promise<string> {
  const enc = new TextEncoder();
  const key = await crypto.subtle.importKey('raw', enc.encode(secret), { name: 'HMAC', hash: 'SHA-256' }, false, ['sign']);
  const sig = new Uint8Array(await crypto.subtle.sign('HMAC', key, enc.encode(text)));
  return Array.from(sig.slice(0, 16), (b) => b.toString(16).padStart(2, '0')).join('');
}

const macText = (predictionId: string, attempt: number) => `push:${predictionId}:${attempt}`;

/** The edge's webhook URL for one push of a prediction (its attempt) to a Cog host or Replicate. */
export async function pushWebhookUrl(
  publicBaseUrl: string,
  secret: string,
  predictionId: string,
  attempt: number,
): Promise<string> {
  const mac = await urlMac(secret, macText(predictionId, attempt));
  return `${publicBaseUrl}/internal/runner-webhook?prediction=${predictionId}&attempt=${attempt}&mac=${mac}`;
}

/** Checks the MAC of a push webhook URL's prediction and attempt. */
export async function verifyPushWebhookMac(secret: string, predictionId: string, attempt: number, mac: string): Promise<boolean> {
  return timingSafeEqual(await urlMac(secret, macText(predictionId, attempt)), mac);
}
