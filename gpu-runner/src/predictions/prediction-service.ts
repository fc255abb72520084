// The runner's prediction service: setup state (health), the registry of predictions by id (idempotent create),
// the slots (one prediction per GPU by default), the run of one prediction (predict -> upload -> terminal state)
// and the graceful shutdown. It knows no HTTP: it takes parsed requests and raises the shared DomainError codes
// not_ready, conflict (at capacity), invalid_input and not_found.
import { DomainError } from '@sd/shared/domain-error';
import { errorMessage, errorStack } from '@sd/shared/error-message';
import type { RunnerInput, RunnerPrediction } from '@sd/shared/schemas/runner';
import type { Logger } from 'pino';
import type { Predictor } from '../predictor/predictor.ts';
import type { OutputStorage } from '../storage/output-storage.ts';
import { PredictionRecord } from './prediction-record.ts';
import type { PredictionRequest } from './prediction-request.ts';
import { PredictionWebhooks, type WebhookSettings } from './webhook-sender.ts';

export type HealthStatus = 'STARTING' | 'READY' | 'BUSY' | 'SETUP_FAILED' | 'DEFUNCT';

export interface SetupState {
  status: 'starting' | 'succeeded' | 'failed';
  started_at: string | null;
  completed_at: string | null;
  logs: string;
  error?: string;
}

export interface ServiceOptions {
  slots: number;
  webhook: WebhookSettings;
  /** How many finished predictions are remembered for idempotent PUT and GET. */
  historySize?: number;
  fetchImpl?: typeof fetch;
}

export class PredictionService {
  private readonly setupState: SetupState = { status: 'starting', started_at: null, completed_at: null, logs: '' };
  private readonly predictions = new Map<string, PredictionRecord>();
  private readonly running = new Set<PredictionRecord>();
  private accepting = true;

  constructor(
    private readonly predictor: Predictor,
    private readonly storage: OutputStorage,
    private readonly options: ServiceOptions,
    private readonly log: Logger,
  ) {}

  /** Loads the model once. A failure leaves the runner in SETUP_FAILED with the logs and the error. */
  async setup(): Promise<void> {
    this.setupState.started_at = new Date().toISOString();
    const log = (line: string) => {
      this.setupState.logs += `${line}\n`;
      this.log.info({ phase: 'setup' }, line);
    };
    try {
      await this.predictor.setup(log);
      this.setupState.status = 'succeeded';
      log(`Outputs go to ${this.storage.description}`);
    } catch (err) {
      this.setupState.status = 'failed';
      this.setupState.error = errorMessage(err);
      log(`Setup failed: ${errorStack(err)}`);
    } finally {
      this.setupState.completed_at = new Date().toISOString();
    }
  }

  health(): { status: HealthStatus; setup: SetupState } {
    const setup = structuredClone(this.setupState);
    if (!this.accepting) return { status: 'DEFUNCT', setup };
    if (setup.status === 'starting') return { status: 'STARTING', setup };
    if (setup.status === 'failed') return { status: 'SETUP_FAILED', setup };
    return { status: this.running.size >= this.options.slots ? 'BUSY' : 'READY', setup };
  }

  get(id: string): PredictionRecord {
    const record = this.predictions.get(id);
    if (!record) throw new DomainError('not_found', `prediction ${id} is not known to this runner`);
    return record;
  }

  /**
   * Starts a parsed prediction. With an id that is already known, returns that prediction and starts nothing (Cog's
   * idempotent PUT). Raises not_ready, invalid_input (checks that need the loaded model) or conflict (every slot busy).
   */
  submit(request: PredictionRequest): { record: PredictionRecord; created: boolean } {
    const id = request.id ?? crypto.randomUUID().replaceAll('-', '');
    const existing = this.predictions.get(id);
    if (existing) return { record: existing, created: false };

    if (!this.accepting) throw new DomainError('not_ready', 'the runner is shutting down and accepts no new predictions');
    if (this.setupState.status === 'starting')
      throw new DomainError('not_ready', 'the model is still loading (health-check status STARTING)');
    if (this.setupState.status === 'failed') throw new DomainError('not_ready', `setup failed: ${this.setupState.error}`);
    const modelIssues = this.predictor.checkInput?.(request.input) ?? [];
    if (modelIssues.length > 0) throw new DomainError('invalid_input', modelIssues.map((i) => i.message).join('; '), modelIssues);
    if (this.running.size >= this.options.slots) {
      throw new DomainError(
        'conflict',
        `already running ${this.running.size} prediction(s), the limit is SLOTS=${this.options.slots}`,
      );
    }

    const log = this.log.child({ prediction_id: id });
    const webhooks = request.webhook
      ? new PredictionWebhooks(id, request.webhook.url, request.webhook.events, this.options.webhook, log, this.options.fetchImpl)
      : null;
    const record = new PredictionRecord(id, echoInput(request.sentInput), webhooks, log);
    this.remember(record);
    this.running.add(record);
    void this.run(record, request.input);
    return { record, created: true };
  }

