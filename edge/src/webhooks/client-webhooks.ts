// Client webhooks: which deliveries a transition owes (webhook_events_filter; progress coalesced to the latest),
// signing per Standard Webhooks, and the retry schedule. The PredictionObject keeps the outbox and runs it from its alarm.
import { WEBHOOK_EVENTS, type WebhookEvent } from '@sd/shared/schemas/prediction';
import { signWebhook } from '@sd/shared/webhook-signature';
import { checkWebhookDestination, type WebhookPolicy } from './webhook-destination.ts';

export interface OutboxItem {
  /** webhook-id: stable across retries so receivers can deduplicate. */
  msgId: string;
  event: WebhookEvent;
  body: string;
  attempts: number;
  nextAt: number;
}

/** Terminal deliveries are retried for about a day; progress is best-effort (a newer one replaces it anyway). */
export const MAX_ATTEMPTS: Record<WebhookEvent, number> = { start: 3, output: 3, logs: 2, completed: 10 };

/** Seconds before attempt n+1 (n >= 1): 5s, 10s, 20s, ... capped at 4 h. */
export function retryDelaySeconds(attempts: number): number {
  return Math.min(5 * 2 ** (attempts - 1), 4 * 3600);
}

export function effectiveFilter(filter: readonly WebhookEvent[] | undefined): WebhookEvent[] {
  // Replicate sends every event when no filter is given.
  return filter && filter.length > 0 ? [...new Set(filter)] : [...WEBHOOK_EVENTS];
}

/** Adds deliveries for `events` to the outbox; a pending non-terminal delivery of the same event is replaced by the newer body. */
export function enqueueDeliveries(
  outbox: OutboxItem[],
  events: readonly WebhookEvent[],
  filter: readonly WebhookEvent[],
  body: string,
  predictionId: string,
  now: number,
): OutboxItem[] {
  let next = [...outbox];
  for (const event of new Set(events)) {
    if (!filter.includes(event)) continue;
    if (event !== 'completed') next = next.filter((item) => !(item.event === event && item.attempts === 0));
    next.push({
      msgId: `${predictionId}-${event}-${now}-${crypto.randomUUID().slice(0, 8)}`,
      event,
      body,
      attempts: 0,
      nextAt: now,
    });
  }
  return next;
}

export type Deliver = (url: string, item: OutboxItem) => Promise<boolean>;

/**
 * A deliverer that POSTs the signed body; 2xx is success, anything else (a redirect included: they are never
 * followed, a receiver could bounce us inside) or a network error is retried. The destination is checked against the
 * address policy before every attempt: a name may have been repointed since the prediction was created.
 */
export function httpDeliverer(
  secret: string,
  outbound: typeof fetch,
  timeoutMs = 10_000,
  policy: WebhookPolicy = { allowPrivate: false },
): Deliver {
  return async (url, item) => {
    const destination = await checkWebhookDestination(url, policy, outbound);
    if (!destination.ok) return false;
    const headers = await signWebhook(secret, item.msgId, item.body);
    try {
      const res = await outbound(url, {
        method: 'POST',
        headers: { 'content-type': 'application/json', 'user-agent': 'sd-edge-webhooks/1', ...headers },
        body: item.body,
        redirect: 'manual',
        signal: AbortSignal.timeout(timeoutMs),
      });
      await res.body?.cancel();
      return res.ok;
    } catch {
      return false;
    }
  };
}

/** Runs every due delivery once; returns the outbox that remains (failed ones rescheduled, exhausted ones dropped). */
export async function runOutbox(
  outbox: OutboxItem[],
  url: string,
  deliver: Deliver,
  now: number,
): Promise<{ outbox: OutboxItem[]; delivered: OutboxItem[]; dropped: OutboxItem[] }> {
  const remaining: OutboxItem[] = [];
  const delivered: OutboxItem[] = [];
  const dropped: OutboxItem[] = [];
  // In order: a receiver should see start before completed.
  for (const item of outbox) {
    if (item.nextAt > now) {
      remaining.push(item);
      continue;
    }
    const ok = await deliver(url, item);
    const attempts = item.attempts + 1;
    if (ok) delivered.push({ ...item, attempts });
    else if (attempts >= MAX_ATTEMPTS[item.event]) dropped.push({ ...item, attempts });
    else remaining.push({ ...item, attempts, nextAt: now + retryDelaySeconds(attempts) * 1000 });
  }
  return { outbox: remaining, delivered, dropped };
}
