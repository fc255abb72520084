// Pull mode: the runner leases predictions from the edge over outbound HTTPS (no inbound port, no load balancer),
// one loop per slot: long-poll for a lease, run it through the PredictionService (whose webhook sender streams the
// reports to the lease's report URL), heartbeat it until it ends, lease again. A lease the edge takes back (the
// heartbeat says stop) or one this runner could not renew for fence_ms is canceled here, so the prediction never
// runs on two runners at once.

import { DomainError } from '@sd/shared/domain-error';
import { errorMessage } from '@sd/shared/error-message';
import type { Logger } from 'pino';
import { z } from 'zod';
import { parsePredictionRequest } from '../predictions/prediction-request.ts';
import type { PredictionService } from '../predictions/prediction-service.ts';

export interface LeaseAgentOptions {
  edgeUrl: string;
  token: string;
  /** "owner/name:version" of the model this runner serves. */
  model: string;
  runnerId: string;
  slots: number;
  /** How long one lease request may wait for work at the edge. */
  waitMs?: number;
  fetch?: typeof fetch;
}

const LeaseSchema = z.object({
  lease_id: z.string(),
  attempt: z.number().int(),
  heartbeat_ms: z.number().int().positive(),
  fence_ms: z.number().int().positive(),
  heartbeat_url: z.url(),
  release_url: z.url(),
  prediction: z.object({ id: z.string(), input: z.record(z.string(), z.unknown()), webhook: z.url() }).loose(),
});
type Lease = z.infer<typeof LeaseSchema>;

interface Prefetched {
  lease: Promise<Lease | null>;
  requestedAt: number;
}

/** How often a running prediction is checked for the end of its denoising loop (when the next lease is fetched). */
const FINISHING_POLL_MS = 25;

const sleep = (ms: number, signal?: AbortSignal) =>
  new Promise<void>((resolve) => {
    const timer = setTimeout(resolve, ms);
    signal?.addEventListener('abort', () => {
      clearTimeout(timer);
      resolve();
    });
  });

export class LeaseAgent {
  private readonly stopping = new AbortController();
  private loops: Promise<void>[] = [];
  private readonly fetchImpl: typeof fetch;

  constructor(
    private readonly service: PredictionService,
    private readonly options: LeaseAgentOptions,
    private readonly log: Logger,
  ) {
    this.fetchImpl = options.fetch ?? ((input, init) => fetch(input, init));
  }

  start(): void {
    this.log.info(
      { edge: this.options.edgeUrl, model: this.options.model, slots: this.options.slots },
      'pull mode: leasing work from the edge',
    );
    this.loops = Array.from({ length: this.options.slots }, (_, slot) => this.loop(slot));
  }

  /** No new leases; running predictions are left to the service's own shutdown. */
  async stop(): Promise<void> {
    this.stopping.abort();
    await Promise.all(this.loops);
  }

  private headers(): Record<string, string> {
    return { authorization: `Bearer ${this.options.token}`, 'content-type': 'application/json' };
  }

  private async loop(slot: number): Promise<void> {
    const signal = this.stopping.signal;
    let failures = 0;
    /** A lease taken while the previous prediction was finishing (VAE, upload): it starts the moment the slot frees. */
    let next: Prefetched | null = null;
    while (!signal.aborted) {
      const status = this.service.health().status;
      if (status !== 'READY') {
        if (status === 'SETUP_FAILED' || status === 'DEFUNCT') return;
        await sleep(status === 'BUSY' ? 50 : 250, signal);
        continue;
      }
      let lease: Lease | null;
      try {
        lease = next ? await next.lease : await this.lease(signal);
        if (lease && next && Date.now() - next.requestedAt > lease.fence_ms) {
          // Held too long behind a slow finish: the edge may give it away soon, so it goes back instead.
          await this.release(lease);
          lease = null;
        }
        failures = 0;
      } catch (err) {
        next = null;
        if (signal.aborted) return;
        failures++;
        const delay = Math.min(30_000, 250 * 2 ** Math.min(failures, 7));
        this.log.warn({ slot, err: errorMessage(err), retry_ms: delay }, 'leasing failed; retrying');
        await sleep(delay, signal);
        continue;
      }
      next = null;
      if (lease) next = await this.run(lease);
    }
    // Stopping with a lease in hand that never ran: give it back.
    const held = await next?.lease.catch(() => null);
    if (held) await this.release(held);
  }

  /** Gives the lease back unrun; with `refused`, the input itself is refused for good and the prediction fails. */
  private async release(lease: Lease, refused?: string): Promise<void> {
    const body = JSON.stringify(refused ? { refused: { message: refused.slice(0, 2000) } } : {});
    await this.fetchImpl(lease.release_url, { method: 'POST', headers: this.headers(), body }).catch(() => undefined);
  }

