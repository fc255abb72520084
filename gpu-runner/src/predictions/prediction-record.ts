// One prediction's state machine and the only writer of its Cog envelope. Transitions follow the shared
// canTransition table; terminal setters are no-ops once finished and fire the completed webhook themselves.
import { canTransition, isTerminal, type PredictionStatus } from '@sd/shared/schemas/prediction';
import type { PrecomputedEmbeddings, RunnerPrediction } from '@sd/shared/schemas/runner';
import type { Logger } from 'pino';
import type { PredictMetrics, PredictProgress } from '../predictor/predictor.ts';
import type { PredictionWebhooks } from './webhook-sender.ts';

export interface SuccessDetails {
  seeds: number[];
  embeddings?: PrecomputedEmbeddings;
  metrics: PredictMetrics;
}

const seconds = (ms: number) => Math.round(ms) / 1000;

export class PredictionRecord {
  private state: RunnerPrediction;
  private readonly createdAtMs = Date.now();
  private startedAtMs = 0;
  /** Aborted by cancel() or the shutdown deadline; the predictor checks it between steps. */
  readonly abort = new AbortController();
  /** Resolves with the terminal envelope. */
  readonly finished: Promise<RunnerPrediction>;
  private resolveFinished!: (p: RunnerPrediction) => void;
  /** Resolves once the completed webhook was delivered (or given up on, or there is none). */
  delivered: Promise<void> = Promise.resolve();

  constructor(
    readonly id: string,
    /** The input as echoed in the envelope (heavy fields summarized by the caller). */
    echoedInput: Record<string, unknown>,
    private readonly webhooks: PredictionWebhooks | null,
    readonly log: Logger,
  ) {
    this.state = {
      id,
      status: 'starting',
      input: echoedInput,
      output: null,
      error: null,
      logs: '',
      metrics: {},
      created_at: new Date(this.createdAtMs).toISOString(),
      started_at: null,
      completed_at: null,
      progress: null,
    };
    this.finished = new Promise((resolve) => {
      this.resolveFinished = resolve;
    });
  }

  get status(): PredictionStatus {
    return this.state.status;
  }

  get isFinished(): boolean {
    return isTerminal(this.state.status);
  }

  /** A copy the caller may serialize or keep. */
  snapshot(): RunnerPrediction {
    return structuredClone(this.state);
  }

  /** starting -> processing; sends the start webhook. */
  markProcessing(): void {
    if (!canTransition(this.state.status, 'processing') || this.state.status === 'processing') return;
    this.startedAtMs = Date.now();
    this.state.status = 'processing';
    this.state.started_at = new Date(this.startedAtMs).toISOString();
    this.log.info('prediction started');
    this.webhooks?.notify('start', () => this.snapshot());
  }

  progress(p: PredictProgress): void {
    if (this.isFinished) return;
    this.state.progress = { step: p.step, total: p.total, fraction: p.total > 0 ? p.step / p.total : 0 };
    this.webhooks?.notify('output', () => this.snapshot());
  }

  /** Appends one line to the prediction's logs (and the process log, tagged with the id). */
  appendLog(line: string): void {
    this.log.info(line);
    if (this.isFinished) return;
    this.state.logs += `${line}\n`;
    this.webhooks?.notify('logs', () => this.snapshot());
  }

  succeed(output: string[], details: SuccessDetails): boolean {
    return this.finish('succeeded', () => {
      this.state.output = output;
      this.state.seeds = details.seeds;
      if (details.embeddings) this.state.embeddings = details.embeddings;
      this.state.metrics = { ...this.state.metrics, ...details.metrics, seed: details.seeds[0] };
    });
  }

  fail(message: string): boolean {
    return this.finish('failed', () => {
      this.state.error = message;
    });
  }

  cancel(): boolean {
    return this.finish('canceled', () => {});
  }

  /**
   * Stops without reporting: the prediction is no longer ours (its lease is gone or could not be renewed), so a
   * "canceled" report must not reach the edge and end a prediction that another runner now holds.
   */
  abandon(reason: string): void {
    this.webhooks?.abandon();
    this.requestCancel(reason);
  }

  /** Asks the running predictor to stop; the runner then calls cancel(). */
  requestCancel(reason: string): void {
    if (this.isFinished || this.abort.signal.aborted) return;
    this.log.info({ reason }, 'cancel requested');
    this.abort.abort(new Error(reason));
  }

  private finish(status: 'succeeded' | 'failed' | 'canceled', apply: () => void): boolean {
    if (!canTransition(this.state.status, status)) return false;
    const now = Date.now();
    apply();
    this.state.status = status;
    this.state.completed_at = new Date(now).toISOString();
    this.state.metrics.total_time = seconds(now - this.createdAtMs);
    if (this.startedAtMs && this.state.metrics.predict_time === undefined)
      this.state.metrics.predict_time = seconds(now - this.startedAtMs);
    this.log.info({ status, error: this.state.error ?? undefined, metrics: this.state.metrics }, 'prediction completed');
    const final = this.snapshot();
    if (this.webhooks) this.delivered = this.webhooks.complete(final);
    this.resolveFinished(final);
    return true;
  }
}
