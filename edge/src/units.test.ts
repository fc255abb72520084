// Pure pieces of the edge: config parsing, the webhook outbox schedule (Prefer parsing: shared/src/prefer.test.ts).
import { describe, expect, it } from 'vitest';
import { parseConfig, resolveModel } from './config.ts';
import { enqueueDeliveries, type OutboxItem, runOutbox } from './webhooks/client-webhooks.ts';

const secrets = { RUNNER_WEBHOOK_SECRET: 'a', RUNNER_TOKEN: 'b', WEBHOOK_SIGNING_SECRET: 'c', TOKEN_SIGNING_SECRET: 'd' };
const models = JSON.stringify([
  { id: 'sd/one', version: 'v1', runners: ['http://r1/', 'http://r2'], tokenizer: 't', limits: { maxSteps: 30 } },
]);

describe('config', () => {
  it('parses models with their limits and resolves every reference form', () => {
    const config = parseConfig({ ...secrets, MODELS: models, PUBLIC_BASE_URL: 'https://edge.example/' });
    expect(config.publicBaseUrl).toBe('https://edge.example');
    expect(config.models[0]).toMatchObject({ owner: 'sd', name: 'one', runners: ['http://r1', 'http://r2'], backend: 'cog' });
    expect(config.models[0].limits.maxSteps).toBe(30);
    expect(config.models[0].limits.maxOutputs).toBe(4);
    expect(resolveModel(config, 'sd/one:v1')?.id).toBe('sd/one');
    expect(resolveModel(config, 'v1')?.id).toBe('sd/one');
    expect(resolveModel(config, 'sd/one')?.id).toBe('sd/one');
    expect(resolveModel(config, 'sd/one:v2')).toBeNull();
    // Client webhooks are checked unless a local stack opts out.
    expect(config.webhooks).toEqual({ allowPrivate: false, dnsResolver: undefined });
    const local = parseConfig({
      ...secrets,
      MODELS: models,
      PUBLIC_BASE_URL: 'https://e',
      WEBHOOK_ALLOW_PRIVATE: 'true',
      WEBHOOK_DNS_RESOLVER: 'https://doh.example/dns-query',
    });
    expect(local.webhooks).toEqual({ allowPrivate: true, dnsResolver: 'https://doh.example/dns-query' });
  });

  it.each([
    [{ MODELS: '[' }, /^MODELS must be JSON/],
    [{ MODELS: '[]' }, 'MODELS.: MODELS must list at least one model'],
    [{ MODELS: JSON.stringify([{ id: 'x', version: 'v' }]) }, 'MODELS.0.id: model id must look like owner/name'],
    [{ MODELS: JSON.stringify([{ id: 'a/b', version: 'v', maxBacklog: 0 }]) }, /MODELS\.0\.maxBacklog/],
    [{ RUNNER_TOKEN: '' }, 'RUNNER_TOKEN is not set (wrangler secret put RUNNER_TOKEN, or .dev.vars locally)'],
    [{ LEASE_TTL_SECONDS: 'x' }, 'LEASE_TTL_SECONDS must be a positive integer, got "x"'],
    [{ MAX_QUEUE_SECONDS: '0' }, 'MAX_QUEUE_SECONDS must be a positive integer, got "0"'],
    [{ PUBLIC_BASE_URL: 'edge' }, 'PUBLIC_BASE_URL must be an http(s) URL, got "edge"'],
    [{ WEBHOOK_ALLOW_PRIVATE: 'yes' }, 'WEBHOOK_ALLOW_PRIVATE must be true or false, got "yes"'],
    [{ WEBHOOK_DNS_RESOLVER: 'http://dns.example/q' }, /^WEBHOOK_DNS_RESOLVER must be an https URL/],
  ])('refuses %j', (patch, message) => {
    expect(() => parseConfig({ ...secrets, MODELS: models, PUBLIC_BASE_URL: 'https://e', ...patch })).toThrow(message);
  });
});

describe('client webhook outbox', () => {
  it('keeps only the newest pending progress delivery and retries failures with growing delays', async () => {
    let outbox: OutboxItem[] = [];
    outbox = enqueueDeliveries(outbox, ['start', 'output'], ['start', 'output', 'completed'], 'b1', 'p', 0);
    outbox = enqueueDeliveries(outbox, ['output'], ['start', 'output', 'completed'], 'b2', 'p', 1);
    outbox = enqueueDeliveries(outbox, ['logs', 'completed'], ['start', 'output', 'completed'], 'b3', 'p', 2);
    expect(outbox.map((i) => [i.event, i.body])).toEqual([
      ['start', 'b1'],
      ['output', 'b2'],
      ['completed', 'b3'],
    ]);
    const failing = async () => false;
    const r1 = await runOutbox(outbox, 'https://hook', failing, 10_000);
    expect(r1.outbox.map((i) => i.nextAt - 10_000)).toEqual([5000, 5000, 5000]);
    const r2 = await runOutbox(r1.outbox, 'https://hook', failing, 20_000);
    expect(r2.outbox.map((i) => i.nextAt - 20_000)).toEqual([10_000, 10_000, 10_000]);
    const r3 = await runOutbox(r2.outbox, 'https://hook', async (_url, item) => item.event === 'completed', 40_000);
    expect(r3.delivered.map((i) => i.event)).toEqual(['completed']);
    // start and output get 3 attempts: given up now.
    expect(r3.dropped.map((i) => i.event)).toEqual(['start', 'output']);
  });
});