  cancel(id: string): PredictionRecord {
    const record = this.get(id);
    record.requestCancel('canceled by request');
    return record;
  }

  /** Stops a prediction that is no longer this runner's, reporting nothing more (see PredictionRecord.abandon). */
  abandon(id: string, reason: string): void {
    this.predictions.get(id)?.abandon(reason);
  }

  /** Stops new work, lets running predictions finish for up to graceMs, cancels the rest, then waits for their final webhooks. */
  async shutdown(graceMs: number, webhookWaitMs = 60_000): Promise<void> {
    if (!this.accepting) return;
    this.accepting = false;
    const running = [...this.running];
    this.log.info({ running: running.length, grace_ms: graceMs }, 'shutting down');
    const allFinished = Promise.all(running.map((r) => r.finished));
    let timer: ReturnType<typeof setTimeout> | undefined;
    const deadline = new Promise<'deadline'>((resolve) => {
      timer = setTimeout(() => resolve('deadline'), graceMs);
    });
    if ((await Promise.race([allFinished, deadline])) === 'deadline') {
      for (const r of running) r.requestCancel(`shutdown grace period of ${graceMs} ms ran out`);
      await allFinished;
    }
    clearTimeout(timer);
    // Every prediction's final webhook, not only those running at the signal: one that finished just before it may
    // still be delivering (or backing off), and exiting now would lose its terminal state.
    const delivered = Promise.all([...this.predictions.values()].map((r) => r.delivered));
    await Promise.race([delivered, new Promise((resolve) => setTimeout(resolve, webhookWaitMs).unref())]);
  }

  private async run(record: PredictionRecord, input: RunnerInput): Promise<void> {
    const signal = record.abort.signal;
    try {
      record.markProcessing();
      const result = await this.predictor.predict(input, {
        signal,
        onProgress: (p) => record.progress(p),
        log: (line) => record.appendLog(line),
      });
      signal.throwIfAborted();
      const urls = await this.storage.storeOutputs(record.id, result.images, signal);
      record.appendLog(`Stored ${urls.length} output(s) in ${this.storage.description}`); // bucket only, no endpoint
      record.succeed(urls, { seeds: result.seeds, embeddings: result.embeddings, metrics: result.metrics });
    } catch (err) {
      if (signal.aborted) {
        record.appendLog(`Canceled: ${signal.reason === undefined ? 'canceled' : errorMessage(signal.reason)}`);
        record.cancel();
      } else {
        const message = errorMessage(err);
        record.appendLog(`Prediction failed: ${message}`);
        record.log.error({ err: errorStack(err) }, 'prediction failed');
        record.fail(message);
      }
    } finally {
      this.running.delete(record);
    }
  }

  private remember(record: PredictionRecord): void {
    this.predictions.set(record.id, record);
    const limit = this.options.historySize ?? 1000;
    if (this.predictions.size <= limit) return;
    for (const [id, r] of this.predictions) {
      if (this.predictions.size <= limit) break;
      if (r.isFinished) this.predictions.delete(id);
    }
  }
}

/**
 * The input as echoed in every envelope and webhook: data URIs, token ids and embeddings are summarized, so a
 * progress webhook does not resend megabytes the caller already has.
 */
function echoInput(input: Record<string, unknown>): Record<string, unknown> {
  const out: Record<string, unknown> = {};
  for (const [key, value] of Object.entries(input)) {
    if (typeof value === 'string' && value.startsWith('data:') && value.length > 256) {
      out[key] = `${value.slice(0, value.indexOf(',') + 1)}... (${value.length} characters)`;
    } else if (key === 'embeddings' || key === 'prompt_tokens' || key === 'negative_prompt_tokens') {
      out[key] = '(omitted)';
    } else {
      out[key] = value;
    }
  }
  return out;
}

export type { RunnerPrediction };
