// Outgoing Cog webhooks for one prediction: the events filter, throttled progress (output/logs), one delivery
// at a time so the receiver sees start -> output* -> completed in order, and the terminal one retried with backoff.
// Every delivery is signed (Standard Webhooks) when a secret is configured and carries the bearer token when set.
import { errorMessage } from '@sd/shared/error-message';
import type { WebhookEvent } from '@sd/shared/schemas/prediction';
import type { RunnerPrediction } from '@sd/shared/schemas/runner';
import { signWebhook } from '@sd/shared/webhook-signature';
import type { Logger } from 'pino';
import { withBackoff } from '../retry/backoff.ts';

export interface WebhookSettings {
  signingSecret?: string;
  token?: string;
  /** Least time between two output/logs deliveries; the latest state is sent when the window ends. */
  throttleMs: number;
  /** Terminal delivery: attempts and delays. */
  completedAttempts: number;
  completedInitialDelayMs: number;
  completedMaxDelayMs: number;
  attemptTimeoutMs: number;
}

export const DEFAULT_WEBHOOK_SETTINGS: Omit<WebhookSettings, 'throttleMs'> = {
  completedAttempts: 8,
  completedInitialDelayMs: 500,
  completedMaxDelayMs: 8000,
  attemptTimeoutMs: 10_000,
};

class DeliveryError extends Error {
  constructor(
    message: string,
    readonly retryable: boolean,
  ) {
    super(message);
  }
}

export class PredictionWebhooks {
  private chain: Promise<void> = Promise.resolve();
  private lastSentAt = 0;
  private trailing: ReturnType<typeof setTimeout> | null = null;
  private closed = false;
  private seq = 0;

  constructor(
    private readonly predictionId: string,
    private readonly url: string,
    private readonly filter: ReadonlySet<WebhookEvent>,
    private readonly settings: WebhookSettings,
    private readonly log: Logger,
    private readonly fetchImpl: typeof fetch = fetch,
  ) {}

  /** A non-terminal event; `snapshot` is read when the (possibly delayed) delivery is queued. */
  notify(event: Exclude<WebhookEvent, 'completed'>, snapshot: () => RunnerPrediction): void {
    if (this.closed || !this.filter.has(event)) return;
    if (event === 'start') {
      this.enqueue('start', snapshot());
      return;
    }
    if (this.trailing) return; // the pending delivery will carry the newest state
    const wait = this.lastSentAt + this.settings.throttleMs - Date.now();
    if (wait <= 0) {
      this.lastSentAt = Date.now();
      this.enqueue(event, snapshot());
      return;
    }
    this.trailing = setTimeout(() => {
      this.trailing = null;
      if (this.closed) return;
      this.lastSentAt = Date.now();
      this.enqueue(event, snapshot());
    }, wait);
  }

  /** Sends nothing more, the terminal event included (a pull lease that was taken back: the edge refuses it anyway). */
  abandon(): void {
    this.closed = true;
    if (this.trailing) clearTimeout(this.trailing);
    this.trailing = null;
  }

  /** The terminal event: queued after every earlier delivery, retried; resolves when delivered or given up. */
  complete(final: RunnerPrediction): Promise<void> {
    if (this.closed) return this.chain;
    this.closed = true;
    if (this.trailing) clearTimeout(this.trailing);
    this.trailing = null;
    if (!this.filter.has('completed')) return this.chain;
    const body = JSON.stringify(final);
    const messageId = this.nextMessageId();
    this.chain = this.chain.then(async () => {
      try {
        await withBackoff(() => this.deliver('completed', messageId, body), {
          maxAttempts: this.settings.completedAttempts,
          initialDelayMs: this.settings.completedInitialDelayMs,
          maxDelayMs: this.settings.completedMaxDelayMs,
          retryable: (err) => !(err instanceof DeliveryError) || err.retryable,
          onRetry: (n, err, delay) =>
            this.log.warn({ attempt: n, delay_ms: delay, err: errorMessage(err) }, 'completed webhook failed; retrying'),
        });
      } catch (err) {
        this.log.error({ err: errorMessage(err) }, 'completed webhook could not be delivered; giving up');
      }
    });
    return this.chain;
  }

  private nextMessageId(): string {
    this.seq += 1;
    return `${this.predictionId}-${this.seq}`;
  }

  private enqueue(event: WebhookEvent, snapshot: RunnerPrediction): void {
    const body = JSON.stringify(snapshot);
    const messageId = this.nextMessageId();
    // Progress is best effort: one attempt; the terminal delivery carries the whole state anyway.
    this.chain = this.chain.then(() =>
      this.deliver(event, messageId, body).catch((err) =>
        this.log.warn({ event, err: errorMessage(err) }, 'webhook delivery failed'),
      ),
    );
  }

  private async deliver(event: WebhookEvent, messageId: string, body: string): Promise<void> {
    const headers: Record<string, string> = { 'content-type': 'application/json', 'user-agent': 'sd-gpu-runner' };
    if (this.settings.signingSecret) Object.assign(headers, await signWebhook(this.settings.signingSecret, messageId, body));
    if (this.settings.token) headers.authorization = `Bearer ${this.settings.token}`;
    let response: Response;
    try {
      response = await this.fetchImpl(this.url, {
        method: 'POST',
        headers,
        body,
        signal: AbortSignal.timeout(this.settings.attemptTimeoutMs),
      });
    } catch (err) {
      throw new DeliveryError(`${event} webhook to ${new URL(this.url).host} failed: ${errorMessage(err)}`, true);
    }
    await response.body?.cancel().catch(() => {});
    if (!response.ok) {
      const retryable = response.status >= 500 || response.status === 408 || response.status === 429;
      throw new DeliveryError(`${event} webhook to ${new URL(this.url).host} answered HTTP ${response.status}`, retryable);
    }
    this.log.debug({ event, webhook_id: messageId }, 'webhook delivered');
  }
}
