import { Webhook } from 'standardwebhooks';
import { describe, expect, it } from 'vitest';
import { signWebhook, timingSafeEqual, verifyWebhook } from './webhook-signature.ts';

const secret = 'whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw';
const h = (o: Record<string, string>) => new Headers(o);

describe('webhook signatures (Standard Webhooks)', () => {
  it('agrees with the standardwebhooks package both ways', async () => {
    const body = JSON.stringify({ id: 'p1', status: 'succeeded' });
    const ts = Math.floor(Date.now() / 1000);
    const ours = await signWebhook(secret, 'msg_1', body, ts);
    const theirs = new Webhook(secret).sign('msg_1', new Date(ts * 1000), body);
    expect(ours['webhook-signature']).toBe(theirs);
    expect(() => new Webhook(secret).verify(body, { ...ours })).not.toThrow();
    expect(await verifyWebhook(secret, h({ ...ours }), body)).toEqual({ ok: true });
  });

  it('rejects a changed body, a wrong secret, a stale timestamp and missing headers', async () => {
    const body = '{"a":1}';
    const hs = await signWebhook(secret, 'msg_2', body);
    expect((await verifyWebhook(secret, h({ ...hs }), '{"a":2}')).ok).toBe(false);
    expect((await verifyWebhook('whsec_b3RoZXItc2VjcmV0', h({ ...hs }), body)).ok).toBe(false);
    const old = await signWebhook(secret, 'msg_3', body, Math.floor(Date.now() / 1000) - 3600);
    expect(await verifyWebhook(secret, h({ ...old }), body)).toEqual({
      ok: false,
      reason: 'webhook-timestamp outside the tolerance',
    });
    expect((await verifyWebhook(secret, h({}), body)).ok).toBe(false);
  });

  it('accepts one matching signature among several (rotation)', async () => {
    const body = 'x';
    const hs = await signWebhook(secret, 'm', body);
    const rotated = { ...hs, 'webhook-signature': `v1,AAAA ${hs['webhook-signature']}` };
    expect((await verifyWebhook(secret, h(rotated), body)).ok).toBe(true);
  });

  it('compares secrets without short-circuiting on length', () => {
    expect(timingSafeEqual('abc', 'abc')).toBe(true);
    expect(timingSafeEqual('abc', 'abd')).toBe(false);
    expect(timingSafeEqual('abc', 'abcd')).toBe(false);
    expect(timingSafeEqual('', '')).toBe(true);
    expect(timingSafeEqual('', 'a')).toBe(false);
  });
});
