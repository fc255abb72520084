// The runner process: reads the configuration, starts listening at once (health STARTING), loads the model once,
// and on SIGTERM / SIGINT / POST /shutdown drains the running prediction, delivers its final webhook and exits 0.
import type { Server } from 'node:http';
import { serve } from '@hono/node-server';
import pino from 'pino';
import { loadConfig } from '../config.ts';
import { LeaseAgent } from '../fleet/lease-agent.ts';
import { PredictionService } from '../predictions/prediction-service.ts';
import { DEFAULT_WEBHOOK_SETTINGS } from '../predictions/webhook-sender.ts';
import { SdPredictor } from '../predictor/sd-predictor.ts';
import { DataUrlStorage, type OutputStorage } from '../storage/output-storage.ts';
import { S3Storage } from '../storage/s3-storage.ts';
import { createApp } from './app.ts';

const config = loadConfig();
// Synchronous writes: the last lines before process.exit must not be lost.
const log = pino(
  { level: config.logLevel, base: { service: 'gpu-runner', pid: process.pid }, timestamp: pino.stdTimeFunctions.isoTime },
  pino.destination({ dest: 1, sync: true }),
);

const storage: OutputStorage = config.s3
  ? new S3Storage(config.s3, (message) => log.warn({ component: 's3' }, message))
  : new DataUrlStorage();
const predictor = new SdPredictor({
  modelDir: config.modelDir,
  executionProviders: config.executionProviders,
  intraOpThreads: config.intraOpThreads,
  interOpThreads: config.interOpThreads,
  allowSpinning: config.allowSpinning,
  inputFetchTimeoutMs: config.inputFetchTimeoutMs,
  allowPrivateImageUrls: config.allowPrivateImageUrls,
  ownOutputs: storage,
});
const service = new PredictionService(
  predictor,
  storage,
  {
    slots: config.slots,
    webhook: {
      ...DEFAULT_WEBHOOK_SETTINGS,
      signingSecret: config.webhookSigningSecret,
      token: config.webhookToken,
      throttleMs: config.progressThrottleMs,
    },
  },
  log,
);

let stopping: Promise<void> | null = null;
function stop(reason: string): Promise<void> {
  stopping ??= (async () => {
    log.info({ reason, grace_ms: config.shutdownGraceMs }, 'shutdown requested');
    const leasing = agent?.stop();
    await service.shutdown(config.shutdownGraceMs);
    await leasing;
    // close() lets in-flight responses (POST /shutdown's own, sync predictions) finish; a keep-alive socket that
    // stays open past a second is cut, since every response that matters has been written by then.
    await new Promise<void>((resolve) => {
      const cut = setTimeout(() => {
        (server as Server).closeAllConnections();
        resolve();
      }, 1000);
      server.close(() => {
        clearTimeout(cut);
        resolve();
      });
    });
    log.info('shutdown complete');
    process.exit(0);
  })();
  return stopping;
}

const app = createApp(
  service,
  { apiToken: config.apiToken, maxRequestBytes: config.maxRequestBytes, onShutdown: () => void stop('POST /shutdown') },
  log,
);
const server = serve({ fetch: app.fetch, port: config.port, hostname: config.host }, (info) => {
  log.info(
    { port: info.port, host: config.host, slots: config.slots, storage: storage.description, auth: Boolean(config.apiToken) },
    `listening on http://${config.host}:${info.port}`,
  );
});
server.on('error', (err) => {
  log.fatal({ err: err.message }, 'cannot listen');
  process.exit(1);
});

process.on('SIGTERM', () => void stop('SIGTERM'));
process.on('SIGINT', () => void stop('SIGINT'));

// Pull mode: lease work from the edge (no inbound traffic needed; the HTTP server above serves health checks).
const agent = config.pull
  ? new LeaseAgent(service, { ...config.pull, slots: config.slots }, log.child({ component: 'lease-agent' }))
  : null;
agent?.start();

void service.setup().then(() => {
  const { status, setup } = service.health();
  if (status === 'SETUP_FAILED') log.error({ error: setup.error }, 'setup failed; the runner answers 503 until restarted');
  else log.info({ status }, 'ready');
});
