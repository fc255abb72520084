// A webhook receiver on loopback for runner tests: records every delivery with its parsed body, the bearer token
// and the result of the shared Standard Webhooks verification; a test can make chosen deliveries fail.
import { createServer, type IncomingMessage } from 'node:http';
import type { AddressInfo } from 'node:net';
import type { RunnerPrediction } from '@sd/shared/schemas/runner';
import { verifyWebhook } from '@sd/shared/webhook-signature';

export interface ReceivedWebhook {
  receivedAt: number;
  webhookId: string | null;
  authorization: string | null;
  signatureValid: boolean;
  signatureProblem?: string;
  body: RunnerPrediction;
  /** The status code the receiver answered. */
  answered: number;
}

export interface WebhookReceiver {
  url: string;
  received: ReceivedWebhook[];
  forPrediction(id: string): ReceivedWebhook[];
  /** Resolves when a delivery for the prediction satisfies `predicate`. */
  waitFor(id: string, predicate: (w: ReceivedWebhook) => boolean, timeoutMs?: number): Promise<ReceivedWebhook>;
  /** Decides the status code of each delivery (default 200). */
  respondWith(fn: (body: RunnerPrediction, previous: ReceivedWebhook[]) => number): void;
  close(): Promise<void>;
}

function readBody(req: IncomingMessage): Promise<string> {
  return new Promise((resolve, reject) => {
    let data = '';
    req.setEncoding('utf8');
    req.on('data', (c: string) => {
      data += c;
    });
    req.on('end', () => resolve(data));
    req.on('error', reject);
  });
}

export async function startWebhookReceiver(secret: string): Promise<WebhookReceiver> {
  const received: ReceivedWebhook[] = [];
  const listeners = new Set<() => void>();
  let decide: (body: RunnerPrediction, previous: ReceivedWebhook[]) => number = () => 200;
  const server = createServer(async (req, res) => {
    const raw = await readBody(req);
    const headers = { get: (name: string) => (req.headers[name.toLowerCase()] as string | undefined) ?? null };
    const verification = await verifyWebhook(secret, headers, raw);
    const body = JSON.parse(raw) as RunnerPrediction;
    const answered = decide(
      body,
      received.filter((w) => w.body.id === body.id),
    );
    received.push({
      receivedAt: Date.now(),
      webhookId: headers.get('webhook-id'),
      authorization: headers.get('authorization'),
      signatureValid: verification.ok,
      signatureProblem: verification.ok ? undefined : verification.reason,
      body,
      answered,
    });
    res.writeHead(answered, { 'content-type': 'text/plain' }).end(answered < 300 ? 'ok' : 'try again');
    for (const l of listeners) l();
  });
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  const { port } = server.address() as AddressInfo;
  return {
    url: `http://127.0.0.1:${port}/hooks/runner`,
    received,
    forPrediction: (id) => received.filter((w) => w.body.id === id),
    respondWith(fn) {
      decide = fn;
    },
    waitFor(id, predicate, timeoutMs = 30_000) {
      return new Promise((resolve, reject) => {
        const check = () => {
          const hit = received.find((w) => w.body.id === id && predicate(w));
          if (hit) {
            clearTimeout(timer);
            listeners.delete(check);
            resolve(hit);
          }
        };
        const timer = setTimeout(() => {
          listeners.delete(check);
          const seen = received.filter((w) => w.body.id === id).map((w) => w.body.status);
          reject(new Error(`no matching webhook for ${id} within ${timeoutMs} ms; got statuses [${seen.join(', ')}]`));
        }, timeoutMs);
        listeners.add(check);
        check();
      });
    },
    close: () =>
      new Promise<void>((resolve) => {
        server.closeAllConnections();
        server.close(() => resolve());
      }),
  };
}