  private async lease(signal: AbortSignal): Promise<Lease | null> {
    const waitMs = this.options.waitMs ?? 20_000;
    const res = await this.fetchImpl(`${this.options.edgeUrl}/runner/v1/leases`, {
      method: 'POST',
      headers: this.headers(),
      body: JSON.stringify({
        runner_id: this.options.runnerId,
        model: this.options.model,
        slots: this.options.slots,
        wait_ms: waitMs,
      }),
      signal: AbortSignal.any([signal, AbortSignal.timeout(waitMs + 15_000)]),
    });
    if (res.status === 204) return null;
    const text = await res.text();
    if (!res.ok) throw new Error(`the edge answered ${res.status}: ${text.slice(0, 300)}`);
    const lease = LeaseSchema.parse(JSON.parse(text));
    // The edge names its URLs by its public base; this runner reaches the edge at EDGE_URL (maybe another way in, e.g.
    // a private link or a proxy), so every call of the lease goes there.
    const rebase = (url: string) => {
      const u = new URL(url);
      return new URL(`${u.pathname}${u.search}`, `${this.options.edgeUrl}/`).toString();
    };
    return {
      ...lease,
      heartbeat_url: rebase(lease.heartbeat_url),
      release_url: rebase(lease.release_url),
      prediction: { ...lease.prediction, webhook: rebase(lease.prediction.webhook) },
    };
  }

  /**
   * Runs one lease to its end, heartbeating it. Once its denoising loop is done (VAE and upload left), the next lease
   * is requested, so the GPU does not wait through a round trip to the edge between two predictions.
   */
  private async run(lease: Lease): Promise<Prefetched | null> {
    const log = this.log.child({ prediction_id: lease.prediction.id, lease: lease.lease_id });
    let record: ReturnType<PredictionService['submit']>['record'];
    try {
      ({ record } = this.service.submit(
        parsePredictionRequest(
          { ...lease.prediction, webhook_events_filter: ['start', 'output', 'logs', 'completed'] },
          lease.prediction.id,
        ),
      ));
    } catch (err) {
      // An input this runner refuses (a limit of the model it loaded) would be refused by every runner of the model:
      // the prediction fails now instead of waiting in line until its queue time runs out.
      if (err instanceof DomainError && err.code === 'invalid_input') {
        log.warn({ err: errorMessage(err) }, 'the leased input is refused; the prediction fails');
        await this.release(lease, err.message);
        return null;
      }
      // Not ours to run after all (a direct PUT took the slot, shutting down): give it back.
      log.warn({ err: errorMessage(err) }, 'cannot run the leased prediction; releasing it');
      await this.release(lease);
      return null;
    }
    let lastRenewed = Date.now();
    let done = false;
    let stopped = false;
    const finished = record.finished.then(() => {
      done = true;
    });
    let prefetched: Prefetched | null = null;
    const watchFinishing = (async () => {
      while (!done && !stopped && !prefetched) {
        const progress = record.snapshot().progress;
        if (progress && progress.total > 0 && progress.step >= progress.total && !this.stopping.signal.aborted) {
          prefetched = { lease: this.lease(this.stopping.signal), requestedAt: Date.now() };
          // A failed prefetch is retried by the loop as an ordinary lease.
          prefetched.lease.catch(() => undefined);
          return;
        }
        await sleep(FINISHING_POLL_MS);
      }
    })();
    const fence = () => {
      log.warn({ fence_ms: lease.fence_ms }, 'could not renew the lease in time; canceling before the edge gives it away');
      this.service.abandon(record.id, 'the lease could not be renewed in time');
      stopped = true;
    };
    let wait = lease.heartbeat_ms;
    while (!done) {
      await Promise.race([finished, sleep(wait)]);
      if (done) break;
      if (Date.now() - lastRenewed > lease.fence_ms) {
        fence();
        break;
      }
      const sentAt = Date.now();
      const verdict = await this.heartbeat(lease);
      if (verdict === 'ok') {
        lastRenewed = sentAt;
        wait = lease.heartbeat_ms;
      } else if (verdict === 'stop') {
        log.warn('the edge took the lease back; canceling');
        this.service.abandon(record.id, 'the edge took the lease back');
        stopped = true;
        break;
      } else {
        // Unreachable: keep trying, but wake exactly at the fence so the decision is not a heartbeat late.
        if (Date.now() - lastRenewed > lease.fence_ms) {
          fence();
          break;
        }
        wait = Math.max(20, Math.min(lease.heartbeat_ms, lastRenewed + lease.fence_ms + 1 - Date.now()));
      }
    }
    await finished;
    await watchFinishing;
    return prefetched;
  }

  private async heartbeat(lease: Lease): Promise<'ok' | 'stop' | 'unreachable'> {
    try {
      const res = await this.fetchImpl(lease.heartbeat_url, {
        method: 'POST',
        headers: this.headers(),
        body: JSON.stringify({ runner_id: this.options.runnerId, slots: this.options.slots }),
        signal: AbortSignal.timeout(Math.max(1000, lease.heartbeat_ms)),
      });
      await res.body?.cancel();
      if (res.ok) return 'ok';
      if (res.status === 409) return 'stop';
      return 'unreachable';
    } catch {
      return 'unreachable';
    }
  }
}
