// The runner's prediction service: setup state (health), the registry of predictions by id (idempotent create),
// the slots (one prediction per GPU by default), the run of one prediction (predict -> upload -> terminal state)
// and the graceful shutdown. It knows no HTTP; it raises the domain errors of domain-errors.ts.
import { type ErrorIssue, issuesFromZod } from '@sd/shared/schemas/errors';
import type { WebhookEvent } from '@sd/shared/schemas/prediction';
import {
  CogPredictionRequestSchema,
  type RunnerInput,
  RunnerInputSchema,
  type RunnerPrediction,
} from '@sd/shared/schemas/runner';
import type { Logger } from 'pino';
import type { Predictor } from '../predictor/predictor.ts';
import type { OutputStorage } from '../storage/output-storage.ts';
import { AtCapacityError, InvalidInputError, NotFoundError, NotReadyError } from './domain-errors.ts';
import { PredictionRecord } from './prediction-record.ts';
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

const ALL_EVENTS: readonly WebhookEvent[] = ['start', 'output', 'logs', 'completed'];

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
      this.setupState.error = (err as Error).message;
      log(`Setup failed: ${(err as Error).stack ?? err}`);
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
    if (!record) throw new NotFoundError(`prediction ${id} is not known to this runner`);
    return record;
  }

  /**
   * Validates and starts a prediction. With an id that is already known, returns that prediction and starts
   * nothing (Cog's idempotent PUT). Raises InvalidInputError, NotReadyError or AtCapacityError.
   */
  submit(body: unknown, pathId?: string): { record: PredictionRecord; created: boolean } {
    const request = CogPredictionRequestSchema.safeParse(body ?? {});
    if (!request.success) {
      const issues = issuesFromZod(request.error);
      throw new InvalidInputError(issues.map((i) => i.message).join('; '), issues);
    }
    // The id becomes a storage key prefix: the path id obeys the same rule as the body's.
    const pathIdCheck = pathId === undefined ? null : CogPredictionRequestSchema.shape.id.safeParse(pathId);
    if (pathIdCheck && !pathIdCheck.success) {
      const shown = JSON.stringify(pathId!.length > 40 ? `${pathId!.slice(0, 40)}...` : pathId);
      throw new InvalidInputError(`id in the path must be 1 to 128 letters, digits, _ or -, got ${shown}`, [
        { field: 'id', message: `id in the path must be 1 to 128 letters, digits, _ or -, got ${shown}` },
      ]);
    }
    if (pathId !== undefined && request.data.id !== undefined && request.data.id !== pathId) {
      throw new InvalidInputError(`id in the body (${request.data.id}) differs from the id in the path (${pathId})`, [
        { field: 'id', message: `id must equal the path id ${pathId}, got ${request.data.id}` },
      ]);
    }
    const id = pathId ?? request.data.id ?? crypto.randomUUID().replaceAll('-', '');
    const existing = this.predictions.get(id);
    if (existing) return { record: existing, created: false };

    const input = RunnerInputSchema.safeParse(request.data.input);
    if (!input.success) {
      const issues = uniqueIssues(issuesFromZod(input.error, 'input'));
      throw new InvalidInputError(issues.map((i) => i.message).join('; '), issues);
    }
    if (!this.accepting) throw new NotReadyError('the runner is shutting down and accepts no new predictions');
    if (this.setupState.status === 'starting')
      throw new NotReadyError('the model is still loading (health-check status STARTING)');
    if (this.setupState.status === 'failed') throw new NotReadyError(`setup failed: ${this.setupState.error}`);
    const modelIssues = this.predictor.checkInput?.(input.data) ?? [];
    if (modelIssues.length > 0) throw new InvalidInputError(modelIssues.map((i) => i.message).join('; '), modelIssues);
    if (this.running.size >= this.options.slots) {
      throw new AtCapacityError(`already running ${this.running.size} prediction(s), the limit is SLOTS=${this.options.slots}`);
    }

    const log = this.log.child({ prediction_id: id });
    const webhooks = request.data.webhook
      ? new PredictionWebhooks(
          id,
          request.data.webhook,
          new Set(request.data.webhook_events_filter ?? ALL_EVENTS),
          this.options.webhook,
          log,
          this.options.fetchImpl,
        )
      : null;
    const record = new PredictionRecord(id, echoInput(request.data.input), webhooks, log);
    this.remember(record);
    this.running.add(record);
    void this.run(record, input.data);
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
        record.appendLog(`Canceled: ${(signal.reason as Error)?.message ?? 'canceled'}`);
        record.cancel();
      } else {
        const message = (err as Error).message || String(err);
        record.appendLog(`Prediction failed: ${message}`);
        record.log.error({ err: (err as Error).stack }, 'prediction failed');
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

/** zod reports one message per failed check; a value that fails two checks with the same message is one issue. */
function uniqueIssues(issues: ErrorIssue[]): ErrorIssue[] {
  const seen = new Set<string>();
  return issues.filter((i) => {
    const key = `${i.field}\u0000${i.message}`;
    if (seen.has(key)) return false;
    seen.add(key);
    return true;
  });
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
